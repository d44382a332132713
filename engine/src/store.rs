//! The event store: one append-only, hash-chained log, and beside it the embedded server's
//! directory, in one sled database.
//!
//! Only this module knows keys and byte layouts. Everything lives in one sled tree so that a
//! step's events, their run-index entries and the server records they change are written by
//! one `apply_batch`, which sled applies atomically: after a crash either all of it is there or
//! none of it. Nothing is durable until [`EventStore::flush`] returns.
//!
//! Keys in the `log` tree:
//! - `e` + seq (u64 BE)            → hash (32 bytes) + JSON record (see `event::encode_record`)
//! - `r` + run (16 bytes) + seq    → empty; the run index
//! - `u` + case-folded login       → JSON `ServerUser`
//! - `g` + case-folded group name  → JSON `ServerGroup`

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::event::{decode_record, encode_record, DecodeError, Envelope, Event, Hash};
use crate::ids::{fold_case, RunId, Seq};
use crate::model::{KeyWrite, ServerGroup, ServerState, ServerStateError, ServerUser};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("event {seq}: {source}")]
    Decode { seq: Seq, source: DecodeError },
    #[error("store is damaged at {at}: {reason}; run `roster verify` for details")]
    Corrupt { at: String, reason: String },
    #[error("server directory in the store is inconsistent: {0}")]
    Server(#[from] ServerStateError),
    #[error(
        "the store {dir} is in use by {holder}; wait for it to finish (or stop it) and try again"
    )]
    InUse { dir: String, holder: String },
    #[error("cannot lock the store {dir}: {reason}")]
    Lock { dir: String, reason: String },
}

/// Keeps other roster processes out of a store while this one uses it: an advisory lock on
/// `DIR/lock`, which also names its holder. The operating system drops the lock when the
/// process ends, however it ends, so a crash never leaves the store locked.
#[derive(Debug)]
pub struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    pub fn acquire(dir: &Path, holder: &str) -> Result<StoreLock, StoreError> {
        use std::io::{Read, Seek, Write};
        let fail = |e: std::io::Error| StoreError::Lock {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(fail)?;
                file.seek(std::io::SeekFrom::Start(0)).map_err(fail)?;
                write!(file, "PID {} ({holder})", std::process::id()).map_err(fail)?;
                Ok(StoreLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                Err(StoreError::InUse {
                    dir: dir.display().to_string(),
                    holder: if who.is_empty() {
                        "another roster process".into()
                    } else {
                        who.to_owned()
                    },
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
        }
    }
}

/// The last event of the log; `Seq(0)` and the genesis hash for an empty log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub seq: Seq,
    pub hash: Hash,
}

/// An event exactly as stored: what `verify` recomputes the chain over.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// The sequence number in the key (the record repeats it; verify compares both).
    pub seq: Seq,
    pub hash: Hash,
    pub record: Vec<u8>,
}

impl RawEvent {
    pub fn decode(&self) -> Result<Envelope, StoreError> {
        decode_record(&self.record, self.hash).map_err(|source| StoreError::Decode {
            seq: self.seq,
            source,
        })
    }
}

/// The log operations the rest of roster needs; sled is the one implementation.
pub trait EventStore {
    /// Appends `events` for `run` and applies `writes` to the embedded server, atomically:
    /// all of it or none of it. Not durable until [`EventStore::flush`].
    fn commit(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError>;

    fn append(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
    ) -> Result<Head, StoreError> {
        self.commit(run, time, events, &[])
    }

    /// Makes everything committed so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    fn head(&self) -> Head;

    /// The run's events in order, decoded and upcast.
    fn read_run(&self, run: RunId) -> Result<Vec<Envelope>, StoreError>;

    /// The sequence numbers of a run's events, in order.
    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError>;

    /// One event, decoded and upcast.
    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError>;

    /// Every run, oldest first.
    fn runs(&self) -> Result<Vec<RunId>, StoreError>;

    /// Stored events from `from` on, undecoded.
    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_>;

    /// Every (run, seq) pair of the run index.
    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_>;
}

const EVENT: u8 = b'e';
const RUN: u8 = b'r';
const USER: u8 = b'u';
const GROUP: u8 = b'g';

fn event_key(seq: Seq) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

fn run_key(run: RunId, seq: Seq) -> [u8; 25] {
    let mut k = [RUN; 25];
    k[1..17].copy_from_slice(run.as_bytes());
    k[17..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

fn user_key(login: &str) -> Vec<u8> {
    prefixed(USER, &fold_case(login))
}

fn group_key(name: &str) -> Vec<u8> {
    prefixed(GROUP, &fold_case(name))
}

fn prefixed(prefix: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + s.len());
    k.push(prefix);
    k.extend_from_slice(s.as_bytes());
    k
}

fn corrupt(at: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        at: at.into(),
        reason: reason.into(),
    }
}

fn parse_event_value(seq: Seq, value: &[u8]) -> Result<RawEvent, StoreError> {
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
        record: value[32..].to_vec(),
    })
}

fn seq_of_event_key(key: &[u8]) -> Result<Seq, StoreError> {
    let bytes: [u8; 8] = key
        .get(1..9)
        .filter(|_| key.len() == 9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("event index", format!("malformed key {key:02x?}")))?;
    Ok(Seq(u64::from_be_bytes(bytes)))
}

/// The sled-backed store. One process at a time; within it, appends are serialized.
pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    orgs: sled::Tree,
    head: Mutex<Head>,
    /// Held while the store is open through [`SledStore::open_locked`].
    _lock: Option<StoreLock>,
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        Self::from_db(db)
    }

    /// Opens the store kept in `root` (the database in `root/db`), first taking the store lock
    /// so that no other roster process uses it at the same time. `holder` says who holds it.
    pub fn open_locked(root: &Path, holder: &str) -> Result<SledStore, StoreError> {
        let lock = StoreLock::acquire(root, holder)?;
        let mut store = Self::open(&root.join("db"))?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// A store that lives in memory only; for tests and benchmarks.
    pub fn temporary() -> Result<SledStore, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<SledStore, StoreError> {
        let log = db.open_tree("log")?;
        let orgs = db.open_tree("orgs")?;
        let head = match log.scan_prefix([EVENT]).next_back() {
            None => Head::default(),
            Some(kv) => {
                let (k, v) = kv?;
                let raw = parse_event_value(seq_of_event_key(&k)?, &v)?;
                Head {
                    seq: raw.seq,
                    hash: raw.hash,
                }
            }
        };
        Ok(SledStore {
            db,
            log,
            orgs,
            head: Mutex::new(head),
            _lock: None,
        })
    }

    /// The embedded server's directory as stored.
    pub fn server_state(&self) -> Result<ServerState, StoreError> {
        let mut users = Vec::new();
        for kv in self.log.scan_prefix([USER]) {
            let (k, v) = kv?;
            let user: ServerUser = serde_json::from_slice(&v).map_err(|e| {
                corrupt(
                    format!("server user {}", String::from_utf8_lossy(&k[1..])),
                    e.to_string(),
                )
            })?;
            users.push(user);
        }
        let mut groups = Vec::new();
        for kv in self.log.scan_prefix([GROUP]) {
            let (k, v) = kv?;
            let group: ServerGroup = serde_json::from_slice(&v).map_err(|e| {
                corrupt(
                    format!("server group {}", String::from_utf8_lossy(&k[1..])),
                    e.to_string(),
                )
            })?;
            groups.push(group);
        }
        Ok(ServerState::from_parts(users, groups)?)
    }

    /// Replaces the embedded server's directory in one atomic batch.
    pub fn replace_server_state(&self, state: &ServerState) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for kv in self
            .log
            .scan_prefix([USER])
            .chain(self.log.scan_prefix([GROUP]))
        {
            let (k, _) = kv?;
            batch.remove(k);
        }
        let writes: Vec<KeyWrite> = state
            .users()
            .cloned()
            .map(KeyWrite::PutUser)
            .chain(state.groups().cloned().map(KeyWrite::PutGroup))
            .collect();
        add_writes(&mut batch, &writes);
        self.log.apply_batch(batch)?;
        Ok(())
    }

    pub fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        self.orgs.insert(name.as_bytes(), config)?;
        Ok(())
    }

    pub fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.orgs.get(name.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.orgs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    pub fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.orgs.remove(name.as_bytes())?.is_some())
    }

    /// Direct access for tests that play the attacker editing the database behind roster's back.
    #[doc(hidden)]
    pub fn raw_tree(&self) -> &sled::Tree {
        &self.log
    }
}

fn add_writes(batch: &mut sled::Batch, writes: &[KeyWrite]) {
    for w in writes {
        match w {
            KeyWrite::PutUser(u) => batch.insert(
                user_key(&u.login),
                serde_json::to_vec(u).expect("server users serialize"),
            ),
            KeyWrite::DeleteUser { login } => batch.remove(user_key(login)),
            KeyWrite::PutGroup(g) => batch.insert(
                group_key(&g.name),
                serde_json::to_vec(g).expect("server groups serialize"),
            ),
            KeyWrite::DeleteGroup { name } => batch.remove(group_key(name)),
        }
    }
}

impl EventStore for SledStore {
    fn commit(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *head;
        let mut batch = sled::Batch::default();
        for event in events {
            next.seq = next.seq.next();
            let record = encode_record(next.seq, run, &time, event);
            next.hash = Hash::chain(&next.hash, &record);
            let mut value = Vec::with_capacity(32 + record.len());
            value.extend_from_slice(&next.hash.0);
            value.extend_from_slice(&record);
            batch.insert(&event_key(next.seq)[..], value);
            batch.insert(&run_key(run, next.seq)[..], &[][..]);
        }
        add_writes(&mut batch, writes);
        self.log.apply_batch(batch)?;
        *head = next;
        Ok(next)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn head(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError> {
        let mut prefix = [RUN; 17];
        prefix[1..].copy_from_slice(run.as_bytes());
        self.log
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, _) = kv?;
                let bytes: [u8; 8] = k
                    .get(17..25)
                    .filter(|_| k.len() == 25)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt(format!("run {run}"), "malformed index key"))?;
                Ok(Seq(u64::from_be_bytes(bytes)))
            })
            .collect()
    }

    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        match self.log.get(event_key(seq))? {
            None => Ok(None),
            Some(value) => Ok(Some(parse_event_value(seq, &value)?.decode()?)),
        }
    }

    fn read_run(&self, run: RunId) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        for seq in self.run_seqs(run)? {
            let env = self.read_event(seq)?.ok_or_else(|| {
                corrupt(
                    format!("event {seq}"),
                    format!("indexed for run {run} but missing"),
                )
            })?;
            if env.run != run || env.seq != seq {
                return Err(corrupt(
                    format!("event {seq}"),
                    format!(
                        "indexed for run {run} but records run {} seq {}",
                        env.run, env.seq
                    ),
                ));
            }
            out.push(env);
        }
        Ok(out)
    }

    fn runs(&self) -> Result<Vec<RunId>, StoreError> {
        let mut runs = Vec::new();
        let mut from = vec![RUN];
        loop {
            let Some(kv) = self.log.range(from.clone()..).next() else {
                break;
            };
            let (k, _) = kv?;
            if k.first() != Some(&RUN) {
                break;
            }
            let bytes: [u8; 16] = k
                .get(1..17)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("run index", "malformed key"))?;
            runs.push(RunId(uuid::Uuid::from_bytes(bytes)));
            // Jump past every key of this run.
            from = run_key(RunId(uuid::Uuid::from_bytes(bytes)), Seq(u64::MAX)).to_vec();
            from.push(0);
        }
        Ok(runs)
    }

    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_> {
        let start = event_key(from);
        let end = event_key(Seq(u64::MAX));
        Box::new(self.log.range(start..=end).map(|kv| {
            let (k, v) = kv?;
            parse_event_value(seq_of_event_key(&k)?, &v)
        }))
    }

    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_> {
        Box::new(self.log.scan_prefix([RUN]).map(|kv| {
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
        }))
    }
}
