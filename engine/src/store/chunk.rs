//! The chunk codec: up to [`CHUNK_EVENTS`] consecutive events of one run in one sled value,
//! each event hashed on its own, the whole LZ4-compressed (format 2; format 1, uncompressed,
//! is still read).

use crate::event::Hash;
use crate::ids::{RunId, Seq};

use super::keys::{chunk_key, run_chunk_key};
use super::{corrupt, RawEvent, StoreError};

/// Events per chunk, at most.
pub const CHUNK_EVENTS: usize = 1024;

/// Bytes per chunk, about (a chunk is closed once it holds this much).
pub(super) const CHUNK_BYTES: usize = 1 << 20;

/// No chunk's events take more than this uncompressed: it is closed at [`CHUNK_BYTES`], and
/// its last event is bounded by the largest record an import can write.
pub(super) const MAX_CHUNK_PLAIN_BYTES: usize = 1 << 30;

/// Chunks as first written: events uncompressed (still read).
pub(super) const CHUNK_PLAIN: u8 = 1;

/// Chunks as written now: the events after the header are one LZ4 block.
pub(super) const CHUNK_LZ4: u8 = 2;

/// Builds chunk values as events are encoded.
pub(super) struct ChunkWriter {
    first: Seq,
    count: u32,
    /// The events, uncompressed.
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub(super) fn new(first: Seq) -> Self {
        ChunkWriter {
            first,
            count: 0,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    pub(super) fn push(&mut self, seq: Seq, hash: &Hash, record: &[u8]) {
        self.buf.extend_from_slice(&seq.0.to_le_bytes());
        self.buf.extend_from_slice(&hash.0);
        self.buf
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(record);
        self.count += 1;
    }

    pub(super) fn full(&self) -> bool {
        self.count as usize >= CHUNK_EVENTS || self.buf.len() >= CHUNK_BYTES
    }

    /// The stored value: header, then the events compressed.
    fn value(&self) -> Vec<u8> {
        let mut value =
            Vec::with_capacity(5 + 4 + lz4_flex::block::get_maximum_output_size(self.buf.len()));
        value.push(CHUNK_LZ4);
        value.extend_from_slice(&self.count.to_le_bytes());
        value.extend_from_slice(&lz4_flex::block::compress_prepend_size(&self.buf));
        value
    }

    /// Adds the chunk and its run-index entry to `batch`; returns the bytes it adds.
    pub(super) fn finish(self, run: RunId, batch: &mut sled::Batch) -> u64 {
        let value = self.value();
        let bytes = value.len() as u64 + 9 + 25 + 4;
        batch.insert(&chunk_key(self.first)[..], value);
        batch.insert(
            &run_chunk_key(run, self.first)[..],
            &self.count.to_le_bytes()[..],
        );
        bytes
    }
}

/// The events of a stored chunk, each a slice of the (uncompressed) stored value.
pub(super) fn decode_chunk(first: Seq, value: &sled::IVec) -> Result<Vec<RawEvent>, StoreError> {
    let at = || format!("chunk {first}");
    if value.len() < 5 {
        return Err(corrupt(at(), "truncated"));
    }
    let count = u32::from_le_bytes(value[1..5].try_into().expect("4 bytes")) as usize;
    let events = match value[0] {
        CHUNK_PLAIN => value.subslice(5, value.len() - 5),
        CHUNK_LZ4 => {
            // A damaged size prefix must not make us allocate gigabytes: no chunk is larger
            // than the bound its writer closes it at, plus one event.
            let size = value
                .get(5..9)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
            match size {
                Some(size) if size <= MAX_CHUNK_PLAIN_BYTES => {}
                _ => return Err(corrupt(at(), "compressed size out of range")),
            }
            let plain = lz4_flex::block::decompress_size_prepended(&value[5..])
                .map_err(|e| corrupt(at(), format!("cannot decompress: {e}")))?;
            sled::IVec::from(plain)
        }
        _ => return Err(corrupt(at(), "unknown chunk format")),
    };
    let mut out = Vec::with_capacity(count.min(CHUNK_EVENTS));
    let mut pos = 0;
    for _ in 0..count {
        if events.len() < pos + 44 {
            return Err(corrupt(at(), "truncated"));
        }
        let seq = Seq(u64::from_le_bytes(
            events[pos..pos + 8].try_into().expect("8 bytes"),
        ));
        let hash = Hash(events[pos + 8..pos + 40].try_into().expect("32 bytes"));
        let len =
            u32::from_le_bytes(events[pos + 40..pos + 44].try_into().expect("4 bytes")) as usize;
        pos += 44;
        if events.len() < pos + len {
            return Err(corrupt(at(), "truncated"));
        }
        out.push(RawEvent {
            seq,
            hash,
            record: events.subslice(pos, len),
        });
        pos += len;
    }
    if pos != events.len() {
        return Err(corrupt(at(), "trailing bytes"));
    }
    Ok(out)
}

/// Re-encodes a chunk (tests playing the attacker rewrite chunks this way).
#[cfg(any(test, feature = "tamper"))]
pub(super) fn encode_chunk(events: &[(Seq, Hash, Vec<u8>)]) -> Vec<u8> {
    let mut w = ChunkWriter::new(events.first().map_or(Seq(0), |e| e.0));
    for (seq, hash, record) in events {
        w.push(*seq, hash, record);
    }
    w.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<(Seq, Hash, Vec<u8>)> {
        (1..=3u64)
            .map(|i| {
                let record = format!("{{\"seq\":{i},\"payload\":\"{}\"}}", "x".repeat(40));
                (Seq(i), Hash([i as u8; 32]), record.into_bytes())
            })
            .collect()
    }

    fn decoded(value: Vec<u8>) -> Result<Vec<(Seq, Hash, Vec<u8>)>, StoreError> {
        Ok(decode_chunk(Seq(1), &sled::IVec::from(value))?
            .into_iter()
            .map(|e| (e.seq, e.hash, e.record.to_vec()))
            .collect())
    }

    /// Stores written before compression hold plain chunks: they read as they always did.
    #[test]
    fn plain_and_compressed_chunks_hold_the_same_events() {
        let mut plain = vec![CHUNK_PLAIN];
        plain.extend_from_slice(&3u32.to_le_bytes());
        for (seq, hash, record) in events() {
            plain.extend_from_slice(&seq.0.to_le_bytes());
            plain.extend_from_slice(&hash.0);
            plain.extend_from_slice(&(record.len() as u32).to_le_bytes());
            plain.extend_from_slice(&record);
        }
        let compressed = encode_chunk(&events());
        assert_eq!(compressed[0], CHUNK_LZ4);
        assert!(
            compressed.len() < plain.len(),
            "compression shrinks records"
        );
        assert_eq!(decoded(plain).unwrap(), events());
        assert_eq!(decoded(compressed).unwrap(), events());
    }

    #[test]
    fn damaged_compressed_chunks_are_reported_not_trusted() {
        let good = encode_chunk(&events());
        let mut cases = vec![good[..good.len() - 1].to_vec(), good[..7].to_vec()];
        let mut huge = good.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(huge);
        // (A changed byte inside a record decodes: the hash chain is what catches that.)
        let mut miscounted = good;
        miscounted[1..5].copy_from_slice(&4u32.to_le_bytes());
        cases.push(miscounted);
        for value in cases {
            match decoded(value.clone()) {
                Err(StoreError::Corrupt { .. }) => {}
                other => panic!("{value:?} decoded as {other:?}"),
            }
        }
    }
}
