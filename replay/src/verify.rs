//! `roster verify`: prove the log was not edited.
//!
//! Walks every stored event from the first, recomputes the hash chain, checks that sequence
//! numbers are continuous and that each stored record sits under its own key, that every run
//! is well formed (starts with `RunStarted`; nothing after its `RunFinished`), and that the
//! run index agrees with the events. Any edit, removal, insertion or reordering — even one
//! made by writing to sled directly — breaks one of these at or after the altered event.
//!
//! What a hash chain cannot prove alone: that events were not *appended*, or that the whole
//! chain was not recomputed after an edit. For that an auditor notes the head printed by a
//! verification and later checks it is still in the chain (`--head HASH`): everything up to
//! that event is then exactly as it was.

use std::collections::HashMap;

use engine::event::{decode_header, EventKind, Hash};
use engine::store::{EventStore, Head};
use engine::{RunId, Seq, StoreError};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// A head noted earlier: it must still be in the chain.
    pub noted_head: Option<NotedHead>,
    /// Stop after this event (replay verifies up to the run it replays).
    pub until: Option<Seq>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub head: Head,
    pub events: u64,
    pub runs: usize,
    /// Runs without `RunFinished`: interrupted (a crash, a kill), not tampering.
    pub unfinished: Vec<RunId>,
    /// Where the noted head was found.
    pub noted_head_at: Option<Seq>,
    /// The `LogRepaired` events: where the store's torn end was cut back.
    pub repairs: Vec<Seq>,
    /// Administrators' changes of the server outside runs (`ServerEdited`, `ServerLoaded`):
    /// each is a run of its own in the log, but none is a run `roster runs` lists, so `runs`
    /// leaves them out.
    pub edits: usize,
    /// Backups taken (`BackupTaken`), also left out of `runs`.
    pub backups: usize,
    /// Acknowledgements of problems given and withdrawn (`ProblemAcknowledged`,
    /// `AcknowledgementWithdrawn`), also left out of `runs`.
    pub acknowledgements: usize,
}

/// A chain head noted earlier: its 64 hexadecimal digits, or a prefix of at least 16 of them
/// (as an auditor copies it from a printout); a prefix must name one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotedHead(String);

impl NotedHead {
    /// The shortest prefix accepted: 64 bits, far beyond any log's length to collide by chance.
    pub const MIN_DIGITS: usize = 16;

    /// `None` unless `s` is 16 to 64 hexadecimal digits (either case).
    pub fn parse(s: &str) -> Option<NotedHead> {
        let s = s.trim().to_ascii_lowercase();
        (s.len() >= Self::MIN_DIGITS && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(NotedHead(s))
    }

    /// Whether `hash` is the noted head (or begins with the noted prefix).
    pub fn matches(&self, hash: &Hash) -> bool {
        hash.to_hex().starts_with(&self.0)
    }
}

impl From<Hash> for NotedHead {
    fn from(h: Hash) -> Self {
        NotedHead(h.to_hex())
    }
}

impl std::fmt::Display for NotedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The first event that does not verify.
    #[error("the log does not verify at event {seq}{}: {reason}", run.map(|r| format!(" (run {r})")).unwrap_or_default())]
    Bad {
        seq: Seq,
        run: Option<RunId>,
        reason: String,
    },
    #[error("the noted head {0} is not in the log: check that it is the head roster printed, copied whole (`roster verify` prints the current one); if it is, events up to it were changed or removed")]
    HeadNotFound(NotedHead),
    #[error("the noted head {prefix} names more than one event ({first} and {second}); give more of its digits")]
    AmbiguousHead {
        prefix: NotedHead,
        first: Seq,
        second: Seq,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bad(seq: Seq, run: Option<RunId>, reason: impl Into<String>) -> VerifyError {
    VerifyError::Bad {
        seq,
        run,
        reason: reason.into(),
    }
}

pub fn verify(store: &dyn EventStore, opts: &VerifyOptions) -> Result<Verified, VerifyError> {
    let mut prev = Head::default();
    // Run of each event, by seq - 1, to check the run index afterwards.
    let mut runs_by_seq: Vec<RunId> = Vec::new();
    let mut finished: HashMap<RunId, bool> = HashMap::new();
    let mut noted_head_at = None;
    let mut repairs = Vec::new();
    let mut edits = 0;
    let mut backups = 0;
    let mut acknowledgements = 0;
    // The log as the verification begins. A shared store's other writers may append while it
    // runs: what they append is not part of this verification.
    let end = store.head();
    let until = opts.until.or(store.shared().then_some(end.seq));
    for raw in store.raw_events(Seq(1)) {
        let raw = match raw {
            Ok(raw) => raw,
            Err(StoreError::Corrupt { at, reason }) => {
                return Err(bad(prev.seq.next(), None, format!("{at}: {reason}")))
            }
            Err(e) => return Err(e.into()),
        };
        if until.is_some_and(|u| raw.seq > u) {
            break;
        }
        if raw.seq.0 % 16_384 == 0 {
            tracing::info!(target: engine::PROGRESS, "verifying the log: {} events", raw.seq.0);
        }
        let expected = prev.seq.next();
        let header = decode_header(&raw.record);
        let run = header.as_ref().ok().map(|h| h.run);
        if raw.seq != expected {
            return Err(if raw.seq > expected {
                bad(
                    expected,
                    None,
                    format!("missing: the next stored event is {}", raw.seq),
                )
            } else {
                bad(raw.seq, run, "stored out of order")
            });
        }
        let header = header.map_err(|e| bad(raw.seq, None, format!("unreadable record: {e}")))?;
        if header.seq != raw.seq {
            return Err(bad(
                raw.seq,
                run,
                format!(
                    "holds the record of event {}: events were moved or reordered",
                    header.seq
                ),
            ));
        }
        let hash = Hash::chain(&prev.hash, &raw.record);
        if hash != raw.hash {
            // The chain cannot tell which of the two changed: an attacker who rewrote event
            // N and its hash leaves N consistent and breaks N + 1.
            return Err(bad(
                raw.seq,
                run,
                "hash mismatch: this event, or the one before it, was altered after it was written",
            ));
        }
        match (header.kind(), finished.get(&header.run)) {
            // A repair of the store is recorded on its own: its run holds that one event.
            (Some(kind), None) if kind.is_whole_run() => {
                finished.insert(header.run, true);
                match kind {
                    EventKind::LogRepaired => repairs.push(raw.seq),
                    EventKind::BackupTaken => backups += 1,
                    EventKind::ProblemAcknowledged | EventKind::AcknowledgementWithdrawn => {
                        acknowledgements += 1
                    }
                    _ => edits += 1,
                }
            }
            (Some(kind), Some(_)) if kind.is_whole_run() => {
                return Err(bad(
                    raw.seq,
                    run,
                    format!(
                        "{} inside a run: it is recorded under a run of its own",
                        kind.name()
                    ),
                ))
            }
            (Some(EventKind::RunStarted), None) => {
                finished.insert(header.run, false);
            }
            (Some(EventKind::RunStarted), Some(_)) => {
                return Err(bad(raw.seq, run, "a second RunStarted for the same run"))
            }
            (_, None) => {
                return Err(bad(
                    raw.seq,
                    run,
                    format!("{} for a run that never started", header.event_type),
                ))
            }
            (_, Some(true)) => {
                return Err(bad(
                    raw.seq,
                    run,
                    format!("{} after the run finished", header.event_type),
                ))
            }
            (Some(EventKind::RunFinished), Some(false)) => {
                finished.insert(header.run, true);
            }
            _ => {}
        }
        if let Some(noted) = opts.noted_head.as_ref().filter(|n| n.matches(&raw.hash)) {
            if let Some(first) = noted_head_at {
                return Err(VerifyError::AmbiguousHead {
                    prefix: noted.clone(),
                    first,
                    second: raw.seq,
                });
            }
            noted_head_at = Some(raw.seq);
        }
        runs_by_seq.push(header.run);
        prev = Head {
            seq: raw.seq,
            hash: raw.hash,
        };
    }
    if opts.until.is_none() && prev != end {
        return Err(bad(
            prev.seq.next(),
            None,
            format!(
                "the log ends at event {} but the store's head says {}",
                prev.seq, end.seq
            ),
        ));
    }
    check_run_index(store, &runs_by_seq, until)?;
    if let Some(noted) = opts.noted_head.clone() {
        if noted_head_at.is_none() {
            return Err(VerifyError::HeadNotFound(noted));
        }
    }
    let mut unfinished: Vec<RunId> = finished
        .iter()
        .filter(|(_, f)| !**f)
        .map(|(r, _)| *r)
        .collect();
    unfinished.sort();
    Ok(Verified {
        head: prev,
        events: prev.seq.0,
        runs: finished.len() - repairs.len() - edits - backups - acknowledgements,
        unfinished,
        noted_head_at,
        repairs,
        edits,
        backups,
        acknowledgements,
    })
}

/// Every event has exactly one run-index entry, under its own run.
fn check_run_index(
    store: &dyn EventStore,
    runs_by_seq: &[RunId],
    until: Option<Seq>,
) -> Result<(), VerifyError> {
    let mut indexed = vec![false; runs_by_seq.len()];
    let mut first_bad: Option<(Seq, Option<RunId>, String)> = None;
    let mut note = |seq: Seq, run: Option<RunId>, reason: String| {
        if first_bad.as_ref().is_none_or(|(s, ..)| seq < *s) {
            first_bad = Some((seq, run, reason));
        }
    };
    for entry in store.run_index() {
        let (run, seq) = entry?;
        if until.is_some_and(|u| seq > u) {
            continue;
        }
        match runs_by_seq.get((seq.0 as usize).wrapping_sub(1)) {
            Some(actual) if *actual == run => indexed[seq.0 as usize - 1] = true,
            Some(actual) => note(
                seq,
                Some(*actual),
                format!("the run index files it under run {run}"),
            ),
            None => note(
                seq,
                Some(run),
                "the run index lists an event that does not exist".into(),
            ),
        }
    }
    if let Some(i) = indexed.iter().position(|x| !x) {
        note(
            Seq(i as u64 + 1),
            Some(runs_by_seq[i]),
            "missing from the run index".into(),
        );
    }
    match first_bad {
        Some((seq, run, reason)) => Err(bad(seq, run, reason)),
        None => Ok(()),
    }
}
