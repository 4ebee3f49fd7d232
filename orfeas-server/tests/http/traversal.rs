//! No path outside a job's recorded outputs can be read: dot segments (plain and encoded),
//! absolute paths, unknown ids, and symlinks planted in the data directory.

use reqwest::StatusCode;

use crate::support::{job_ids, png, Server};

#[cfg(unix)] // plants symbolic links
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_attempts_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").expect("secret");
    let server = Server::start(&data, |_| {}).await;
    let (_, body) = server
        .upload(
            &[("cat.png", png(40, 1)), ("dog.png", png(40, 2))],
            &[("quality", "low"), ("format_type", "stl")],
        )
        .await;
    let ids = job_ids(&body);
    for id in &ids {
        assert_eq!(server.wait_job(id).await["status"], "complete");
    }
    let id = &ids[0];
    let (status, _) = server.raw_get(&format!("/api/download/{id}/cat.stl")).await;
    assert_eq!(status, 200, "the real file is served");

    let attempts = [
        format!("/api/download/{id}/../../../jobs.json"),
        format!("/api/download/{id}/..%2F..%2F..%2Fjobs.json"),
        format!("/api/download/{id}/%2e%2e%2f%2e%2e%2f%2e%2e%2fjobs.json"),
        format!("/api/download/{id}/%2E%2E%5C%2E%2E%5Cjobs.json"),
        format!("/api/download/{id}/..%252F..%252Fjobs.json"),
        format!(
            "/api/download/{id}/{}",
            urlencode(secret.to_str().expect("utf8"))
        ),
        format!("/api/download/{id}/%2Fetc%2Fpasswd"),
        format!("/api/download/{id}/input"),
        format!("/api/download/{id}/."),
        "/api/download/..%2F..%2Fjobs.json/x".to_owned(),
        "/api/download/../jobs.json".to_owned(),
        "/static/..%2F..%2FCargo.toml".to_owned(),
        "/static/%2e%2e/Cargo.toml".to_owned(),
        "/../Cargo.toml".to_owned(),
    ];
    for path in &attempts {
        let (status, body) = server.raw_get(path).await;
        assert!(status == 404 || status == 400, "{path} -> {status}");
        assert!(
            !body.contains("TOP-SECRET")
                && !body.contains("\"jobs\"")
                && !body.contains("[package]"),
            "{path} leaked: {body}"
        );
    }

    // A symlink planted where a recorded output lives is never followed.
    let out = data.join("jobs").join(id).join("out");
    std::fs::remove_file(out.join("cat.stl")).expect("rm");
    std::os::unix::fs::symlink(&secret, out.join("cat.stl")).expect("symlink");
    let response = server
        .http
        .get(server.url(&format!("/api/download/{id}/cat.stl")))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.text().await.expect("body").contains("TOP-SECRET"));

    // Nor is a job directory swapped for a link to somewhere else.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join("dog.stl"), "TOP-SECRET-CONTENT").expect("write");
    let dog_out = data.join("jobs").join(&ids[1]).join("out");
    std::fs::remove_dir_all(&dog_out).expect("rm out");
    std::os::unix::fs::symlink(&elsewhere, &dog_out).expect("symlink dir");
    let response = server
        .http
        .get(server.url(&format!("/api/download/{}/dog.stl", ids[1])))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.text().await.expect("body").contains("TOP-SECRET"));

    // The ZIP skips what it may not read instead of following the links.
    let response = server
        .http
        .get(server.url(&format!(
            "/api/batches/{}/zip",
            body["batch_id"].as_str().expect("batch")
        )))
        .send()
        .await
        .expect("zip");
    if response.status() == StatusCode::OK {
        let bytes = response.bytes().await.expect("bytes");
        assert!(
            !bytes.windows(10).any(|w| w == b"TOP-SECRET"),
            "zip leaked a linked file"
        );
    }
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
