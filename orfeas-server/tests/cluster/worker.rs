//! `orfeas worker` alone: jobs submitted through the broker API the front end uses.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use orfeas_core::{MeshFormat, Quality};
use orfeas_server::cluster::JobState;

use crate::support::*;

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
                broker.files().keys("results/good/").await.expect("keys"),
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
    assert!(broker
        .files()
        .keys("inputs/")
        .await
        .expect("keys")
        .is_empty());
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
    let running = wait_for(
        &broker,
        &job.job_id,
        "running on the first worker",
        |s| matches!(s, JobState::Running { worker, .. } if worker == "doomed"),
    )
    .await;
    first.kill();
    let started = Instant::now();
    // As if it died while uploading: a file of its attempt is in the store.
    let JobState::Running {
        attempt: doomed, ..
    } = running
    else {
        unreachable!("waited for running")
    };
    let leftover = dir.path().join("leftover.stl");
    std::fs::write(&leftover, b"half a mesh").expect("write");
    broker
        .files()
        .put_file(&format!("results/long/{doomed}/long.stl"), &leftover)
        .await
        .expect("put");
    let _second = Worker::start(&nats.url(), "rescuer", &["--slots", "1"]);
    match wait_final(&broker, &job.job_id).await {
        JobState::Complete {
            worker,
            attempt,
            outputs,
            ..
        } => {
            assert_eq!(worker, "rescuer");
            // The second delivery, or a later one: a delivery that reaches a pull request
            // just as it expires is lost on the client and redelivered after the lease.
            assert!(attempt >= 2, "the first delivery cannot finish: {attempt}");
            assert!(
                started.elapsed() >= lease / 2,
                "redelivered before the lease ran out"
            );
            // The winner removed what the killed attempt left.
            let keys = broker.files().keys("results/long/").await.expect("keys");
            assert!(
                keys.iter()
                    .all(|k| k.starts_with(&format!("results/long/{attempt}/"))),
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
    assert!(broker
        .files()
        .keys("inputs/")
        .await
        .expect("keys")
        .is_empty());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_never_finishes_fails_after_bounded_attempts() {
    let nats = Nats::start();
    let lease = Duration::from_secs(2);
    let broker = connect(&nats.url(), lease).await;
    let client = async_nats::connect(nats.url()).await.expect("client");
    let mut events = client
        .subscribe("orfeas.events.hang")
        .await
        .expect("subscribe");
    let dir = tempfile::tempdir().expect("tempdir");
    submit(
        &broker,
        dir.path(),
        "hang",
        &png(1536, 4),
        settings(
            &[MeshFormat::Stl, MeshFormat::Glb, MeshFormat::Obj],
            Quality::High,
        ),
    )
    .await;
    // Every attempt hangs: each worker that takes the job is frozen (SIGSTOP), so its lease
    // runs out and the next worker gets the next delivery.
    let mut frozen = Vec::new();
    for n in 1..=3 {
        let id = format!("stuck{n}");
        let worker = Worker::start(&nats.url(), &id, &["--slots", "1"]);
        wait_for(
            &broker,
            "hang",
            "taken",
            |s| matches!(s, JobState::Running { worker, .. } if *worker == id),
        )
        .await;
        worker.signal("-STOP");
        frozen.push(worker);
    }
    let _last = Worker::start(&nats.url(), "last", &["--slots", "1"]);
    match wait_final(&broker, "hang").await {
        JobState::Failed {
            code,
            error,
            attempts,
            ..
        } => {
            assert_eq!(code, "ERR_ATTEMPTS", "{error}");
            assert_eq!(attempts, 3);
            assert!(error.contains("stopped without finishing"), "{error}");
        }
        other => panic!("job ended {other:?}"),
    }
    let deadline = Instant::now() + TEST_LIMIT;
    while broker.pending_jobs().await.expect("pending") > 0 {
        assert!(
            Instant::now() < deadline,
            "the message stayed in the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One error event, and nothing else ends the job.
    let mut terminal = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(message)) = tokio::time::timeout_at(until, events.next()).await {
        let event: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        let name = event["event"]["event"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name != "generation_progress" {
            assert_eq!(name, "generation_error", "{event}");
            terminal += 1;
        }
    }
    assert_eq!(terminal, 1);
    for worker in &frozen {
        worker.signal("-CONT");
    }
}
