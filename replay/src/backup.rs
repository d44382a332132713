//! `roster backup` and `roster restore`: a whole store in one JSON Lines file that anyone can
//! check, and that restores into a new store with every event's bytes and hash unchanged.
//!
//! Lines, in order: one `header` (format, version, time, event count and chain head); one
//! `event` per stored event (its seq, its hash, and its record as the exact text that was
//! hashed, so the restored chain is the same chain) — the last one the `BackupTaken` event
//! the backup was taken as; one `org` per organization (its settings, never a secret); one
//! `serverUser` / `serverGroup` per record of the embedded server; one `end` (the line count,
//! so that a truncated file is told from a whole one, and the digest of every line before it).
//!
//! Nothing in a backup is outside a digest tied to the chain: the `BackupTaken` event holds
//! the digest of the org and server lines exactly as written, and the chain's head covers
//! that event. Writing a backup recomputes the hash chain as it goes and refuses a log that
//! does not verify. Reading one checks the same chain, the sequence, the header's head, the
//! `BackupTaken` digest and the end line before anything is restored; a line is read only up
//! to [`MAX_LINE_BYTES`].

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use engine::event::{decode_header, decode_record, BackupTaken, Event, Hash};
use engine::model::{ServerGroup, ServerUser};
use engine::store::Head;
use engine::{Seq, Store, StoreError};

pub const FORMAT: &str = "roster-backup";
/// 2: the log ends with `BackupTaken`, and the end line holds the digest of every line.
pub const VERSION: u32 = 2;
/// Longest line read back (an event record of a group of a million members is about 40 MB);
/// a longer one is refused once this much of it is read, never read whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Line {
    Header(Header),
    Event(EventLine),
    Org(OrgLine),
    ServerUser(Box<ServerUser>),
    ServerGroup(ServerGroup),
    End(End),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub created: DateTime<Utc>,
    pub events: u64,
    pub head: HeadLine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadLine {
    pub seq: u64,
    pub hash: String,
}

impl From<Head> for HeadLine {
    fn from(h: Head) -> Self {
        HeadLine {
            seq: h.seq.0,
            hash: h.hash.to_hex(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct EventLine {
    seq: u64,
    hash: String,
    record: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrgLine {
    name: String,
    settings: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    lines: u64,
    /// SHA-256 of every line before this one, newlines included (version 2).
    #[serde(default)]
    digest: Option<String>,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contents {
    pub events: u64,
    pub head: HeadLine,
    pub orgs: u64,
    pub server_users: u64,
    pub server_groups: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the log does not verify at event {0}, so a backup of it would not restore; run `roster verify`")]
    Unverified(Seq),
    #[error("line {line}: {reason}")]
    Bad { line: u64, reason: String },
    #[error("the log does not end with the backup being taken (BackupTaken); nothing was written")]
    NotTaken,
    #[error("the store changed while the backup was taken; take it again")]
    Changed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bad(line: u64, reason: impl Into<String>) -> BackupError {
    BackupError::Bad {
        line,
        reason: reason.into(),
    }
}

/// The org and server lines a backup of `store` writes after its log, each handed to `line`
/// as it would be written (without its newline).
fn contents_lines(
    store: &dyn Store,
    line: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<Counts, BackupError> {
    let mut counts = Counts::default();
    let mut buf = Vec::new();
    let mut put = |l: &Line, line: &mut dyn FnMut(&[u8]) -> Result<(), BackupError>| {
        buf.clear();
        serde_json::to_writer(&mut buf, l).map_err(std::io::Error::other)?;
        line(&buf)
    };
    for (name, settings) in store.orgs()? {
        let settings = serde_json::from_slice(&settings).map_err(|e| StoreError::Corrupt {
            at: format!("org {name}"),
            reason: e.to_string(),
        })?;
        put(&Line::Org(OrgLine { name, settings }), line)?;
        counts.orgs += 1;
    }
    let server = store.server_state()?;
    for u in server.users() {
        put(&Line::ServerUser(Box::new(u.clone())), line)?;
        counts.server_users += 1;
    }
    for g in server.groups() {
        put(&Line::ServerGroup(g.clone()), line)?;
        counts.server_groups += 1;
    }
    Ok(counts)
}

/// How many orgs and server records a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    orgs: u64,
    server_users: u64,
    server_groups: u64,
}

/// SHA-256 over `lines`, each followed by a newline.
#[derive(Default)]
struct LinesDigest(sha2::Sha256);

impl LinesDigest {
    fn add(&mut self, line: &[u8]) {
        self.0.update(line);
        if !line.ends_with(b"\n") {
            self.0.update(b"\n");
        }
    }

    fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// What a backup of `store` taken now holds besides its log: the `BackupTaken` event to
/// append to the log before [`write_backup`] writes it.
pub fn backup_taken(store: &dyn Store, by: &str) -> Result<BackupTaken, BackupError> {
    let mut digest = LinesDigest::default();
    let counts = contents_lines(store, &mut |l| {
        digest.add(l);
        Ok(())
    })?;
    let n = |c: u64| u32::try_from(c).unwrap_or(u32::MAX);
    Ok(BackupTaken {
        by: by.to_owned(),
        orgs: n(counts.orgs),
        server_users: n(counts.server_users),
        server_groups: n(counts.server_groups),
        contents_digest: digest.hex(),
    })
}

/// Writes the whole store to `out`. Its log must end with the `BackupTaken` event
/// [`backup_taken`] gave (appended by the caller, who holds the store), whose digest the org
/// and server lines written must still have.
pub fn write_backup(
    store: &dyn Store,
    created: DateTime<Utc>,
    out: &mut dyn Write,
) -> Result<Contents, BackupError> {
    let head = store.head();
    let mut all = LinesDigest::default();
    let mut lines = 0u64;
    let mut line = |bytes: &[u8], all: &mut LinesDigest| -> Result<(), BackupError> {
        if bytes.len() >= MAX_LINE_BYTES {
            return Err(BackupError::Bad {
                line: lines + 1,
                reason: format!(
                    "a line of {} bytes, longer than a backup may hold ({MAX_LINE_BYTES})",
                    bytes.len()
                ),
            });
        }
        out.write_all(bytes)?;
        out.write_all(b"\n")?;
        all.add(bytes);
        lines += 1;
        Ok(())
    };
    let json =
        |l: &Line| serde_json::to_vec(l).map_err(|e| BackupError::Io(std::io::Error::other(e)));
    line(
        &json(&Line::Header(Header {
            format: FORMAT.into(),
            version: VERSION,
            created,
            events: head.seq.0,
            head: head.into(),
        }))?,
        &mut all,
    )?;
    let mut chain = Head::default();
    let mut taken: Option<BackupTaken> = None;
    for raw in store.raw_events(Seq(1)) {
        let raw = raw.map_err(|_| BackupError::Unverified(chain.seq.next()))?;
        let hash = Hash::chain(&chain.hash, &raw.record);
        let record = std::str::from_utf8(&raw.record).ok();
        let (Some(record), true, true) = (record, raw.seq == chain.seq.next(), hash == raw.hash)
        else {
            return Err(BackupError::Unverified(raw.seq));
        };
        chain = Head { seq: raw.seq, hash };
        taken = match decode_header(record.as_bytes()) {
            Ok(h) if h.event_type == "BackupTaken" => {
                match decode_record(record.as_bytes(), hash) {
                    Ok(env) => match env.event {
                        Event::BackupTaken(b) => Some(b),
                        _ => None,
                    },
                    Err(_) => None,
                }
            }
            _ => None,
        };
        line(
            &json(&Line::Event(EventLine {
                seq: raw.seq.0,
                hash: raw.hash.to_hex(),
                record: record.to_owned(),
            }))?,
            &mut all,
        )?;
    }
    if chain != head {
        return Err(BackupError::Unverified(chain.seq.next()));
    }
    let Some(taken) = taken else {
        return Err(BackupError::NotTaken);
    };
    let mut digest = LinesDigest::default();
    let counts = contents_lines(store, &mut |l| {
        digest.add(l);
        line(l, &mut all)
    })?;
    if digest.hex() != taken.contents_digest {
        return Err(BackupError::Changed);
    }
    let end_lines = lines + 1;
    let end = json(&Line::End(End {
        lines: end_lines,
        digest: Some(all.hex()),
    }))?;
    out.write_all(&end)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(Contents {
        events: head.seq.0,
        head: head.into(),
        orgs: counts.orgs,
        server_users: counts.server_users,
        server_groups: counts.server_groups,
    })
}

/// One part of a backup, as [`read_backup`] hands it over.
#[derive(Debug)]
pub enum Part {
    Events(Vec<(Seq, Hash, Vec<u8>)>),
    Org { name: String, settings: Vec<u8> },
    ServerUser(Box<ServerUser>),
    ServerGroup(ServerGroup),
}

/// Reads a backup, checking everything a restore relies on; hands its parts to `take` (events
/// a few thousand at a time, in order) unless `take` is `None`, which only checks. Returns what
/// it holds. A first pass with `None` makes a restore all-or-nothing.
pub fn read_backup(
    input: &mut dyn BufRead,
    mut take: Option<&mut dyn FnMut(Part) -> Result<(), BackupError>>,
) -> Result<Contents, BackupError> {
    let mut n = 0u64;
    let mut header: Option<Header> = None;
    let mut chain = Head::default();
    let mut events = Vec::new();
    let mut contents = Contents {
        events: 0,
        head: Head::default().into(),
        orgs: 0,
        server_users: 0,
        server_groups: 0,
    };
    let mut buf = Vec::new();
    let mut ended = false;
    let mut all = LinesDigest::default();
    let mut contents_digest = LinesDigest::default();
    // The last event read, when it is the `BackupTaken` the backup was taken as.
    let mut taken: Option<BackupTaken> = None;
    let mut after_log = false;
    loop {
        buf.clear();
        let read = std::io::Read::take(&mut *input, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        n += 1;
        if buf.len() > MAX_LINE_BYTES {
            return Err(bad(n, format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        if ended {
            return Err(bad(n, "a line after the end line"));
        }
        let line: Line = serde_json::from_slice(&buf)
            .map_err(|e| bad(n, format!("not a line of a roster backup: {e}")))?;
        if header.is_none() && !matches!(line, Line::Header(_)) {
            return Err(bad(n, "a roster backup starts with its header line"));
        }
        if !matches!(line, Line::End(_)) {
            all.add(&buf);
        }
        if !matches!(line, Line::Header(_) | Line::Event(_)) && !after_log {
            after_log = true;
            if taken.is_none() {
                return Err(bad(
                    n,
                    "the log does not end with the event the backup was taken as (BackupTaken): the backup was changed, or is not whole",
                ));
            }
        }
        if matches!(
            line,
            Line::Org(_) | Line::ServerUser(_) | Line::ServerGroup(_)
        ) {
            contents_digest.add(&buf);
        }
        if !matches!(line, Line::Event(_)) && !events.is_empty() {
            if let Some(take) = take.as_mut() {
                take(Part::Events(std::mem::take(&mut events)))?;
            }
            events.clear();
        }
        match line {
            Line::Header(h) => {
                if header.is_some() {
                    return Err(bad(n, "a second header"));
                }
                if h.format != FORMAT || h.version > VERSION {
                    return Err(bad(
                        n,
                        format!(
                            "format {} version {} is not a roster backup this roster reads ({FORMAT} up to version {VERSION})",
                            h.format, h.version
                        ),
                    ));
                }
                if h.version < VERSION {
                    return Err(bad(
                        n,
                        format!(
                            "a version {} backup: its orgs and server records are covered by no digest, so roster cannot tell them from edits; take a new backup of the store with this roster",
                            h.version
                        ),
                    ));
                }
                header = Some(h);
            }
            Line::Event(e) => {
                let hash = Hash::from_hex(&e.hash)
                    .ok_or_else(|| bad(n, "a hash that is not 64 hexadecimal digits"))?;
                let record = e.record.into_bytes();
                let seq = Seq(e.seq);
                let fits = seq == chain.seq.next()
                    && Hash::chain(&chain.hash, &record) == hash
                    && decode_header(&record).is_ok_and(|h| h.seq == seq);
                if !fits {
                    return Err(bad(
                        n,
                        format!("event {seq} does not follow event {} in the hash chain: the backup was changed or damaged", chain.seq),
                    ));
                }
                chain = Head { seq, hash };
                taken = match decode_header(&record) {
                    Ok(h) if h.event_type == "BackupTaken" => match decode_record(&record, hash) {
                        Ok(env) => match env.event {
                            Event::BackupTaken(b) => Some(b),
                            _ => None,
                        },
                        Err(_) => None,
                    },
                    _ => None,
                };
                if take.is_some() {
                    events.push((seq, hash, record));
                    if events.len() >= 4096 {
                        if let Some(take) = take.as_mut() {
                            take(Part::Events(std::mem::take(&mut events)))?;
                        }
                    }
                }
            }
            Line::Org(o) => {
                contents.orgs += 1;
                if let Some(take) = take.as_mut() {
                    let settings =
                        serde_json::to_vec(&o.settings).map_err(std::io::Error::other)?;
                    take(Part::Org {
                        name: o.name,
                        settings,
                    })?;
                }
            }
            Line::ServerUser(u) => {
                contents.server_users += 1;
                if let Some(take) = take.as_mut() {
                    take(Part::ServerUser(u))?;
                }
            }
            Line::ServerGroup(g) => {
                contents.server_groups += 1;
                if let Some(take) = take.as_mut() {
                    take(Part::ServerGroup(g))?;
                }
            }
            Line::End(end) => {
                if end.lines != n {
                    return Err(bad(
                        n,
                        format!("the end line counts {} lines, the file has {n}", end.lines),
                    ));
                }
                let digest = std::mem::take(&mut all).hex();
                if end.digest.as_deref() != Some(digest.as_str()) {
                    return Err(bad(
                        n,
                        "the lines before the end line are not the ones the backup was written with: the backup was changed or damaged",
                    ));
                }
                let taken = taken.as_ref().expect("checked when the log ended");
                let counts = (
                    u64::from(taken.orgs),
                    u64::from(taken.server_users),
                    u64::from(taken.server_groups),
                );
                if std::mem::take(&mut contents_digest).hex() != taken.contents_digest
                    || counts != (contents.orgs, contents.server_users, contents.server_groups)
                {
                    return Err(bad(
                        n,
                        "the orgs and server records are not the ones the log says the backup holds (its BackupTaken event): the backup was changed",
                    ));
                }
                ended = true;
            }
        }
    }
    let Some(header) = header else {
        return Err(bad(
            0,
            "the file is empty; a roster backup starts with its header line",
        ));
    };
    if !ended {
        return Err(bad(
            n,
            "the backup ends without its end line: it was cut short",
        ));
    }
    let head: HeadLine = chain.into();
    if head != header.head {
        return Err(bad(
            1,
            format!(
                "the header's chain head is event {} {}, the events end at event {} {}",
                header.head.seq, header.head.hash, head.seq, head.hash
            ),
        ));
    }
    contents.events = chain.seq.0;
    contents.head = head;
    Ok(contents)
}
