//! What the cluster tests share: a real nats-server, real `orfeas worker` processes, inputs
//! and the broker-side helpers.

use std::io::Cursor;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orfeas_core::{GenerateSettings, MeshFormat, Method, Quality};
use orfeas_server::cluster::{Broker, BrokerSettings, JobMessage, JobState};
use orfeas_server::jobs::SettingsSpec;

/// Each test's own limit: a hang is a failure, not a stuck CI.
pub const TEST_LIMIT: Duration = Duration::from_secs(90);

/// Prints how far a test got and when: a test that runs out of time says where it was.
pub struct Steps(Instant);

impl Steps {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn at(&self, what: &str) {
        eprintln!("[{:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

/// Runs a whole test under a hard limit: a hang anywhere (a request, a store listing) is a
/// failure that names itself, and dropping the test's processes kills them.
pub async fn bounded(test: impl std::future::Future<Output = ()>) {
    let limit = TEST_LIMIT * 3;
    if tokio::time::timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
}

pub struct Nats {
    child: Child,
    port: u16,
    /// Removed when the server is dropped.
    store: tempfile::TempDir,
}

impl Nats {
    /// On a free port; again on another one if a parallel test took the port first.
    pub fn start() -> Self {
        for _ in 0..5 {
            let store = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let child = start_nats(port, store.path());
            let mut nats = Self { child, port, store };
            if nats.wait_until_up() {
                return nats;
            }
        }
        panic!("nats-server did not start");
    }

    /// SIGKILL, as a power cut would: what the broker acknowledged is on its disk.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.child = start_nats(self.port, self.store.path());
        assert!(self.wait_until_up(), "nats-server did not start again");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether the server listens (false when it exited, e.g. its port was taken).
    fn wait_until_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline || self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_nats(port: u16, store: &Path) -> Child {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Worker(pub Child);

impl Worker {
    pub fn start(url: &str, id: &str, extra: &[&str]) -> Self {
        Self::start_with_env(url, id, extra, &[])
    }

    pub fn start_with_env(url: &str, id: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        // The weight-free method unless the test names another.
        let method: &[&str] = if extra.contains(&"--method") {
            &[]
        } else {
            &["--method", "relief"]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
            .args(["worker", "--queue", url, "--id", id])
            .args(method)
            .args(extra)
            .envs(env.iter().copied())
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent-orfeas-test-cache")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start orfeas worker");
        Self(child)
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGSTOP / SIGCONT: a worker that hangs (a stuck driver, a swapping machine) and wakes.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn png(size: u32, seed: u32) -> Vec<u8> {
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

pub fn settings(formats: &[MeshFormat], quality: Quality) -> SettingsSpec {
    let settings = GenerateSettings {
        formats: formats.to_vec(),
        quality,
        background: orfeas_core::Background::None,
        ..GenerateSettings::default()
    };
    SettingsSpec::new(&settings, Method::Relief)
}

/// Writes `bytes` as an input file and submits it as job `id`.
pub async fn submit(
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
        store: broker.files().location().clone(),
        input_key: orfeas_server::cluster::state::input_key(id),
        stem: id.to_owned(),
        settings: spec,
    };
    let submitted = broker.submit(&job, &input).await.expect("submit");
    assert!(submitted.new && submitted.sequence > 0, "{submitted:?}");
    job
}

/// Connects once the server answers (its port opens a moment before it takes clients).
pub async fn connect(url: &str, lease: Duration) -> Broker {
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
pub async fn wait_for(
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

pub async fn wait_final(broker: &Broker, job_id: &str) -> JobState {
    wait_for(broker, job_id, "final", JobState::is_final).await
}

/// A binary STL read back from the store: its header's count matches its size, and it has
/// triangles.
pub async fn check_stl(broker: &Broker, key: &str, dir: &Path) {
    let local = dir.join("check.stl");
    broker
        .files()
        .get_file(key, &local)
        .await
        .expect("download");
    let bytes = std::fs::read(&local).expect("read");
    assert!(bytes.len() > 84, "{key}: {} bytes", bytes.len());
    let count = u32::from_le_bytes(bytes[80..84].try_into().expect("4 bytes")) as usize;
    assert!(count > 0);
    assert_eq!(bytes.len(), 84 + 50 * count, "{key}");
}
