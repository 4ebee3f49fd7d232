//! WebSocket events: per-job order, a snapshot for late clients, server timestamps.

use serde_json::Value;

use crate::support::{by_job, job_ids, png, Server, TERMINAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_and_late_clients_get_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let mut early = server.ws().await;
    let first = early.next().await.expect("snapshot");
    assert_eq!(first["event"], "snapshot");
    assert_eq!(first["data"]["jobs"].as_array().map(Vec::len), Some(0));
    assert!(
        first["data"]["gpu"]["available"].is_boolean()
            && first["data"]["gpu"]["slots"]["total"] == 2
    );

    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.png", png(40, 1)),
        ("b.png", png(48, 2)),
        ("c.png", png(56, 3)),
    ];
    let (_, body) = server
        .upload(&files, &[("format_type", "stl"), ("quality", "low")])
        .await;
    let ids = job_ids(&body);
    let batch_id = body["batch_id"].as_str().expect("batch").to_owned();
    let events = early.until_terminal(&ids).await;

    for e in &events {
        assert!(
            e["ts"].as_f64().is_some_and(|t| t > 1.0e12),
            "server timestamp in ms: {e}"
        );
    }
    let per_job = by_job(&events);
    for id in &ids {
        let seq = &per_job[id];
        let names: Vec<&str> = seq
            .iter()
            .map(|e| e["event"].as_str().unwrap_or(""))
            .collect();
        let (last, before) = names.split_last().expect("events");
        assert_eq!(*last, "generation_complete", "{names:?}");
        assert!(
            before.iter().all(|n| *n == "generation_progress"),
            "only progress before the end: {names:?}"
        );
        assert!(before.len() >= 3, "queued + several stages: {names:?}");
        let progress: Vec<f64> = seq[..before.len()]
            .iter()
            .map(|e| e["data"]["progress"].as_f64().unwrap_or(-1.0))
            .collect();
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]),
            "progress never goes back: {progress:?}"
        );
        assert_eq!(seq[0]["data"]["stage"], "queued");
        assert!(seq
            .iter()
            .all(|e| e["data"]["batch_id"] == batch_id.as_str()));
        let done = &seq[before.len()]["data"];
        assert_eq!(done["success"], true);
        assert!(done["output_file"]
            .as_str()
            .is_some_and(|u| u.starts_with("/api/download/")));
        assert!(
            done["outputs"][0]["path"].is_null(),
            "no server paths on the wire"
        );
    }
    // The batch's counts follow each terminal event; the last one has all three complete.
    let counts = early.until(|e| e["event"] == "batch_progress").await;
    let last: &Value = &counts.last().expect("batch_progress")["data"];
    assert_eq!(
        (
            last["total"].as_u64(),
            last["complete"].as_u64(),
            last["queued"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{last}"
    );
    assert_eq!(last["batch_id"], batch_id.as_str());

    let mut late = server.ws().await;
    let snapshot = late.next().await.expect("snapshot");
    assert_eq!(snapshot["event"], "snapshot");
    let jobs = snapshot["data"]["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        assert!(ids.iter().any(|id| job["job_id"] == id.as_str()));
        assert_eq!(job["status"], "complete");
        assert!(job["outputs"][0]["url"].is_string());
    }
    // No terminal event is repeated to the late client: it starts from the snapshot.
    server.stop().await;
    while let Some(e) = late.next().await {
        assert!(
            !TERMINAL.contains(&e["event"].as_str().unwrap_or("")),
            "late client got an old event: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_jobs_are_heard_from_while_a_stage_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| {
        c.batch.slots = 1;
        c.progress_interval = std::time::Duration::from_millis(100);
        c.gpu_interval = std::time::Duration::from_millis(200);
        // Held inside meshing until cancelled: a long, silent stage, whatever the machine.
        c.hold_jobs_at = Some(orfeas_core::Stage::Meshing);
    })
    .await;
    let mut ws = server.ws().await;
    ws.next().await.expect("snapshot");
    let (_, body) = server
        .upload(
            &[("slow.png", crate::support::png(48, 2))],
            &[("quality", "low")],
        )
        .await;
    let id = job_ids(&body)[0].clone();
    // The core is silent inside a stage; the server repeats the job's last progress and
    // sends gpu_stats (slots busy, the job counted) while it runs.
    let mut last: Option<(Value, Value)> = None;
    let mut repeated = false;
    let mut gpu_busy = false;
    while !(repeated && gpu_busy) {
        let e = ws.next().await.expect("events while the job runs");
        match e["event"].as_str() {
            Some("generation_progress")
                if e["data"]["job_id"] == id.as_str() && e["data"]["stage"] != "queued" =>
            {
                let key = (e["data"]["stage"].clone(), e["data"]["progress"].clone());
                repeated |= last.as_ref() == Some(&key);
                last = Some(key);
            }
            Some("gpu_stats") => {
                assert!(
                    e["data"]["available"].is_boolean() && e["data"]["gpus"].is_array(),
                    "{e}"
                );
                gpu_busy |= e["data"]["slots"]["busy"] == 1 && e["data"]["slots"]["total"] == 1;
            }
            Some(name) if TERMINAL.contains(&name) => {
                panic!("the job ended before it was heard from twice: {e}")
            }
            _ => {}
        }
    }
    let (status, _) = server.delete_json(&format!("/api/jobs/{id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    server.stop().await;
}
