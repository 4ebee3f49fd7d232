//! The shape method per request: `/api/health` lists what the server can run, a request picks
//! any of those (`method`, or its 2.5D alias `depth`), and what the server cannot do, or a
//! format the method cannot make, is refused with a clear JSON error before any job exists.

use reqwest::StatusCode;

use crate::support::{files_below, job_ids, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_choose_among_the_methods_the_server_can_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, |_| {}).await;

    let (status, health) = server.get_json("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["method"], "relief");
    let methods: Vec<&str> = health["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert_eq!(methods, ["auto", "relief", "inflate"], "{health}");

    // A weight-free method other than the server's default runs per request.
    let (status, body) = server
        .upload(
            &[("disc.png", png(48, 3))],
            &[("method", "inflate"), ("quality", "low")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = server.wait_job(&job_ids(&body)[0]).await;
    assert_eq!(job["status"], "complete", "{job}");
    assert_eq!(job["method"], "inflate");
    assert_eq!(job["depth"], "inflate");
    assert_eq!(job["mask"], "alpha");
    assert_eq!(job["warnings"], serde_json::json!([]));

    // Without TripoSR weights an object request is answered at once, saying how to get them.
    let (status, body) = server
        .upload(&[("disc.png", png(48, 3))], &[("method", "triposr")])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["code"], "ERR_WEIGHTS_NOT_FOUND");
    let message = body["error"].as_str().unwrap_or("");
    assert!(
        message.contains("TripoSR") && message.contains("fetch-model --model triposr"),
        "{message}"
    );

    // Combinations no method can make, and unknown or disagreeing names: 400.
    for fields in [
        vec![("method", "triposr"), ("format_type", "depth16")],
        vec![("method", "relief"), ("format_type", "stl,field.npy")],
        vec![("method", "triposr"), ("depth", "relief")],
        vec![("method", "sculpt")],
        vec![("resolution", "3")],
    ] {
        let (status, body) = server.upload(&[("disc.png", png(48, 3))], &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields:?}: {body}");
        assert_eq!(body["success"], false);
    }
    let (status, body) = server
        .upload(&[("disc.png", png(48, 3))], &[("depth", "depth-anything")])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "ERR_WEIGHTS_NOT_FOUND");

    // Refused requests left nothing behind: one job (the inflate one), no staged uploads.
    let (_, jobs) = server.get_json("/api/jobs").await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
    assert!(files_below(&data.join("uploads")).is_empty());
    server.stop().await;
}
