//! State survives a restart: finished jobs stay listed and downloadable; a job running at
//! shutdown is cancelled cleanly (no partial files) and reported as such afterwards.

use reqwest::StatusCode;

use crate::support::{files_below, job_ids, noise_png, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_completed_jobs_and_reports_interrupted_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| c.batch.slots = 1).await;
    let (_, body) = server
        .upload(
            &[("keep.png", png(40, 5))],
            &[("quality", "low"), ("format_type", "stl,glb")],
        )
        .await;
    let done_id = job_ids(&body)[0].clone();
    let done = server.wait_job(&done_id).await;
    assert_eq!(done["status"], "complete");
    let url = done["outputs"][0]["url"].as_str().expect("url").to_owned();
    let before = server
        .http
        .get(server.url(&url))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("bytes");

    // A slow job still running when the server stops, and a client watching.
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (_, body) = server
        .upload(
            &[("slow.png", noise_png(2048)), ("later.png", png(32, 6))],
            &[("quality", "high")],
        )
        .await;
    let ids = job_ids(&body);
    ws.until(|e| {
        e["event"] == "generation_progress"
            && e["data"]["job_id"] == ids[0].as_str()
            && e["data"]["stage"] != "queued"
    })
    .await;
    server.stop().await;
    // The client was told the server went away (a Close frame), after the jobs' last events.
    let mut tail = Vec::new();
    while let Some(e) = ws.next().await {
        tail.push(e);
    }
    let saved = std::fs::read_to_string(dir.path().join("jobs.json")).unwrap_or_default();
    let names: Vec<String> = tail
        .iter()
        .map(|e| format!("{} {}", e["event"], e["data"]["job_id"]))
        .collect();
    for id in &ids {
        assert!(tail.iter().any(|e| e["event"] == "generation_cancelled" && e["data"]["job_id"] == id.as_str()), "{id}: {names:?} {saved}");
    }

    let server = Server::start(dir.path(), |c| c.batch.slots = 1).await;
    let (status, jobs) = server.get_json("/api/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs.as_array().map(Vec::len), Some(3), "{jobs}");
    let (_, again) = server.get_json(&format!("/api/jobs/{done_id}")).await;
    assert_eq!(again["status"], "complete");
    assert_eq!(again["outputs"], done["outputs"]);
    let after = server.http.get(server.url(&url)).send().await.expect("GET");
    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(
        after.bytes().await.expect("bytes"),
        before,
        "same file after the restart"
    );
    for id in &ids {
        let (_, job) = server.get_json(&format!("/api/jobs/{id}")).await;
        assert!(
            job["status"] == "cancelled" || job["status"] == "complete",
            "never left queued or running: {job}"
        );
        if job["status"] == "cancelled" {
            assert!(
                job["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("shut down")),
                "{job}"
            );
            assert!(
                files_below(&dir.path().join("jobs").join(id).join("out")).is_empty(),
                "no partial output"
            );
        }
    }
    let (_, slow) = server.get_json(&format!("/api/jobs/{}", ids[0])).await;
    assert_eq!(
        slow["status"], "cancelled",
        "the running job was cancelled by the shutdown: {slow}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_unfinished_in_the_saved_state_come_back_as_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let (_, body) = server
        .upload(&[("a.png", png(32, 1))], &[("quality", "low")])
        .await;
    let id = job_ids(&body)[0].clone();
    server.wait_job(&id).await;
    server.stop().await;
    // Simulate a crash mid-job: the saved record says the job was still running.
    let path = dir.path().join("jobs.json");
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("jobs.json")).expect("json");
    saved["jobs"][0]["status"] = "processing".into();
    std::fs::write(&path, saved.to_string()).expect("write");

    let server = Server::start(dir.path(), |_| {}).await;
    let (_, job) = server.get_json(&format!("/api/jobs/{id}")).await;
    assert_eq!(job["status"], "error", "{job}");
    assert_eq!(job["error"], "interrupted by server restart");
    assert_eq!(job["code"], "ERR_INTERRUPTED");
    server.stop().await;
}
