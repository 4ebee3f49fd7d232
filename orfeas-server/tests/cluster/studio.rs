//! The HTTP side of the cluster tests: a real `orfeas serve --queue` process, a WebSocket
//! client like the studio's, and uploads and polls over real HTTP.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::TEST_LIMIT;

/// A real `orfeas serve --queue` process on a free port.
pub struct FrontEnd {
    pub child: Child,
    pub base: String,
}

impl FrontEnd {
    pub fn start(queue: &str, data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(queue, data_dir, extra, &[])
    }

    pub fn start_with_env(
        queue: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
            .args([
                "serve", "--port", "0", "--method", "relief", "--queue", queue,
            ])
            .args(extra)
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orfeas serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
                if let Some(rest) = line.strip_prefix("orfeas serve: http://") {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server banner");
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FrontEnd {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(45))
        .build()
        .expect("client")
}

/// A WebSocket client like the studio: every event it receives, in order.
pub struct Studio {
    events: Arc<Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Studio {
    pub async fn connect(base: &str) -> Self {
        let url = base.replacen("http://", "ws://", 1) + "/ws";
        let (mut stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    if let Ok(value) = serde_json::from_str::<Value>(&text) {
                        sink.lock().expect("lock").push(value);
                    }
                }
            }
        });
        Self { events, reader }
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    /// Terminal events by job id.
    pub fn terminals(&self) -> HashMap<String, Vec<Value>> {
        let mut by_job: HashMap<String, Vec<Value>> = HashMap::new();
        for e in self.events() {
            if matches!(
                e["event"].as_str(),
                Some("generation_complete" | "generation_error" | "generation_cancelled")
            ) {
                let id = e["data"]["job_id"].as_str().unwrap_or_default().to_owned();
                by_job.entry(id).or_default().push(e);
            }
        }
        by_job
    }

    /// Waits until some job had its terminal event.
    pub async fn wait_first_terminal(&self) {
        let deadline = Instant::now() + TEST_LIMIT;
        while self.terminals().is_empty() {
            assert!(Instant::now() < deadline, "no job finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every job in `ids` had its terminal event.
    pub async fn wait_terminal(&self, ids: &[String]) -> HashMap<String, Vec<Value>> {
        let deadline = Instant::now() + TEST_LIMIT;
        loop {
            let terminals = self.terminals();
            if ids.iter().all(|id| terminals.contains_key(id)) {
                return terminals;
            }
            assert!(
                Instant::now() < deadline,
                "terminal events missing; got {:?}",
                terminals.keys()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Posts `images` as one batch with form `fields`; the answer as it came.
pub async fn post_batch(
    base: &str,
    images: Vec<(String, Vec<u8>)>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    for (name, bytes) in images {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    }
    http()
        .post(format!("{base}/api/batch-generate"))
        .multipart(form)
        .send()
        .await
        .expect("POST")
}

/// Uploads `images` as one batch; returns the job ids.
pub async fn upload(
    base: &str,
    images: Vec<(String, Vec<u8>)>,
    fields: &[(&str, &str)],
) -> Vec<String> {
    let response = post_batch(base, images, fields).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    body["job_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect()
}

pub async fn get_json(url: &str) -> Value {
    http()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

/// Polls `GET url` until `done` holds, bounded.
pub async fn wait_json(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TEST_LIMIT;
    loop {
        if let Ok(response) = http().get(url).send().await {
            if let Ok(value) = response.json::<Value>().await {
                if done(&value) {
                    return value;
                }
            }
        }
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` noise PNGs of `size`², named `img<i>.png`.
pub fn images(n: u32, size: u32) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| (format!("img{i}.png"), crate::support::png(size, i)))
        .collect()
}

/// The body of `GET url`, whatever its status.
pub async fn get_bytes(url: &str) -> bytes::Bytes {
    http()
        .get(url)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body")
}

/// How many files the batch's ZIP download holds.
pub async fn zip_entries(base: &str, batch: &str) -> usize {
    let zip = get_bytes(&format!("{base}/api/batches/{batch}/zip")).await;
    zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec()))
        .expect("a zip")
        .len()
}
