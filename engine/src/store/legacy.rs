//! The layout before chunks (roster 0.1 development builds): one event per key, `e` + seq →
//! hash + record, and `r` + run + seq → empty in the run index. Such stores are read as they
//! are; nothing is written in this layout any more.

use crate::event::Hash;
use crate::ids::Seq;

use super::{corrupt, RawEvent, StoreError};

/// An event stored on its own (the layout before chunks).
pub(super) fn parse_event_value(seq: Seq, value: &sled::IVec) -> Result<RawEvent, StoreError> {
    if value.len() < 32 {
        return Err(corrupt(
            format!("event {seq}"),
            "stored value is shorter than its hash",
        ));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&value[..32]);
    Ok(RawEvent {
        seq,
        hash: Hash(hash),
        record: value.subslice(32, value.len() - 32),
    })
}
