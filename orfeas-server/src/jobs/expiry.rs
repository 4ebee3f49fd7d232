//! Retention: finished jobs leave the store (record, upload and outputs together) when they
//! are older than `--keep-results` or, oldest first, while the data is over
//! `--max-data-size`. Unfinished jobs are never expired.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::store::JobStore;
use crate::clock::rfc3339;

impl JobStore {
    /// Removes expired jobs from the store and the journal and returns their ids; the caller
    /// deletes their folders (outside the store's lock).
    pub fn expire(&self, keep: Duration, max_bytes: u64) -> Vec<String> {
        let cutoff = SystemTime::now()
            .checked_sub(keep)
            .map_or_else(String::new, rfc3339);
        let mut inner = self.lock();
        // RFC 3339 in UTC with a fixed width sorts as the instants do.
        let finished_at = |i: usize| {
            let job = &inner.jobs[i];
            job.finished_at
                .clone()
                .unwrap_or_else(|| job.created_at.clone())
        };
        let mut finished: Vec<(String, usize)> = (0..inner.jobs.len())
            .filter(|&i| inner.jobs[i].status.is_terminal())
            .map(|i| (finished_at(i), i))
            .collect();
        finished.sort_unstable();
        let mut doomed: HashSet<usize> = HashSet::new();
        let mut bytes = inner.data_bytes;
        for (at, i) in &finished {
            let too_old = at.as_str() < cutoff.as_str();
            if too_old || bytes > max_bytes {
                doomed.insert(*i);
                bytes -= inner.jobs[*i].data_bytes();
            } else {
                break;
            }
        }
        if doomed.is_empty() {
            return Vec::new();
        }
        let mut removed = Vec::with_capacity(doomed.len());
        let jobs = std::mem::take(&mut inner.jobs);
        for (i, job) in jobs.into_iter().enumerate() {
            if doomed.contains(&i) {
                self.writer.delete(&job.job_id);
                removed.push(job.job_id);
            } else {
                inner.jobs.push(job);
            }
        }
        inner.reindex();
        self.bump(&mut inner);
        removed
    }
}
