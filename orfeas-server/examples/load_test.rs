//! Load test for `orfeas serve` (run by hand, not part of the test suite; see docs/server.md).
//!
//! Starts the given `orfeas` binary on a free port with a fresh data directory, connects
//! `--listeners` WebSocket clients, submits `--jobs` single-image jobs from `--clients`
//! concurrent HTTP clients, and checks that every job ends `complete` and that every
//! listener saw every job's terminal event. Reports event latency (server `ts` → client
//! receipt, all events on all listeners) and the server's peak resident memory (VmHWM).
//!
//! ```text
//! cargo build --release --bin orfeas --example load_test
//! target/release/examples/load_test --orfeas target/release/orfeas
//! ```

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Cursor};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug)]
struct Options {
    orfeas: String,
    jobs: usize,
    clients: usize,
    listeners: usize,
    slots: usize,
    size: u32,
    timeout: Duration,
}

fn parse_args() -> Options {
    let mut o = Options {
        orfeas: "target/release/orfeas".into(),
        jobs: 200,
        clients: 10,
        listeners: 50,
        slots: 4,
        size: 64,
        timeout: Duration::from_secs(600),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        let n = || {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("{} needs a number", args[i]))
        };
        match args[i].as_str() {
            "--orfeas" => o.orfeas = v.clone(),
            "--jobs" => o.jobs = n(),
            "--clients" => o.clients = n(),
            "--listeners" => o.listeners = n(),
            "--slots" => o.slots = n(),
            "--size" => o.size = n() as u32,
            "--timeout-s" => o.timeout = Duration::from_secs(n() as u64),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn png(size: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - size as f32 / 2.0, y as f32 - size as f32 / 2.0);
        let inside = dx * dx + dy * dy < (size as f32 * 0.4).powi(2);
        image::Rgba([
            (seed * 37) as u8,
            (x * 5) as u8,
            (y * 3) as u8,
            if inside { 255 } else { 0 },
        ])
    });
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode");
    bytes
}

/// What one listener saw.
#[derive(Default)]
struct Seen {
    terminal: HashSet<String>,
    latencies_ms: Vec<f64>,
    snapshots: usize,
}

fn start_server(o: &Options, data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(&o.orfeas)
        .args([
            "serve",
            "--port",
            "0",
            "--depth",
            "relief",
            "--quality",
            "low",
            "--slots",
            &o.slots.to_string(),
        ])
        .arg("--data-dir")
        .arg(data)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start orfeas serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server printed its address")
            .expect("stderr line");
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().expect("addr").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, addr)
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let o = parse_args();
    let data = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = start_server(&o, data.path());
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for _ in 0..100 {
        if http
            .get(format!("http://{addr}/api/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Listeners first, so each sees every job from the start.
    let mut listeners = Vec::new();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..o.listeners)
        .map(|_| Arc::new(Mutex::new(Seen::default())))
        .collect();
    for s in &seen {
        let (mut stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("ws");
        let s = Arc::clone(s);
        listeners.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let received = now_ms();
                let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                let mut seen = s.lock().await;
                if let Some(ts) = v["ts"].as_f64() {
                    seen.latencies_ms.push(received - ts);
                }
                match v["event"].as_str() {
                    Some("generation_complete" | "generation_error" | "generation_cancelled") => {
                        if let Some(id) = v["data"]["job_id"].as_str() {
                            seen.terminal.insert(id.to_owned());
                        }
                    }
                    Some("snapshot") => {
                        seen.snapshots += 1;
                        // A resync after lag: finished jobs in the snapshot count as seen.
                        for job in v["data"]["jobs"].as_array().into_iter().flatten() {
                            if matches!(
                                job["status"].as_str(),
                                Some("complete" | "error" | "cancelled")
                            ) {
                                if let Some(id) = job["job_id"].as_str() {
                                    seen.terminal.insert(id.to_owned());
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }));
    }

    let started = Instant::now();
    let per_client = o.jobs.div_ceil(o.clients);
    let mut submitters = Vec::new();
    for c in 0..o.clients {
        let http = http.clone();
        let addr = addr.clone();
        let count = per_client.min(o.jobs.saturating_sub(c * per_client));
        let size = o.size;
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..count {
                let part = reqwest::multipart::Part::bytes(png(size, (c * 1000 + k) as u32))
                    .file_name(format!("c{c}-{k}.png"));
                let form = reqwest::multipart::Form::new()
                    .part("files", part)
                    .text("quality", "low")
                    .text("format_type", "stl");
                let r = http
                    .post(format!("http://{addr}/api/batch-generate"))
                    .multipart(form)
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
                let v: serde_json::Value = r.json().await.expect("json");
                ids.extend(
                    v["job_ids"]
                        .as_array()
                        .expect("ids")
                        .iter()
                        .map(|i| i.as_str().expect("id").to_owned()),
                );
            }
            ids
        }));
    }
    let mut all_ids = HashSet::new();
    for s in submitters {
        all_ids.extend(s.await.expect("submitter"));
    }
    let submitted_in = started.elapsed();
    assert_eq!(all_ids.len(), o.jobs, "every submission accepted");

    let deadline = Instant::now() + o.timeout;
    loop {
        let mut done = 0;
        for s in &seen {
            if all_ids
                .iter()
                .all(|id| s.try_lock().is_ok_and(|g| g.terminal.contains(id)))
            {
                done += 1;
            }
        }
        if done == seen.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {} listeners saw every terminal event in time",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();

    let jobs: serde_json::Value = http
        // The list is paged (newest first, at most 1000 per page).
        .get(format!("http://{addr}/api/jobs?limit=1000"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let jobs = jobs.as_array().expect("list");
    let complete = jobs.iter().filter(|j| j["status"] == "complete").count();
    let rss = peak_rss_kb(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stop = Instant::now();
    let exit = child.wait().expect("wait");
    let stopped_in = stop.elapsed();

    let mut latencies: Vec<f64> = Vec::new();
    let mut snapshots = 0;
    for s in &seen {
        let g = s.lock().await;
        latencies.extend_from_slice(&g.latencies_ms);
        snapshots += g.snapshots;
    }
    latencies.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "jobs": o.jobs, "clients": o.clients, "listeners": o.listeners, "slots": o.slots, "image_px": o.size,
        "complete": complete,
        "all_listeners_saw_every_terminal_event": true,
        "submit_seconds": submitted_in.as_secs_f64(),
        "total_seconds": elapsed.as_secs_f64(),
        "jobs_per_second": o.jobs as f64 / elapsed.as_secs_f64(),
        "events_received": latencies.len(),
        "snapshots_received": snapshots,
        "latency_ms": { "p50": percentile(&latencies, 50.0), "p99": percentile(&latencies, 99.0), "max": latencies.last().copied().unwrap_or(f64::NAN) },
        "server_peak_rss_mb": rss.map(|kb| kb as f64 / 1024.0),
        "shutdown_seconds": stopped_in.as_secs_f64(),
        "server_exit": exit.code(),
    });
    for l in listeners {
        l.abort();
    }
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    assert_eq!(complete, o.jobs, "every job complete");
}
