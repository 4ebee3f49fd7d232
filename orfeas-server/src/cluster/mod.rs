//! Past one machine: jobs on NATS JetStream (docs/cluster.md, CONTRACT §10).
//!
//! The broker is the source of truth. Four things live there, all created on first use:
//! - the **jobs stream** (`ORFEAS_JOBS`, work-queue retention): one message per job, carrying
//!   store keys and settings, never image bytes; de-duplicated by job id (`Nats-Msg-Id`);
//! - one shared durable **pull consumer** (`orfeas-workers`): its `ack_wait` is the lease,
//!   extended by progress heartbeats, and `max_deliver` bounds the attempts;
//! - the **state bucket** (KV `orfeas-jobs`): each job's state, changed only by
//!   compare-and-swap on its revision, so one attempt alone can finish a job;
//! - the **files bucket** (object store `orfeas-files`): inputs and results, unless the front
//!   end names another store (`--store file:///DIR` or `s3://BUCKET/PREFIX`, see [`files`]).
//!
//! Delivery is at least once; every side effect is keyed so that it is exactly once in effect
//! (see [`worker`]). Progress events are plain NATS messages (`orfeas.events.<job>`): losing
//! one costs a progress tick, never a result, because terminal states are read from the KV.

mod broker;
mod error;
pub mod files;
mod front;
pub mod message;
pub mod state;
pub mod worker;

pub use broker::{Broker, BrokerSettings, Submitted};
pub use error::ClusterError;
pub use files::{Files, StoreLocation};
pub use front::{start as start_front, Front, PRESENCE_TIMEOUT};
pub use message::{JobMessage, WorkerEvent, WorkerPresence};
pub use state::{JobState, StoredOutput};
pub use worker::{run_worker, WorkerSettings};

/// The work-queue stream of jobs.
pub const JOBS_STREAM: &str = "ORFEAS_JOBS";
/// The subject jobs are published on.
pub const JOBS_SUBJECT: &str = "orfeas.jobs";
/// The one durable pull consumer every worker shares.
pub const WORKERS_CONSUMER: &str = "orfeas-workers";
/// The KV bucket of job states (`job.<id>`) and cancel requests (`cancel.<id>`).
pub const STATE_BUCKET: &str = "orfeas-jobs";
/// The object store of inputs (`inputs/<job>`) and results (`results/<job>/<attempt>/<file>`).
pub const FILES_BUCKET: &str = "orfeas-files";
/// Job events go to `orfeas.events.<job id>`.
pub const EVENTS_PREFIX: &str = "orfeas.events";
/// Workers announce themselves on `orfeas.workers.<worker id>`.
pub const WORKERS_PREFIX: &str = "orfeas.workers";
