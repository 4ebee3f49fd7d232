//! SIGKILL mid-batch: the real `orfeas serve` binary is killed with no chance to save
//! anything, restarted on the same data directory, and every job must reach a terminal
//! state (re-queued ones complete) with its files intact and valid.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{check_output, png, PATIENCE};

/// `orfeas serve` on a free port; returns the child and its base URL (read from the banner).
fn spawn_server(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args([
            "serve", "--port", "0", "--slots", "1", "--method", "relief", "--device", "cpu",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orfeas serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("orfeas serve: http://") {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    let addr = rx.recv_timeout(PATIENCE).expect("server banner");
    (child, format!("http://{addr}"))
}

async fn jobs(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let r = http
        .get(format!("{base}/api/jobs"))
        .send()
        .await
        .expect("GET");
    r.json::<Value>()
        .await
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_finishes_every_job_with_valid_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let (mut child, base) = spawn_server(dir.path());
    let mut form = reqwest::multipart::Form::new()
        .text("quality", "medium")
        .text("format_type", "stl,glb");
    for seed in 0..6u8 {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(png(160, seed)).file_name(format!("img{seed}.png")),
        );
    }
    let r = http
        .post(format!("{base}/api/batch-generate"))
        .multipart(form)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Kill once the batch is under way: one job running or done, others still waiting.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list = jobs(&http, &base).await;
        let started = list.iter().any(|j| j["status"] != "queued");
        let waiting = list.iter().filter(|j| j["status"] == "queued").count();
        if started && waiting > 0 {
            break;
        }
        assert!(
            waiting > 0,
            "the batch finished before it could be killed: {list:?}"
        );
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let (mut child, base) = spawn_server(dir.path());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let list = loop {
        let list = jobs(&http, &base).await;
        assert_eq!(list.len(), 6, "every accepted job is known after the crash");
        if list.iter().all(|j| {
            matches!(
                j["status"].as_str(),
                Some("complete" | "error" | "cancelled")
            )
        }) {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs left unfinished: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for job in &list {
        assert_eq!(job["status"], "complete", "re-queued and finished: {job}");
        let id = job["job_id"].as_str().expect("id");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(dir.path().join("jobs").join(id).join("out"))
                .expect("out")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        on_disk.sort();
        let mut listed: Vec<String> = job["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .map(|o| o["filename"].as_str().expect("name").to_owned())
            .collect();
        listed.sort();
        assert_eq!(on_disk, listed, "exactly the listed files, no partial ones");
        for output in job["outputs"].as_array().expect("outputs") {
            let url = output["url"].as_str().expect("url");
            let bytes = http
                .get(format!("{base}{url}"))
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("bytes");
            check_output(output["format"].as_str().expect("format"), &bytes);
        }
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
}
