//! The masking stage per request: `/api/health` lists the backgrounds the server can use, a
//! request picks one (`background`), a batch asking only for `mask.png` is a background remover
//! whose files are the masks, and what the server cannot do is refused before any job exists.

use reqwest::StatusCode;

use crate::support::{job_ids, png, Server};

/// The one `mask.png` a finished mask-only job wrote, decoded.
async fn mask_of(server: &Server, job: &serde_json::Value) -> image::GrayImage {
    let outputs = job["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1, "{job}");
    assert_eq!(outputs[0]["format"], "mask.png", "{job}");
    let url = outputs[0]["url"].as_str().expect("url");
    let response = reqwest::get(server.url(url)).await.expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.expect("body");
    let decoded = image::load_from_memory(&bytes).expect("a PNG");
    assert_eq!(decoded.color(), image::ColorType::L8, "8-bit gray");
    decoded.into_luma8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_choose_the_background_and_masks_alone_are_a_background_remover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"), |_| {}).await;

    let (_, health) = server.get_json("/api/health").await;
    assert_eq!(
        health["backgrounds"],
        serde_json::json!(["auto", "alpha", "border", "none"]),
        "no BiRefNet weights here: {health}"
    );

    // The disc's own alpha, at the image's size, and no shape made.
    let (status, body) = server
        .upload(
            &[("disc.png", png(48, 3))],
            &[("format_type", "mask.png"), ("background", "alpha")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = server.wait_job(&job_ids(&body)[0]).await;
    assert_eq!(job["status"], "complete", "{job}");
    assert_eq!(
        (&job["method"], &job["mask"]),
        (&"cutout".into(), &"alpha".into()),
        "{job}"
    );
    let mask = mask_of(&server, &job).await;
    assert_eq!(mask.dimensions(), (48, 48));
    assert_eq!(
        (mask.get_pixel(24, 24)[0], mask.get_pixel(0, 0)[0]),
        (255, 0)
    );

    // `none` keeps the whole image, as asked.
    let (_, body) = server
        .upload(
            &[("disc.png", png(48, 3))],
            &[("format_type", "mask.png"), ("background", "none")],
        )
        .await;
    let job = server.wait_job(&job_ids(&body)[0]).await;
    assert_eq!(job["mask"], "none", "{job}");
    assert!(mask_of(&server, &job).await.pixels().all(|p| p[0] == 255));

    // BiRefNet without its weights: answered at once, saying how to get them.
    let (status, body) = server
        .upload(&[("disc.png", png(48, 3))], &[("background", "birefnet")])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "ERR_WEIGHTS_NOT_FOUND");
    let message = body["error"].as_str().unwrap_or("");
    assert!(
        message.contains("fetch-model --model birefnet-lite"),
        "{message}"
    );

    let (status, body) = server
        .upload(&[("disc.png", png(48, 3))], &[("background", "rembg")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("birefnet"),
        "{body}"
    );
    server.stop().await;
}
