//! Cooperative cancellation shared by a batch and its jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{OrfeasError, Result};

/// A cheap, clonable flag. A job's token is a child of its batch's token, so cancelling the
/// batch cancels every job while cancelling one job leaves the others running.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    own: Arc<AtomicBool>,
    parent: Option<Arc<AtomicBool>>,
}

impl CancelToken {
    /// A fresh token that nothing has cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when either it or `self` is cancelled.
    pub fn child(&self) -> Self {
        Self {
            own: Arc::new(AtomicBool::new(false)),
            parent: Some(self.own.clone()),
        }
    }

    /// Asks every holder of this token (and its children) to stop at the next check.
    pub fn cancel(&self) {
        self.own.store(true, Ordering::Release);
    }

    /// Whether this token or its parent was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.own.load(Ordering::Acquire)
            || self
                .parent
                .as_ref()
                .is_some_and(|p| p.load(Ordering::Acquire))
    }

    /// `Err(Cancelled)` once cancelled; sprinkled between and inside long stages.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(OrfeasError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_follows_parent_but_not_the_reverse() {
        let batch = CancelToken::new();
        let a = batch.child();
        let b = batch.child();
        a.cancel();
        assert!(a.is_cancelled());
        assert!(!b.is_cancelled());
        assert!(!batch.is_cancelled());
        batch.cancel();
        assert!(b.is_cancelled());
        assert!(matches!(b.check(), Err(OrfeasError::Cancelled)));
    }
}
