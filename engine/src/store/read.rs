//! The read pipeline: a run's events found through the run index and decoded chunk by chunk
//! (two threads decoding ahead of the caller's fold), single events, and the raw log that
//! `verify` walks.

use crate::event::EventKind;
use crate::ids::{RunId, Seq};
use crate::Envelope;

use super::chunk::decode_chunk;
use super::keys::{chunk_key, event_key, seq_of_event_key, RUN, RUN_CHUNKS};
use super::legacy::parse_event_value;
use super::{corrupt, RawEvent, SledStore, StoreError};

/// Threads decoding a run's chunks in `visit_run`.
const DECODE_LANES: usize = 2;

impl SledStore {
    /// The events of one run-index range (a chunk, or one old single-event key) that `keep`
    /// accepts, decoded and checked against the index.
    fn decode_range(
        &self,
        run: RunId,
        (first, count): (Seq, u32),
        keep: &(dyn Fn(EventKind) -> bool + Sync),
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::with_capacity(count as usize);
        let raws: Vec<RawEvent> = if let Some(v) = self.sled()?.log.get(event_key(first))? {
            vec![parse_event_value(first, &v)?]
        } else {
            let v = self.sled()?.log.get(chunk_key(first))?.ok_or_else(|| {
                corrupt(
                    format!("event {first}"),
                    format!("indexed for run {run} but missing"),
                )
            })?;
            decode_chunk(first, &v)?
        };
        if raws.len() != count as usize {
            return Err(corrupt(
                format!("event {first}"),
                format!(
                    "run {run} indexes {count} events here, {} are stored",
                    raws.len()
                ),
            ));
        }
        for raw in raws {
            out.extend(run_event(raw, run, keep)?);
        }
        Ok(out)
    }

    /// The chunk holding `seq`, if any: its first seq and its events.
    pub(super) fn chunk_of(&self, seq: Seq) -> Result<Option<Vec<RawEvent>>, StoreError> {
        let Some(kv) = self
            .sled()?
            .log
            .range(chunk_key(Seq(0))..=chunk_key(seq))
            .next_back()
        else {
            return Ok(None);
        };
        let (k, v) = kv?;
        Ok(Some(decode_chunk(seq_of_event_key(&k)?, &v)?))
    }

    /// Run ids under one index prefix (`r` or `R`), each once, in order.
    fn runs_under(&self, prefix: u8) -> Result<Vec<RunId>, StoreError> {
        let mut runs = Vec::new();
        let mut from = vec![prefix];
        loop {
            let Some(kv) = self.sled()?.log.range(from.clone()..).next() else {
                break;
            };
            let (k, _) = kv?;
            if k.first() != Some(&prefix) {
                break;
            }
            let bytes: [u8; 16] = k
                .get(1..17)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("run index", "malformed key"))?;
            runs.push(RunId(uuid::Uuid::from_bytes(bytes)));
            // Jump past every key of this run.
            from = vec![prefix];
            from.extend_from_slice(&bytes);
            from.extend_from_slice(&[0xff; 9]);
        }
        Ok(runs)
    }

    /// The run's index entries: (first seq, count), legacy entries counting one.
    fn run_ranges(&self, run: RunId) -> Result<Vec<(Seq, u32)>, StoreError> {
        let mut ranges = Vec::new();
        for prefix in [RUN, RUN_CHUNKS] {
            let mut p = [prefix; 17];
            p[1..].copy_from_slice(run.as_bytes());
            for kv in self.sled()?.log.scan_prefix(p) {
                let (k, v) = kv?;
                let first = Seq(u64::from_be_bytes(
                    k.get(17..25)
                        .filter(|_| k.len() == 25)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| corrupt(format!("run {run}"), "malformed index key"))?,
                ));
                let count = if prefix == RUN {
                    1
                } else {
                    u32::from_le_bytes(
                        v.as_ref()
                            .try_into()
                            .map_err(|_| corrupt(format!("run {run}"), "malformed index entry"))?,
                    )
                };
                ranges.push((first, count));
            }
        }
        ranges.sort();
        Ok(ranges)
    }
}

/// A stored event read as one of `run`'s, decoded if `keep` takes its kind: its record must say
/// it is the event the run's index (sled's, or PostgreSQL's run column) puts there. (Its
/// decoded envelope reads seq and run from the same bytes with the same parsers: checked once.)
pub(super) fn run_event(
    raw: RawEvent,
    run: RunId,
    keep: &(dyn Fn(EventKind) -> bool + Sync),
) -> Result<Option<Envelope>, StoreError> {
    let header = crate::event::decode_header(&raw.record).map_err(|source| StoreError::Decode {
        seq: raw.seq,
        source,
    })?;
    if header.run != run || header.seq != raw.seq {
        return Err(corrupt(
            format!("event {}", raw.seq),
            format!(
                "indexed for run {run} but records run {} seq {}",
                header.run, header.seq
            ),
        ));
    }
    // A kind this roster does not know is decoded all the same: the decoder says what is
    // wrong with it.
    match header.kind().is_none_or(keep) {
        true => Ok(Some(raw.decode()?)),
        false => Ok(None),
    }
}

pub(super) fn run_seqs(store: &SledStore, run: RunId) -> Result<Vec<Seq>, StoreError> {
    Ok(store
        .run_ranges(run)?
        .into_iter()
        .flat_map(|(first, count)| (0..u64::from(count)).map(move |i| Seq(first.0 + i)))
        .collect())
}

pub(super) fn run_ends(store: &SledStore, run: RunId) -> Result<Option<(Seq, Seq)>, StoreError> {
    let ranges = store.run_ranges(run)?;
    let first = ranges.first().map(|(first, _)| *first);
    let last = ranges
        .last()
        .map(|(first, count)| Seq(first.0 + u64::from(*count).max(1) - 1));
    Ok(first.zip(last))
}

pub(super) fn read_event(store: &SledStore, seq: Seq) -> Result<Option<Envelope>, StoreError> {
    if let Some(v) = store.sled()?.log.get(event_key(seq))? {
        return Ok(Some(parse_event_value(seq, &v)?.decode()?));
    }
    match store.chunk_of(seq)? {
        Some(events) => events
            .into_iter()
            .find(|e| e.seq == seq)
            .map(|e| e.decode())
            .transpose(),
        None => Ok(None),
    }
}

pub(super) fn visit_run(
    store: &SledStore,
    run: RunId,
    keep: &(dyn Fn(EventKind) -> bool + Sync),
    visit: &mut dyn FnMut(Envelope),
) -> Result<(), StoreError> {
    let ranges = store.run_ranges(run)?;
    if ranges.len() < 4 {
        for range in ranges {
            store
                .decode_range(run, range, keep)?
                .into_iter()
                .for_each(&mut *visit);
        }
        return Ok(());
    }
    // Two threads decode alternate chunks, a couple ahead of the caller, who takes them
    // back in order: decoding is most of a large run's reading, and `visit` folds
    // meanwhile. At most a few chunks are in flight, so memory stays bounded.
    std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..DECODE_LANES)
            .map(|lane| {
                let (tx, rx) = std::sync::mpsc::sync_channel(2);
                let mine: Vec<(Seq, u32)> = ranges
                    .iter()
                    .copied()
                    .skip(lane)
                    .step_by(DECODE_LANES)
                    .collect();
                scope.spawn(move || {
                    for range in mine {
                        let decoded = store.decode_range(run, range, keep);
                        let failed = decoded.is_err();
                        // A closed channel means the caller stopped at an error.
                        if tx.send(decoded).is_err() || failed {
                            break;
                        }
                    }
                });
                rx
            })
            .collect();
        for i in 0..ranges.len() {
            let decoded = lanes[i % DECODE_LANES]
                .recv()
                .map_err(|_| corrupt(format!("run {run}"), "a decoding thread stopped early"))?;
            decoded?.into_iter().for_each(&mut *visit);
        }
        Ok(())
    })
}

pub(super) fn runs(store: &SledStore) -> Result<Vec<RunId>, StoreError> {
    let mut runs = store.runs_under(RUN)?;
    runs.extend(store.runs_under(RUN_CHUNKS)?);
    runs.sort();
    runs.dedup();
    Ok(runs)
}

pub(super) fn raw_events(
    store: &SledStore,
    from: Seq,
) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_> {
    let sled = match store.sled() {
        Ok(sled) => sled,
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    let legacy = sled
        .log
        .range(event_key(from)..=event_key(Seq(u64::MAX)))
        .map(|kv| {
            let (k, v) = kv?;
            parse_event_value(seq_of_event_key(&k)?, &v)
        });
    // The chunk holding `from` starts at or before it.
    let start = match sled
        .log
        .range(chunk_key(Seq(0))..=chunk_key(from))
        .next_back()
    {
        Some(Ok((k, _))) => seq_of_event_key(&k).unwrap_or(from),
        _ => from,
    };
    let chunks = sled
        .log
        .range(chunk_key(start)..=chunk_key(Seq(u64::MAX)))
        .flat_map(move |kv| {
            let decoded = kv
                .map_err(StoreError::from)
                .and_then(|(k, v)| decode_chunk(seq_of_event_key(&k)?, &v));
            let items: Vec<Result<RawEvent, StoreError>> = match decoded {
                Ok(events) => events
                    .into_iter()
                    .filter(|e| e.seq >= from)
                    .map(Ok)
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            items
        });
    // The handles stay with the iterator: the store does not let go of them while it is read.
    Box::new(legacy.chain(chunks).inspect(move |_| {
        let _ = &sled;
    }))
}

pub(super) fn run_index(
    store: &SledStore,
) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_> {
    let sled = match store.sled() {
        Ok(sled) => sled,
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    let legacy = sled.log.scan_prefix([RUN]).map(|kv| {
        let (k, _) = kv?;
        if k.len() != 25 {
            return Err(corrupt("run index", format!("malformed key {k:02x?}")));
        }
        let run = RunId(uuid::Uuid::from_bytes(
            k[1..17].try_into().expect("length checked"),
        ));
        let seq = Seq(u64::from_be_bytes(
            k[17..25].try_into().expect("length checked"),
        ));
        Ok((run, seq))
    });
    let chunked = sled.log.scan_prefix([RUN_CHUNKS]).flat_map(|kv| {
        let entry = kv.map_err(StoreError::from).and_then(|(k, v)| {
            if k.len() != 25 || v.len() != 4 {
                return Err(corrupt("run index", format!("malformed entry {k:02x?}")));
            }
            let run = RunId(uuid::Uuid::from_bytes(
                k[1..17].try_into().expect("length checked"),
            ));
            let first = u64::from_be_bytes(k[17..25].try_into().expect("length checked"));
            let count = u32::from_le_bytes(v.as_ref().try_into().expect("length checked"));
            Ok((run, first, count))
        });
        let items: Vec<Result<(RunId, Seq), StoreError>> = match entry {
            Ok((run, first, count)) => (0..u64::from(count))
                .map(|i| Ok((run, Seq(first + i))))
                .collect(),
            Err(e) => vec![Err(e)],
        };
        items
    });
    // The handles stay with the iterator (see `raw_events`).
    Box::new(legacy.chain(chunked).inspect(move |_| {
        let _ = &sled;
    }))
}
