//! What travels on the subjects: small JSON documents with store keys, never file bytes (core
//! NATS caps a payload at 1 MiB; images and meshes go through the files bucket).

use serde::{Deserialize, Serialize};

use super::StoreLocation;
use crate::jobs::{is_safe_id, SettingsSpec};

/// The version of [`JobMessage`]; a worker terminates messages of another version.
pub const JOB_MESSAGE_VERSION: u32 = 1;

/// One job on the jobs stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub v: u32,
    pub job_id: String,
    pub batch_id: String,
    /// The sanitised upload name (what users see; error messages name it, not store keys).
    pub filename: String,
    /// Where the input is and the results go (`nats`, `file:///DIR`, `s3://BUCKET/PREFIX`);
    /// absent in messages of earlier front ends, which knew only `nats`.
    #[serde(default)]
    pub store: StoreLocation,
    /// Key of the input image in the store.
    pub input_key: String,
    /// Base name of the outputs (`cat` → `cat.stl`).
    pub stem: String,
    /// The settings as resolved at upload (the front end's defaults included).
    pub settings: SettingsSpec,
}

impl JobMessage {
    /// Parses a message from the stream: anything malformed or of another version is an
    /// error to log and terminate, never a crash.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let message: Self =
            serde_json::from_slice(payload).map_err(|e| format!("not a job message: {e}"))?;
        if message.v != JOB_MESSAGE_VERSION {
            return Err(format!(
                "job message version {} (this worker reads {JOB_MESSAGE_VERSION})",
                message.v
            ));
        }
        if !is_safe_id(&message.job_id) {
            return Err(format!("job id {:?} is not a plain name", message.job_id));
        }
        Ok(message)
    }
}

/// A job's event as a worker publishes it on `orfeas.events.<job>`: the core's event (its
/// JSON, `{"event": ..., "data": ...}`) with who ran it and which delivery it was, so that a
/// front end drops the events of superseded attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerEvent {
    pub worker: String,
    pub attempt: u64,
    pub event: serde_json::Value,
}

/// A worker's heartbeat on `orfeas.workers.<id>`, every few seconds while it runs; a front end
/// forgets workers it has not heard from for three periods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerPresence {
    pub id: String,
    pub host: String,
    pub slots: SlotCounts,
    /// `orfeas_core::gpu` telemetry of its GPUs (empty on the CPU).
    pub gpus: Vec<serde_json::Value>,
    /// False in the last heartbeat of a worker that is draining or stopping.
    pub accepting: bool,
    /// Methods its loaded models can run (`relief`, `triposr`, ...); a front end accepts a
    /// request if some live worker can run it. Empty from workers that predate the field.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Backgrounds it can remove (`birefnet` only with its weights).
    #[serde(default)]
    pub backgrounds: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCounts {
    pub total: usize,
    pub busy: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> JobMessage {
        JobMessage {
            v: JOB_MESSAGE_VERSION,
            job_id: "job-1".into(),
            batch_id: "b".into(),
            filename: "cat.png".into(),
            store: StoreLocation::Nats,
            input_key: "inputs/job-1".into(),
            stem: "cat".into(),
            settings: SettingsSpec::new(
                &orfeas_core::GenerateSettings::default(),
                orfeas_core::Method::Relief,
            ),
        }
    }

    #[test]
    fn a_job_message_round_trips() {
        let json = serde_json::to_vec(&message()).expect("json");
        assert_eq!(JobMessage::parse(&json).expect("parses"), message());
    }

    #[test]
    fn a_message_of_an_earlier_front_end_uses_the_queues_store() {
        let mut json = serde_json::to_value(message()).expect("json");
        json.as_object_mut().expect("object").remove("store");
        let parsed = JobMessage::parse(&serde_json::to_vec(&json).expect("json")).expect("parses");
        assert_eq!(parsed.store, StoreLocation::Nats);
    }

    #[test]
    fn foreign_or_hostile_messages_are_errors() {
        for bad in [&b"not json"[..], b"{}", b"[1,2]", b""] {
            assert!(JobMessage::parse(bad).is_err());
        }
        let mut m = message();
        m.v = 2;
        assert!(JobMessage::parse(&serde_json::to_vec(&m).expect("json")).is_err());
        let m = message();
        let mut json = serde_json::to_value(&m).expect("json");
        json["store"] = "ftp://elsewhere".into();
        let e = JobMessage::parse(&serde_json::to_vec(&json).expect("json")).expect_err("accepted");
        assert!(e.contains("--store"), "{e}");
        let mut m = message();
        m.job_id = "../../etc".into();
        let e = JobMessage::parse(&serde_json::to_vec(&m).expect("json")).expect_err("accepted");
        assert!(e.contains("plain name"), "{e}");
    }
}
