//! `orfeas worker` against a real `nats-server` (Debian's package; `scripts/test.sh` installs
//! it, `ORFEAS_NATS_SERVER` names another binary), started here on a free loopback port with a
//! temporary store. Jobs are submitted through `orfeas_server::cluster::Broker`, the API the
//! front end uses; workers are real `orfeas worker` processes, killed for real.

use std::io::Cursor;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orfeas_core::{GenerateSettings, MeshFormat, Method, Quality};
use orfeas_server::cluster::{Broker, BrokerSettings, JobMessage, JobState};
use orfeas_server::jobs::SettingsSpec;

/// Each test's own limit: a hang is a failure, not a stuck CI.
const TEST_LIMIT: Duration = Duration::from_secs(90);

struct Nats {
    child: Child,
    port: u16,
    /// Removed when the server is dropped.
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Self {
        let store = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = start_nats(port, store.path());
        let nats = Self {
            child,
            port,
            _store: store,
        };
        nats.wait_until_up();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats(port: u16, store: &Path) -> Child {
    let binary = std::env::var("ORFEAS_NATS_SERVER").unwrap_or_else(|_| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server")
            .to_owned()
    });
    Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {binary} ({e}): the cluster tests need NATS \
                 (`apt-get install nats-server`, or set ORFEAS_NATS_SERVER)"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Worker(Child);

impl Worker {
    fn start(url: &str, id: &str, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
            .args(["worker", "--queue", url, "--id", id, "--method", "relief"])
            .args(extra)
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent-orfeas-test-cache")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start orfeas worker");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn png(size: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) ^ (x * y / 3);
        image::Rgb([
            (v % 251) as u8,
            ((v / 3) % 241) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn settings(formats: &[MeshFormat], quality: Quality) -> SettingsSpec {
    let settings = GenerateSettings {
        formats: formats.to_vec(),
        quality,
        background: orfeas_core::Background::None,
        ..GenerateSettings::default()
    };
    SettingsSpec::new(&settings, Method::Relief)
}

/// Writes `bytes` as an input file and submits it as job `id`.
async fn submit(
    broker: &Broker,
    dir: &Path,
    id: &str,
    bytes: &[u8],
    spec: SettingsSpec,
) -> JobMessage {
    let input: PathBuf = dir.join(format!("{id}.png"));
    std::fs::write(&input, bytes).expect("write input");
    let job = JobMessage {
        v: orfeas_server::cluster::message::JOB_MESSAGE_VERSION,
        job_id: id.to_owned(),
        batch_id: "batch-1".into(),
        filename: format!("{id}.png"),
        input_key: orfeas_server::cluster::state::input_key(id),
        stem: id.to_owned(),
        settings: spec,
    };
    let submitted = broker.submit(&job, &input).await.expect("submit");
    assert!(submitted.new && submitted.sequence > 0, "{submitted:?}");
    job
}

/// Connects once the server answers (its port opens a moment before it takes clients).
async fn connect(url: &str, lease: Duration) -> Broker {
    let mut settings = BrokerSettings::new(url);
    settings.lease = lease;
    settings.max_attempts = 3;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Broker::connect(&settings).await {
            Ok(broker) => return broker,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for nats-server: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

/// Waits until the job's state satisfies `done`, returning it.
async fn wait_for(
    broker: &Broker,
    job_id: &str,
    what: &str,
    done: impl Fn(&JobState) -> bool,
) -> JobState {
    let deadline = Instant::now() + TEST_LIMIT;
    loop {
        if let Some((state, _)) = broker.job_state(job_id).await.expect("state") {
            if done(&state) {
                return state;
            }
        }
        assert!(Instant::now() < deadline, "job {job_id}: never {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_final(broker: &Broker, job_id: &str) -> JobState {
    wait_for(broker, job_id, "final", JobState::is_final).await
}

/// A binary STL read back from the store: its header's count matches its size, and it has
/// triangles.
async fn check_stl(broker: &Broker, key: &str, dir: &Path) {
    let local = dir.join("check.stl");
    broker.download(key, &local).await.expect("download");
    let bytes = std::fs::read(&local).expect("read");
    assert!(bytes.len() > 84, "{key}: {} bytes", bytes.len());
    let count = u32::from_le_bytes(bytes[80..84].try_into().expect("4 bytes")) as usize;
    assert!(count > 0);
    assert_eq!(bytes.len(), 84 + 50 * count, "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_jobs_into_the_store_and_skips_foreign_messages() {
    let nats = Nats::start();
    let broker = connect(&nats.url(), Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let _worker = Worker::start(&nats.url(), "w1", &["--slots", "2"]);

    // A foreign payload on the jobs subject is terminated, and the worker goes on.
    let client = async_nats::connect(nats.url()).await.expect("client");
    let js = async_nats::jetstream::new(client);
    js.publish("orfeas.jobs", "not a job".into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    let good = submit(
        &broker,
        dir.path(),
        "good",
        &png(96, 1),
        settings(&[MeshFormat::Stl, MeshFormat::Glb], Quality::Low),
    )
    .await;
    let bad = submit(
        &broker,
        dir.path(),
        "bad",
        b"\x89PNG\r\n\x1a\n truncated",
        settings(&[MeshFormat::Stl], Quality::Low),
    )
    .await;
    // The same id again is not queued twice.
    let again = broker
        .submit(&good, &dir.path().join("good.png"))
        .await
        .expect("resubmit");
    assert!(!again.new);

    match wait_final(&broker, &good.job_id).await {
        JobState::Complete {
            worker,
            attempt,
            outputs,
            report,
            ..
        } => {
            assert_eq!((worker.as_str(), attempt), ("w1", 1));
            let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            assert_eq!(names, ["good.stl", "good.glb"]);
            assert!(report["triangles"].as_u64().unwrap_or(0) > 0, "{report}");
            check_stl(&broker, &outputs[0].key, dir.path()).await;
            assert_eq!(
                broker.keys("results/good/").await.expect("keys"),
                ["results/good/1/good.glb", "results/good/1/good.stl"]
            );
        }
        other => panic!("good job ended {other:?}"),
    }
    match wait_final(&broker, &bad.job_id).await {
        JobState::Failed {
            code,
            attempts,
            error,
            ..
        } => {
            assert_eq!(attempts, 1, "a bad image is not retried");
            assert!(code.starts_with("ERR_"), "{code}: {error}");
            assert!(!error.contains("/tmp/"), "a worker path leaked: {error}");
        }
        other => panic!("bad job ended {other:?}"),
    }
    // Inputs of finished jobs leave the store, and the stream is empty.
    assert!(broker.keys("inputs/").await.expect("keys").is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.pending_jobs().await.expect("pending") > 0 {
        assert!(Instant::now() < deadline, "the jobs stream kept messages");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_worker_finishes_on_another_with_one_set_of_files() {
    let nats = Nats::start();
    let lease = Duration::from_secs(2);
    let broker = connect(&nats.url(), lease).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Worker::start(&nats.url(), "doomed", &["--slots", "1"]);
    // Large enough to be still running when the state says so.
    let job = submit(
        &broker,
        dir.path(),
        "long",
        &png(1536, 2),
        settings(
            &[MeshFormat::Stl, MeshFormat::Glb, MeshFormat::Obj],
            Quality::High,
        ),
    )
    .await;
    wait_for(
        &broker,
        &job.job_id,
        "running on the first worker",
        |s| matches!(s, JobState::Running { worker, .. } if worker == "doomed"),
    )
    .await;
    first.kill();
    let started = Instant::now();
    let _second = Worker::start(&nats.url(), "rescuer", &["--slots", "1"]);
    match wait_final(&broker, &job.job_id).await {
        JobState::Complete {
            worker,
            attempt,
            outputs,
            ..
        } => {
            assert_eq!(worker, "rescuer");
            assert_eq!(attempt, 2, "the second delivery ran it");
            assert!(
                started.elapsed() >= lease / 2,
                "redelivered before the lease ran out"
            );
            let keys = broker.keys("results/long/").await.expect("keys");
            assert!(
                keys.iter().all(|k| k.starts_with("results/long/2/")),
                "{keys:?}"
            );
            assert_eq!(keys.len(), outputs.len(), "{keys:?}");
            check_stl(&broker, &outputs[0].key, dir.path()).await;
        }
        other => panic!("job ended {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_is_cancelled_and_leaves_the_stream() {
    let nats = Nats::start();
    let broker = connect(&nats.url(), Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let job = submit(
        &broker,
        dir.path(),
        "unwanted",
        &png(64, 3),
        settings(&[MeshFormat::Stl], Quality::Low),
    )
    .await;
    assert_eq!(broker.pending_jobs().await.expect("pending"), 1);
    let state = broker.cancel(&job.job_id).await.expect("cancel");
    assert!(
        matches!(state, Some(JobState::Cancelled { .. })),
        "{state:?}"
    );
    assert_eq!(broker.pending_jobs().await.expect("pending"), 0);
    assert!(broker.keys("inputs/").await.expect("keys").is_empty());
    // A worker started afterwards has nothing to do, and cancelling again changes nothing.
    let again = broker.cancel(&job.job_id).await.expect("cancel again");
    assert!(matches!(again, Some(JobState::Cancelled { .. })));
}

#[test]
fn a_worker_with_no_queue_says_so_and_exits() {
    let port = free_port(); // nothing listens there
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args(["worker", "--queue", &format!("nats://127.0.0.1:{port}")])
        .args(["--method", "relief", "--slots", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERR_QUEUE_UNREACHABLE"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
