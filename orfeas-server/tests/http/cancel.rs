//! Cancelling a waiting job and a running one.

use orfeas_core::Stage;
use reqwest::StatusCode;

use crate::support::{by_job, files_below, job_ids, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_queued_and_a_running_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Jobs stop at the meshing stage until cancelled: "running" does not depend on timing.
    let server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.hold_jobs_at = Some(Stage::Meshing);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");

    // One slot: the first image runs (held at meshing) while the second one waits.
    let files = vec![("slow.png", png(48, 3)), ("waiting.png", png(32, 9))];
    let (status, body) = server
        .upload(
            &files,
            &[("quality", "high"), ("format_type", "stl,glb,obj,ply")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ids = job_ids(&body);
    let (slow, waiting) = (&ids[0], &ids[1]);

    ws.until(|e| {
        e["event"] == "generation_progress"
            && e["data"]["job_id"] == slow.as_str()
            && e["data"]["stage"] == "meshing"
    })
    .await;
    let (_, job) = server.get_json(&format!("/api/jobs/{waiting}")).await;
    assert_eq!(job["status"], "queued", "{job}");

    let (status, answer) = server.delete_json(&format!("/api/jobs/{waiting}")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["job_id"].as_str(), answer["status"].as_str()),
        (Some(waiting.as_str()), Some("cancelled"))
    );

    let (status, answer) = server.delete_json(&format!("/api/jobs/{slow}")).await;
    assert_eq!(status, StatusCode::OK, "the running job stops: {answer}");
    assert_eq!(answer["status"], "cancelled");

    let events = ws.until_terminal(&ids).await;
    let per_job = by_job(&events);
    for id in [slow, waiting] {
        let last = per_job[id].last().expect("events");
        assert_eq!(last["event"], "generation_cancelled", "{last}");
        let job = server.wait_job(id).await;
        assert_eq!(job["status"], "cancelled");
        assert!(job["outputs"].as_array().is_some_and(Vec::is_empty));
    }
    // Nothing partial left behind by the running job, nothing written for the waiting one.
    for id in [slow, waiting] {
        let out = server.data_dir.join("jobs").join(id).join("out");
        assert!(files_below(&out).is_empty(), "{:?}", files_below(&out));
    }

    let (status, again) = server.delete_json(&format!("/api/jobs/{slow}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["success"], false);
    let (status, _) = server.delete_json("/api/jobs/no-such-job").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cancelling a whole batch stops its running job and its waiting one.
    let (_, body) = server
        .upload(
            &[("slow2.png", png(48, 8)), ("waiting2.png", png(32, 7))],
            &[("quality", "high")],
        )
        .await;
    let batch_ids = job_ids(&body);
    ws.until(|e| {
        e["event"] == "generation_progress"
            && e["data"]["job_id"] == batch_ids[0].as_str()
            && e["data"]["stage"] == "meshing"
    })
    .await;
    let batch = body["batch_id"].as_str().expect("batch");
    let (status, answer) = server.delete_json(&format!("/api/batches/{batch}")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["cancelled"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    for id in &batch_ids {
        assert_eq!(server.wait_job(id).await["status"], "cancelled");
    }
    let (_, counts) = server.get_json(&format!("/api/batches/{batch}")).await;
    assert_eq!(
        (counts["cancelled"].as_u64(), counts["finished"].as_bool()),
        (Some(2), Some(true)),
        "{counts}"
    );

    // The slot is free again: a new job runs to completion.
    server.state.release_held();
    let (_, body) = server
        .upload(&[("after.png", png(32, 4))], &[("quality", "low")])
        .await;
    let job = server.wait_job(&job_ids(&body)[0]).await;
    assert_eq!(job["status"], "complete", "{job}");
    server.stop().await;
}
