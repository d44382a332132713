//! The write pipeline: a step's events chained and packed into chunks (`StepEncoder`),
//! written in one atomic sled batch with the server records they change — or prepared on one
//! thread and committed on another, in order — and a backup's records appended verbatim.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::event::{encode_record, Event, Hash};
use crate::ids::{RunId, Seq};
use crate::model::KeyWrite;

use super::chunk::ChunkWriter;
use super::server::add_writes;
use super::{corrupt, Head, SledStore, StoreError};

/// Chunks per sled batch for steps that write no server records (see `commit_stream`).
pub const MAX_BATCH_CHUNKS: usize = 16;

/// Encodes a step's events one by one: each record chained to the one before, packed into
/// chunks, the chunks into a sled batch.
pub(super) struct StepEncoder {
    /// The head the step follows.
    after: Head,
    run: RunId,
    time: DateTime<Utc>,
    next: Head,
    batch: sled::Batch,
    /// What `batch` holds, in bytes.
    bytes: u64,
    chunk: Option<ChunkWriter>,
    chunks_in_batch: usize,
}

impl StepEncoder {
    pub(super) fn new(after: Head, run: RunId, time: DateTime<Utc>) -> Self {
        StepEncoder {
            after,
            run,
            time,
            next: after,
            batch: sled::Batch::default(),
            bytes: 0,
            chunk: None,
            chunks_in_batch: 0,
        }
    }

    pub(super) fn push(&mut self, event: &Event) {
        let next = &mut self.next;
        next.seq = next.seq.next();
        let record = encode_record(next.seq, self.run, &self.time, event);
        next.hash = Hash::chain(&next.hash, &record);
        let w = self.chunk.get_or_insert_with(|| ChunkWriter::new(next.seq));
        w.push(next.seq, &next.hash, &record);
        if w.full() {
            if let Some(full) = self.chunk.take() {
                self.bytes += full.finish(self.run, &mut self.batch);
                self.chunks_in_batch += 1;
            }
        }
    }

    /// The chunks encoded so far, and the head they reach. Called right after a chunk was
    /// closed, so no event is left outside the batch.
    fn take_batch(&mut self) -> (sled::Batch, u64, Head) {
        debug_assert!(self.chunk.is_none(), "a chunk is still open");
        self.chunks_in_batch = 0;
        let bytes = std::mem::take(&mut self.bytes);
        (std::mem::take(&mut self.batch), bytes, self.next)
    }

    pub(super) fn finish(mut self, writes: &[KeyWrite]) -> PreparedStep {
        if let Some(w) = self.chunk.take() {
            self.bytes += w.finish(self.run, &mut self.batch);
        }
        self.bytes += add_writes(&mut self.batch, writes);
        PreparedStep {
            batch: self.batch,
            bytes: self.bytes,
            after: self.after,
            head: self.next,
        }
    }
}

/// A step encoded and chained but not yet written: [`SledStore::commit_prepared`] writes it.
pub struct PreparedStep {
    batch: sled::Batch,
    /// What `batch` holds, in bytes.
    bytes: u64,
    /// The head it was prepared to follow.
    after: Head,
    head: Head,
}

impl PreparedStep {
    /// The head the log reaches once this step is written.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Adds a key beside the step's events, in its batch.
    pub(super) fn add(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += (key.len() + value.len()) as u64;
        self.batch.insert(key, value);
    }

    /// Removes a key in the step's batch.
    pub(super) fn remove(&mut self, key: Vec<u8>) {
        self.batch.remove(key);
    }

    /// What the step's batch holds, in bytes.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(super) fn into_batch(self) -> sled::Batch {
        self.batch
    }
}

impl SledStore {
    /// Encodes and chains a step (its events, and the server records they write) to follow
    /// `after`, without writing it: a caller can prepare the next step while sled writes this
    /// one. Steps must be committed in the order they were prepared, each right after the one
    /// it was prepared to follow.
    pub fn prepare(
        &self,
        after: Head,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> PreparedStep {
        let mut encoder = StepEncoder::new(after, run, time);
        events.iter().for_each(|e| encoder.push(e));
        encoder.finish(writes)
    }

    /// Writes a prepared step in one atomic batch, if the log's head is still the one it was
    /// prepared to follow (else nothing is written and the log is left as it is).
    pub fn commit_prepared(&self, step: PreparedStep) -> Result<Head, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let after = step.after;
        if *head != after {
            return Err(corrupt(
                format!("event {}", head.seq),
                format!(
                    "a step prepared to follow event {} was committed after event {}",
                    after.seq, head.seq
                ),
            ));
        }
        self.check_writable()?;
        self.check_space(step.bytes, "this run's next step")?;
        self.write_batch(step.batch, step.bytes)?;
        *head = step.head;
        Ok(step.head)
    }

    /// Appends events exactly as another store holds them (a backup being restored): each must
    /// follow the head, its record naming its seq and its hash chaining it to the event before.
    /// Nothing of a call is written unless all of its events pass; a run's events are packed
    /// into chunks as `commit_stream` packs them.
    pub fn append_verbatim(&self, events: &[(Seq, Hash, Vec<u8>)]) -> Result<Head, StoreError> {
        self.check_writable()?;
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *head;
        let mut batch = sled::Batch::default();
        let mut bytes = 0;
        let mut chunk: Option<(RunId, ChunkWriter)> = None;
        for (seq, hash, record) in events {
            let header = follows(&mut next, *seq, *hash, record)?;
            if chunk
                .as_ref()
                .is_some_and(|(run, w)| *run != header.run || w.full())
            {
                let (run, w) = chunk.take().expect("checked");
                bytes += w.finish(run, &mut batch);
            }
            chunk
                .get_or_insert_with(|| (header.run, ChunkWriter::new(*seq)))
                .1
                .push(*seq, hash, record);
        }
        if let Some((run, w)) = chunk {
            bytes += w.finish(run, &mut batch);
        }
        self.check_space(bytes, "the restored events")?;
        self.write_batch(batch, bytes)?;
        *head = next;
        Ok(next)
    }
}

/// Checks that a restored event follows `head` — its seq the next, its record naming that
/// seq, its hash chaining it to `head` — and moves `head` to it; returns its header.
pub(super) fn follows(
    head: &mut Head,
    seq: Seq,
    hash: Hash,
    record: &[u8],
) -> Result<crate::event::RecordHeader, StoreError> {
    let header =
        crate::event::decode_header(record).map_err(|source| StoreError::Decode { seq, source })?;
    if seq != head.seq.next() || header.seq != seq || Hash::chain(&head.hash, record) != hash {
        return Err(corrupt(
            format!("event {seq}"),
            format!("does not follow event {} in the chain", head.seq),
        ));
    }
    *head = Head { seq, hash };
    Ok(header)
}

pub(super) fn commit_stream(
    store: &SledStore,
    run: RunId,
    time: DateTime<Utc>,
    events: &mut dyn Iterator<Item = Cow<'_, Event>>,
    writes: &[KeyWrite],
) -> Result<Head, StoreError> {
    store.check_writable()?;
    let mut head = store.head.lock().unwrap_or_else(|p| p.into_inner());
    let mut encoder = StepEncoder::new(*head, run, time);
    for event in events {
        encoder.push(&event);
        // A step without server writes may be written in several batches, in order:
        // memory stays bounded however large the tenant. Interrupted half-way, the run
        // is unfinished (closed as aborted on the next open) and nothing was applied.
        if writes.is_empty() && encoder.chunks_in_batch >= MAX_BATCH_CHUNKS {
            let (batch, bytes, reached) = encoder.take_batch();
            store.check_space(bytes, "this run's next step")?;
            store.write_batch(batch, bytes)?;
            *head = reached;
        }
    }
    let step = encoder.finish(writes);
    store.check_space(step.bytes, "this run's next step")?;
    store.write_batch(step.batch, step.bytes)?;
    *head = step.head;
    Ok(step.head)
}
