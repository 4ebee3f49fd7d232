//! What the front end's sweep does after a broker came back from an unclean death: messages
//! the workers' consumer no longer tracks are found and delivered again.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use futures_util::StreamExt;
use orfeas_core::{MeshFormat, Quality};
use orfeas_server::cluster::{JOBS_STREAM, WORKERS_CONSUMER};

use crate::support::*;

async fn next_delivery(consumer: &PullConsumer) -> Option<jetstream::Message> {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch");
    match tokio::time::timeout(Duration::from_secs(8), batch.next()).await {
        Ok(Some(Ok(message))) => Some(message),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_consumer_lost_track_of_is_delivered_again() {
    bounded(async {
        let nats = Nats::start();
        let broker = connect(&nats.url(), Duration::from_secs(1)).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let job = submit(
            &broker,
            dir.path(),
            "lost",
            &png(32, 1),
            settings(&[MeshFormat::Stl], Quality::Low),
        )
        .await;
        assert_eq!(broker.untracked_jobs().await.expect("untracked"), 0);

        // Deliveries that never end (a worker dying on every one) until the consumer's
        // max_deliver is spent: the message stays in the stream, and nothing delivers it.
        let client = async_nats::connect(nats.url()).await.expect("client");
        let js = jetstream::new(client);
        let consumer: PullConsumer = js
            .get_stream(JOBS_STREAM)
            .await
            .expect("stream")
            .get_consumer(WORKERS_CONSUMER)
            .await
            .expect("consumer");
        let deadline = Instant::now() + TEST_LIMIT;
        while let Some(message) = next_delivery(&consumer).await {
            assert!(Instant::now() < deadline, "deliveries never stopped");
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        assert_eq!(broker.pending_jobs().await.expect("pending"), 1);
        assert_eq!(broker.untracked_jobs().await.expect("untracked"), 1);

        broker.reset_consumer().await.expect("reset");
        assert_eq!(broker.untracked_jobs().await.expect("untracked"), 0);
        let again = next_delivery(&consumer).await.expect("delivered again");
        let message = orfeas_server::cluster::JobMessage::parse(&again.payload).expect("a job");
        assert_eq!(message.job_id, job.job_id);
        let config = consumer_config(&js).await;
        assert_eq!(config.ack_wait, broker.lease());
        assert_eq!(config.max_deliver, 4);
    })
    .await;
}

async fn consumer_config(js: &jetstream::Context) -> jetstream::consumer::pull::Config {
    let mut consumer: PullConsumer = js
        .get_stream(JOBS_STREAM)
        .await
        .expect("stream")
        .get_consumer(WORKERS_CONSUMER)
        .await
        .expect("consumer");
    let info = consumer.info().await.expect("info");
    jetstream::consumer::pull::Config {
        ack_wait: info.config.ack_wait,
        max_deliver: info.config.max_deliver,
        ..Default::default()
    }
}
