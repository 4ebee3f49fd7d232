//! The persistence thread: the only writer of the journal.
//!
//! Store changes hand it records through a channel (a clone and a send, under the store's
//! lock but with no I/O), so neither the async workers nor the job threads ever wait for a
//! disk. It gathers what arrives within a short window (the debounce), keeps the last
//! record per job, appends them in one write with one fsync, and runs the flush callbacks
//! queued with them. Under load a burst of a thousand cancellations is one append, not a
//! thousand rewrites of the store.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::journal::{Entry, Journal};
use super::record::JobRecord;

/// Called once the changes sent before it are on disk (or failed to get there).
type FlushDone = Box<dyn FnOnce(Result<(), String>) + Send>;

enum Op {
    Write(Entry),
    Flush(FlushDone),
}

/// Handle of the persistence thread.
#[derive(Debug)]
pub struct Writer {
    tx: Mutex<Option<Sender<Op>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(e) => write!(f, "Write({})", e.job_id()),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Writer {
    /// Starts the thread on an open journal; changes arriving within `debounce` of the first
    /// one are written together.
    pub fn start(journal: Journal, debounce: Duration) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("orfeas-journal".into())
            .spawn(move || run(journal, &rx, debounce))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, op: Op) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(op)) = tx.send(op) {
                    tracing::error!("the job journal thread is gone; {op:?} not saved");
                }
            }
            None => {
                if let Op::Flush(done) = op {
                    done(Err("the job journal is closed".into()));
                }
            }
        }
    }

    /// Queues the current state of a job.
    pub fn put(&self, record: &JobRecord) {
        self.send(Op::Write(Entry::Put(Box::new(record.clone()))));
    }

    /// Queues the removal of a job (expired).
    pub fn delete(&self, job_id: &str) {
        self.send(Op::Write(Entry::Del(job_id.to_owned())));
    }

    /// Resolves once everything queued before it is on disk.
    pub async fn flush(&self) -> Result<(), String> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Op::Flush(Box::new(move |r| {
            let _ = done.send(r);
        })));
        wait.await
            .unwrap_or_else(|_| Err("the job journal thread stopped".into()))
    }

    /// [`flush`](Self::flush) for threads outside the async runtime.
    pub fn flush_blocking(&self) -> Result<(), String> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Op::Flush(Box::new(move |r| {
            let _ = done.send(r);
        })));
        wait.recv()
            .unwrap_or_else(|_| Err("the job journal thread stopped".into()))
    }

    /// Writes what is queued and stops the thread; later changes are logged as lost.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(mut journal: Journal, rx: &Receiver<Op>, debounce: Duration) {
    // Entries whose write failed stay here and go out with the next batch.
    let mut pending: Vec<Entry> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        let deadline = Instant::now() + debounce;
        while !ops.iter().any(|op| matches!(op, Op::Flush(_))) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(op) => ops.push(op),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        ops.extend(rx.try_iter());
        let mut flushes = Vec::new();
        for op in ops {
            match op {
                Op::Write(entry) => coalesce(&mut pending, entry),
                Op::Flush(done) => flushes.push(done),
            }
        }
        let result = journal.append(&pending).map_err(|e| e.to_string());
        match &result {
            Ok(()) => pending.clear(),
            Err(e) => tracing::error!(
                "cannot write the job journal ({} changes kept for the next try): {e}",
                pending.len()
            ),
        }
        for done in flushes {
            done(result.clone());
        }
    }
    if !pending.is_empty() {
        if let Err(e) = journal.append(&pending) {
            tracing::error!("{} job changes could not be saved: {e}", pending.len());
        }
    }
}

/// Keeps one entry per job, the latest, at the position of the job's first change.
fn coalesce(pending: &mut Vec<Entry>, entry: Entry) {
    match pending
        .iter_mut()
        .rev()
        .find(|e| e.job_id() == entry.job_id())
    {
        Some(slot) => *slot = entry,
        None => pending.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::journal::{load, JOURNAL_FILE};
    use crate::jobs::record::tests::record;
    use crate::jobs::JobState;

    #[test]
    fn flushed_changes_are_on_disk_and_coalesced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        let journal = Journal::create(&path, &[], true).expect("journal");
        let writer = Writer::start(journal, Duration::from_millis(20)).expect("start");
        for status in [JobState::Queued, JobState::Processing, JobState::Complete] {
            writer.put(&record("a", status));
        }
        writer.put(&record("b", JobState::Queued));
        writer.flush_blocking().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2, "one line per job: {text}");
        let loaded = load(&path).expect("load").records;
        assert_eq!(loaded[0].status, JobState::Complete);
        writer.delete("a");
        writer.close();
        let loaded = load(&path).expect("load").records;
        assert_eq!(loaded.len(), 1, "close writes what was queued");
        assert!(writer.flush_blocking().is_err(), "closed");
    }
}
