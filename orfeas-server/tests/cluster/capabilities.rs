//! A front end holds no models: it accepts what its live workers can run and refuses, naming
//! what they can, what none of them can.

use std::path::Path;

use crate::studio::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_without_weights_takes_what_its_workers_can_run() {
    bounded(async {
        let nats = Nats::start();
        let url = nats.url();
        let data = tempfile::tempdir().expect("tempdir");
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../orfeas-core/tests/fixtures/triposr");
        let weights = fixtures.join("tiny").display().to_string();
        let photo = std::fs::read(fixtures.join("input.png")).expect("the fixture photo");
        // The front end has no TripoSR weights; the worker has (tiny random ones).
        let front = FrontEnd::start(&url, data.path(), &[]);
        let base = front.base.clone();
        let _worker = Worker::start(
            &url,
            "objects",
            &["--slots", "1", "--method", "triposr", "--weights", &weights],
        );
        let health = wait_json(&format!("{base}/api/health"), "a worker", |h| {
            h["workers"] == 1
        })
        .await;
        let methods: Vec<&str> = health["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .filter_map(|m| m.as_str())
            .collect();
        assert!(methods.contains(&"triposr"), "{health}");

        let studio = Studio::connect(&base).await;
        let jobs = upload(
            &base,
            vec![("cup.png".into(), photo)],
            &[
                ("method", "triposr"),
                ("resolution", "32"),
                ("format_type", "stl"),
            ],
        )
        .await;
        let terminals = studio.wait_terminal(&jobs).await;
        let done = &terminals[&jobs[0]][0];
        assert_eq!(done["event"], "generation_complete", "{done}");
        let job = get_json(&format!("{base}/api/jobs/{}", jobs[0])).await;
        assert_eq!(job["method"], "triposr", "{job}");
        assert_eq!(job["worker"], "objects", "{job}");

        // A background remover no worker loaded is refused at upload, saying what there is.
        let response = post_batch(
            &base,
            vec![("a.png".into(), png(32, 1))],
            &[("background", "birefnet")],
        )
        .await;
        assert_eq!(response.status(), 503);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["code"], "ERR_WEIGHTS_NOT_FOUND", "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("auto")),
            "{body}"
        );
    })
    .await;
}
