//! The job store: every job the server knows, its live state, persistence in the data
//! directory, and the broadcast of state changes to WebSocket clients.

mod persist;
mod record;
mod store;

pub use record::{
    download_url, is_safe_id, BatchCounts, JobRecord, JobState, JobView, OutputRecord, OutputView,
};
pub use store::{CancelOutcome, JobStore, NewJob};
