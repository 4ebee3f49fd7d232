//! Upload limits and malformed requests: 413, 415, 400, all as JSON, staging cleaned up.

use futures_util::stream;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{files_below, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_uploads_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |c| {
        c.limits.max_file_bytes = 100_000;
        c.limits.max_request_bytes = 250_000;
        c.limits.max_files = 3;
    })
    .await;
    let big = vec![0x89u8; 120_000];

    // One file over the per-file limit, nothing else: 413.
    let (status, body) = server.upload(&[("big.png", big.clone())], &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_json_error(&body);
    assert_eq!(body["rejected"][0]["code"], "ERR_FILE_TOO_LARGE");

    // An oversize file next to a valid one: the valid one runs, the other is listed.
    let (status, body) = server
        .upload(
            &[("big.png", big.clone()), ("ok.png", png(32, 1))],
            &[("quality", "low")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["total_jobs"], 1);
    assert_eq!(body["rejected"][0]["filename"], "big.png");

    // A request body over the request limit (declared length): 413 before reading it; the
    // headers alone get the answer.
    let head = format!(
        "POST /api/batch-generate HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let (status, body) = server.raw_request(&head).await;
    assert_eq!(status, 413, "{body}");
    assert_json_error(&serde_json::from_str(&body).expect("json body"));

    // The same without a declared length (chunked): 413 while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..30).map(|_| Ok(vec![7u8; 10_000])).collect();
    let part =
        Part::stream(reqwest::Body::wrap_stream(stream::iter(chunks))).file_name("stream.png");
    let response = server
        .http
        .post(server.url("/api/batch-generate"))
        .multipart(Form::new().part("files", part))
        .send()
        .await;
    if let Ok(response) = response {
        // The server may also close the connection while the client still sends.
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_json_error(&response.json().await.expect("json"));
    }

    // Too many files (the body is read to its end, so the client gets the answer).
    let many: Vec<(&str, Vec<u8>)> = (0..4).map(|_| ("x.png", png(8, 1))).collect();
    let (status, body) = server.upload(&many, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many files")),
        "{body}"
    );
    let long = "x".repeat(5000);
    let (status, body) = server
        .upload(&[("a.png", png(16, 1))], &[("quality", long.as_str())])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Not multipart: 415. No files: 400. Only non-images: 400 with reasons. Bad settings: 400.
    let response = server
        .http
        .post(server.url("/api/batch-generate"))
        .json(&serde_json::json!({"files": []}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_json_error(&response.json().await.expect("json"));
    let (status, body) = server.upload(&[], &[("quality", "low")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_json_error(&body);
    let (status, body) = server
        .upload(&[("a.pdf", b"%PDF-1.4 hello".to_vec())], &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["rejected"][0]["code"], "ERR_UNSUPPORTED_FORMAT");
    let (status, body) = server
        .upload(&[("a.png", png(16, 1))], &[("format_type", "docx")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("docx")));
    let (status, body) = server
        .upload(&[("a.png", png(16, 1))], &[("batch_size", "3")])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "batch_size above the slots: {body}"
    );

    // Nothing refused left a file behind.
    let data = &server.data_dir;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        files_below(&data.join("uploads")).is_empty(),
        "{:?}",
        files_below(&data.join("uploads"))
    );
    let (_, jobs) = server.get_json("/api/jobs").await;
    assert_eq!(
        jobs.as_array().map(Vec::len),
        Some(1),
        "only the one valid upload became a job"
    );
    server.stop().await;
}

fn assert_json_error(body: &Value) {
    assert_eq!(body["success"], false, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}
