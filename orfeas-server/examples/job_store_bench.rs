//! The job store at scale (issue 16's figures): how long a server takes to open a store of
//! 10,000 finished jobs (journal read, compacted rewrite, recovery, sweep of 10,000 job
//! folders), and how long `DELETE /api/batches/{id}` takes for a batch of 1,000 waiting
//! jobs (the store's part: `cancel_batch`, then until the journal has it on disk).
//!
//! For comparison it also times one save of the whole store the way the server did before
//! the journal (serialise every job, write, fsync): that version did it once per cancelled
//! job, so its batch cancel cost about 1,000 of those.
//!
//! `cargo run --release -p orfeas-server --example job_store_bench [-- JOBS BATCH]`

use std::io::Write;
use std::time::Instant;

use orfeas_core::CancelToken;
use orfeas_server::jobs::{
    JobRecord, JobSpec, JobState, JobStore, NewJob, OnRestart, OutputRecord, SettingsSpec,
    StoreOptions, JOURNAL_FILE,
};

fn record(i: usize, batch: &str, status: JobState) -> JobRecord {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
    JobRecord {
        job_id: id,
        batch_id: batch.to_owned(),
        filename: format!("photo {i}.jpg"),
        status,
        progress: if status == JobState::Complete {
            100.0
        } else {
            0.0
        },
        stage: status.as_str().into(),
        outputs: if status == JobState::Complete {
            vec![
                OutputRecord {
                    format: "stl".into(),
                    file: format!("photo_{i}.stl"),
                    bytes: 1_200_084,
                    key: None,
                },
                OutputRecord {
                    format: "glb".into(),
                    file: format!("photo_{i}.glb"),
                    bytes: 950_000,
                    key: None,
                },
            ]
        } else {
            Vec::new()
        },
        error: None,
        code: None,
        triangles: 24_000,
        depth: Some("relief".into()),
        method: Some("relief".into()),
        mask: Some("border".into()),
        watertight: true,
        warnings: Vec::new(),
        seconds: Some(1.2),
        formats: vec!["stl".into(), "glb".into()],
        quality: "medium".into(),
        created_at: "2026-12-07T09:00:00.000Z".into(),
        started_at: Some("2026-12-07T09:00:01.000Z".into()),
        finished_at: Some("2026-12-07T09:00:02.000Z".into()),
        spec: Some(JobSpec {
            input: format!("photo_{i}.jpg"),
            stem: format!("photo_{i}"),
            batch_size: 4,
            settings: SettingsSpec::new(
                &orfeas_core::GenerateSettings::default(),
                orfeas_core::Method::Relief,
            ),
        }),
        input_bytes: 350_000,
        attempts: 1,
        worker: None,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();

    // A store of `jobs` finished jobs, each with its folder, as a long-running server has.
    let mut journal =
        std::io::BufWriter::new(std::fs::File::create(data.join(JOURNAL_FILE)).expect("journal"));
    for i in 0..jobs {
        let r = record(
            i,
            &format!("{:08x}-0000-4000-8000-000000000000", i / 100),
            JobState::Complete,
        );
        std::fs::create_dir_all(data.join("jobs").join(&r.job_id).join("out")).expect("job dir");
        writeln!(journal, "{}", serde_json::json!({ "put": r })).expect("write");
    }
    journal.flush().expect("flush");
    drop(journal);

    let t = Instant::now();
    let store = JobStore::open(data, &StoreOptions::default()).expect("open");
    let requeued = store.recover(OnRestart::Requeue, CancelToken::new);
    let swept = store.sweep_unlisted();
    let open_s = t.elapsed().as_secs_f64();
    assert!(requeued.is_empty() && swept == 0);

    // A batch of `batch` waiting jobs, cancelled at once.
    let batch_id = "ffffffff-0000-4000-8000-000000000000";
    let new: Vec<NewJob> = (0..batch)
        .map(|i| NewJob {
            record: record(jobs + i, batch_id, JobState::Queued),
            cancel: CancelToken::new(),
        })
        .collect();
    store.add(new);
    store.persist();
    let t = Instant::now();
    let cancelled = store
        .cancel_batch(batch_id, "cancelled by request")
        .expect("batch");
    let cancel_s = t.elapsed().as_secs_f64();
    store.persist();
    let cancel_on_disk_s = t.elapsed().as_secs_f64();
    assert_eq!(cancelled.len(), batch);

    // One whole-store save as the server before the journal did it, per cancelled job.
    let all: Vec<JobRecord> = (0..jobs + batch)
        .map(|i| record(i, batch_id, JobState::Complete))
        .collect();
    let t = Instant::now();
    let mut tmp = tempfile::NamedTempFile::new_in(data).expect("tmp");
    serde_json::to_writer(
        std::io::BufWriter::new(tmp.as_file_mut()),
        &serde_json::json!({ "version": 1, "jobs": all }),
    )
    .expect("json");
    tmp.as_file().sync_all().expect("fsync");
    tmp.persist(data.join("jobs.json")).expect("rename");
    let one_save_s = t.elapsed().as_secs_f64();
    store.close();

    // The report is this program's output.
    let report = serde_json::json!({
        "jobs": jobs,
        "batch": batch,
        "open_store_s": open_s,
        "cancel_batch_s": cancel_s,
        "cancel_batch_on_disk_s": cancel_on_disk_s,
        "old_whole_store_save_s": one_save_s,
        "old_batch_cancel_estimate_s": one_save_s * batch as f64,
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{report}");
    }
}
