//! `jobs.journal`: the job store on disk, an append-only log of JSON lines.
//!
//! Each line is `{"put": <JobRecord>}` (the record after a change) or `{"del": "<job id>"}`
//! (expired). A state change appends one short line instead of rewriting every job; when
//! the log holds more than twice as many lines as there are jobs it is compacted (the live
//! records written to a temporary file, fsynced, renamed over the log). A crash can at worst
//! tear the last line, which the next start ignores with a warning.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::persist::is_plain_file_name;
use super::record::{is_safe_id, JobRecord};

/// File name of the journal inside the data directory.
pub const JOURNAL_FILE: &str = "jobs.journal";

/// Compaction runs once the log has this many lines beyond twice the live records, so a
/// small store is not rewritten every few events.
const COMPACT_SLACK: usize = 1024;

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    Put(Box<JobRecord>),
    Del(String),
}

impl Entry {
    pub fn job_id(&self) -> &str {
        match self {
            Self::Put(record) => &record.job_id,
            Self::Del(id) => id,
        }
    }
}

/// What a journal held at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Live records in the order they were first written (oldest job first).
    pub records: Vec<JobRecord>,
    /// Lines that could not be used (torn, corrupt, or naming unsafe ids), for the log.
    pub skipped: usize,
}

/// Reads the journal at `path`; a missing file is an empty store. Records with ids the
/// server could not have generated, or output names that are not plain file names, are
/// dropped so an edited journal cannot point a download outside the data directory.
pub fn load(path: &Path) -> std::io::Result<Loaded> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e),
    };
    let mut order: Vec<Option<JobRecord>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0;
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let torn_tail = !bytes.is_empty() && !bytes.ends_with(b"\n");
    for (n, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(e) => {
                skipped += 1;
                if torn_tail && n + 1 == lines.len() {
                    tracing::warn!(path = %path.display(), "ignoring the torn last line of the job journal (the server stopped while writing it)");
                } else {
                    tracing::warn!(path = %path.display(), line = n + 1, "skipping an unreadable job journal line: {e}");
                }
                continue;
            }
        };
        match entry {
            Entry::Put(record) => {
                if !is_safe_record(&record) {
                    tracing::warn!(job_id = %record.job_id, "dropping a journaled job with an unsafe id or file name");
                    skipped += 1;
                    continue;
                }
                match index.get(&record.job_id) {
                    Some(&i) if order[i].is_some() => order[i] = Some(*record),
                    _ => {
                        index.insert(record.job_id.clone(), order.len());
                        order.push(Some(*record));
                    }
                }
            }
            Entry::Del(id) => {
                if let Some(i) = index.remove(&id) {
                    order[i] = None;
                }
            }
        }
    }
    Ok(Loaded {
        records: order.into_iter().flatten().collect(),
        skipped,
    })
}

fn is_safe_record(record: &JobRecord) -> bool {
    is_safe_id(&record.job_id)
        && is_safe_id(&record.batch_id)
        && record.outputs.iter().all(|o| is_plain_file_name(&o.file))
        && record
            .spec
            .as_ref()
            .is_none_or(|s| is_plain_file_name(&s.input) && is_plain_file_name(&s.stem))
}

/// The open journal, owned by the persistence thread: an append handle plus the last line
/// of every live job (what compaction writes).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Lines in the file now.
    lines: usize,
    /// job id → (first-write sequence number, its latest line).
    live: HashMap<String, (u64, String)>,
    next_seq: u64,
    /// fsync after every append (off only in benchmarks of the store itself).
    durable: bool,
}

impl Journal {
    /// Starts a journal holding exactly `records` (written fresh and compacted, so a start
    /// always begins from a clean file; this is also how `jobs.json` of older versions is
    /// migrated).
    pub fn create(path: &Path, records: &[JobRecord], durable: bool) -> std::io::Result<Self> {
        let mut live = HashMap::with_capacity(records.len());
        for (seq, record) in records.iter().enumerate() {
            live.insert(
                record.job_id.clone(),
                (seq as u64, line(&Entry::Put(Box::new(record.clone())))?),
            );
        }
        let mut journal = Self {
            path: path.to_owned(),
            file: open_append(path)?,
            lines: 0,
            next_seq: records.len() as u64,
            live,
            durable,
        };
        journal.compact()?;
        Ok(journal)
    }

    /// Appends `entries` in one write (then fsync), and compacts when the log has grown.
    pub fn append(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for entry in entries {
            let l = line(entry)?;
            text.push_str(&l);
            match entry {
                Entry::Put(record) => {
                    let seq = match self.live.get(&record.job_id) {
                        Some(&(seq, _)) => seq,
                        None => {
                            self.next_seq += 1;
                            self.next_seq
                        }
                    };
                    self.live.insert(record.job_id.clone(), (seq, l));
                }
                Entry::Del(id) => {
                    self.live.remove(id);
                }
            }
        }
        self.file.write_all(text.as_bytes())?;
        if self.durable {
            self.file.sync_data()?;
        }
        self.lines += entries.len();
        if self.lines > 2 * self.live.len() + COMPACT_SLACK {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the log as one line per live job, atomically (temporary file, fsync, rename,
    /// fsync of the directory).
    pub fn compact(&mut self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".jobs-")
            .suffix(".journal.tmp")
            .tempfile_in(dir)?;
        let mut ordered: Vec<&(u64, String)> = self.live.values().collect();
        ordered.sort_unstable_by_key(|(seq, _)| *seq);
        {
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            for (_, l) in &ordered {
                out.write_all(l.as_bytes())?;
            }
            out.flush()?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(dir);
        self.file = open_append(&self.path)?;
        self.lines = ordered.len();
        Ok(())
    }

    /// Lines in the file (for tests of compaction).
    #[cfg(test)]
    pub fn lines(&self) -> usize {
        self.lines
    }
}

fn line(entry: &Entry) -> std::io::Result<String> {
    let mut text = serde_json::to_string(entry)?;
    text.push('\n');
    Ok(text)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Makes a rename durable (POSIX needs the directory fsynced too); best effort elsewhere.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::record::tests::record;
    use crate::jobs::JobState;

    #[test]
    fn puts_and_deletes_replay_in_order_and_compaction_keeps_only_live_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal =
            Journal::create(&path, &[record("a", JobState::Complete)], true).expect("create");
        journal
            .append(&[
                Entry::Put(Box::new(record("b", JobState::Queued))),
                Entry::Put(Box::new(record("c", JobState::Queued))),
            ])
            .expect("append");
        journal
            .append(&[
                Entry::Put(Box::new(record("b", JobState::Complete))),
                Entry::Del("a".into()),
            ])
            .expect("append");
        assert_eq!(journal.lines(), 5);
        let loaded = load(&path).expect("load");
        let states: Vec<_> = loaded
            .records
            .iter()
            .map(|r| (r.job_id.as_str(), r.status))
            .collect();
        assert_eq!(states, [("b", JobState::Complete), ("c", JobState::Queued)]);
        journal.compact().expect("compact");
        assert_eq!(journal.lines(), 2);
        assert_eq!(
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .count(),
            2
        );
        let again = load(&path).expect("load");
        assert_eq!(again.records, loaded.records);
    }

    #[test]
    fn a_torn_last_line_and_unsafe_records_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        let good = line(&Entry::Put(Box::new(record("ok", JobState::Complete)))).expect("line");
        let evil =
            line(&Entry::Put(Box::new(record("../evil", JobState::Complete)))).expect("line");
        let torn = &good[..good.len() / 2];
        std::fs::write(&path, format!("{good}{evil}{torn}")).expect("write");
        let loaded = load(&path).expect("load");
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].job_id, "ok");
        assert_eq!(loaded.skipped, 2);
    }

    #[test]
    fn the_log_compacts_itself_once_it_outgrows_the_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::create(&path, &[], false).expect("create");
        for _ in 0..(COMPACT_SLACK + 10) {
            journal
                .append(&[Entry::Put(Box::new(record("same", JobState::Processing)))])
                .expect("append");
        }
        assert!(journal.lines() < 20, "{}", journal.lines());
        assert_eq!(load(&path).expect("load").records.len(), 1);
    }
}
