//! The end of the log after a write error: found torn at open, cut back to its last verified
//! prefix when — and only when — everything cut belongs to the last, unfinished run.
//!
//! sled 0.34 can tear the end of its log when a write fails (a full disk): a chunk that the run
//! index lists may be missing or undecodable, and a batch's server records may survive while
//! its chunk does not. Such damage can only touch what was written after the last flush that
//! succeeded, and roster flushes at the end of every run: so it lies in the last run, which has
//! not finished. [`SledStore::cut_torn_tail`] walks that run from its first event, cuts at the
//! first chunk that is missing or does not verify, rebuilds the embedded server from the log if
//! the run had changed it, closes the run as aborted and records the cut (`LogRepaired`).
//! Damage anywhere else is left for `verify` to name: nothing is repaired silently.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::chunk::{decode_chunk, ChunkWriter};
use super::keys::{chunk_key, run_chunk_key, seq_of_event_key, CHUNK, GROUP, RUN_CHUNKS, USER};
use super::server::add_writes;
use super::{corrupt, Head, SledStore, StoreError};
use crate::event::{
    decode_header, encode_record, Event, EventKind, GroupSeen, Hash, LogRepaired, Mode,
    RunFinished, RunStatus, Summary, TargetInfo, UserSeen,
};
use crate::ids::{RunId, Seq};
use crate::model::{KeyWrite, ServerState};

/// What [`SledStore::cut_torn_tail`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// The unfinished run whose last writes were torn.
    pub run: RunId,
    /// The first event cut; the log now ends just before it (and with the events recording
    /// the cut).
    pub from: Seq,
    /// Events cut, as the run index counted them.
    pub events: u64,
    /// What was found torn.
    pub reason: String,
    /// Whether the embedded server's records were rebuilt from the log.
    pub server_rebuilt: bool,
}

/// sled writes a snapshot to `snap.N.generating` and renames it once complete; one left behind
/// by a failed write is never complete, yet sled would take it for the newest and refuse to
/// open. It is sled's own temporary file, not part of the log: removing it is what sled does
/// after a snapshot that succeeds.
pub(super) fn remove_unfinished_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One run-index entry: the chunk starting at `first` holds `count` events of `run`.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    run: RunId,
    first: Seq,
    count: u32,
}

/// What the walk of the last run kept.
struct Kept {
    head: Head,
    summary: Summary,
    /// The run's `RunStarted`, if it was kept.
    mode_target: Option<(Mode, TargetInfo)>,
    /// Whether the run's inputs were all recorded (its choose step was reached).
    inputs_complete: bool,
    server: (
        Vec<crate::model::ServerUser>,
        Vec<crate::model::ServerGroup>,
    ),
    ops: Vec<crate::model::ServerOp>,
}

impl SledStore {
    /// Checks the end of the log and, if the last run's writes were torn, cuts the log back to
    /// its last verified prefix, recorded at `at` as a `LogRepaired` event of run `repair_run`.
    /// Returns `None` when there was nothing to cut. Refuses (an error naming the damage) when
    /// what would be cut does not all belong to the last run, or that run had finished.
    pub fn cut_torn_tail(
        &self,
        at: DateTime<Utc>,
        repair_run: RunId,
    ) -> Result<Option<TailCut>, StoreError> {
        let torn = self.torn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let index = self.chunk_index()?;
        let Some(last) = index.values().next_back().copied() else {
            return match torn {
                Some(why) => Err(unrepairable(&why, "no run index to attribute it to")),
                None => Ok(None),
            };
        };
        if torn.is_none() && self.ends_finished(last)? {
            return Ok(None);
        }
        let run = last.run;
        let entries: Vec<IndexEntry> = index.values().filter(|e| e.run == run).copied().collect();
        let run_first = entries[0].first;
        if let Some(other) = index
            .values()
            .find(|e| e.run != run && e.first.0 + u64::from(e.count) > run_first.0)
        {
            let why = torn.as_deref().unwrap_or("the end of the log");
            return Err(unrepairable(
                why,
                &format!(
                    "run {} has events after run {run} began at event {run_first}",
                    other.run
                ),
            ));
        }

        let (kept, damage) = self.walk(run, run_first, &entries)?;
        // Everything after the last event that verified goes, including chunks there that the
        // index does not list (a torn batch's leftovers).
        let cut = kept.head.seq.next();
        let mut orphans = Vec::new();
        for kv in self
            .sled()?
            .log
            .range(chunk_key(cut)..=chunk_key(Seq(u64::MAX)))
        {
            let (k, v) = kv?;
            let first = seq_of_event_key(&k)?;
            if entries.iter().any(|e| e.first == first) {
                continue;
            }
            let theirs = decode_chunk(first, &v).ok().filter(|events| {
                events.iter().all(|e| {
                    decode_header(&e.record)
                        .map(|h| h.run == run)
                        .unwrap_or(false)
                })
            });
            match theirs {
                Some(events) => orphans.push((first, events.len() as u64)),
                None => {
                    return Err(unrepairable(
                        &format!("chunk {first}"),
                        &format!("it is not in the run index and not run {run}'s"),
                    ))
                }
            }
        }
        let reason = match (damage, orphans.first()) {
            (Some(why), _) => why,
            (None, Some((first, _))) => format!("chunk {first} is not in the run index"),
            (None, None) => {
                // Nothing torn: the run was simply interrupted (it is closed elsewhere).
                return match torn {
                    Some(why) => Err(unrepairable(
                        &why,
                        "the last run's events all verify, so it is not that run's",
                    )),
                    None => Ok(None),
                };
            }
        };

        let mut batch = sled::Batch::default();
        let mut events_cut = 0;
        for e in entries.iter().filter(|e| e.first >= cut) {
            batch.remove(&chunk_key(e.first)[..]);
            batch.remove(&run_chunk_key(run, e.first)[..]);
            events_cut += u64::from(e.count);
        }
        for (first, count) in &orphans {
            batch.remove(&chunk_key(*first)[..]);
            events_cut += count;
        }
        let server_rebuilt = self.rebuild_server(&kept, &mut batch)?;
        let mut head = kept.head;
        let mut record = |run: RunId, event: Event, batch: &mut sled::Batch| {
            head.seq = head.seq.next();
            let bytes = encode_record(head.seq, run, &at, &event);
            head.hash = Hash::chain(&head.hash, &bytes);
            let mut chunk = ChunkWriter::new(head.seq);
            chunk.push(head.seq, &head.hash, &bytes);
            chunk.finish(run, batch);
        };
        if kept.head.seq >= run_first {
            record(
                run,
                Event::RunFinished(RunFinished {
                    status: RunStatus::Aborted,
                    summary: kept.summary,
                    reason: Some(format!(
                        "its last writes were torn ({reason}); the log was cut back to event {} when the store was next opened",
                        kept.head.seq
                    )), learned: Vec::new() }),
                &mut batch,
            );
        }
        record(
            repair_run,
            Event::LogRepaired(LogRepaired {
                run,
                cut_from: cut,
                events_cut,
                reason: reason.clone(),
                server_rebuilt,
            }),
            &mut batch,
        );
        let mut current = self.head.lock().unwrap_or_else(|p| p.into_inner());
        self.wrote(self.sled()?.log.apply_batch(batch))?;
        self.wrote(self.sled()?.db.flush())?;
        *current = head;
        *self.torn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        debug_assert!(!self.failed.load(Ordering::SeqCst));
        Ok(Some(TailCut {
            run,
            from: cut,
            events: events_cut,
            reason,
            server_rebuilt,
        }))
    }

    /// Every chunk's run-index entry, by first seq.
    fn chunk_index(&self) -> Result<BTreeMap<Seq, IndexEntry>, StoreError> {
        let mut index = BTreeMap::new();
        for kv in self.sled()?.log.scan_prefix([RUN_CHUNKS]) {
            let (k, v) = kv?;
            let (Some(run), Some(first), Ok(count)) = (
                k.get(1..17).and_then(|b| b.try_into().ok()),
                k.get(17..25)
                    .filter(|_| k.len() == 25)
                    .and_then(|b| b.try_into().ok()),
                <[u8; 4]>::try_from(v.as_ref()),
            ) else {
                return Err(corrupt("run index", format!("malformed entry {k:02x?}")));
            };
            let first = Seq(u64::from_be_bytes(first));
            index.insert(
                first,
                IndexEntry {
                    run: RunId(uuid::Uuid::from_bytes(run)),
                    first,
                    count: u32::from_le_bytes(count),
                },
            );
        }
        Ok(index)
    }

    /// Whether the log ends, intact, with the last run's `RunFinished` (the usual case: one
    /// chunk decoded).
    fn ends_finished(&self, last: IndexEntry) -> Result<bool, StoreError> {
        let last_chunk = self
            .sled()?
            .log
            .scan_prefix([CHUNK])
            .next_back()
            .transpose()?;
        let Some((k, v)) = last_chunk else {
            return Ok(false);
        };
        if seq_of_event_key(&k)? != last.first {
            return Ok(false);
        }
        let Ok(events) = decode_chunk(last.first, &v) else {
            return Ok(false);
        };
        Ok(events.len() == last.count as usize
            && events
                .last()
                .and_then(|e| decode_header(&e.record).ok())
                .is_some_and(|h| {
                    h.run == last.run
                        && h.kind()
                            .is_some_and(|k| k == EventKind::RunFinished || k.is_whole_run())
                }))
    }

    /// Walks the run's chunks in order, checking each against the index and the hash chain;
    /// returns what verified and, if something did not, why.
    fn walk(
        &self,
        run: RunId,
        run_first: Seq,
        entries: &[IndexEntry],
    ) -> Result<(Kept, Option<String>), StoreError> {
        let before = Seq(run_first.0 - 1);
        let mut head = Head::default();
        if before.0 > 0 {
            let prior = self
                .chunk_of(before)
                .ok()
                .flatten()
                .and_then(|events| events.into_iter().find(|e| e.seq == before));
            let Some(prior) = prior else {
                return Err(unrepairable(
                    &format!("event {before}"),
                    &format!("the event before run {run} does not read"),
                ));
            };
            head = Head {
                seq: prior.seq,
                hash: prior.hash,
            };
        }
        let mut kept = Kept {
            head,
            summary: Summary::default(),
            mode_target: None,
            inputs_complete: false,
            server: (Vec::new(), Vec::new()),
            ops: Vec::new(),
        };
        for entry in entries {
            let at = entry.first;
            if at != kept.head.seq.next() {
                let why = format!(
                    "events {} to {} are missing",
                    kept.head.seq.next(),
                    at.0 - 1
                );
                return Ok((kept, Some(why)));
            }
            let Some(value) = self.sled()?.log.get(chunk_key(at))? else {
                let why = format!("chunk {at} is indexed for run {run} but missing");
                return Ok((kept, Some(why)));
            };
            let raws = match decode_chunk(at, &value) {
                Ok(raws) if raws.len() == entry.count as usize => raws,
                Ok(raws) => {
                    let why = format!(
                        "chunk {at} holds {} events, the run index says {}",
                        raws.len(),
                        entry.count
                    );
                    return Ok((kept, Some(why)));
                }
                Err(e) => return Ok((kept, Some(format!("chunk {at}: {e}")))),
            };
            // A chunk is written whole or not at all: it is kept only if all of it verifies.
            let mut chain = kept.head;
            let mut decoded = Vec::with_capacity(raws.len());
            for raw in &raws {
                let hash = Hash::chain(&chain.hash, &raw.record);
                let event = raw.decode().ok().filter(|env| {
                    env.seq == raw.seq
                        && raw.seq == chain.seq.next()
                        && env.run == run
                        && hash == raw.hash
                });
                let Some(env) = event else {
                    let why = format!("event {} does not verify", raw.seq);
                    return Ok((kept, Some(why)));
                };
                chain = Head { seq: raw.seq, hash };
                decoded.push(env.event);
            }
            for event in decoded {
                match event {
                    Event::RunStarted(s) => kept.mode_target = Some((s.mode, s.target)),
                    Event::UserSeen(UserSeen::Server { user }) => kept.server.0.push(user),
                    Event::GroupSeen(GroupSeen::Server { group }) => kept.server.1.push(group),
                    Event::ActionChosen(_) => kept.inputs_complete = true,
                    Event::Planned(e) | Event::Imported(e) => {
                        kept.inputs_complete = true;
                        kept.summary.count(e.outcome);
                        kept.ops.extend(e.op);
                    }
                    _ => {}
                }
            }
            kept.head = chain;
        }
        Ok((kept, None))
    }

    /// When the cut run had begun changing the embedded server, its records are rewritten as
    /// the log says they are: the server the run recorded at its start, changed by the
    /// `Imported` events that were kept. (A torn batch can leave records whose events it lost.)
    fn rebuild_server(&self, kept: &Kept, batch: &mut sled::Batch) -> Result<bool, StoreError> {
        let changes_embedded =
            matches!(kept.mode_target, Some((Mode::Apply, TargetInfo::Embedded)));
        if !changes_embedded || !kept.inputs_complete {
            return Ok(false);
        }
        let (users, groups) = kept.server.clone();
        let mut state = ServerState::from_parts(users, groups)?;
        for op in &kept.ops {
            state.apply(op);
        }
        for kv in self
            .sled()?
            .log
            .scan_prefix([USER])
            .chain(self.sled()?.log.scan_prefix([GROUP]))
        {
            let (k, _) = kv?;
            batch.remove(k);
        }
        let writes: Vec<KeyWrite> = state
            .users()
            .cloned()
            .map(|u| KeyWrite::PutUser(std::sync::Arc::new(u)))
            .chain(
                state
                    .groups()
                    .cloned()
                    .map(|g| KeyWrite::PutGroup(std::sync::Arc::new(g))),
            )
            .collect();
        add_writes(batch, &writes);
        Ok(true)
    }
}

fn unrepairable(at: &str, why: &str) -> StoreError {
    corrupt(
        at,
        format!("the end of the log is damaged and cannot be cut back safely: {why}; `roster verify` names the first bad event"),
    )
}
