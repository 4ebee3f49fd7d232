//! The connection to NATS and the four things that live there (see the module doc of
//! [`super`]), created on first use so that a bare `nats-server -js` is enough.
//!
//! nats-server 2.9 (Debian 12) is the floor: the KV and object-store streams are created
//! with `create_stream` and then opened, because the client's own `create_key_value` reads
//! account-info fields that 2.9 does not send.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::HeaderMap;

use super::files::{CreateDirectory, Files, StoreLocation};
use super::message::JobMessage;
use super::state::{input_key, state_key, JobState, STORE_KEY};
use super::{ClusterError, JOBS_STREAM, JOBS_SUBJECT, STATE_BUCKET, WORKERS_CONSUMER};

/// How long the broker may take to answer a request or acknowledge a write.
const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the queue, and the job semantics fixed when the consumer is first created.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// The consumer's `ack_wait`: how long a job may go without a progress heartbeat before
    /// it is handed to another worker.
    pub lease: Duration,
    /// Deliveries that may run a job; one more delivery records the failure.
    pub max_attempts: i64,
    /// How long to wait for the server at start before saying it is unreachable.
    pub connect_timeout: Duration,
    /// Where inputs and results go. A front end names it (`--store`) and records it in the
    /// queue; a worker leaves it `None` and uses the one the queue records (the queue's own
    /// object store while no front end has named one), and each job's message names its
    /// store as well.
    pub store: Option<StoreLocation>,
}

impl BrokerSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            lease: Duration::from_secs(60),
            max_attempts: 3,
            connect_timeout: Duration::from_secs(5),
            store: None,
        }
    }
}

/// A connected broker with its streams and stores open.
#[derive(Clone)]
pub struct Broker {
    pub(crate) client: async_nats::Client,
    js: jetstream::Context,
    pub(crate) jobs: stream::Stream,
    pub(crate) consumer: consumer::PullConsumer,
    pub(crate) state: kv::Store,
    /// The store this process writes new files to (see [`BrokerSettings::store`]).
    pub(crate) files: Files,
    /// Stores other than `files` that jobs' messages named, opened on first use.
    other_stores: Arc<Mutex<HashMap<StoreLocation, Files>>>,
    /// The lease in force (the consumer's `ack_wait`, which the first user fixed).
    pub(crate) lease: Duration,
    /// Deliveries that may run a job (the consumer's `max_deliver` less the last one).
    pub(crate) max_attempts: u64,
}

/// A job accepted by the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The job's message in the jobs stream.
    pub sequence: u64,
    /// False when a job of this id was already there (nothing was published again).
    pub new: bool,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("lease", &self.lease)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Connects and opens (creating where missing) the jobs stream, the workers' consumer,
    /// the state bucket and the files bucket. An address where nothing answers is
    /// `ERR_QUEUE_UNREACHABLE` within `connect_timeout`, never a hang.
    pub async fn connect(settings: &BrokerSettings) -> Result<Self, ClusterError> {
        let unreachable = |detail: String| ClusterError::Unreachable {
            url: settings.url.clone(),
            detail,
        };
        let client = tokio::time::timeout(
            settings.connect_timeout,
            async_nats::ConnectOptions::new()
                .connection_timeout(settings.connect_timeout)
                .name("orfeas")
                .connect(settings.url.as_str()),
        )
        .await
        .map_err(|_| unreachable(format!("no answer within {:?}", settings.connect_timeout)))?
        .map_err(|e| unreachable(e.to_string()))?;
        // Every request and publish acknowledgement waits this long: a chunk of a large result
        // on a busy broker can take seconds, and a timeout costs a whole redelivery.
        let js = jetstream::ContextBuilder::new()
            .timeout(JETSTREAM_TIMEOUT)
            .build(client.clone());
        let jobs = open_jobs_stream(&js).await.map_err(|e| match e {
            ClusterError::Broker(detail)
                if detail.contains("503") || detail.contains("not enabled") =>
            {
                ClusterError::NoJetStream {
                    url: settings.url.clone(),
                    detail,
                }
            }
            other => other,
        })?;
        let created = jobs
            .get_or_create_consumer(
                WORKERS_CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(WORKERS_CONSUMER.to_owned()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: settings.lease,
                    max_deliver: settings.max_attempts.max(1) + 1,
                    // Jobs out at once over all workers; sized far above any cluster's slots.
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await;
        let mut consumer: consumer::PullConsumer = match created {
            Ok(consumer) => consumer,
            Err(e) => jobs
                .get_consumer(WORKERS_CONSUMER)
                .await
                .map_err(|_| ClusterError::broker("opening the workers' consumer", e))?,
        };
        let info = consumer_info(&mut consumer).await?;
        let lease = info.config.ack_wait;
        let max_attempts = u64::try_from(info.config.max_deliver - 1)
            .unwrap_or(1)
            .max(1);
        if lease != settings.lease {
            tracing::info!(
                "the queue's lease is {lease:?} (fixed when its consumer was created), not {:?}",
                settings.lease
            );
        }
        let state = open_state_bucket(&js).await?;
        let files = open_store(&js, &state, settings).await?;
        Ok(Self {
            client,
            js,
            jobs,
            consumer,
            state,
            files,
            other_stores: Arc::default(),
            lease,
            max_attempts,
        })
    }

    /// The store this process writes new files to.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// This broker with `location` as its store: a job's message names the store its input
    /// is in, and its results go there too (a worker that joined before any front end named
    /// a store still follows each job's).
    pub async fn with_store(&self, location: &StoreLocation) -> Result<Self, ClusterError> {
        if location == self.files.location() {
            return Ok(self.clone());
        }
        let known = lock(&self.other_stores).get(location).cloned();
        let files = match known {
            Some(files) => files,
            None => {
                let files = Files::open(location, &self.js, CreateDirectory::No).await?;
                lock(&self.other_stores).insert(location.clone(), files.clone());
                files
            }
        };
        Ok(Self {
            files,
            ..self.clone()
        })
    }

    /// The lease in force.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether the connection is up now (the client reconnects on its own).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Queues a job: its input goes to the files bucket, its state to the state bucket
    /// (`queued`, created only if absent), then its message to the jobs stream, de-duplicated
    /// by job id. Submitting a job id the queue already knows publishes nothing.
    pub async fn submit(&self, job: &JobMessage, input: &Path) -> Result<Submitted, ClusterError> {
        if let Some((state, _)) = self.job_state(&job.job_id).await? {
            return Ok(Submitted {
                sequence: queued_sequence(&state),
                new: false,
            });
        }
        self.with_store(&job.store)
            .await?
            .files
            .put_file(&input_key(&job.job_id), input)
            .await?;
        let mut queued = JobState::Queued {
            batch_id: job.batch_id.clone(),
            filename: job.filename.clone(),
            sequence: 0,
        };
        // The state exists before the message, so a worker always finds it; a submit that
        // stops between the two leaves a `queued` job with no message, which submitting it
        // again (the front end's restart) publishes.
        let revision = match self
            .state
            .create(state_key(&job.job_id), queued.to_bytes())
            .await
        {
            Ok(revision) => revision,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                return Ok(Submitted {
                    sequence: 0,
                    new: false,
                })
            }
            Err(e) => return Err(ClusterError::broker("recording a queued job", e)),
        };
        let sequence = self.publish(job).await?;
        if let JobState::Queued { sequence: s, .. } = &mut queued {
            *s = sequence;
        }
        // Only while still queued: a worker may have taken the job already.
        self.swap_state(&job.job_id, revision, &queued).await?;
        Ok(Submitted {
            sequence,
            new: true,
        })
    }

    /// Publishes a job's message (again, after a restart: the stream drops a repeat within
    /// its de-duplication window).
    pub async fn publish(&self, job: &JobMessage) -> Result<u64, ClusterError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.job_id.as_str());
        let payload =
            serde_json::to_vec(job).map_err(|e| ClusterError::broker("encoding a job", e))?;
        let ack = self
            .js
            .publish_with_headers(JOBS_SUBJECT, headers, payload.into())
            .await
            .map_err(|e| ClusterError::broker("publishing a job", e))?
            .await
            .map_err(|e| ClusterError::broker("publishing a job", e))?;
        Ok(ack.sequence)
    }

    /// A job's state and its revision, or `None` for a job the queue does not know.
    pub async fn job_state(&self, job_id: &str) -> Result<Option<(JobState, u64)>, ClusterError> {
        let Some(entry) = self
            .state
            .entry(state_key(job_id))
            .await
            .map_err(|e| ClusterError::broker("reading a job state", e))?
        else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let state = JobState::parse(&entry.value).map_err(ClusterError::Broker)?;
        Ok(Some((state, entry.revision)))
    }

    /// Replaces a job's state if it is still at `revision`; false when someone else changed
    /// it first (the caller lost the race and must not act as if it had won).
    pub async fn swap_state(
        &self,
        job_id: &str,
        revision: u64,
        next: &JobState,
    ) -> Result<Option<u64>, ClusterError> {
        match self
            .state
            .update(state_key(job_id), next.to_bytes(), revision)
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(ClusterError::broker("changing a job state", e)),
        }
    }

    /// Forgets jobs the front end no longer keeps (retention): their states, cancel requests,
    /// inputs and results leave the queue.
    pub async fn forget(&self, job_ids: &[String]) -> Result<(), ClusterError> {
        if job_ids.is_empty() {
            return Ok(());
        }
        let gone: std::collections::HashSet<&str> = job_ids.iter().map(String::as_str).collect();
        let of_gone_job = |key: &str| {
            key.strip_prefix("results/")
                .or_else(|| key.strip_prefix("inputs/"))
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|job| gone.contains(job))
        };
        for key in self.files.keys_where("", of_gone_job).await? {
            self.files.remove(&key).await;
        }
        // Purging a key the bucket never had succeeds, so any failure is the queue's.
        for id in job_ids {
            for key in [state_key(id), super::state::cancel_key(id)] {
                self.state
                    .purge(&key)
                    .await
                    .map_err(|e| ClusterError::broker(&format!("forgetting {key}"), e))?;
            }
        }
        Ok(())
    }

    /// Removes job messages the workers' consumer has acknowledged but the stream still
    /// holds. A broker killed without syncing (nats-server's default lazy fsync) can come
    /// back with its consumer's acknowledgements on disk and the stream's removal of the
    /// same messages lost: nothing would deliver them again, and they would count as
    /// waiting for ever. Everything below the consumer's ack floor is finished (it is the
    /// only consumer), so it is purged. Returns how many were removed.
    pub async fn sweep_acknowledged(&self) -> Result<u64, ClusterError> {
        let floor = consumer_info(&mut self.consumer.clone())
            .await?
            .ack_floor
            .stream_sequence;
        let first = self.jobs_info().await?.state.first_sequence;
        if floor == 0 || first > floor {
            return Ok(0);
        }
        let purged = self
            .jobs
            .purge()
            .sequence(floor + 1)
            .await
            .map_err(|e| ClusterError::broker("removing finished job messages", e))?;
        Ok(purged.purged)
    }

    async fn jobs_info(&self) -> Result<stream::Info, ClusterError> {
        self.jobs
            .clone()
            .info()
            .await
            .cloned()
            .map_err(|e| ClusterError::broker("reading the jobs stream", e))
    }

    /// Job messages the workers' consumer has lost track of: in the stream, yet neither
    /// waiting to be delivered nor delivered and unacknowledged. A broker killed without
    /// syncing can come back with its consumer's record of deliveries ahead of what it really
    /// handed out, and nothing would deliver those messages again.
    pub async fn untracked_jobs(&self) -> Result<u64, ClusterError> {
        let consumer = consumer_info(&mut self.consumer.clone()).await?;
        let stream = self.jobs_info().await?;
        let tracked = consumer.num_pending + consumer.num_ack_pending as u64;
        Ok(stream.state.messages.saturating_sub(tracked))
    }

    /// Creates the workers' consumer afresh, with its settings, so that it delivers every
    /// message of the stream again. Jobs being run now are delivered again too; the state
    /// bucket's compare-and-swap keeps one result per job, so this costs work, never a result.
    pub async fn reset_consumer(&self) -> Result<(), ClusterError> {
        let config = consumer_info(&mut self.consumer.clone()).await?.config;
        self.jobs
            .delete_consumer(WORKERS_CONSUMER)
            .await
            .map_err(|e| ClusterError::broker("removing the workers' consumer", e))?;
        self.jobs
            .create_consumer(consumer::pull::Config {
                durable_name: config.durable_name,
                ack_policy: config.ack_policy,
                ack_wait: config.ack_wait,
                max_deliver: config.max_deliver,
                max_ack_pending: config.max_ack_pending,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::broker("creating the workers' consumer", e))?;
        Ok(())
    }

    /// Messages waiting in the jobs stream (queued and running jobs).
    pub async fn pending_jobs(&self) -> Result<u64, ClusterError> {
        Ok(self.jobs_info().await?.state.messages)
    }
}

/// The stream sequence of a queued job's message (0 when unknown or no longer queued).
fn queued_sequence(state: &JobState) -> u64 {
    match state {
        JobState::Queued { sequence, .. } => *sequence,
        _ => 0,
    }
}

/// Processes starting together (a front end and its workers) race to create what the queue
/// needs; a creation that fails because another process's just happened is no error, so every
/// creation below is followed, on failure, by opening what should now be there.
async fn open_jobs_stream(js: &jetstream::Context) -> Result<stream::Stream, ClusterError> {
    let created = js
        .get_or_create_stream(stream::Config {
            name: JOBS_STREAM.to_owned(),
            subjects: vec![JOBS_SUBJECT.to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            // A job id published twice within this window is stored once.
            duplicate_window: Duration::from_secs(24 * 3600),
            ..Default::default()
        })
        .await;
    match created {
        Ok(stream) => Ok(stream),
        Err(e) => js
            .get_stream(JOBS_STREAM)
            .await
            .map_err(|_| ClusterError::broker("opening the jobs stream", e)),
    }
}

async fn open_state_bucket(js: &jetstream::Context) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(STATE_BUCKET).await {
        return Ok(store);
    }
    let created = js
        .get_or_create_stream(stream::Config {
            name: format!("KV_{STATE_BUCKET}"),
            subjects: vec![format!("$KV.{STATE_BUCKET}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            ..Default::default()
        })
        .await;
    js.get_key_value(STATE_BUCKET)
        .await
        .map_err(|e| match created {
            Err(create) => ClusterError::broker("creating the state bucket", create),
            Ok(_) => ClusterError::broker("opening the state bucket", e),
        })
}

/// Opens the store `settings` names and records it in the queue, or (a worker) opens the one
/// the queue records. Two front ends of one queue with different stores would each serve only
/// their own jobs' files, so a front end naming another store than the recorded one is refused.
/// The store is written to first: one this process cannot use (a read-only mount, no
/// credentials, a mistyped bucket) is an error now, not on every job, and is never recorded.
async fn open_store(
    js: &jetstream::Context,
    state: &kv::Store,
    settings: &BrokerSettings,
) -> Result<Files, ClusterError> {
    let recorded = match state
        .get(STORE_KEY)
        .await
        .map_err(|e| ClusterError::broker("reading the queue's store", e))?
    {
        Some(value) => Some(
            StoreLocation::parse(&String::from_utf8_lossy(&value))
                .map_err(|e| ClusterError::Broker(format!("the queue's recorded store: {e}")))?,
        ),
        None => None,
    };
    let probe = format!("probes/{}", uuid::Uuid::new_v4());
    let Some(wanted) = &settings.store else {
        let location = recorded.unwrap_or(StoreLocation::Nats);
        let files = Files::open(&location, js, CreateDirectory::No).await?;
        files.probe(&probe).await?;
        return Ok(files);
    };
    if let Some(recorded) = &recorded {
        if recorded != wanted {
            return Err(ClusterError::StoreMismatch {
                url: settings.url.clone(),
                recorded: recorded.to_string(),
                wanted: wanted.to_string(),
            });
        }
    }
    let files = Files::open(wanted, js, CreateDirectory::Yes).await?;
    files.probe(&probe).await?;
    if recorded.is_none() {
        // Created only if absent: of two front ends starting at once, the second is checked
        // against the first's store.
        if let Err(e) = state
            .create(STORE_KEY, wanted.to_string().into_bytes().into())
            .await
        {
            if e.kind() != kv::CreateErrorKind::AlreadyExists {
                return Err(ClusterError::broker("recording the queue's store", e));
            }
            return Box::pin(open_store(js, state, settings)).await;
        }
    }
    Ok(files)
}

async fn consumer_info(
    consumer: &mut consumer::PullConsumer,
) -> Result<consumer::Info, ClusterError> {
    consumer
        .info()
        .await
        .cloned()
        .map_err(|e| ClusterError::broker("reading the workers' consumer", e))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
