//! Keys and byte layouts: the only place that knows how the log, its index and the embedded
//! server are laid out in sled's one tree.
//!
//! Keys in the `log` tree:
//! - `c` + first seq (u64 BE)      → chunk: version byte 2, count (u32 LE), then the events
//!   compressed as one LZ4 block (`lz4_flex`, uncompressed size prepended as u32 LE); once
//!   uncompressed, per event: seq (u64 LE), hash (32 bytes), length (u32 LE), JSON record (see
//!   `event::encode_record`). Version 1 chunks hold the same events uncompressed, and are read
//!   as they are. JSON records shrink about fourfold, and sled keeps recently written values in
//!   memory: compression is what keeps a large import's memory and disk writes down.
//! - `R` + run (16 bytes) + first seq → count (u32 LE): the run index, one entry per chunk
//! - `u` + case-folded login       → JSON `ServerUser`
//! - `g` + case-folded group name  → JSON `ServerGroup`
//! - `V`                           → the embedded server's version: 16 random bytes, new in
//!   every batch that writes a server record (and when a load begins), so an equal version
//!   says the directory is as it was when the version was read
//! - `M` + mirror id (16 bytes) + `h` → the mirror's stamp (JSON `MirrorStamp`), and
//!   `M` + mirror id + `p` + part (u32 BE) → its body, in parts of 1 MiB (see `mirror`)
//!
//! Stores written before chunks (roster 0.1 development builds) hold one event per key, and
//! are read as they are: `e` + seq → hash + record, and `r` + run + seq → empty.

use crate::ids::{fold_case, RunId, Seq};

use super::{corrupt, StoreError};

pub(super) const CHUNK: u8 = b'c';

pub(super) const RUN_CHUNKS: u8 = b'R';

pub(super) const EVENT: u8 = b'e';

pub(super) const RUN: u8 = b'r';

pub(super) const USER: u8 = b'u';

pub(super) const GROUP: u8 = b'g';

pub(super) const MIRROR: u8 = b'M';

pub(super) const SERVER_VERSION: u8 = b'V';

/// Present while `server load` replaces the embedded server (the records it will write).
pub(super) const LOADING: u8 = b'L';

pub(super) fn chunk_key(first: Seq) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&first.0.to_be_bytes());
    k
}

pub(super) fn run_chunk_key(run: RunId, first: Seq) -> [u8; 25] {
    let mut k = [RUN_CHUNKS; 25];
    k[1..17].copy_from_slice(run.as_bytes());
    k[17..].copy_from_slice(&first.0.to_be_bytes());
    k
}

pub(super) fn mirror_stamp_key(id: &[u8; 16]) -> [u8; 18] {
    let mut k = [MIRROR; 18];
    k[1..17].copy_from_slice(id);
    k[17] = b'h';
    k
}

pub(super) fn mirror_part_key(id: &[u8; 16], part: u32) -> [u8; 22] {
    let mut k = [MIRROR; 22];
    k[1..17].copy_from_slice(id);
    k[17] = b'p';
    k[18..].copy_from_slice(&part.to_be_bytes());
    k
}

pub(super) fn event_key(seq: Seq) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

pub(super) fn user_key(login: &str) -> Vec<u8> {
    prefixed(USER, &fold_case(login))
}

pub(super) fn group_key(name: &str) -> Vec<u8> {
    prefixed(GROUP, &fold_case(name))
}

pub(super) fn prefixed(prefix: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + s.len());
    k.push(prefix);
    k.extend_from_slice(s.as_bytes());
    k
}

pub(super) fn seq_of_event_key(key: &[u8]) -> Result<Seq, StoreError> {
    let bytes: [u8; 8] = key
        .get(1..9)
        .filter(|_| key.len() == 9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("event index", format!("malformed key {key:02x?}")))?;
    Ok(Seq(u64::from_be_bytes(bytes)))
}
