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
        let images = (0..3)
            .map(|i| (format!("img{i}.png"), png(96, i)))
            .collect();
        let jobs = upload(&base, images, &[("quality", "low"), ("format_type", "stl")]).await;
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
        let zip = http()
            .get(format!("{base}/api/batches/{batch}/zip"))
            .send()
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("zip");
        let archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).expect("a zip");
        assert_eq!(archive.len(), 3);
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
