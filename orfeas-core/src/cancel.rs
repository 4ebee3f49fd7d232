//! Cooperative cancellation shared by a batch and its jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{OrfeasError, Result};

/// A cheap, clonable flag. A job's token is a child of its batch's token, so cancelling the
/// batch cancels every job while cancelling one job leaves the others running. Children of
/// children follow every ancestor (a server's token → a batch's → a job's): the chain is
/// short, so checking it costs a few atomic loads.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    own: Arc<AtomicBool>,
    parent: Option<Arc<CancelToken>>,
}

impl CancelToken {
    /// A fresh token that nothing has cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when it, `self` or any of `self`'s ancestors is cancelled.
    pub fn child(&self) -> Self {
        Self {
            own: Arc::new(AtomicBool::new(false)),
            parent: Some(Arc::new(self.clone())),
        }
    }

    /// Asks every holder of this token (and its children) to stop at the next check.
    pub fn cancel(&self) {
        self.own.store(true, Ordering::Release);
    }

    /// Whether this token or any ancestor was cancelled.
    pub fn is_cancelled(&self) -> bool {
        let mut token = self;
        loop {
            if token.own.load(Ordering::Acquire) {
                return true;
            }
            match &token.parent {
                Some(parent) => token = parent,
                None => return false,
            }
        }
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

    #[test]
    fn grandchildren_follow_every_ancestor() {
        let server = CancelToken::new();
        let batch = server.child();
        let job = batch.child();
        let step = job.child();
        let other_batch = server.child().child();
        batch.cancel();
        assert!(job.is_cancelled() && step.is_cancelled());
        assert!(!server.is_cancelled() && !other_batch.is_cancelled());
        server.cancel();
        assert!(other_batch.is_cancelled(), "the root reaches a grandchild");
    }
}
