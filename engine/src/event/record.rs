//! The record an event is stored as: its envelope (sequence number, run, time, version,
//! hash), its encoding, the hash chaining it to every event before it, and its header read
//! without its payload.

use super::*;

/// A SHA-256 digest chaining an event to all the events before it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash "before" the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// `sha256(previous || record)`: any edit, removal, insertion or reordering of stored
    /// records changes every hash from that point on.
    pub fn chain(previous: &Hash, record: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update(previous.0);
        h.update(record);
        Hash(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// An event with its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub seq: Seq,
    pub run: RunId,
    pub time: DateTime<Utc>,
    /// The schema version the event was written with (it has been upcast since, if older).
    pub version: u16,
    pub hash: Hash,
    pub event: Event,
}

/// The stored, hashed form of an event: exactly these bytes are chained.
#[derive(Serialize)]
struct RecordOut<'a> {
    seq: Seq,
    run: RunId,
    time: &'a DateTime<Utc>,
    version: u16,
    event: &'a Event,
}

#[derive(Deserialize)]
struct RecordCurrent {
    seq: Seq,
    run: RunId,
    time: DateTime<Utc>,
    version: u16,
    event: Event,
}

#[derive(Deserialize)]
struct RecordIn {
    seq: Seq,
    run: RunId,
    time: DateTime<Utc>,
    version: u16,
    event: Value,
}

/// Why stored bytes do not decode into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a stored event: {0}")]
    Malformed(String),
    #[error("event version {0} is newer than this roster understands (up to {EVENT_VERSION}); upgrade roster")]
    TooNew(u16),
    #[error("event version {version} cannot be upcast: {reason}")]
    Upcast { version: u16, reason: String },
}

/// Serializes an event record; these bytes are what the hash chain covers.
pub fn encode_record(seq: Seq, run: RunId, time: &DateTime<Utc>, event: &Event) -> Vec<u8> {
    serde_json::to_vec(&RecordOut {
        seq,
        run,
        time,
        version: EVENT_VERSION,
        event,
    })
    .expect("events serialize: all keys are strings")
}

/// Decodes a stored record, upcasting older versions to the current event shape.
pub fn decode_record(bytes: &[u8], hash: Hash) -> Result<Envelope, DecodeError> {
    match fast::decode_current_by_type(bytes, hash) {
        Some(env) => Ok(env),
        None => decode_record_general(bytes, hash),
    }
}

/// The general decoder alone, which defines what a record means; the fast path must agree
/// with it (tests and the `event` fuzz target compare the two).
#[doc(hidden)]
pub fn decode_record_general(bytes: &[u8], hash: Hash) -> Result<Envelope, DecodeError> {
    // A record of the current version decodes in one pass.
    if let Ok(rec) = serde_json::from_slice::<RecordCurrent>(bytes) {
        if has_current_shape(rec.version) {
            return Ok(Envelope {
                seq: rec.seq,
                run: rec.run,
                time: rec.time,
                version: rec.version,
                hash,
                event: rec.event,
            });
        }
    }
    let rec: RecordIn =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let event = upcast(rec.version, rec.event)?;
    let event: Event =
        serde_json::from_value(event).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(Envelope {
        seq: rec.seq,
        run: rec.run,
        time: rec.time,
        version: rec.version,
        hash,
        event,
    })
}

/// What `verify` needs of a record, decoded without the payload: fast, and independent of
/// the payload's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub seq: Seq,
    pub run: RunId,
    pub version: u16,
    /// The stored name of the event's type (`kind` says which event it is, if known).
    pub event_type: String,
}

impl RecordHeader {
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_name(&self.event_type)
    }
}

#[derive(Deserialize)]
struct HeaderIn {
    seq: Seq,
    run: RunId,
    version: u16,
    event: TypeOnly,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    event_type: String,
}

pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, DecodeError> {
    // Records roster wrote start the same way; reading that prefix spares parsing the payload.
    // Anything else (or anything odd) goes through the full parser.
    if let Some(h) = fast::header_prefix(bytes) {
        return Ok(h);
    }
    let h: HeaderIn =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(RecordHeader {
        seq: h.seq,
        run: h.run,
        version: h.version,
        event_type: h.event.event_type,
    })
}
