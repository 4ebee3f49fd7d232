//! Batch counts, updated as jobs move between states, emitted on every change.

use std::sync::Mutex;

use crate::progress::{BatchCounts, ProgressEvent};

/// Where a job is; counts move from one field to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    Processing,
    Complete,
    Failed,
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct Tally {
    batch_id: String,
    counts: Mutex<BatchCounts>,
}

impl Tally {
    pub(crate) fn new(batch_id: String, total: usize) -> Self {
        Self {
            batch_id,
            counts: Mutex::new(BatchCounts {
                total,
                queued: total,
                ..Default::default()
            }),
        }
    }

    /// Moves one job from `from` to `to` and returns the event describing the new counts.
    pub(crate) fn shift(&self, from: Phase, to: Phase) -> ProgressEvent {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *slot(&mut c, from) = slot(&mut c, from).saturating_sub(1);
        *slot(&mut c, to) += 1;
        ProgressEvent::BatchProgress {
            batch_id: self.batch_id.clone(),
            counts: *c,
        }
    }

    pub(crate) fn snapshot(&self) -> ProgressEvent {
        let c = *self.counts.lock().unwrap_or_else(|p| p.into_inner());
        ProgressEvent::BatchProgress {
            batch_id: self.batch_id.clone(),
            counts: c,
        }
    }
}

fn slot(c: &mut BatchCounts, p: Phase) -> &mut usize {
    match p {
        Phase::Queued => &mut c.queued,
        Phase::Processing => &mut c.processing,
        Phase::Complete => &mut c.complete,
        Phase::Failed => &mut c.failed,
        Phase::Cancelled => &mut c.cancelled,
    }
}
