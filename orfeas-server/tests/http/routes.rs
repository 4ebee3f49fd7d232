//! Health, GPU stats, the embedded Studio page and JSON 404s.

use reqwest::StatusCode;

use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_gpu_studio_and_unknown_routes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;

    let (status, health) = server.get_json("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["device"], "cpu");
    assert_eq!(health["slots"], 2);
    assert_eq!(health["depth"], "relief");

    let (status, gpu) = server.get_json("/api/gpu-stats").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        gpu["available"].is_boolean() && gpu["gpus"].is_array(),
        "{gpu}"
    );
    if gpu["available"] == false {
        assert!(gpu["gpus"].as_array().is_some_and(Vec::is_empty));
    }
    assert_eq!(gpu["slots"]["total"], 2);
    assert_eq!(gpu["slots"]["busy"], 0);
    assert_eq!(gpu["queue"], 0);

    // The page is whatever orfeas-server/static/index.html held at build time.
    let index_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/index.html");
    let response = server
        .http
        .get(server.url("/"))
        .send()
        .await
        .expect("GET /");
    match std::fs::read(&index_path) {
        Ok(on_disk) => {
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html"));
            assert_eq!(
                response.bytes().await.expect("body").as_ref(),
                on_disk.as_slice()
            );
            let again = server
                .http
                .get(server.url("/static/index.html"))
                .send()
                .await
                .expect("GET");
            assert_eq!(again.status(), StatusCode::OK);
        }
        Err(_) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["success"], false);
        }
    }
    let (status, body) = server.get_json("/static/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);
    let (status, body) = server.get_json("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);
    let (status, _) = server.get_json("/api/jobs/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get_json("/api/batches/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.delete_json("/api/batches/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);
    let (status, jobs) = server.get_json("/api/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs, serde_json::json!([]));
    server.stop().await;
}
