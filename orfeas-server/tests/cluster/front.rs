//! `orfeas serve --queue` in front of real `orfeas worker` processes: uploads, events,
//! downloads and cancels through the same HTTP API and WebSocket as one machine, while the
//! broker, a worker or the front end itself is killed, paused or restarted.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::studio::*;
use crate::support::*;

/// Every result of every job is under one attempt's prefix in the store, once the winners
/// removed what earlier attempts left (just after the job completed).
async fn assert_one_set_of_files(broker: &orfeas_server::cluster::Broker, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let keys = broker
                .files()
                .keys(&format!("results/{id}/"))
                .await
                .expect("keys");
            let attempts: HashSet<&str> = keys.iter().filter_map(|k| k.split('/').nth(2)).collect();
            if attempts.len() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "job {id}: {keys:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// No job's progress goes backwards on the wire, and nothing of a job comes after its
/// terminal event.
fn assert_forwards(events: &[Value]) {
    let mut last: HashMap<String, (f64, u64)> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    for e in events {
        let data = &e["data"];
        let Some(id) = data["job_id"].as_str() else {
            continue;
        };
        assert!(!finished.contains(id), "an event after the end: {e}");
        match e["event"].as_str() {
            Some("generation_progress") => {
                let progress = data["progress"].as_f64().unwrap_or(0.0);
                let attempt = data["attempt"].as_u64().unwrap_or(0);
                let (p, a) = last.get(id).copied().unwrap_or((0.0, 0));
                assert!(progress >= p, "progress went back {p} → {progress}: {e}");
                assert!(attempt >= a, "an older attempt's event: {e}");
                last.insert(id.to_owned(), (progress, attempt));
            }
            Some("generation_complete" | "generation_error" | "generation_cancelled") => {
                finished.insert(id.to_owned());
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_runs_a_batch_on_two_workers_and_serves_every_result() {
    bounded(async {
        let nats = Nats::start();
        let broker = connect(&nats.url(), Duration::from_secs(30)).await;
        let data = tempfile::tempdir().expect("tempdir");
        let _w1 = Worker::start(&nats.url(), "w1", &["--slots", "1"]);
        let _w2 = Worker::start(&nats.url(), "w2", &["--slots", "1"]);
        let front = FrontEnd::start(&nats.url(), data.path(), &[]);
        let base = front.base.clone();
        let health = wait_json(&format!("{base}/api/health"), "two workers", |h| {
            h["workers"] == 2
        })
        .await;
        assert_eq!(health["queue"], "connected", "{health}");
        let stats = get_json(&format!("{base}/api/gpu-stats")).await;
        let ids: HashSet<&str> = stats["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .filter_map(|w| w["id"].as_str())
            .collect();
        assert_eq!(ids, HashSet::from(["w1", "w2"]), "{stats}");
        assert_eq!(stats["slots"]["total"], 2, "{stats}");

        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            images(4, 96),
            &[("quality", "low"), ("format_type", "stl,glb")],
        )
        .await;
        let terminals = studio.wait_terminal(&jobs).await;
        let mut ran_on = HashSet::new();
        for id in &jobs {
            let events = &terminals[id];
            assert_eq!(events.len(), 1, "one terminal event: {events:?}");
            assert_eq!(events[0]["event"], "generation_complete", "{events:?}");
            ran_on.insert(
                events[0]["data"]["worker"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            // Usually the first; a busy broker that times out a write redelivers.
            assert!(
                events[0]["data"]["attempt"].as_u64() >= Some(1),
                "{events:?}"
            );
        }
        assert!(ran_on.iter().all(|w| w == "w1" || w == "w2"), "{ran_on:?}");
        assert_forwards(&studio.events());
        assert_one_set_of_files(&broker, &jobs).await;

        // Downloads stream from the queue's store: the bytes are the worker's.
        let job = get_json(&format!("{base}/api/jobs/{}", jobs[0])).await;
        let stl = job["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .find(|o| o["format"] == "stl")
            .expect("an stl");
        let bytes = get_bytes(&format!("{base}{}", stl["url"].as_str().expect("url"))).await;
        let count = u32::from_le_bytes(bytes[80..84].try_into().expect("4 bytes")) as usize;
        assert!(count > 0);
        assert_eq!(bytes.len(), 84 + 50 * count);
        assert_eq!(bytes.len() as u64, stl["bytes"].as_u64().expect("bytes"));

        // The batch ZIP holds every output.
        let batch = job["batch_id"].as_str().expect("batch");
        assert_eq!(zip_entries(&base, batch).await, 8, "4 jobs × (stl, glb)");

        // A finished job cannot be cancelled.
        let r = http()
            .delete(format!("{base}/api/jobs/{}", jobs[0]))
            .send()
            .await
            .expect("DELETE");
        assert_eq!(r.status(), 409);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_batch_loses_nothing() {
    bounded(async {
        let mut nats = Nats::start();
        let broker = connect(&nats.url(), Duration::from_secs(4)).await;
        drop(broker);
        let data = tempfile::tempdir().expect("tempdir");
        let _worker = Worker::start(&nats.url(), "w1", &["--slots", "2"]);
        let front = FrontEnd::start(&nats.url(), data.path(), &[]);
        let base = front.base.clone();
        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            images(6, 256),
            &[("quality", "medium"), ("format_type", "stl")],
        )
        .await;
        // Once the first job is done, the broker dies and comes back on the same store.
        studio.wait_first_terminal().await;
        nats.kill();
        wait_json(&format!("{base}/api/health"), "disconnected", |h| {
            h["queue"] == "disconnected"
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        nats.restart();

        let terminals = studio.wait_terminal(&jobs).await;
        for id in &jobs {
            assert_eq!(terminals[id].len(), 1, "{:?}", terminals[id]);
            assert_eq!(terminals[id][0]["event"], "generation_complete");
        }
        assert_forwards(&studio.events());
        let broker = connect(&nats.url(), Duration::from_secs(4)).await;
        assert_one_set_of_files(&broker, &jobs).await;
        // An acknowledgement lost with the broker leaves its message until the lease ends; the
        // redelivery finds the job complete and is acknowledged then.
        // An acknowledgement lost with the broker leaves its message until the lease ends (the
        // redelivery finds the job complete); a removal the broker lost is swept by the front end.
        let deadline = Instant::now() + TEST_LIMIT;
        while broker.pending_jobs().await.expect("pending") > 0 {
            assert!(Instant::now() < deadline, "the jobs stream kept messages");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let health = get_json(&format!("{base}/api/health")).await;
        assert_eq!(health["queue"], "connected", "{health}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_the_front_end_queued_running_and_finished() {
    bounded(async {
        let steps = Steps::start();
        let nats = Nats::start();
        let broker = connect(&nats.url(), Duration::from_secs(30)).await;
        let data = tempfile::tempdir().expect("tempdir");
        let _worker = Worker::start(&nats.url(), "w1", &["--slots", "1"]);
        let front = FrontEnd::start(&nats.url(), data.path(), &[]);
        let base = front.base.clone();
        wait_json(&format!("{base}/api/health"), "a worker", |h| {
            h["workers"] == 1
        })
        .await;
        steps.at("a worker joined");
        let studio = Studio::connect(&base).await;
        // One slot: the big job runs, the small one waits behind it.
        let jobs = upload(
            &base,
            vec![
                ("big.png".into(), png(1536, 1)),
                ("small.png".into(), png(64, 2)),
            ],
            &[("quality", "high"), ("format_type", "stl,glb,obj")],
        )
        .await;
        let (big, small) = (&jobs[0], &jobs[1]);
        steps.at("uploaded");
        wait_json(&format!("{base}/api/jobs/{big}"), "running", |j| {
            j["status"] == "processing"
        })
        .await;
        steps.at("the big job runs");
        let r = http()
            .delete(format!("{base}/api/jobs/{small}"))
            .send()
            .await
            .expect("DELETE");
        if r.status() != 200 {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            let job = get_json(&format!("{base}/api/jobs/{small}")).await;
            let other = get_json(&format!("{base}/api/jobs/{big}")).await;
            panic!("cancelling the queued job: {status} {body}; it is {job}; the big one {other}");
        }
        let r = http()
            .delete(format!("{base}/api/jobs/{big}"))
            .send()
            .await
            .expect("DELETE");
        assert!(r.status() == 200 || r.status() == 202, "{}", r.status());
        steps.at("both cancels answered");
        let terminals = studio.wait_terminal(&jobs).await;
        steps.at("both cancelled");
        for id in &jobs {
            assert_eq!(terminals[id].len(), 1);
            assert_eq!(
                terminals[id][0]["event"], "generation_cancelled",
                "{:?}",
                terminals[id]
            );
        }
        assert!(broker
            .files()
            .keys("results/")
            .await
            .expect("keys")
            .is_empty());
        steps.at("no results in the store");
        let deadline = Instant::now() + TEST_LIMIT;
        while broker.pending_jobs().await.expect("pending") > 0 {
            assert!(
                Instant::now() < deadline,
                "cancelled jobs stayed in the stream"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        steps.at("the stream is empty");
        // The worker is free again and runs the next job.
        let next = upload(&base, images(1, 64), &[("quality", "low")]).await;
        let terminals = studio.wait_terminal(&next).await;
        assert_eq!(terminals[&next[0]][0]["event"], "generation_complete");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_yields_one_result() {
    bounded(async {
        let nats = Nats::start();
        let lease = Duration::from_secs(2);
        let broker = connect(&nats.url(), lease).await;
        let data = tempfile::tempdir().expect("tempdir");
        let sleeper = Worker::start(&nats.url(), "sleeper", &["--slots", "1"]);
        let front = FrontEnd::start(&nats.url(), data.path(), &[]);
        let base = front.base.clone();
        wait_json(&format!("{base}/api/health"), "a worker", |h| {
            h["workers"] == 1
        })
        .await;
        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            vec![("big.png".into(), png(1024, 3))],
            &[("quality", "high"), ("format_type", "stl,glb")],
        )
        .await;
        // Frozen in the middle of its work (not while it fetches the input).
        wait_json(&format!("{base}/api/jobs/{}", jobs[0]), "running", |j| {
            j["worker"] == "sleeper" && j["progress"].as_f64() >= Some(20.0)
        })
        .await;
        sleeper.signal("-STOP");
        let _awake = Worker::start(&nats.url(), "awake", &["--slots", "1"]);
        let terminals = studio.wait_terminal(&jobs).await;
        let done = &terminals[&jobs[0]];
        assert_eq!(done.len(), 1);
        assert_eq!(done[0]["event"], "generation_complete");
        assert_eq!(done[0]["data"]["worker"], "awake", "{done:?}");
        sleeper.signal("-CONT");
        // The sleeper finishes its stale attempt, loses the swap and removes what it wrote.
        let deadline = Instant::now() + TEST_LIMIT;
        loop {
            let stats = get_json(&format!("{base}/api/gpu-stats")).await;
            let idle = stats["workers"]
                .as_array()
                .and_then(|w| w.iter().find(|w| w["id"] == "sleeper"))
                .is_some_and(|w| w["slots"]["busy"] == 0);
            if idle {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sleeper never came back: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_one_set_of_files(&broker, &jobs).await;
        assert_forwards(&studio.events());
        let job = get_json(&format!("{base}/api/jobs/{}", jobs[0])).await;
        assert_eq!(job["status"], "complete");
        assert_eq!(job["worker"], "awake");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_restarted_while_workers_run_has_the_whole_batch() {
    bounded(async {
        let nats = Nats::start();
        let _broker = connect(&nats.url(), Duration::from_secs(30)).await;
        let data = tempfile::tempdir().expect("tempdir");
        let _worker = Worker::start(&nats.url(), "w1", &["--slots", "2"]);
        let mut front = FrontEnd::start(&nats.url(), data.path(), &[]);
        let studio = Studio::connect(&front.base).await;
        let jobs = upload(
            &front.base,
            images(6, 256),
            &[("quality", "medium"), ("format_type", "stl")],
        )
        .await;
        studio.wait_first_terminal().await;
        drop(studio);
        front.kill();
        let front = FrontEnd::start(&nats.url(), data.path(), &[]);
        // A studio that reconnects gets every job, and sees the rest finish.
        let studio = Studio::connect(&front.base).await;
        let deadline = Instant::now() + TEST_LIMIT;
        loop {
            let list = get_json(&format!("{}/api/jobs", front.base)).await;
            let list = list.as_array().expect("jobs").clone();
            assert_eq!(list.len(), jobs.len(), "{list:?}");
            if list.iter().all(|j| j["status"] == "complete") {
                break;
            }
            assert!(Instant::now() < deadline, "jobs left unfinished: {list:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let snapshot = studio
            .events()
            .into_iter()
            .find(|e| e["event"] == "snapshot")
            .expect("a snapshot");
        assert_eq!(
            snapshot["data"]["jobs"].as_array().map(Vec::len),
            Some(jobs.len()),
            "{snapshot}"
        );
        assert_forwards(&studio.events());
    })
    .await;
}
