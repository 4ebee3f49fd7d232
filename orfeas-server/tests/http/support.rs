//! A real server on 127.0.0.1:0 per test, plus small HTTP, WebSocket and image helpers.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use orfeas_core::{BatchConfig, Device, Method};
use orfeas_server::{AppState, ServerConfig};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Guard against a hung server; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(180);

pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// The running server's state (e.g. to release jobs held by `hold_jobs_at`).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts a server on `data_dir` with 2 slots, the relief estimator on CPU, and
    /// `tweak` applied to the configuration.
    pub async fn start(data_dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::new(data_dir);
        config.batch = BatchConfig {
            slots: 2,
            method: Method::Relief,
            device: Device::Cpu,
            threads: Some(2),
            ..BatchConfig::default()
        };
        tweak(&mut config);
        let state = tokio::task::spawn_blocking(move || AppState::new(config))
            .await
            .expect("join")
            .expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(orfeas_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            data_dir: data_dir.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            state,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Starts the graceful shutdown (as SIGTERM) without waiting for it; `stop` waits.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown, as on SIGTERM; returns when the server has saved its state.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(PATIENCE, handle)
                .await
                .expect("server stops")
                .expect("join")
                .expect("serve result");
        }
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/batch-generate` with `files` and text fields.
    pub async fn upload(
        &self,
        files: &[(&str, Vec<u8>)],
        fields: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form = Form::new();
        for (name, bytes) in files {
            form = form.part(
                "files",
                Part::bytes(bytes.clone()).file_name((*name).to_owned()),
            );
        }
        for (k, v) in fields {
            form = form.text((*k).to_owned(), (*v).to_owned());
        }
        let r = self
            .http
            .post(self.url("/api/batch-generate"))
            .multipart(form)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls `GET /api/jobs/{id}` until the job is terminal.
    pub async fn wait_job(&self, job_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, job) = self.get_json(&format!("/api/jobs/{job_id}")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if matches!(
                job["status"].as_str(),
                Some("complete" | "error" | "cancelled")
            ) {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a request line as given (no client-side path normalisation) and returns the
    /// status code and body.
    pub async fn raw_get(&self, raw_path: &str) -> (u16, String) {
        self.raw_request(&format!(
            "GET {raw_path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ))
        .await
    }

    /// Sends `request` byte for byte and reads the answer until the server closes.
    pub async fn raw_request(&self, request: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
            .await
            .expect("response in time")
            .expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    pub async fn ws(&self) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr))
            .await
            .expect("ws connect");
        Ws { stream }
    }
}

pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

pub const TERMINAL: [&str; 3] = [
    "generation_complete",
    "generation_error",
    "generation_cancelled",
];

impl Ws {
    /// The next JSON event; `None` when the server closed the socket.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("an event in time")?;
            match message.ok()? {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("event is JSON"))
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Every event until each of `job_ids` has had its terminal event.
    pub async fn until_terminal(&mut self, job_ids: &[String]) -> Vec<Value> {
        let mut open: HashSet<&str> = job_ids.iter().map(String::as_str).collect();
        let mut events = Vec::new();
        while !open.is_empty() {
            let event = self
                .next()
                .await
                .expect("socket open until the jobs finish");
            if TERMINAL.contains(&event["event"].as_str().unwrap_or_default()) {
                if let Some(id) = event["data"]["job_id"].as_str() {
                    open.remove(id);
                }
            }
            events.push(event);
        }
        events
    }

    /// Events until one matches `pred` (that one included).
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await.expect("socket open");
            let done = pred(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// Events of each job, in arrival order.
pub fn by_job(events: &[Value]) -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for e in events {
        if let Some(id) = e["data"]["job_id"].as_str() {
            map.entry(id.to_owned()).or_default().push(e.clone());
        }
    }
    map
}

/// A small RGBA PNG: a disc on a transparent background, coloured by `seed`.
pub fn png(size: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - size as f32 / 2.0, y as f32 - size as f32 / 2.0);
        let inside = dx * dx + dy * dy < (size as f32 * 0.4).powi(2);
        image::Rgba([
            seed,
            (x * 7) as u8,
            (y * 5) as u8,
            if inside { 255 } else { 0 },
        ])
    });
    encode(
        &image::DynamicImage::ImageRgba8(img),
        image::ImageFormat::Png,
    )
}

pub fn jpeg(size: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])
    });
    encode(
        &image::DynamicImage::ImageRgb8(img),
        image::ImageFormat::Jpeg,
    )
}

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), format)
        .expect("encode");
    bytes
}

/// Job ids of an accepted upload.
pub fn job_ids(response: &Value) -> Vec<String> {
    response["job_ids"]
        .as_array()
        .expect("job_ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect()
}

/// Every file below `dir`, relative paths.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap_or(&path).to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Checks a downloaded output by its format: a binary STL's size matches its triangle
/// count, a GLB's header its magic, version and length; other formats are not empty.
pub fn check_output(format: &str, bytes: &[u8]) {
    match format {
        "stl" => {
            assert!(bytes.len() >= 84, "STL header");
            let n = u32::from_le_bytes(bytes[80..84].try_into().expect("count")) as usize;
            assert!(n > 0, "STL with triangles");
            assert_eq!(bytes.len(), 84 + 50 * n, "binary STL layout");
        }
        "glb" => {
            assert_eq!(&bytes[..4], b"glTF");
            assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().expect("v")), 2);
            let len = u32::from_le_bytes(bytes[8..12].try_into().expect("len")) as usize;
            assert_eq!(len, bytes.len(), "GLB length field");
        }
        _ => assert!(!bytes.is_empty(), "{format} output is empty"),
    }
}

/// Downloads every output of a complete job and checks each (see [`check_output`]).
pub async fn check_outputs(server: &Server, job: &Value) {
    let outputs = job["outputs"].as_array().expect("outputs");
    assert!(!outputs.is_empty(), "a complete job has outputs: {job}");
    for output in outputs {
        let url = output["url"].as_str().expect("url");
        let r = server.http.get(server.url(url)).send().await.expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let bytes = r.bytes().await.expect("bytes");
        assert_eq!(Some(bytes.len() as u64), output["bytes"].as_u64(), "{url}");
        check_output(output["format"].as_str().expect("format"), &bytes);
    }
}
