//! Cooperative cancellation shared by a batch and its jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{OrfeasError, Result};

/// A cheap, clonable flag. A job's token is a child of its batch's token, so cancelling the
/// batch cancels every job while cancelling one job leaves the others running.
///
/// Every token keeps its whole chain of ancestors, not only its parent's flag: a front end
/// that hands the core a child of its own token (a server's shutdown token → a request's →
/// the batch's job tokens) must see a cancel of any of them reach every job below.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    node: Arc<Node>,
}

/// One level of the chain. Checking walks it from the token up; chains are a few levels deep
/// (usually two: batch and job), so a check is a handful of atomic loads and no locking, which
/// matters because the long stages check between every chunk of work.
#[derive(Debug, Default)]
struct Node {
    cancelled: AtomicBool,
    parent: Option<Arc<Node>>,
}

impl CancelToken {
    /// A fresh token that nothing has cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when it, `self` or any of `self`'s ancestors is cancelled.
    pub fn child(&self) -> Self {
        Self {
            node: Arc::new(Node {
                cancelled: AtomicBool::new(false),
                parent: Some(Arc::clone(&self.node)),
            }),
        }
    }

    /// Asks every holder of this token (and of its descendants) to stop at the next check.
    pub fn cancel(&self) {
        self.node.cancelled.store(true, Ordering::Release);
    }

    /// Whether this token or any ancestor was cancelled.
    pub fn is_cancelled(&self) -> bool {
        let mut node = &*self.node;
        loop {
            if node.cancelled.load(Ordering::Acquire) {
                return true;
            }
            match &node.parent {
                Some(parent) => node = parent,
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
    fn a_cancel_reaches_every_descendant_however_deep() {
        // server → request → batch → job → a stage's own token.
        let server = CancelToken::new();
        let request = server.child();
        let batch = request.child();
        let job = batch.child();
        let stage = job.child();
        let sibling_job = batch.child();
        let other_request = server.child();
        assert!(!stage.is_cancelled());

        // A middle level stops everything below it and nothing above or beside it.
        batch.cancel();
        assert!(job.is_cancelled() && stage.is_cancelled() && sibling_job.is_cancelled());
        assert!(!request.is_cancelled() && !server.is_cancelled());
        assert!(!other_request.is_cancelled());

        // The root reaches the great-great-grandchild and a clone made before the cancel.
        let fresh = server.child().child().child().child();
        let clone = fresh.clone();
        server.cancel();
        assert!(fresh.is_cancelled() && clone.is_cancelled());
        assert!(other_request.is_cancelled());
        assert!(matches!(fresh.check(), Err(OrfeasError::Cancelled)));
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
