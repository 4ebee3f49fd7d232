//! Operating limits (docs/server.md "Operation"): the paginated job list, the bounded
//! snapshot, `--max-queue` (429), retention by age and by data size, and the counters in
//! `/api/health`. Jobs are held with `hold_jobs_at` where a test needs them unfinished.

use std::time::Duration;

use orfeas_core::Stage;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{job_ids, png, Server, PATIENCE};

const LOW: [(&str, &str); 1] = [("quality", "low")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_is_paginated_newest_first_and_the_snapshot_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| c.store.snapshot_finished = 2).await;
    let mut ids = Vec::new();
    for seed in 0..5u8 {
        let (_, body) = server.upload(&[("a.png", png(24, seed))], &LOW).await;
        let id = job_ids(&body)[0].clone();
        server.wait_job(&id).await;
        ids.push(id);
    }
    let page = |query: &'static str| {
        let server = &server;
        async move {
            let r = server
                .http
                .get(server.url(&format!("/api/jobs{query}")))
                .send()
                .await
                .expect("GET");
            let total = r
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = r.status();
            (status, total, r.json::<Value>().await.expect("json"))
        }
    };
    let listed = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|j| j["job_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (status, total, all) = page("").await;
    assert_eq!((status, total.as_deref()), (StatusCode::OK, Some("5")));
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed(&all), newest_first);
    let (_, _, first) = page("?limit=2").await;
    assert_eq!(listed(&first), newest_first[..2]);
    let (_, _, last) = page("?limit=2&offset=4").await;
    assert_eq!(listed(&last), newest_first[4..]);
    let (_, _, beyond) = page("?offset=99").await;
    assert_eq!(listed(&beyond), Vec::<String>::new());
    for bad in ["?limit=-1", "?limit=5000", "?offset=x"] {
        let (status, _, body) = page(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["success"], false);
    }

    let mut ws = server.ws().await;
    let snapshot = ws.next().await.expect("snapshot");
    let jobs: Vec<&str> = snapshot["data"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        jobs,
        [ids[3].as_str(), ids[4].as_str()],
        "the 2 newest finished jobs"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_queue_limit_get_429_and_health_counts_the_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.max_queue = 2;
        c.hold_jobs_at = Some(Stage::Meshing);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (status, body) = server
        .upload(&[("run.png", png(24, 1)), ("wait.png", png(24, 2))], &LOW)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first = job_ids(&body);
    ws.until(|e| e["data"]["job_id"] == first[0].as_str() && e["data"]["stage"] == "meshing")
        .await;
    // One waiting: a batch of two would make three.
    let (status, body) = server
        .upload(&[("x.png", png(24, 3)), ("y.png", png(24, 4))], &LOW)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        (body["success"].as_bool(), body["code"].as_str()),
        (Some(false), Some("ERR_QUEUE_FULL"))
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("queue is full")),
        "{body}"
    );
    let (status, body) = server.upload(&[("z.png", png(24, 5))], &LOW).await;
    assert_eq!(status, StatusCode::ACCEPTED, "one more fits: {body}");
    let (_, health) = server.get_json("/api/health").await;
    assert_eq!(
        (
            health["jobs_queued"].as_u64(),
            health["jobs_running"].as_u64()
        ),
        (Some(2), Some(1)),
        "{health}"
    );
    assert_eq!(health["limits"]["max_queue"], 2);
    // Full: refused before the body is read.
    let (status, body) = server.upload(&[("w.png", png(24, 6))], &LOW).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        crate::support::files_below(&dir.path().join("uploads")).is_empty(),
        "nothing staged"
    );

    server.state.release_held();
    let (_, jobs) = server.get_json("/api/jobs").await;
    for job in jobs.as_array().expect("jobs") {
        let done = server.wait_job(job["job_id"].as_str().expect("id")).await;
        assert_eq!(done["status"], "complete", "{done}");
    }
    let (_, health) = server.get_json("/api/health").await;
    let stored: u64 = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_id"].as_str().expect("id"))
        .map(|id| dir_size(&dir.path().join("jobs").join(id)))
        .sum();
    assert_eq!(health["data_bytes"].as_u64(), Some(stored), "{health}");
    assert_eq!(
        (
            health["jobs_queued"].as_u64(),
            health["jobs_running"].as_u64()
        ),
        (Some(0), Some(0))
    );
    server.stop().await;
}

fn dir_size(dir: &std::path::Path) -> u64 {
    crate::support::files_below(dir)
        .iter()
        .map(|p| std::fs::metadata(dir.join(p)).map_or(0, |m| m.len()))
        .sum()
}

/// Polls until `GET /api/jobs/{id}` answers 404.
async fn until_gone(server: &Server, id: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.get_json(&format!("/api/jobs/{id}")).await.0 != StatusCode::NOT_FOUND {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_expire_by_age_with_their_files_but_running_ones_never_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.keep_results = Duration::ZERO;
        c.retention_interval = Duration::from_millis(30);
        c.hold_jobs_at = Some(Stage::Meshing);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (_, body) = server.upload(&[("a.png", png(24, 1))], &LOW).await;
    let id = job_ids(&body)[0].clone();
    ws.until(|e| e["data"]["job_id"] == id.as_str() && e["data"]["stage"] == "meshing")
        .await;
    // Many retention passes while it runs: it stays.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.get_json(&format!("/api/jobs/{id}")).await.0,
        StatusCode::OK
    );
    server.state.release_held();
    let job = ws
        .until(|e| e["event"] == "generation_complete" && e["data"]["job_id"] == id.as_str())
        .await;
    let url = job.last().expect("complete")["data"]["outputs"][0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    until_gone(&server, &id).await;
    assert_eq!(
        server
            .http
            .get(server.url(&url))
            .send()
            .await
            .expect("GET")
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !dir.path().join("jobs").join(&id).exists(),
        "upload and outputs removed"
    );
    let (_, health) = server.get_json("/api/health").await;
    assert_eq!(health["data_bytes"], 0, "{health}");
    server.stop().await;
    // The record is gone from the journal too.
    let server = Server::start(dir.path(), |_| {}).await;
    assert_eq!(
        server.get_json(&format!("/api/jobs/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_data_size_the_oldest_finished_jobs_go_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let (_, body) = server.upload(&[("old.png", png(32, 1))], &LOW).await;
    let old = job_ids(&body)[0].clone();
    server.wait_job(&old).await;
    let one_job = server.get_json("/api/health").await.1["data_bytes"]
        .as_u64()
        .expect("bytes");
    assert!(one_job > 0);
    server.stop().await;

    // Room for one and a half of these jobs: the second one pushes the first out.
    let server = Server::start(dir.path(), |c| {
        c.max_data_bytes = one_job * 3 / 2;
        c.retention_interval = Duration::from_millis(30);
    })
    .await;
    let (_, body) = server.upload(&[("new.png", png(32, 1))], &LOW).await;
    let new = job_ids(&body)[0].clone();
    assert_eq!(server.wait_job(&new).await["status"], "complete");
    until_gone(&server, &old).await;
    let (status, job) = server.get_json(&format!("/api/jobs/{new}")).await;
    assert_eq!(status, StatusCode::OK, "the newer job stays: {job}");
    assert_eq!(
        server.get_json("/api/health").await.1["data_bytes"].as_u64(),
        Some(one_job)
    );
    server.stop().await;
}
