//! Edits stored events behind roster's back, for tests that play an attacker with write
//! access to the database (and the shapes a torn write leaves). Built only for tests: the
//! `tamper` feature, which the test crates turn on.

use crate::event::Hash;
use crate::ids::{RunId, Seq};

use super::chunk::{decode_chunk, encode_chunk};
use super::keys::{chunk_key, run_chunk_key, seq_of_event_key};
use super::SledStore;

impl SledStore {
    /// Tools for tests that play an attacker editing the database behind roster's back.
    #[doc(hidden)]
    pub fn tamper(&self) -> Tamper<'_> {
        Tamper { store: self }
    }
}

/// Edits stored events in place, bypassing the hash chain: what an attacker with write access
/// to the database could do. Only tests use it.
#[doc(hidden)]
pub struct Tamper<'a> {
    store: &'a SledStore,
}

impl Tamper<'_> {
    fn chunk(&self, seq: Seq) -> (Seq, Vec<(Seq, Hash, Vec<u8>)>) {
        let kv = self
            .store
            .sled()
            .expect("the database is open")
            .log
            .range(chunk_key(Seq(0))..=chunk_key(seq))
            .next_back()
            .expect("a chunk")
            .expect("readable");
        let first = seq_of_event_key(&kv.0).expect("a chunk key");
        let events = decode_chunk(first, &kv.1)
            .expect("a chunk")
            .into_iter()
            .map(|e| (e.seq, e.hash, e.record.to_vec()))
            .collect();
        (first, events)
    }

    fn put(&self, first: Seq, events: &[(Seq, Hash, Vec<u8>)]) {
        self.store
            .sled()
            .expect("the database is open")
            .log
            .insert(chunk_key(first), encode_chunk(events))
            .expect("writable");
    }

    /// The stored hash and record of event `seq`.
    pub fn read(&self, seq: Seq) -> (Hash, Vec<u8>) {
        let (_, events) = self.chunk(seq);
        let e = events.into_iter().find(|e| e.0 == seq).expect("the event");
        (e.1, e.2)
    }

    /// Replaces event `seq`'s hash and record.
    pub fn write(&self, seq: Seq, hash: Hash, record: &[u8]) {
        let (first, mut events) = self.chunk(seq);
        let e = events.iter_mut().find(|e| e.0 == seq).expect("the event");
        e.1 = hash;
        e.2 = record.to_vec();
        self.put(first, &events);
    }

    /// Removes event `seq`, leaving the index as it was.
    pub fn remove(&self, seq: Seq) {
        let (first, mut events) = self.chunk(seq);
        events.retain(|e| e.0 != seq);
        self.put(first, &events);
    }

    /// Stores the record of event `seq + 1` under `seq` and the other way round.
    pub fn swap(&self, seq: Seq) {
        let (first, mut events) = self.chunk(seq);
        let i = events.iter().position(|e| e.0 == seq).expect("the event");
        let (a, b) = (events[i].clone(), events[i + 1].clone());
        events[i] = (a.0, b.1, b.2);
        events[i + 1] = (b.0, a.1, a.2);
        self.put(first, &events);
    }

    /// Inserts an event stored as `seq` just before the event now stored as `seq`, renumbering
    /// nothing (its record may say what it likes).
    pub fn insert(&self, seq: Seq, hash: Hash, record: &[u8]) {
        let (first, mut events) = self.chunk(seq);
        let i = events
            .iter()
            .position(|e| e.0 >= seq)
            .unwrap_or(events.len());
        for e in events.iter_mut().skip(i) {
            e.0 = e.0.next();
        }
        events.insert(i, (seq, hash, record.to_vec()));
        self.put(first, &events);
    }

    /// Drops the run-index entry of the chunk holding `seq`.
    pub fn drop_index(&self, run: RunId, seq: Seq) {
        let (first, _) = self.chunk(seq);
        self.store
            .sled()
            .expect("the database is open")
            .log
            .remove(run_chunk_key(run, first))
            .expect("writable");
    }

    /// Removes the chunk holding `seq`, leaving its run-index entry: what a torn write of a
    /// large value looks like after sled 0.34 recovers from a full disk.
    pub fn drop_chunk(&self, seq: Seq) {
        let (first, _) = self.chunk(seq);
        self.store
            .sled()
            .expect("the database is open")
            .log
            .remove(chunk_key(first))
            .expect("writable");
    }

    /// Removes every event after `seq`, and the index entries for them, as if the process had
    /// stopped right after writing `seq`.
    pub fn truncate_after(&self, seq: Seq) {
        let (first, mut events) = self.chunk(seq);
        events.retain(|e| e.0 <= seq);
        let run = crate::event::decode_header(&events[0].2)
            .expect("a record")
            .run;
        self.put(first, &events);
        self.store
            .sled()
            .expect("the database is open")
            .log
            .insert(
                run_chunk_key(run, first),
                &(events.len() as u32).to_le_bytes()[..],
            )
            .expect("writable");
        let later: Vec<(sled::IVec, sled::IVec)> = self
            .store
            .sled()
            .expect("the database is open")
            .log
            .range(chunk_key(seq.next())..chunk_key(Seq(u64::MAX)))
            .map(|kv| kv.expect("readable"))
            .collect();
        for (k, v) in later {
            let first = seq_of_event_key(&k).expect("a chunk key");
            let events = decode_chunk(first, &v).expect("a chunk");
            let run = crate::event::decode_header(&events[0].record)
                .expect("a record")
                .run;
            self.store
                .sled()
                .expect("the database is open")
                .log
                .remove(run_chunk_key(run, first))
                .expect("writable");
            self.store
                .sled()
                .expect("the database is open")
                .log
                .remove(k)
                .expect("writable");
        }
    }
}
