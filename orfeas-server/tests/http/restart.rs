//! Restarts: finished jobs stay listed and downloadable; a graceful stop drains (running
//! jobs finish, waiting ones resume at the next start); a job still running at the drain
//! timeout is stopped and re-queued; `--on-restart fail` fails what was left; older
//! `jobs.json` stores are migrated; leftovers no record lists are swept.
//!
//! Jobs are held at a stage with `hold_jobs_at` so that "running" never depends on timing.

use std::time::Duration;

use orfeas_core::Stage;
use orfeas_server::jobs::OnRestart;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{check_outputs, files_below, job_ids, png, Server, TERMINAL};

const LOW_STL_GLB: [(&str, &str); 2] = [("quality", "low"), ("format_type", "stl,glb")];

/// Events the socket delivers until the server closes it.
async fn rest_of(mut ws: crate::support::Ws) -> Vec<Value> {
    let mut tail = Vec::new();
    while let Some(e) = ws.next().await {
        tail.push(e);
    }
    tail
}

fn terminal_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| TERMINAL.contains(&e["event"].as_str().unwrap_or_default()))
        .filter_map(|e| e["data"]["job_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_the_running_job_and_the_next_start_runs_the_waiting_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.hold_jobs_at = Some(Stage::Meshing);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("first.png", png(40, 1)),
        ("second.png", png(36, 2)),
        ("third.png", png(32, 3)),
    ];
    let (status, body) = server.upload(&files, &LOW_STL_GLB).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ids = job_ids(&body);
    ws.until(|e| e["data"]["job_id"] == ids[0].as_str() && e["data"]["stage"] == "meshing")
        .await;

    // SIGTERM while the first job is certainly running: new uploads are refused at once…
    server.signal_stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(png(16, 4)).file_name("late.png"),
        );
        let sent = server
            .http
            .post(server.url("/api/batch-generate"))
            .multipart(form)
            .send()
            .await;
        // 503 while the listener still answers, then no connection at all.
        match sent {
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => break,
            Err(_) => break,
            Ok(r) => assert_ne!(
                r.status(),
                StatusCode::ACCEPTED,
                "no upload accepted while draining"
            ),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "uploads refused while draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …and the running job may finish.
    server.state.release_held();
    let tail = rest_of(ws).await;
    assert_eq!(
        terminal_ids(&tail),
        vec![ids[0].clone()],
        "only the running job ended"
    );
    server.stop().await;

    let server = Server::start(dir.path(), |c| c.batch.slots = 1).await;
    for id in &ids {
        let job = server.wait_job(id).await;
        assert_eq!(job["status"], "complete", "{job}");
        assert_eq!(job["attempts"], 1, "each ran once: {job}");
        check_outputs(&server, &job).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_at_the_drain_timeout_is_requeued_and_completes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, done_job, done_bytes) = {
        let server = Server::start(dir.path(), |c| c.batch.slots = 1).await;
        let (_, body) = server
            .upload(&[("keep.png", png(40, 5))], &LOW_STL_GLB)
            .await;
        let job = server.wait_job(&job_ids(&body)[0]).await;
        assert_eq!(job["status"], "complete");
        let url = job["outputs"][0]["url"].as_str().expect("url").to_owned();
        let bytes = server.http.get(server.url(&url)).send().await.expect("GET");
        let bytes = bytes.bytes().await.expect("bytes");
        server.stop().await;
        (url, job, bytes)
    };

    let mut server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.hold_jobs_at = Some(Stage::Meshing);
        c.drain_timeout = Duration::from_millis(200);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (_, body) = server
        .upload(
            &[("held.png", png(40, 6)), ("waiting.png", png(32, 7))],
            &LOW_STL_GLB,
        )
        .await;
    let ids = job_ids(&body);
    ws.until(|e| e["data"]["job_id"] == ids[0].as_str() && e["data"]["stage"] == "meshing")
        .await;
    server.signal_stop();
    let tail = rest_of(ws).await;
    assert!(terminal_ids(&tail).is_empty(), "no job ended: {tail:?}");
    assert!(
        tail.iter()
            .any(|e| e["data"]["job_id"] == ids[0].as_str() && e["data"]["status"] == "queued"),
        "the stopped job is announced back in the queue: {tail:?}"
    );
    server.stop().await;
    let out = dir.path().join("jobs").join(&ids[0]).join("out");
    assert!(
        files_below(&out).is_empty(),
        "nothing partial kept: {:?}",
        files_below(&out)
    );

    let server = Server::start(dir.path(), |c| c.batch.slots = 1).await;
    let (_, again) = server
        .get_json(&format!(
            "/api/jobs/{}",
            done_job["job_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        again["outputs"], done_job["outputs"],
        "finished job unchanged"
    );
    let url = again["outputs"][0]["url"].as_str().expect("url");
    let bytes = server.http.get(server.url(url)).send().await.expect("GET");
    assert_eq!(bytes.bytes().await.expect("bytes"), done_bytes);
    for id in &ids {
        let job = server.wait_job(id).await;
        assert_eq!(job["status"], "complete", "{job}");
        assert_eq!(
            job["attempts"], 1,
            "the stop by the drain does not count: {job}"
        );
        check_outputs(&server, &job).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_restart_fail_fails_the_jobs_left_unfinished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.hold_jobs_at = Some(Stage::Meshing);
        c.drain_timeout = Duration::from_millis(100);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (_, body) = server
        .upload(
            &[("held.png", png(40, 6)), ("waiting.png", png(32, 7))],
            &LOW_STL_GLB,
        )
        .await;
    let ids = job_ids(&body);
    ws.until(|e| e["data"]["job_id"] == ids[0].as_str() && e["data"]["stage"] == "meshing")
        .await;
    server.signal_stop();
    rest_of(ws).await;
    server.stop().await;

    let server = Server::start(dir.path(), |c| c.on_restart = OnRestart::Fail).await;
    for id in &ids {
        let (_, job) = server.get_json(&format!("/api/jobs/{id}")).await;
        assert_eq!(job["status"], "error", "{job}");
        assert_eq!(job["code"], "ERR_INTERRUPTED", "{job}");
        assert_eq!(job["error"], "interrupted by server restart");
        let out = dir.path().join("jobs").join(id).join("out");
        assert!(files_below(&out).is_empty());
    }
    let (_, health) = server.get_json("/api/health").await;
    assert_eq!(
        (
            health["jobs_queued"].as_u64(),
            health["jobs_running"].as_u64()
        ),
        (Some(0), Some(0)),
        "{health}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_jobs_json_is_migrated_and_leftovers_are_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let (_, body) = server.upload(&[("a.png", png(32, 1))], &LOW_STL_GLB).await;
    let id = job_ids(&body)[0].clone();
    let done = server.wait_job(&id).await;
    assert_eq!(done["status"], "complete");
    server.stop().await;

    // The store as a server before the journal wrote it: the same record, plus one saved
    // as running (which that version could not re-run: it kept no settings).
    let journal = std::fs::read_to_string(dir.path().join("jobs.journal")).expect("journal");
    let mut record: Value = serde_json::from_str::<Value>(journal.lines().last().expect("line"))
        .expect("json")["put"]
        .take();
    let mut running = record.clone();
    for r in [&mut record, &mut running] {
        for key in ["spec", "input_bytes", "attempts"] {
            r.as_object_mut().expect("object").remove(key);
        }
    }
    running["job_id"] = "0f8fad5b-d9cb-469f-a165-70867728950e".into();
    running["status"] = "processing".into();
    running["outputs"] = json!([]);
    std::fs::remove_file(dir.path().join("jobs.journal")).expect("rm");
    std::fs::write(
        dir.path().join("jobs.json"),
        json!({ "version": 1, "jobs": [record, running] }).to_string(),
    )
    .expect("jobs.json");
    // Leftovers: a folder no record names, a stray temporary file beside the outputs.
    let orphan = dir
        .path()
        .join("jobs")
        .join("6a1b2c3d-0000-4000-8000-000000000000");
    std::fs::create_dir_all(orphan.join("out")).expect("orphan");
    let out = dir.path().join("jobs").join(&id).join("out");
    std::fs::write(out.join(".a.stl.tmp123"), b"partial").expect("stray");

    let server = Server::start(dir.path(), |_| {}).await;
    let (_, again) = server.get_json(&format!("/api/jobs/{id}")).await;
    assert_eq!(again["status"], "complete");
    assert_eq!(again["outputs"], done["outputs"]);
    check_outputs(&server, &again).await;
    let (_, old) = server
        .get_json("/api/jobs/0f8fad5b-d9cb-469f-a165-70867728950e")
        .await;
    assert_eq!(old["code"], "ERR_INTERRUPTED", "{old}");
    assert!(
        old["error"]
            .as_str()
            .is_some_and(|e| e.contains("older server version")),
        "{old}"
    );
    assert!(dir.path().join("jobs.json.migrated").is_file());
    assert!(!dir.path().join("jobs.json").exists());
    assert!(!orphan.exists(), "unlisted job folder swept");
    let mut names: Vec<String> = files_below(&out)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a.glb", "a.stl"], "only the listed outputs remain");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_took_the_server_down_three_times_is_not_requeued_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let (_, body) = server.upload(&[("a.png", png(32, 1))], &LOW_STL_GLB).await;
    let id = job_ids(&body)[0].clone();
    server.wait_job(&id).await;
    server.stop().await;
    // As a crash leaves it: running, started for the third time.
    let path = dir.path().join("jobs.journal");
    let mut line: Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .expect("journal")
            .lines()
            .last()
            .expect("line"),
    )
    .expect("json");
    line["put"]["status"] = "processing".into();
    line["put"]["attempts"] = 3.into();
    let mut text = std::fs::read_to_string(&path).expect("journal");
    text.push_str(&format!("{line}\n"));
    std::fs::write(&path, text).expect("write");

    let server = Server::start(dir.path(), |_| {}).await;
    let (_, job) = server.get_json(&format!("/api/jobs/{id}")).await;
    assert_eq!(job["code"], "ERR_INTERRUPTED", "{job}");
    assert!(
        job["error"].as_str().is_some_and(|e| e.contains("3 times")),
        "{job}"
    );
    server.stop().await;
}
