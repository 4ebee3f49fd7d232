//! Downloading single outputs and a batch ZIP.

use std::io::Read;

use reqwest::StatusCode;

use crate::support::{job_ids, png, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_and_zip_hold_exactly_the_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), |_| {}).await;
    let files = vec![
        ("one.png", png(40, 1)),
        ("two.png", png(44, 2)),
        ("one.png", png(36, 3)),
    ];
    let (status, body) = server
        .upload(&files, &[("format_type", "stl,glb"), ("quality", "low")])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut expected = Vec::new();
    for id in job_ids(&body) {
        let job = server.wait_job(&id).await;
        assert_eq!(job["status"], "complete", "{job}");
        for output in job["outputs"].as_array().expect("outputs") {
            let url = output["url"].as_str().expect("url");
            let response = server
                .http
                .get(server.url(url))
                .send()
                .await
                .expect("download");
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers().clone();
            let disposition = headers["content-disposition"].to_str().expect("ascii");
            assert!(
                disposition.starts_with("attachment;")
                    && disposition.contains(output["filename"].as_str().expect("name"))
            );
            let bytes = response.bytes().await.expect("body");
            assert_eq!(bytes.len() as u64, output["bytes"].as_u64().expect("bytes"));
            let on_disk = std::fs::read(
                server
                    .data_dir
                    .join("jobs")
                    .join(&id)
                    .join("out")
                    .join(output["filename"].as_str().expect("name")),
            )
            .expect("file");
            assert_eq!(bytes.as_ref(), on_disk.as_slice());
            match output["format"].as_str() {
                Some("glb") => {
                    assert_eq!(&headers["content-type"], "model/gltf-binary");
                    assert_eq!(&bytes[..4], b"glTF");
                }
                Some("stl") => {
                    assert_eq!(&headers["content-type"], "model/stl");
                    let triangles =
                        u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as usize;
                    assert_eq!(bytes.len(), 84 + 50 * triangles, "binary STL layout");
                }
                other => panic!("unexpected format {other:?}"),
            }
            expected.push(on_disk);
        }
    }
    assert_eq!(expected.len(), 6);

    let batch_id = body["batch_id"].as_str().expect("batch");
    let response = server
        .http
        .get(server.url(&format!("/api/batches/{batch_id}/zip")))
        .send()
        .await
        .expect("zip");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.expect("zip body");
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid zip");
    let mut names = Vec::new();
    let mut contents = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        names.push(entry.name().to_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read entry");
        contents.push(data);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "one (2).glb",
            "one (2).stl",
            "one.glb",
            "one.stl",
            "two.glb",
            "two.stl"
        ]
    );
    for data in &expected {
        assert!(
            contents.contains(data),
            "every output is in the archive, byte for byte"
        );
    }
    assert!(
        files_left(&server.data_dir.join("tmp")).is_empty(),
        "archive temp files are unlinked"
    );

    let (status, _) = server.get_json("/api/batches/nope/zip").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

fn files_left(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    crate::support::files_below(dir)
}
