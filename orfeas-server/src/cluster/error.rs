//! What can go wrong talking to the broker, with stable codes for logs and exit messages.

/// A failure of the queue or its stores (never a job's own failure: those are job states).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Nothing answered at the address, or it is not a NATS server.
    #[error("cannot reach the queue at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The server answered but has no JetStream (it must run with `-js`).
    #[error("the queue at {url} has no JetStream (start nats-server with -js): {detail}")]
    NoJetStream { url: String, detail: String },
    /// A broker operation failed (stream, consumer, KV or object store).
    #[error("queue: {0}")]
    Broker(String),
    /// The store of inputs and results failed or cannot be used from this machine.
    #[error("store {store}: {detail}")]
    Store { store: String, detail: String },
    /// A front end named another store than the one the queue already uses.
    #[error(
        "the queue at {url} keeps its files in {recorded}, not {wanted}: start with \
         --store {recorded}, or use another queue (every machine of a queue shares one store)"
    )]
    StoreMismatch {
        url: String,
        recorded: String,
        wanted: String,
    },
    /// A local file could not be read or written while moving it to or from the store.
    #[error("queue file: {0}")]
    Io(#[from] std::io::Error),
}

impl ClusterError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "ERR_QUEUE_UNREACHABLE",
            Self::NoJetStream { .. } => "ERR_QUEUE_NO_JETSTREAM",
            Self::Broker(_) => "ERR_QUEUE",
            Self::Store { .. } => "ERR_STORE",
            Self::StoreMismatch { .. } => "ERR_STORE_MISMATCH",
            Self::Io(_) => "ERR_IO",
        }
    }

    /// Wraps any broker error with what was being done.
    pub(crate) fn broker(doing: &str, e: impl std::fmt::Display) -> Self {
        Self::Broker(format!("{doing}: {e}"))
    }
}
