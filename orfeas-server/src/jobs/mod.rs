//! The job store: every job the server knows, its live state, persistence in the data
//! directory (an append-only journal written by its own thread), recovery after a crash,
//! retention, and the broadcast of state changes to WebSocket clients.

mod expiry;
mod journal;
mod persist;
mod record;
mod recovery;
mod remote;
mod spec;
mod store;
mod writer;

pub use journal::JOURNAL_FILE;
pub use persist::{INTERRUPTED, INTERRUPTED_CODE};
pub use record::{
    download_url, is_safe_id, BatchCounts, JobRecord, JobState, JobView, OutputRecord, OutputView,
};
pub(crate) use recovery::empty_dir;
pub use recovery::{OnRestart, MAX_ATTEMPTS};
pub use spec::{JobSpec, SettingsSpec};
pub use store::{CancelOutcome, JobStore, NewJob, StoreOptions};
