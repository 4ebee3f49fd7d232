//! Full 3D objects over real HTTP and WebSocket, on the tiny random TripoSR of
//! `orfeas-core/tests/fixtures/triposr`: a server started for objects, and a relief server that
//! found TripoSR in a Hugging Face cache and runs both kinds of job side by side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use orfeas_core::{BatchConfig, Device, Method};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{by_job, job_ids, png, Server, PATIENCE};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../orfeas-core/tests/fixtures/triposr")
}

fn input_png() -> Vec<u8> {
    std::fs::read(fixture().join("input.png")).expect("fixture image")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_batch_reports_its_stages_live_and_ends_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |config| {
        config.batch = BatchConfig {
            slots: 2,
            method: Method::TripoSr,
            weights: Some(fixture().join("tiny")),
            device: Device::Cpu,
            threads: Some(2),
            ..BatchConfig::default()
        };
    })
    .await;
    let (_, health) = server.get_json("/api/health").await;
    assert_eq!(health["method"], "triposr");
    assert!(health["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|v| v == "triposr")));

    let mut ws = server.ws().await;
    let (status, body) = server
        .upload(
            &[
                ("toy.png", input_png()),
                (
                    "cut.png",
                    std::fs::read(fixture().join("input_border.png")).expect("fixture"),
                ),
            ],
            &[
                ("method", "triposr"),
                ("format_type", "glb,stl,field.npy"),
                ("resolution", "32"),
                ("width_mm", "50"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ids = job_ids(&body);
    let events = ws.until_terminal(&ids).await;
    let per_job = by_job(&events);
    for id in &ids {
        let seq = &per_job[id];
        let stages: Vec<&str> = seq
            .iter()
            .filter(|e| e["event"] == "generation_progress")
            .filter_map(|e| e["data"]["stage"].as_str())
            .collect();
        let first = |s: &str| stages.iter().position(|&x| x == s);
        let (shape, meshing) = (first("shape_generation"), first("meshing"));
        assert!(
            shape.is_some() && meshing.is_some() && shape < meshing,
            "stages of {id}: {stages:?}"
        );
        assert!(!stages.contains(&"depth_estimation"), "{stages:?}");
        let last = seq.last().expect("events");
        assert_eq!(last["event"], "generation_complete", "{last}");
        assert_eq!(last["data"]["method"], "triposr");
        assert_eq!(last["data"]["mask"], "alpha");

        let job = server.wait_job(id).await;
        assert_eq!(job["status"], "complete", "{job}");
        assert_eq!(job["method"], "triposr");
        let formats: Vec<&str> = job["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .filter_map(|o| o["format"].as_str())
            .collect();
        assert_eq!(formats, ["glb", "stl", "field.npy"], "{job}");
    }
    let jobs: Vec<Value> =
        futures_util::future::join_all(ids.iter().map(|id| server.wait_job(id))).await;
    let cut = jobs
        .iter()
        .find(|j| j["filename"] == "cut.png")
        .expect("cut.png job");
    assert_eq!(
        cut["warnings"],
        serde_json::json!(["foreground touches the image border: the object may be cut off"])
    );
    // The field downloads as what it is.
    let toy = jobs
        .iter()
        .find(|j| j["filename"] == "toy.png")
        .expect("toy");
    let url = toy["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["format"] == "field.npy"))
        .and_then(|o| o["url"].as_str())
        .expect("field url")
        .to_owned();
    let bytes = server
        .http
        .get(server.url(&url))
        .send()
        .await
        .expect("GET field")
        .bytes()
        .await
        .expect("body");
    assert!(bytes.starts_with(b"\x93NUMPY"));
    assert_eq!(bytes.len(), 128 + 32 * 32 * 32 * 4);

    // An image without any foreground fails its own job with the stable code.
    let clear = {
        let img = image::RgbaImage::from_pixel(24, 24, image::Rgba([10, 20, 30, 0]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("encode");
        out
    };
    let (status, body) = server
        .upload(&[("clear.png", clear)], &[("resolution", "32")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = server.wait_job(&job_ids(&body)[0]).await;
    assert_eq!(job["status"], "error", "{job}");
    assert_eq!(job["code"], "ERR_NO_FOREGROUND");
    server.stop().await;
}

/// `orfeas serve` as a process with its own environment (the Hugging Face cache it is told
/// about); killed when dropped.
struct ServeProcess {
    child: Child,
    url: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, hf_cache: &Path, args: &[&str]) -> ServeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--slots",
            "2",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("HF_HUB_CACHE", hf_cache)
        .env_remove("HF_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orfeas serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("orfeas serve printed its address before exiting")
            .expect("stderr line");
        if let Some(rest) = line.strip_prefix("orfeas serve: ") {
            if let Some(url) = rest.split_whitespace().next() {
                break url.trim_end_matches('/').to_owned();
            }
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    ServeProcess { child, url }
}

/// The published cache layout: `models--stabilityai--TripoSR/refs/main` naming a snapshot
/// that holds the files.
fn hf_cache_with_tiny_triposr(root: &Path) -> PathBuf {
    let cache = root.join("hf-cache");
    let repo = cache.join("models--stabilityai--TripoSR");
    let snapshot = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(snapshot.join("vit")).expect("mkdir");
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs").join("main"), "0123abcd\n").expect("refs/main");
    let tiny = fixture().join("tiny");
    for file in ["config.yaml", "model.ckpt", "vit/config.json"] {
        std::fs::copy(tiny.join(file), snapshot.join(file)).expect("copy tiny file");
    }
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_runs_relief_and_object_jobs_side_by_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = hf_cache_with_tiny_triposr(dir.path());
    let server = tokio::task::spawn_blocking({
        let (data, cache) = (dir.path().join("data"), cache.clone());
        move || serve(&data, &cache, &["--method", "relief", "--resolution", "32"])
    })
    .await
    .expect("join");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let health: Value = http
        .get(format!("{}/api/health", server.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["method"], "relief");
    assert_eq!(
        health["methods"],
        serde_json::json!(["auto", "relief", "inflate", "triposr"]),
        "TripoSR found in the cache: {health}"
    );

    let upload = |method: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/batch-generate", server.url);
        async move {
            let form = reqwest::multipart::Form::new()
                .part(
                    "files",
                    reqwest::multipart::Part::bytes(png(48, 7)).file_name("disc.png"),
                )
                .text("method", method)
                .text("format_type", "stl,glb");
            let response = http.post(url).multipart(form).send().await.expect("POST");
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let body: Value = response.json().await.expect("json");
            job_ids(&body).remove(0)
        }
    };
    let (relief, object) = tokio::join!(upload("relief"), upload("triposr"));
    let wait = |id: String| {
        let http = http.clone();
        let base = server.url.clone();
        async move {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let job: Value = http
                    .get(format!("{base}/api/jobs/{id}"))
                    .send()
                    .await
                    .expect("GET job")
                    .json()
                    .await
                    .expect("json");
                if ["complete", "error", "cancelled"]
                    .contains(&job["status"].as_str().unwrap_or(""))
                {
                    return job;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "job {id} never finished"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let (relief, object) = tokio::join!(wait(relief), wait(object));
    assert_eq!(relief["status"], "complete", "{relief}");
    assert_eq!(relief["method"], "relief");
    assert_eq!(object["status"], "complete", "{object}");
    assert_eq!(object["method"], "triposr");
    assert_eq!(object["depth"], "triposr");
    drop(server);
}
