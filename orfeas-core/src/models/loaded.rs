//! Loaded models, kept for the process: loading a checkpoint takes seconds and hundreds of
//! megabytes, so a second load of the same files on the same device reuses the first.
//!
//! Single-image calls (`image_to_mesh`, `estimate_depth`, Node's `imageToMesh`) resolve their
//! models on every call; without this they would read and convert the weights each time. The
//! key is the weight files as they are on disk (path, length, modification time): replacing a
//! checkpoint loads the new one. A failed load is not kept, so the next call tries again.
//!
//! A model stays loaded while the process runs, or until [`release_loaded_models`]; at most
//! [`MAX_LOADED`] are kept (the least recently used first out), each shared by every caller
//! holding it.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::error::Result;
use crate::options::Device;

/// How many loaded models are kept: one of each kind, plus one spare for a switch between
/// two checkpoints of a kind.
pub const MAX_LOADED: usize = 4;

/// One file of a model as it is on disk now.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileState {
    /// `None` when the file cannot be read: the loader then reports why.
    fn of(path: &Path) -> Option<Self> {
        let path = path.canonicalize().ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(Self {
            path,
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    kind: &'static str,
    files: Vec<FileState>,
    device: Device,
    /// Copies of the model (one per slot on a GPU).
    copies: usize,
}

struct Entry {
    key: Key,
    model: Arc<dyn Any + Send + Sync>,
}

/// The models kept; one per process ([`LOADED`]), others only in tests.
struct Shelf {
    entries: Mutex<Vec<Entry>>,
}

static LOADED: Shelf = Shelf::new();

/// The model of `kind` made from `files` on `device` (`copies` of it): the one already loaded
/// when the files are unchanged, else what `load` makes, kept for the next call.
///
/// The lock is not held while loading: two threads loading the same model at once both load
/// it, and the first to finish is kept.
pub(crate) fn get_or_load<T: Clone + Send + Sync + 'static>(
    kind: &'static str,
    files: &[&Path],
    device: Device,
    copies: usize,
    load: impl FnOnce() -> Result<T>,
) -> Result<T> {
    LOADED.get_or_load(kind, files, device, copies, load)
}

/// Forgets every loaded model; their memory is freed once no processor or call holds them.
pub fn release_loaded_models() {
    LOADED.entries().clear();
}

/// How many models are kept loaded now.
pub fn loaded_models() -> usize {
    LOADED.entries().len()
}

impl Shelf {
    const fn new() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or_load<T: Clone + Send + Sync + 'static>(
        &self,
        kind: &'static str,
        files: &[&Path],
        device: Device,
        copies: usize,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let Some(files) = files.iter().map(|f| FileState::of(f)).collect() else {
            return load();
        };
        let key = Key {
            kind,
            files,
            device,
            copies,
        };
        if let Some(model) = self.find::<T>(&key) {
            tracing::debug!(kind, "reusing the loaded model");
            return Ok(model);
        }
        let model = load()?;
        let mut entries = self.entries();
        if let Some(kept) = entries
            .iter()
            .find(|e| e.key == key)
            .and_then(|e| e.model.downcast_ref::<T>())
        {
            return Ok(kept.clone());
        }
        // The same kind on the same device from other files (an older checkpoint) goes first.
        entries.retain(|e| {
            !(e.key.kind == kind && e.key.device == device && e.key.files != key.files)
        });
        if entries.len() >= MAX_LOADED {
            entries.remove(0);
        }
        entries.push(Entry {
            key,
            model: Arc::new(model.clone()),
        });
        Ok(model)
    }

    /// The kept model for `key`, moved to the back (the most recently used).
    fn find<T: Clone + 'static>(&self, key: &Key) -> Option<T> {
        let mut entries = self.entries();
        let at = entries.iter().position(|e| &e.key == key)?;
        let entry = entries.remove(at);
        let model = entry.model.downcast_ref::<T>().cloned();
        entries.push(entry);
        model
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::OrfeasError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_same_files_load_once_and_a_changed_file_loads_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.bin");
        std::fs::write(&file, b"one").unwrap();
        let loads = AtomicUsize::new(0);
        let load = |value: u32| {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(value))
        };
        let shelf = Shelf::new();
        let kind = "test-reload";
        let first = shelf
            .get_or_load(kind, &[&file], Device::Cpu, 1, || load(1))
            .unwrap();
        let again = shelf
            .get_or_load(kind, &[&file], Device::Cpu, 1, || load(2))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // Other copies are another model.
        let two = shelf
            .get_or_load(kind, &[&file], Device::Cpu, 2, || load(3))
            .unwrap();
        assert_eq!(*two, 3);
        // A replaced checkpoint (another length) is loaded anew.
        std::fs::write(&file, b"three").unwrap();
        let replaced = shelf
            .get_or_load(kind, &[&file], Device::Cpu, 1, || load(4))
            .unwrap();
        assert_eq!(*replaced, 4);
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failed_load_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.bin");
        std::fs::write(&file, b"x").unwrap();
        let shelf = Shelf::new();
        let kind = "test-failure";
        let failed: Result<Arc<u32>> = shelf.get_or_load(kind, &[&file], Device::Cpu, 1, || {
            Err(OrfeasError::InvalidInput("bad weights".into()))
        });
        assert!(failed.is_err());
        let ok = shelf
            .get_or_load(kind, &[&file], Device::Cpu, 1, || Ok(Arc::new(7u32)))
            .unwrap();
        assert_eq!(*ok, 7);
    }
}
