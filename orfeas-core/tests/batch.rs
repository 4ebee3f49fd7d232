//! End-to-end batches on the CPU: real files in, real files out, hostile inputs isolated.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use orfeas_core::mesh::{check_solid, Mesh};
use orfeas_core::progress::{FnProgress, ProgressSink};
use orfeas_core::{
    BatchConfig, BatchProcessor, CancelToken, GenerateSettings, ImageSource, Job, JobStatus,
    MeshFormat, ProgressEvent, Quality,
};

/// A product-like shot: a shaded disc on a plain light backdrop.
fn disc_png(size: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - size as f32 / 2.0, y as f32 - size as f32 / 2.0);
        let r = (dx * dx + dy * dy).sqrt() / (size as f32 * 0.35);
        if r < 1.0 {
            let shade = (200.0 * (1.0 - r * r).sqrt()) as u8;
            image::Rgb([shade / 2 + (seed % 50) as u8, shade / 3, shade])
        } else {
            image::Rgb([240, 240, 236])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

/// A PNG signature and IHDR claiming 30000 x 30000, with a valid CRC and no pixel data.
fn header_only_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn settings(formats: &[MeshFormat]) -> GenerateSettings {
    GenerateSettings {
        formats: formats.to_vec(),
        quality: Quality::Low,
        ..Default::default()
    }
}

type Recorded = Arc<Mutex<Vec<ProgressEvent>>>;

fn events_sink() -> (
    Recorded,
    Arc<FnProgress<impl Fn(&ProgressEvent) + Send + Sync>>,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    (
        events,
        Arc::new(FnProgress(move |e: &ProgressEvent| {
            e2.lock().expect("lock").push(e.clone())
        })),
    )
}

/// Reads a binary STL back with an independent reader and checks it is a printable solid.
fn assert_printable_stl(path: &Path) {
    let mut f = std::fs::File::open(path).expect("open stl");
    let stl = stl_io::read_stl(&mut f).expect("stl_io reads it");
    let mesh = Mesh {
        positions: stl.vertices.iter().map(|v| [v[0], v[1], v[2]]).collect(),
        triangles: stl
            .faces
            .iter()
            .map(|f| f.vertices.map(|i| i as u32))
            .collect(),
        ..Default::default()
    };
    let report = check_solid(&mesh);
    assert!(report.is_printable(), "{}: {report:?}", path.display());
}

#[test]
fn hostile_files_fail_alone_and_results_keep_input_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let truncated = {
        let full = disc_png(64, 1);
        full[..full.len() / 2].to_vec()
    };
    let inputs = vec![
        write(dir.path(), "good-1.png", &disc_png(96, 1)),
        write(dir.path(), "empty.png", b""),
        write(dir.path(), "truncated.png", &truncated),
        write(
            dir.path(),
            "random.png",
            &(0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect::<Vec<_>>(),
        ),
        write(dir.path(), "notes.png", b"just some text, not an image\n"),
        write(
            dir.path(),
            "paper.png",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        ),
        write(dir.path(), "bomb.png", &header_only_bomb()),
        write(dir.path(), "good-2.png", &disc_png(80, 2)),
        dir.path().join("missing.png"),
    ];
    let expected = [
        None,
        Some("ERR_EMPTY_INPUT"),
        Some("ERR_IMAGE_DECODE"),
        Some("ERR_UNSUPPORTED_FORMAT"),
        Some("ERR_UNSUPPORTED_FORMAT"),
        Some("ERR_UNSUPPORTED_FORMAT"),
        Some("ERR_IMAGE_TOO_LARGE"),
        None,
        Some("ERR_IO"),
    ];
    let jobs: Vec<Job> = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| Job::new(format!("j{i}"), ImageSource::Path(p.clone()), &out))
        .collect();
    let proc = BatchProcessor::new(BatchConfig {
        slots: 4,
        ..Default::default()
    })
    .expect("processor");
    let (events, sink) = events_sink();
    let results = proc
        .run(
            jobs,
            &settings(&[MeshFormat::Stl, MeshFormat::Glb]),
            sink,
            &CancelToken::new(),
        )
        .expect("run");

    assert_eq!(results.len(), inputs.len());
    for ((r, input), code) in results.iter().zip(&inputs).zip(expected) {
        assert_eq!(
            r.input,
            input.display().to_string(),
            "results are in input order"
        );
        assert_eq!(r.code, code, "{}: {:?}", r.input, r.error);
        if let Some(err) = &r.error {
            let name = input.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(err.contains(name), "error names the file: {err}");
            assert!(r.outputs.is_empty());
        } else {
            assert_eq!(r.status, JobStatus::Complete);
            assert!(r.watertight && r.triangles > 0);
            assert_eq!(r.outputs.len(), 2);
            assert_printable_stl(&r.outputs[0].path);
        }
    }

    let events = events.lock().expect("lock");
    let last_batch = events.iter().rev().find_map(|e| match e {
        ProgressEvent::BatchProgress { counts, .. } => Some(*counts),
        _ => None,
    });
    let counts = last_batch.expect("batch progress emitted");
    assert_eq!(
        (
            counts.total,
            counts.complete,
            counts.failed,
            counts.queued,
            counts.processing
        ),
        (9, 2, 7, 0, 0)
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        4,
        "two jobs x two formats, no temp files: {leftovers:?}"
    );
}

#[test]
fn events_per_job_go_queued_then_stages_then_one_terminal_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs: Vec<Job> = (0..3)
        .map(|i| {
            Job::new(
                format!("j{i}"),
                ImageSource::Path(write(dir.path(), &format!("d{i}.png"), &disc_png(72, i))),
                dir.path(),
            )
        })
        .collect();
    let proc = BatchProcessor::new(BatchConfig::default()).expect("processor");
    let (events, sink) = events_sink();
    proc.run(
        jobs,
        &settings(&[MeshFormat::Ply]),
        sink,
        &CancelToken::new(),
    )
    .expect("run");
    let events = events.lock().expect("lock");
    for id in ["j0", "j1", "j2"] {
        let mine: Vec<String> = events
            .iter()
            .filter_map(|e| {
                let v = serde_json::to_value(e).expect("json");
                (v["data"]["job_id"] == id).then(|| {
                    let stage = v["data"]["stage"].as_str().unwrap_or("").to_owned();
                    format!("{}:{stage}", v["event"].as_str().unwrap_or(""))
                })
            })
            .collect();
        assert_eq!(
            mine,
            [
                "generation_progress:queued",
                "generation_progress:loading",
                "generation_progress:masking",
                "generation_progress:depth_estimation",
                "generation_progress:meshing",
                "generation_progress:exporting",
                // The one format is written.
                "generation_progress:exporting",
                "generation_complete:",
            ],
            "{id}"
        );
    }
}

#[test]
fn cancelling_the_batch_mid_way_stops_the_rest_and_leaves_no_partial_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let jobs: Vec<Job> = (0..8)
        .map(|i| {
            Job::new(
                format!("j{i}"),
                ImageSource::Path(write(dir.path(), &format!("c{i}.png"), &disc_png(128, i))),
                &out,
            )
        })
        .collect();
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        ..Default::default()
    })
    .expect("processor");
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let sink = Arc::new(FnProgress(move |e: &ProgressEvent| {
        if matches!(e, ProgressEvent::GenerationComplete { .. }) {
            trigger.cancel();
        }
    }));
    let results = proc
        .run(
            jobs,
            &settings(&[MeshFormat::Stl, MeshFormat::Obj]),
            sink,
            &cancel,
        )
        .expect("run");
    assert_eq!(results[0].status, JobStatus::Complete);
    assert!(results[1..]
        .iter()
        .all(|r| r.status == JobStatus::Cancelled && r.code == Some("ERR_CANCELLED")));
    let files: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| f.starts_with("c0.")),
        "only the finished job wrote files: {files:?}"
    );
    assert_eq!(files.len(), 4, "stl, obj, mtl, png: {files:?}");
}

/// The names in `dir`, temporary ones included.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The commit point: a cancel that lands after every file is written, but before the job is
/// reported complete, ends the job cancelled and removes what it wrote. The sink cancels when
/// the last file's progress event arrives (sent on the slot's thread, after that file is
/// published), so the timing is fixed by the event order alone.
#[test]
fn a_cancel_after_the_last_file_is_written_ends_cancelled_and_removes_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let token = CancelToken::new();
    let mut job = Job::new(
        "late",
        ImageSource::Bytes {
            name: "late.png".into(),
            bytes: disc_png(64, 3).into(),
        },
        &out,
    );
    job.cancel = Some(token.clone());
    let seen_on_disk = Arc::new(Mutex::new(None));
    let (events, record) = events_sink();
    let sink = {
        let (out, seen_on_disk) = (out.clone(), seen_on_disk.clone());
        Arc::new(FnProgress(move |e: &ProgressEvent| {
            record.emit(e);
            if let ProgressEvent::GenerationProgress {
                stage: orfeas_core::Stage::Exporting,
                progress,
                ..
            } = e
            {
                if *progress >= 100.0 {
                    *seen_on_disk.lock().expect("lock") = Some(names_in(&out));
                    token.cancel();
                }
            }
        }))
    };
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        ..Default::default()
    })
    .expect("processor");
    let results = proc
        .run(
            vec![job],
            &settings(&[MeshFormat::Stl, MeshFormat::Obj]),
            sink,
            &CancelToken::new(),
        )
        .expect("run");

    let mut written = seen_on_disk
        .lock()
        .expect("lock")
        .clone()
        .expect("the last file's progress event came");
    written.sort();
    assert_eq!(
        written,
        ["late.mtl", "late.obj", "late.png", "late.stl"],
        "every file was published when the cancel landed"
    );
    assert_eq!(results[0].status, JobStatus::Cancelled);
    assert_eq!(results[0].code, Some("ERR_CANCELLED"));
    assert!(results[0].outputs.is_empty());
    assert_eq!(names_in(&out), Vec::<String>::new(), "nothing left behind");
    let terminal: Vec<&str> = events
        .lock()
        .expect("lock")
        .iter()
        .map(ProgressEvent::name)
        .filter(|n| n.starts_with("generation_") && *n != "generation_progress")
        .collect();
    assert_eq!(terminal, ["generation_cancelled"]);
}

#[test]
fn one_cancelled_job_and_a_panicking_sink_leave_the_others_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut jobs: Vec<Job> = (0..3)
        .map(|i| {
            Job::new(
                format!("j{i}"),
                ImageSource::Path(write(dir.path(), &format!("p{i}.png"), &disc_png(64, i))),
                dir.path(),
            )
        })
        .collect();
    let token = CancelToken::new();
    token.cancel();
    jobs[1].cancel = Some(token);
    let proc = BatchProcessor::new(BatchConfig {
        slots: 2,
        ..Default::default()
    })
    .expect("processor");
    let sink = Arc::new(FnProgress(|e: &ProgressEvent| {
        if matches!(e, ProgressEvent::GenerationProgress { .. }) {
            panic!("a broken progress callback");
        }
    }));
    let results = proc
        .run(
            jobs,
            &settings(&[MeshFormat::Stl]),
            sink,
            &CancelToken::new(),
        )
        .expect("run");
    let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            JobStatus::Complete,
            JobStatus::Cancelled,
            JobStatus::Complete
        ]
    );
}

#[test]
fn in_memory_bytes_work_like_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = Job::new(
        "mem",
        ImageSource::Bytes {
            name: "upload.png".into(),
            bytes: disc_png(64, 3).into(),
        },
        dir.path(),
    );
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        ..Default::default()
    })
    .expect("processor");
    let results = proc
        .run(
            vec![job],
            &settings(&[MeshFormat::Stl]),
            Arc::new(orfeas_core::NoProgress),
            &CancelToken::new(),
        )
        .expect("run");
    assert_eq!(
        results[0].status,
        JobStatus::Complete,
        "{:?}",
        results[0].error
    );
    assert!(results[0].outputs[0].path.ends_with("upload.stl"));
}

#[test]
fn bad_settings_are_refused_before_any_job_runs() {
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        ..Default::default()
    })
    .expect("processor");
    let bad = GenerateSettings {
        width_mm: -1.0,
        ..Default::default()
    };
    let err = proc
        .run(
            vec![],
            &bad,
            Arc::new(orfeas_core::NoProgress),
            &CancelToken::new(),
        )
        .expect_err("refused");
    assert_eq!(err.code(), "ERR_INVALID_INPUT");
    assert!(BatchProcessor::new(BatchConfig {
        slots: 257,
        ..Default::default()
    })
    .is_err());
    // 0 asks for the device's default: one slot per core on the CPU.
    let auto = BatchProcessor::new(BatchConfig {
        slots: orfeas_core::batch::AUTO_SLOTS,
        method: orfeas_core::Method::Relief,
        device: orfeas_core::Device::Cpu,
        ..Default::default()
    })
    .expect("auto slots");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        auto.slots(),
        cores.min(orfeas_core::batch::MAX_AUTO_CPU_SLOTS)
    );
}

#[test]
fn formats_the_method_cannot_make_are_refused_before_any_job_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write(dir.path(), "disc.png", &disc_png(64, 1));
    let proc = BatchProcessor::new(BatchConfig {
        slots: 1,
        ..Default::default()
    })
    .expect("processor");
    let (events, sink) = events_sink();
    let job = || vec![Job::new("j", ImageSource::Path(input.clone()), dir.path())];
    // The processor's method (auto, a relief) has no density field to write.
    let err = proc
        .run(
            job(),
            &settings(&[MeshFormat::Stl, MeshFormat::FieldNpy]),
            sink.clone(),
            &CancelToken::new(),
        )
        .expect_err("field.npy of a relief");
    assert_eq!(err.code(), "ERR_INVALID_INPUT");
    assert!(err.to_string().contains("field.npy"), "{err}");
    // A batch asking for an object has no depth map to write.
    let object = GenerateSettings {
        method: Some(orfeas_core::Method::TripoSr),
        ..settings(&[MeshFormat::Glb, MeshFormat::DepthNpy])
    };
    let err = proc
        .run(job(), &object, sink, &CancelToken::new())
        .expect_err("depth.npy of an object");
    assert!(err.to_string().contains("depth.npy"), "{err}");
    assert!(
        events.lock().expect("events").is_empty(),
        "no job started, so no event"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}
