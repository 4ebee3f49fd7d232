//! A batch mixing valid and hostile files: valid ones complete, the others are rejected
//! with reasons (or fail as jobs with a stable code when only decoding reveals the damage).

use reqwest::StatusCode;

use crate::support::{files_below, job_ids, jpeg, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_batch_completes_valid_files_and_rejects_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, |_| {}).await;
    let valid_png = png(48, 10);
    let mut truncated = png(64, 20);
    truncated.truncate(60); // signature and header intact, pixel data cut off
    let files = vec![
        ("cat.png", valid_png.clone()),
        ("../../../escape me.png", png(40, 30)),
        ("photo.txt", jpeg(32)), // a JPEG with a misleading name is still a JPEG
        ("notes.png", b"just some text, not an image".to_vec()),
        ("empty.png", Vec::new()),
        ("script.sh", b"#!/bin/sh\nrm -rf /\n".to_vec()),
        ("broken.png", truncated),
    ];
    let (status, body) = server
        .upload(&files, &[("format_type", "stl,glb"), ("quality", "low")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["total_jobs"], 4, "{body}");
    assert!(body["estimated_time_seconds"]
        .as_f64()
        .is_some_and(|t| t >= 0.0));
    let rejected = body["rejected"].as_array().expect("rejected");
    let mut reasons: Vec<(&str, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["filename"].as_str().unwrap_or(""),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            ("empty.png", "ERR_EMPTY_INPUT"),
            ("notes.png", "ERR_UNSUPPORTED_FORMAT"),
            ("script.sh", "ERR_UNSUPPORTED_FORMAT")
        ]
    );
    assert!(rejected
        .iter()
        .all(|r| !r["error"].as_str().unwrap_or("").is_empty()));

    let ids = job_ids(&body);
    let mut by_name = std::collections::HashMap::new();
    for id in &ids {
        let job = server.wait_job(id).await;
        by_name.insert(job["filename"].as_str().expect("filename").to_owned(), job);
    }
    for name in ["cat.png", "escape me.png", "photo.txt"] {
        let job = &by_name[name];
        assert_eq!(job["status"], "complete", "{job}");
        assert_eq!(job["progress"], 100.0);
        assert!(job["triangles"].as_u64().is_some_and(|t| t > 0));
        let formats: Vec<&str> = job["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .map(|o| o["format"].as_str().unwrap_or(""))
            .collect();
        assert!(
            formats.contains(&"stl") && formats.contains(&"glb"),
            "{job}"
        );
        for o in job["outputs"].as_array().expect("outputs") {
            assert!(o["url"].as_str().is_some_and(|u| u.starts_with(&format!(
                "/api/download/{}/",
                job["job_id"].as_str().unwrap_or("")
            ))));
            assert!(o["bytes"].as_u64().is_some_and(|b| b > 0));
        }
        assert!(
            job["created_at"].as_str().is_some_and(|t| t.ends_with('Z'))
                && job["finished_at"].is_string()
        );
    }
    let broken = &by_name["broken.png"];
    assert_eq!(broken["status"], "error", "{broken}");
    assert_eq!(broken["code"], "ERR_IMAGE_DECODE");
    let message = broken["error"].as_str().expect("error text");
    assert!(
        message.contains("broken.png") && !message.contains(data.to_str().unwrap_or("/")),
        "{message}"
    );

    // The hostile name stayed a name: every file lives in its job's directory.
    let outside: Vec<_> = files_below(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("data"))
        .collect();
    assert!(
        outside.is_empty(),
        "files outside the data dir: {outside:?}"
    );
    assert!(files_below(&data.join("jobs"))
        .iter()
        .any(|p| p.ends_with("out/escape me.stl")));
    assert!(
        files_below(&data.join("uploads")).is_empty(),
        "staging is cleaned up"
    );

    let (status, batch) = server
        .get_json(&format!(
            "/api/batches/{}",
            body["batch_id"].as_str().expect("batch")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            batch["total"].as_u64(),
            batch["complete"].as_u64(),
            batch["failed"].as_u64()
        ),
        (Some(4), Some(3), Some(1)),
        "{batch}"
    );
    assert_eq!(batch["job_ids"].as_array().map(Vec::len), Some(4));
    server.stop().await;
}
