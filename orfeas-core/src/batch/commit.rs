//! A job's commit point: the one place where "complete" and "cancelled" are decided for good.
//!
//! Cancelling is cooperative, so a cancel can land at any moment, including while the last
//! file is being written or after it was, when no stage would look at the token again. Without
//! a last look such a job would be reported complete although its caller had already asked it
//! to stop (and a front end that showed "cancelled" would be left with files nobody listed).

use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::export::{self, OutputFile};

/// Settles a job whose every file is written and published: checks the token once more, after
/// the last file and immediately before the completion event is sent.
///
/// Cancelled by then (at any moment before this check): every file of the job is removed and
/// it ends `Cancelled`, like a job stopped earlier. Not cancelled: the job is complete and its
/// files stay, whatever happens to the token afterwards. Temporary files need nothing here:
/// `export::save` never returns with one left behind.
pub(super) fn commit(outputs: Vec<OutputFile>, cancel: &CancelToken) -> Result<Vec<OutputFile>> {
    if cancel.is_cancelled() {
        export::remove_outputs(&outputs);
        return Err(OrfeasError::Cancelled);
    }
    Ok(outputs)
}
