//! `roster backup` and `roster restore`: a whole store in one JSON Lines file that anyone can
//! check, and that restores into a new store with every event's bytes and hash unchanged.
//!
//! Lines, in order: one `header` (format, version, time, event count and chain head); one
//! `event` per stored event (its seq, its hash, and its record as the exact text that was
//! hashed, so the restored chain is the same chain); one `org` per organization (its settings,
//! never a secret); one `serverUser` / `serverGroup` per record of the embedded server; one
//! `end` (the line count, so that a truncated file is told from a whole one).
//!
//! Writing a backup recomputes the hash chain as it goes and refuses a log that does not
//! verify. Reading one checks the same chain, the sequence, the header's head and the end line
//! before anything is restored.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use engine::event::{decode_header, Hash};
use engine::model::{ServerGroup, ServerUser};
use engine::store::Head;
use engine::{Seq, SledStore, StoreError};

pub const FORMAT: &str = "roster-backup";
pub const VERSION: u32 = 1;
/// Longest line read back: a record is at most a few MiB, a server record far less.
const MAX_LINE_BYTES: usize = 256 << 20;

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

/// Writes the whole store to `out`.
pub fn write_backup(
    store: &SledStore,
    created: DateTime<Utc>,
    out: &mut dyn Write,
) -> Result<Contents, BackupError> {
    use engine::store::EventStore;
    let head = store.head();
    let mut line = |l: &Line| -> Result<(), BackupError> {
        serde_json::to_writer(&mut *out, l).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    line(&Line::Header(Header {
        format: FORMAT.into(),
        version: VERSION,
        created,
        events: head.seq.0,
        head: head.into(),
    }))?;
    let mut lines = 1;
    let mut chain = Head::default();
    for raw in store.raw_events(Seq(1)) {
        let raw = raw.map_err(|_| BackupError::Unverified(chain.seq.next()))?;
        let hash = Hash::chain(&chain.hash, &raw.record);
        let record = std::str::from_utf8(&raw.record).ok();
        let (Some(record), true, true) = (record, raw.seq == chain.seq.next(), hash == raw.hash)
        else {
            return Err(BackupError::Unverified(raw.seq));
        };
        chain = Head { seq: raw.seq, hash };
        line(&Line::Event(EventLine {
            seq: raw.seq.0,
            hash: raw.hash.to_hex(),
            record: record.to_owned(),
        }))?;
        lines += 1;
    }
    if chain != head {
        return Err(BackupError::Unverified(chain.seq.next()));
    }
    let orgs = store.orgs()?;
    for (name, settings) in &orgs {
        let settings = serde_json::from_slice(settings).map_err(|e| StoreError::Corrupt {
            at: format!("org {name}"),
            reason: e.to_string(),
        })?;
        line(&Line::Org(OrgLine {
            name: name.clone(),
            settings,
        }))?;
        lines += 1;
    }
    let server = store.server_state()?;
    let (server_users, server_groups) = (server.users().len(), server.groups().len());
    for u in server.users() {
        line(&Line::ServerUser(Box::new(u.clone())))?;
        lines += 1;
    }
    for g in server.groups() {
        line(&Line::ServerGroup(g.clone()))?;
        lines += 1;
    }
    lines += 1;
    line(&Line::End(End { lines }))?;
    out.flush()?;
    Ok(Contents {
        events: head.seq.0,
        head: head.into(),
        orgs: orgs.len() as u64,
        server_users: server_users as u64,
        server_groups: server_groups as u64,
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
