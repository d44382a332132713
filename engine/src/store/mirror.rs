//! The mirror kept beside the log: per org and server, the state the org's chain of runs
//! folds to after its last completed run (see `chain::mirror`), so that the next run need not
//! fold it from the log. A cache, never trusted over the log: its stamp names the run it
//! folded and the hash of that run's last event, and a reader takes it only when both still
//! match the log and its body is the one the stamp hashed.
//!
//! Written in the same atomic batch as the run's `RunFinished`: a crash leaves either both or
//! neither, and a mirror left from an earlier run names that run, which is then not the base.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::event::{Event, Hash};
use crate::ids::{RunId, Seq};

use super::keys::{mirror_part_key, mirror_stamp_key, MIRROR, SERVER_VERSION};
use super::server::new_version;
use super::write::StepEncoder;
use super::{corrupt, Head, SledStore, StoreError};

/// The body is stored in parts of this size: sled handles many small values better than one
/// large one.
const PART_BYTES: usize = 1 << 20;

/// Which mirror: 16 bytes naming the org and the server (see `chain::mirror::mirror_id`).
pub type MirrorId = [u8; 16];

/// What a stored mirror says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStamp {
    pub org: String,
    /// The server, as the mirror's id names it (`embedded`, a file, a SCIM URL).
    pub server: String,
    /// The run it folded last.
    pub run: RunId,
    /// The full run of that run's chain, and the chain's length (runs, the full one included).
    pub full: RunId,
    pub length: u32,
    /// That run's last event, which the mirror was written with.
    pub seq: Seq,
    pub hash: String,
    /// SHA-256 of the body, hex.
    pub body: String,
    pub parts: u32,
    /// Written when the run changed nothing on the embedded server: what a later run whose
    /// inputs are this run's takes instead of reading them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settled>,
}

/// What a stamp keeps of a run that changed nothing on the embedded server (see
/// [`MirrorStamp::settled`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    /// The embedded server's version once the run finished ([`SledStore::server_version`]).
    pub server_version: String,
    /// How many deleted objects the run found.
    pub deleted: u32,
}

/// A stamp as read: the stamp, or why it does not read.
pub type StampRead = Result<MirrorStamp, String>;

/// A mirror to write with a run's last step.
pub struct MirrorWrite {
    pub id: MirrorId,
    pub org: String,
    pub server: String,
    pub run: RunId,
    pub full: RunId,
    pub length: u32,
    pub body: MirrorBody,
    /// The run changed nothing on the embedded server and found this many deleted objects:
    /// the stamp says so, with the server's version ([`MirrorStamp::settled`]).
    pub settled: Option<u32>,
}

/// A mirror's body, as a run writes it.
pub enum MirrorBody {
    New(Vec<u8>),
    /// The body stored already, which the stamp written before names: the run left the state
    /// its base left. Without one, the run's events are written without a mirror.
    Kept,
}

/// A stored mirror as read: its stamp, and its body if it is whole (else why not).
pub struct StoredMirror {
    pub stamp: MirrorStamp,
    pub body: Result<Vec<u8>, String>,
}

impl SledStore {
    /// Appends `events` (a run's last step) and writes `mirror` in the same atomic batch,
    /// stamped with the head the events reach: the mirror's run must be the events' run.
    pub fn commit_with_mirror(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        mirror: &MirrorWrite,
    ) -> Result<Head, StoreError> {
        debug_assert_eq!(mirror.run, run);
        self.check_writable()?;
        let old = self.read_stamp(&mirror.id)?.and_then(Result::ok);
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut encoder = StepEncoder::new(*head, run, time);
        events
            .iter()
            .map(Cow::Borrowed)
            .for_each(|e| encoder.push(&e));
        let mut step = encoder.finish(&[]);
        // The server's version the stamp vouches for: the one the store holds (the run's lock
        // is held, nothing else writes).
        let version = match mirror.settled {
            Some(_) => self.sled()?.log.get([SERVER_VERSION])?.map(|v| v.to_vec()),
            None => None,
        };
        for (key, value) in mirror_writes(mirror, old.as_ref(), step.head(), version) {
            match value {
                Some(value) => step.add(key, value),
                None => step.remove(key),
            }
        }
        self.check_space(step.bytes(), "this run's last step")?;
        let reached = step.head();
        let bytes = step.bytes();
        self.write_batch(step.into_batch(), bytes)?;
        *head = reached;
        Ok(reached)
    }

    /// The mirror stored under `id`, if any.
    pub fn mirror(&self, id: &MirrorId) -> Result<Option<StoredMirror>, StoreError> {
        let sled = self.sled()?;
        read_mirror(id, &|key| Ok(sled.log.get(key)?.map(|v| v.to_vec())))
    }

    /// The stamp of the mirror stored under `id`, if any (or why it does not read); its body
    /// is not read.
    pub fn mirror_stamp(&self, id: &MirrorId) -> Result<Option<StampRead>, StoreError> {
        self.read_stamp(id)
    }

    /// Every stored mirror's id and stamp (or why its stamp does not read).
    pub fn mirrors(&self) -> Result<Vec<(MirrorId, StampRead)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.sled()?.log.scan_prefix([MIRROR]) {
            let (k, v) = kv?;
            if let Some(id) = stamp_id(&k) {
                out.push((id, stamp_of(&v)));
            }
        }
        Ok(out)
    }

    fn read_stamp(&self, id: &MirrorId) -> Result<Option<StampRead>, StoreError> {
        Ok(self
            .sled()?
            .log
            .get(mirror_stamp_key(id))?
            .map(|v| stamp_of(&v)))
    }
}

/// What a run's last step writes for `mirror` beside its events, in every backend: the stamp
/// (with the head the step `reached`) and the body's parts, given the stamp stored before
/// (`old`) and — for a settled run — the server's version the store holds (a new one is
/// written when it holds none).
pub(super) fn mirror_writes(
    mirror: &MirrorWrite,
    old: Option<&MirrorStamp>,
    reached: Head,
    version: Option<Vec<u8>>,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut writes = Vec::new();
    let body = match &mirror.body {
        MirrorBody::New(body) => Some((hex::encode(sha2::Sha256::digest(body)), body)),
        MirrorBody::Kept => None,
    };
    let parts: Vec<&[u8]> = body
        .as_ref()
        .map_or(Vec::new(), |(_, b)| b.chunks(PART_BYTES).collect());
    let (body_hash, parts_count) = match (&body, old) {
        (Some((hash, _)), _) => (hash.clone(), parts.len() as u32),
        (None, Some(old)) => (old.body.clone(), old.parts),
        (None, None) => (String::new(), 0),
    };
    let settled = mirror.settled.map(|deleted| {
        let version = version.unwrap_or_else(|| {
            let v = new_version().to_vec();
            writes.push((vec![SERVER_VERSION], Some(v.clone())));
            v
        });
        Settled {
            server_version: hex::encode(version),
            deleted,
        }
    });
    let stamp = MirrorStamp {
        org: mirror.org.clone(),
        server: mirror.server.clone(),
        run: mirror.run,
        full: mirror.full,
        length: mirror.length,
        seq: reached.seq,
        hash: reached.hash.to_hex(),
        body: body_hash,
        parts: parts_count,
        settled,
    };
    // The body the store holds already (a run that changed nothing): only the stamp is new.
    // (Were the stored parts not whole, the stamp's hash would not fit them: the mirror would
    // not be taken, as before.)
    let same_body = old.is_some_and(|o| o.body == stamp.body && o.parts == stamp.parts);
    if body.is_some() || old.is_some() {
        let serialized = serde_json::to_vec(&stamp).expect("a stamp serializes");
        writes.push((mirror_stamp_key(&mirror.id).to_vec(), Some(serialized)));
    }
    if !same_body && body.is_some() {
        for (n, part) in parts.iter().enumerate() {
            let key = mirror_part_key(&mirror.id, n as u32).to_vec();
            writes.push((key, Some(part.to_vec())));
        }
        for n in parts.len() as u32..old.map_or(0, |o| o.parts) {
            writes.push((mirror_part_key(&mirror.id, n).to_vec(), None));
        }
    }
    writes
}

/// A backend's read of the value under one key.
pub(super) type GetKey<'a> = &'a dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>;

/// The mirror stored under `id`, read through `get`.
pub(super) fn read_mirror(
    id: &MirrorId,
    get: GetKey<'_>,
) -> Result<Option<StoredMirror>, StoreError> {
    let stamp = match get(&mirror_stamp_key(id))?.map(|v| stamp_of(&v)) {
        None => return Ok(None),
        Some(Ok(stamp)) => stamp,
        Some(Err(why)) => {
            return Err(corrupt(
                format!("the mirror {}", hex::encode(id)),
                format!("its stamp does not read: {why}"),
            ))
        }
    };
    // Sized once for the parts the stamp names (a damaged stamp's count is bounded: past it the
    // body grows as read).
    let mut body = Vec::with_capacity((stamp.parts as usize).min(1024) * PART_BYTES);
    for n in 0..stamp.parts {
        match get(&mirror_part_key(id, n))? {
            Some(part) => body.extend_from_slice(&part),
            None => {
                let why = format!("part {n} of {} is missing", stamp.parts);
                return Ok(Some(StoredMirror {
                    stamp,
                    body: Err(why),
                }));
            }
        }
    }
    let body = match hex::encode(sha2::Sha256::digest(&body)) == stamp.body {
        true => Ok(body),
        false => Err("its body is not the one its stamp names".to_owned()),
    };
    Ok(Some(StoredMirror { stamp, body }))
}

/// The mirror id of a stamp's key; `None` for the key of a body's part.
pub(super) fn stamp_id(key: &[u8]) -> Option<MirrorId> {
    (key.len() == 18 && key[0] == MIRROR && key[17] == b'h')
        .then(|| key[1..17].try_into().expect("checked length"))
}

pub(super) fn stamp_of(bytes: &[u8]) -> StampRead {
    let stamp: MirrorStamp = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match Hash::from_hex(&stamp.hash) {
        Some(_) => Ok(stamp),
        None => Err("its hash is not a SHA-256 digest".into()),
    }
}
