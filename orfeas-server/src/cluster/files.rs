//! Where a cluster keeps its inputs and results (`--store`): the queue's own object store
//! (`nats`, the default: machines need nothing shared but the broker), a directory every
//! machine mounts at the same path (`file:///DIR`), or an S3 bucket (`s3://BUCKET/PREFIX`,
//! credentials and endpoint from the standard `AWS_*` environment of each machine).
//!
//! Keys are the same in every store (`inputs/<job>`, `results/<job>/<attempt>/<file>`), and
//! every transfer is bounded in time, so a store that stops answering fails one attempt
//! instead of holding a slot for ever. A result is written under its attempt's own key and
//! becomes a job's result only through the state bucket's compare-and-swap, so a store needs
//! no create-if-absent of its own for a job to yield one set of files.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::object_store as nats_store;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore as _;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::{ClusterError, FILES_BUCKET};

/// A `--store` value; in messages, its text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StoreLocation {
    /// The broker's object store (`orfeas-files`).
    #[default]
    Nats,
    /// A directory; on several machines, one shared mount at the same path on each.
    Directory(PathBuf),
    /// A bucket and a key prefix (possibly empty) on S3 or an S3-compatible server.
    S3 { bucket: String, prefix: String },
}

impl StoreLocation {
    /// Parses `nats`, `file:///ABSOLUTE/DIR` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "nats" {
            return Ok(Self::Nats);
        }
        if let Some(dir) = text.strip_prefix("file://") {
            let dir = Path::new(dir);
            if !dir.is_absolute() {
                return Err(format!(
                    "--store {text:?}: a file store names an absolute directory (file:///srv/orfeas)"
                ));
            }
            return Ok(Self::Directory(dir.to_path_buf()));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("--store {text:?}: no bucket (s3://BUCKET/PREFIX)"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        Err(format!(
            "--store {text:?}: expected nats, file:///DIR or s3://BUCKET/PREFIX"
        ))
    }
}

impl TryFrom<String> for StoreLocation {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<StoreLocation> for String {
    fn from(location: StoreLocation) -> String {
        location.to_string()
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nats => f.write_str("nats"),
            Self::Directory(dir) => write!(f, "file://{}", dir.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Whether opening a file store may create its directory: a front end creates it, a worker
/// does not (a directory missing there is a shared mount missing, which creating would hide).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateDirectory {
    Yes,
    No,
}

/// A reader of one stored file.
pub type StoredReader = Pin<Box<dyn AsyncRead + Send>>;

/// An open store.
#[derive(Clone)]
pub struct Files {
    location: StoreLocation,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// Boxed: the client's handles are a kilobyte, the other a pointer.
    Nats(Box<NatsBucket>),
    Object(Arc<dyn object_store::ObjectStore>),
}

/// The broker's object store, and its stream for listing (see [`Files::keys_where`]).
#[derive(Clone)]
struct NatsBucket {
    store: nats_store::ObjectStore,
    stream: async_nats::jetstream::stream::Stream,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl Files {
    /// Opens a store; the NATS one through the broker's JetStream context.
    pub(crate) async fn open(
        location: &StoreLocation,
        js: &async_nats::jetstream::Context,
        create: CreateDirectory,
    ) -> Result<Self, ClusterError> {
        let error = |detail: String| ClusterError::Store {
            store: location.to_string(),
            detail,
        };
        let backend = match location {
            StoreLocation::Nats => {
                let store = open_files_bucket(js).await?;
                let stream = js
                    .get_stream(format!("OBJ_{FILES_BUCKET}"))
                    .await
                    .map_err(|e| ClusterError::broker("opening the files bucket", e))?;
                Backend::Nats(Box::new(NatsBucket { store, stream }))
            }
            StoreLocation::Directory(dir) => {
                if create == CreateDirectory::Yes {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
                } else if !dir.is_dir() {
                    return Err(error(format!(
                        "{} is not a directory on this machine (is the shared store mounted here?)",
                        dir.display()
                    )));
                }
                let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| error(e.to_string()))?
                    .with_automatic_cleanup(true);
                Backend::Object(Arc::new(local))
            }
            StoreLocation::S3 { bucket, prefix } => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| error(e.to_string()))?;
                if prefix.is_empty() {
                    Backend::Object(Arc::new(s3))
                } else {
                    let prefix = object_store::path::Path::parse(prefix)
                        .map_err(|e| error(format!("prefix {prefix:?}: {e}")))?;
                    Backend::Object(Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)))
                }
            }
        };
        Ok(Self {
            location: location.clone(),
            backend,
        })
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Writes and removes a small file under `key`: a store this process cannot write (a
    /// read-only mount, wrong credentials, a missing bucket) is found before any job is taken.
    pub(crate) async fn probe(&self, key: &str) -> Result<(), ClusterError> {
        let scratch = tempfile::NamedTempFile::new()?;
        std::fs::write(scratch.path(), b"orfeas store probe\n")?;
        self.put_file(key, scratch.path()).await?;
        self.remove(key).await;
        Ok(())
    }

    /// Writes a local file under `key`, bounded in time (see [`transfer_limit`]). Large files
    /// go in parts (S3 multipart; a staged file renamed into place on a directory store), so
    /// a reader never sees half a file.
    pub async fn put_file(&self, key: &str, from: &Path) -> Result<u64, ClusterError> {
        let mut file = tokio::fs::File::open(from).await?;
        let size = file.metadata().await?.len();
        let limit = transfer_limit(size);
        let put = async {
            match &self.backend {
                Backend::Nats(bucket) => bucket
                    .store
                    .put(key, &mut file)
                    .await
                    .map(|info| info.size as u64)
                    .map_err(|e| self.error(&format!("writing {key}"), e)),
                Backend::Object(store) => {
                    let path = object_path(key).map_err(|e| self.error("", e))?;
                    let mut writer =
                        object_store::buffered::BufWriter::new(Arc::clone(store), path);
                    let writing = format!("writing {key}");
                    let bytes = match tokio::io::copy(&mut file, &mut writer).await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            // Parts already sent are discarded (an S3 multipart upload is
                            // aborted, a staged file removed).
                            let _ = writer.abort().await;
                            return Err(self.error(&writing, e));
                        }
                    };
                    // Completes the upload; after a failure here there is nothing to abort.
                    writer
                        .shutdown()
                        .await
                        .map_err(|e| self.error(&writing, e))?;
                    Ok(bytes)
                }
            }
        };
        tokio::time::timeout(limit, put)
            .await
            .map_err(|_| self.error(&format!("writing {key}"), format!("over {limit:?}")))?
    }

    /// Reads a whole stored file into `to` (created here), bounded in time like
    /// [`put_file`](Self::put_file): a read whose source stopped answering (this process was
    /// paused, the broker restarted) fails instead of holding a slot for ever.
    pub async fn get_file(&self, key: &str, to: &Path) -> Result<u64, ClusterError> {
        let (size, mut reader) = self.reader(key).await?;
        let limit = transfer_limit(size);
        let mut file = tokio::fs::File::create(to).await?;
        let copy = async {
            let bytes = tokio::io::copy(&mut reader, &mut file).await?;
            file.flush().await?;
            Ok::<u64, std::io::Error>(bytes)
        };
        match tokio::time::timeout(limit, copy).await {
            Ok(bytes) => bytes.map_err(|e| self.error(&format!("reading {key}"), e)),
            Err(_) => Err(self.error(&format!("reading {key}"), format!("over {limit:?}"))),
        }
    }

    /// Opens a stored file for streaming: its size and a reader.
    pub async fn reader(&self, key: &str) -> Result<(u64, StoredReader), ClusterError> {
        let reading = format!("reading {key}");
        match &self.backend {
            Backend::Nats(bucket) => {
                let object = bucket
                    .store
                    .get(key)
                    .await
                    .map_err(|e| self.error(&reading, e))?;
                Ok((object.info().size as u64, Box::pin(object)))
            }
            Backend::Object(store) => {
                let path = object_path(key).map_err(|e| self.error("", e))?;
                let got = store
                    .get(&path)
                    .await
                    .map_err(|e| self.error(&reading, e))?;
                let size = got.meta.size;
                let stream = got.into_stream().map_err(std::io::Error::other);
                Ok((size, Box::pin(tokio_util::io::StreamReader::new(stream))))
            }
        }
    }

    /// The keys that start with `prefix`, sorted.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, ClusterError> {
        self.keys_where(prefix, |_| true).await
    }

    /// The keys that start with `prefix` and pass `wanted`, sorted.
    ///
    /// On the NATS store this does not use the client's object listing: on nats-server
    /// before 2.10.15 a listing of a bucket whose objects were all deleted never ends
    /// (nats-io/nats.go#1610, fixed in the server), and Debian 12 ships 2.9. The names come
    /// from the subjects of the bucket's metadata instead (one stream-info request), and only
    /// the wanted ones have their metadata read, to skip deleted objects.
    pub(crate) async fn keys_where(
        &self,
        prefix: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, ClusterError> {
        let listing = "listing the store";
        let mut keys = Vec::new();
        match &self.backend {
            Backend::Nats(bucket) => {
                let meta = format!("$O.{FILES_BUCKET}.M.");
                let mut subjects = bucket
                    .stream
                    .info_with_subjects(format!("{meta}>"))
                    .await
                    .map_err(|e| self.error(listing, e))?;
                while let Some(entry) = subjects.next().await {
                    let (subject, _) = entry.map_err(|e| self.error(listing, e))?;
                    let name = subject
                        .strip_prefix(&meta)
                        .and_then(|encoded| URL_SAFE.decode(encoded).ok())
                        .and_then(|bytes| String::from_utf8(bytes).ok());
                    let Some(name) = name.filter(|n| n.starts_with(prefix) && wanted(n)) else {
                        continue;
                    };
                    // A deleted object keeps its metadata subject, marked deleted; one being
                    // replaced just now may have none for a moment.
                    let message = match bucket
                        .stream
                        .get_last_raw_message_by_subject(&subject)
                        .await
                    {
                        Ok(message) => message,
                        Err(e)
                            if e.kind()
                                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                        {
                            continue
                        }
                        Err(e) => return Err(self.error(listing, e)),
                    };
                    let info: nats_store::ObjectInfo = serde_json::from_slice(&message.payload)
                        .map_err(|e| self.error(listing, e))?;
                    if !info.deleted {
                        keys.push(name);
                    }
                }
            }
            Backend::Object(store) => {
                // Listing is by whole path segments: list the prefix's folder, then filter.
                let folder = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
                let folder = if folder.is_empty() {
                    None
                } else {
                    Some(object_path(folder).map_err(|e| self.error(listing, e))?)
                };
                let mut list = store.list(folder.as_ref());
                while let Some(meta) = list.next().await {
                    let name = meta
                        .map_err(|e| self.error(listing, e))?
                        .location
                        .to_string();
                    if name.starts_with(prefix) && wanted(&name) {
                        keys.push(name);
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes a stored file; one already gone is not an error.
    pub async fn remove(&self, key: &str) {
        let result = match &self.backend {
            Backend::Nats(bucket) => bucket.store.delete(key).await.map_err(|e| e.to_string()),
            Backend::Object(store) => match object_path(key) {
                Ok(path) => match store.delete(&path).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    other => other.map_err(|e| e.to_string()),
                },
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            tracing::debug!("cannot remove {key} from {}: {e}", self.location);
        }
    }

    fn error(&self, doing: &str, e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Store {
            store: self.location.to_string(),
            detail: if doing.is_empty() {
                e.to_string()
            } else {
                format!("{doing}: {e}")
            },
        }
    }
}

/// A key as an `object_store` path. Keys are made here from job ids and output names, which
/// are plain names; anything else (`..`, empty segments) is refused, never normalised.
fn object_path(key: &str) -> Result<object_store::path::Path, String> {
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
        return Err(format!("key {key:?} does not name a file"));
    }
    object_store::path::Path::parse(key).map_err(|e| format!("key {key:?}: {e}"))
}

/// How long moving `bytes` to or from the store may take: 30 s, plus a second per megabyte
/// (a slow link's pace), so only a transfer that has stopped is given up.
fn transfer_limit(bytes: u64) -> Duration {
    Duration::from_secs(30 + bytes / 1_000_000)
}

/// The broker's files bucket. On nats-server 2.9 the client's own `create_object_store`
/// fails on the account-info reply, so its stream is created first and then opened.
async fn open_files_bucket(
    js: &async_nats::jetstream::Context,
) -> Result<nats_store::ObjectStore, ClusterError> {
    if let Ok(store) = js.get_object_store(FILES_BUCKET).await {
        return Ok(store);
    }
    use async_nats::jetstream::stream;
    // Created by another process at the same moment is as good (see `open_jobs_stream`).
    let created = js
        .get_or_create_stream(stream::Config {
            name: format!("OBJ_{FILES_BUCKET}"),
            subjects: vec![
                format!("$O.{FILES_BUCKET}.C.>"),
                format!("$O.{FILES_BUCKET}.M.>"),
            ],
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            allow_direct: true,
            ..Default::default()
        })
        .await;
    js.get_object_store(FILES_BUCKET)
        .await
        .map_err(|e| match created {
            Err(create) => ClusterError::broker("creating the files bucket", create),
            Ok(_) => ClusterError::broker("opening the files bucket", e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations_parse_and_print_back() {
        for text in [
            "nats",
            "file:///srv/orfeas",
            "s3://bucket",
            "s3://bucket/a/b",
        ] {
            let location = StoreLocation::parse(text).expect("parses");
            assert_eq!(location.to_string(), text);
        }
        assert_eq!(
            StoreLocation::parse("s3://b/p/").expect("parses"),
            StoreLocation::S3 {
                bucket: "b".into(),
                prefix: "p".into()
            }
        );
    }

    #[test]
    fn bad_store_locations_say_what_is_expected() {
        for bad in [
            "",
            "file://relative/dir",
            "s3://",
            "s3:///prefix",
            "http://x",
            "NATS",
        ] {
            let e = StoreLocation::parse(bad).expect_err(bad);
            assert!(e.contains("--store"), "{e}");
        }
    }

    #[test]
    fn keys_that_would_leave_the_store_are_refused() {
        for bad in [
            "../etc/passwd",
            "results//x",
            "results/./x",
            "",
            "/abs",
            "dir/",
        ] {
            assert!(object_path(bad).is_err(), "{bad}");
        }
        assert!(object_path("results/job-1/1/cat.stl").is_ok());
    }
}
