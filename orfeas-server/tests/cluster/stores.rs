//! `--store file:///DIR`: a cluster's inputs and results in a directory every machine shares,
//! written and read through `object_store`, and served by the front end while the broker is
//! away.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::studio::*;
use crate::support::*;

/// Waits for a process that should refuse to start; its exit code and what it printed.
fn refused(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait").is_some() {
            let output = child.wait_with_output().expect("output");
            return (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("it started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn orfeas(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orfeas")
}

/// The files under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_store_holds_every_file_and_serves_them_while_the_broker_is_away() {
    bounded(async {
        let mut nats = Nats::start();
        let url = nats.url();
        let data = tempfile::tempdir().expect("tempdir");
        let store = tempfile::tempdir().expect("tempdir");
        let store_arg = format!("file://{}", store.path().display());
        // This worker joins before any front end named a store: it follows each job's.
        let _early = Worker::start(&url, "early", &["--slots", "1"]);
        let front = FrontEnd::start(&url, data.path(), &["--store", &store_arg]);
        let base = front.base.clone();
        let _late = Worker::start(&url, "late", &["--slots", "1"]);
        wait_json(&format!("{base}/api/health"), "two workers", |h| {
            h["workers"] == 2
        })
        .await;

        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            images(3, 96),
            &[("quality", "low"), ("format_type", "stl")],
        )
        .await;
        let terminals = studio.wait_terminal(&jobs).await;
        for id in &jobs {
            assert_eq!(terminals[id].len(), 1, "{:?}", terminals[id]);
            assert_eq!(terminals[id][0]["event"], "generation_complete");
        }
        // Every result is a file of the directory, under one attempt; the inputs go once done.
        let deadline = Instant::now() + TEST_LIMIT;
        loop {
            let files = files_under(store.path());
            let inputs = files.iter().filter(|f| f.starts_with("inputs/")).count();
            if inputs == 0 {
                for id in &jobs {
                    let results: Vec<&String> = files
                        .iter()
                        .filter(|f| f.starts_with(&format!("results/{id}/")))
                        .collect();
                    assert_eq!(results.len(), 1, "job {id}: {files:?}");
                    assert!(results[0].ends_with(".stl"), "{results:?}");
                }
                assert!(!files.iter().any(|f| f.starts_with("probes/")), "{files:?}");
                break;
            }
            assert!(Instant::now() < deadline, "inputs left: {files:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A front end naming another store on the same queue is refused.
        let other = tempfile::tempdir().expect("tempdir");
        let (code, stderr) = refused(orfeas(&[
            "serve",
            "--port",
            "0",
            "--method",
            "relief",
            "--queue",
            &url,
            "--store",
            "nats",
            "--data-dir",
            &other.path().display().to_string(),
        ]));
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("ERR_STORE_MISMATCH"), "{stderr}");
        assert!(stderr.contains(&store_arg), "{stderr}");

        // With the broker gone, results still download: they never were in the broker.
        nats.kill();
        wait_json(&format!("{base}/api/health"), "the queue missed", |h| {
            h["queue"] == "disconnected"
        })
        .await;
        let job = get_json(&format!("{base}/api/jobs/{}", jobs[0])).await;
        let output = &job["outputs"][0];
        let response = http()
            .get(format!("{base}{}", output["url"].as_str().expect("url")))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.expect("bytes");
        let on_disk = files_under(store.path())
            .into_iter()
            .find(|f| f.starts_with(&format!("results/{}/", jobs[0])))
            .expect("the result");
        assert_eq!(
            bytes.to_vec(),
            std::fs::read(store.path().join(on_disk)).expect("read")
        );
        let batch = job["batch_id"].as_str().expect("batch");
        assert_eq!(zip_entries(&base, batch).await, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_cannot_reach_the_store_does_not_join() {
    bounded(async {
        let nats = Nats::start();
        let url = nats.url();
        let data = tempfile::tempdir().expect("tempdir");
        let shared = tempfile::tempdir().expect("tempdir");
        let store_dir = shared.path().join("store");
        let store_arg = format!("file://{}", store_dir.display());
        let front = FrontEnd::start(&url, data.path(), &["--store", &store_arg]);
        drop(front);
        // The mount is missing on this worker's machine.
        std::fs::remove_dir_all(&store_dir).expect("remove");
        let (code, stderr) = refused(orfeas(&[
            "worker", "--queue", &url, "--method", "relief", "--slots", "1",
        ]));
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("ERR_STORE"), "{stderr}");
        assert!(stderr.contains("mounted"), "{stderr}");
    })
    .await;
}

/// An S3-compatible server (moto, through `scripts/s3/s3-server`, which installs it on first
/// use) on a free loopback port, stopped on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    async fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3/s3-server");
        let port = free_port();
        let child = Command::new("bash")
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scripts/s3/s3-server");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // Installing moto on a cold cache takes a minute (scripts/test.sh does it first).
        let deadline = Instant::now() + Duration::from_secs(150);
        while http().get(&server.endpoint).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the S3 test server did not start (bash scripts/s3/s3-server --install)"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    /// The environment an `orfeas` process reads its S3 settings from.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "orfeas-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "orfeas-test".into()),
        ]
    }

    /// The keys of `bucket` and their sizes, read over S3's own API (not through
    /// `object_store`).
    async fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        let listing = http()
            .get(format!("{}/{bucket}?list-type=2", self.endpoint))
            .send()
            .await
            .expect("list")
            .text()
            .await
            .expect("xml");
        let field = |entry: &str, name: &str| -> Option<String> {
            let start = entry.find(&format!("<{name}>"))? + name.len() + 2;
            let end = entry[start..].find(&format!("</{name}>"))? + start;
            Some(entry[start..end].to_owned())
        };
        listing
            .split("<Contents>")
            .skip(1)
            .filter_map(|entry| {
                let key = field(entry, "Key")?;
                let size = field(entry, "Size")?.parse().ok()?;
                Some((key, size))
            })
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_holds_every_file_under_its_prefix() {
    bounded(async {
        let s3 = S3Server::start().await;
        let created = http()
            .put(format!("{}/renders", s3.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(created.status().is_success(), "{}", created.status());
        let env = s3.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

        let nats = Nats::start();
        let url = nats.url();
        let data = tempfile::tempdir().expect("tempdir");
        let front = FrontEnd::start_with_env(
            &url,
            data.path(),
            &["--store", "s3://renders/studio-a"],
            &env,
        );
        let base = front.base.clone();
        let _worker = Worker::start_with_env(&url, "w1", &["--slots", "2"], &env);
        wait_json(&format!("{base}/api/health"), "a worker", |h| {
            h["workers"] == 1
        })
        .await;
        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            images(2, 96),
            &[("quality", "low"), ("format_type", "stl,glb")],
        )
        .await;
        let terminals = studio.wait_terminal(&jobs).await;
        for id in &jobs {
            assert_eq!(terminals[id].len(), 1, "{:?}", terminals[id]);
            assert_eq!(terminals[id][0]["event"], "generation_complete");
        }
        // Results under the prefix, one attempt each; inputs and probes gone.
        let deadline = Instant::now() + TEST_LIMIT;
        let objects = loop {
            let objects = s3.objects("renders").await;
            let keys: Vec<&String> = objects.iter().map(|(k, _)| k).collect();
            if !keys.iter().any(|k| !k.contains("/results/")) {
                break objects;
            }
            assert!(Instant::now() < deadline, "left in the bucket: {keys:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(objects.len(), 4, "2 jobs × (stl, glb): {objects:?}");
        assert!(
            objects
                .iter()
                .all(|(k, _)| k.starts_with("studio-a/results/")),
            "{objects:?}"
        );

        // A download is the object's bytes.
        let job = get_json(&format!("{base}/api/jobs/{}", jobs[0])).await;
        let glb = job["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .find(|o| o["format"] == "glb")
            .expect("a glb")
            .clone();
        let served = get_bytes(&format!("{base}{}", glb["url"].as_str().expect("url"))).await;
        let (_, stored) = objects
            .iter()
            .find(|(k, _)| k.contains(&jobs[0]) && k.ends_with(".glb"))
            .expect("the glb's object");
        assert_eq!(served.len() as u64, *stored);
        assert_eq!(Some(*stored), glb["bytes"].as_u64());
        assert_eq!(&served[..4], b"glTF");

        // Without credentials for the bucket, a worker does not join.
        let (code, stderr) = refused(
            Command::new(env!("CARGO_BIN_EXE_orfeas"))
                .args(["worker", "--queue", &url, "--method", "relief"])
                .env("AWS_ENDPOINT", "http://127.0.0.1:9")
                .env("AWS_ALLOW_HTTP", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn"),
        );
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("ERR_STORE"), "{stderr}");
    })
    .await;
}

/// nats-server 2.9 never ends the client's listing of a bucket whose objects were all
/// deleted; the store's own listing must end, and see what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_the_nats_store_ends_when_every_file_was_removed() {
    bounded(async {
        let nats = Nats::start();
        let broker = connect(&nats.url(), Duration::from_secs(30)).await;
        let files = broker.files();
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("a.bin");
        std::fs::write(&local, vec![7u8; 300_000]).expect("write");
        for key in ["results/j1/1/a.stl", "results/j1/1/a.glb", "inputs/j2"] {
            files.put_file(key, &local).await.expect("put");
        }
        assert_eq!(
            files.keys("results/").await.expect("keys"),
            ["results/j1/1/a.glb", "results/j1/1/a.stl"]
        );
        broker.forget(&["j1".to_owned()]).await.expect("forget");
        assert_eq!(files.keys("").await.expect("keys"), ["inputs/j2"]);
        files.remove("inputs/j2").await;
        let listed = tokio::time::timeout(Duration::from_secs(20), files.keys(""))
            .await
            .expect("the listing of an emptied bucket ended");
        assert!(listed.expect("keys").is_empty());
    })
    .await;
}
