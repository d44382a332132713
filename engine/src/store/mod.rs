//! The event store: one append-only, hash-chained log, and beside it the embedded server's
//! directory, in one sled database.
//!
//! Only this module knows keys and byte layouts. Everything lives in one sled tree so that a
//! step's events, their run-index entries and the server records they change are written by
//! one `apply_batch`, which sled applies atomically: after a crash either all of it is there or
//! none of it. Nothing is durable until [`EventStore::flush`] returns.
//!
//! A step's events and server records are written by one `apply_batch` — except that a step
//! writing no server records and more than [`MAX_BATCH_CHUNKS`] chunks (the record of a large
//! tenant) is written in several batches, in order, so memory stays bounded. Interrupted
//! between two of them, the run is unfinished, and closed as aborted when the store is next
//! opened; nothing was applied, since applying comes after.
//!
//! Events are stored in *chunks*: up to [`CHUNK_EVENTS`] consecutive events of one run in one
//! sled value. sled pays per key, not per byte, so a step of a hundred thousand events is a few
//! hundred inserts; the hash chain still covers every event on its own.
//!
//! sled 0.34 keeps in memory every value a process wrote, whatever its cache capacity (a
//! standalone program writing 320 MB of values grows by 320 MB; flushing or reading does not
//! let go). So the store lets go of its handles and opens the database again once
//! [`LET_GO_EVERY`] bytes were written since it opened it (`SledStore::write_batch`): a run
//! that writes the record of a large tenant holds at most that much of what it wrote.
//!
//! The files of this module tree, one concern each: `keys` (keys and byte layouts), `chunk`
//! (the chunk codec), `legacy` (the layout before chunks), `lock` (the store lock and marker),
//! `space` (disk space), `server` (the embedded server's records), `orgs` (org settings),
//! `mirror` (the mirror of each org's chain of runs, a cache beside the log),
//! `write` and `read` (the pipelines), `tail` (a torn end of the log, cut back at open) and
//! `tamper` (tests only).

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use crate::event::{decode_record, DecodeError, Envelope, Event, EventKind, Hash};
use crate::ids::{RunId, Seq};
use crate::model::{KeyWrite, ServerState, ServerStateError};

mod chunk;
mod keys;
mod legacy;
mod lock;
mod mirror;
mod orgs;
mod pg;
mod read;
mod server;
mod space;
mod tail;
#[cfg(any(test, feature = "tamper"))]
mod tamper;
mod write;

pub use chunk::CHUNK_EVENTS;
pub use lock::{LockFile, Opening, StoreLock, MARKER};
pub use mirror::{
    MirrorBody, MirrorId, MirrorStamp, MirrorWrite, Settled, StampRead, StoredMirror,
};
pub use pg::PreparedRows;
pub use pg::{is_url as is_postgres_url, shown_url, PgStore, SCHEMA_VERSION as PG_SCHEMA_VERSION};
pub use space::Bytes;
pub use tail::TailCut;
#[cfg(any(test, feature = "tamper"))]
pub use tamper::Tamper;
pub use write::{PreparedStep, MAX_BATCH_CHUNKS};

use chunk::decode_chunk;
use keys::{seq_of_event_key, CHUNK, EVENT};
use legacy::parse_event_value;
use lock::check_store_dir;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// (sled's error is said in words, not chained as a cause: its own text adds nothing.)
    #[error("the store's database {}", sled_reason(.0))]
    Sled(sled::Error),
    /// The PostgreSQL store failed: where, what, and the server's reason, in one line (never
    /// the URL's user or password).
    #[error("the store's PostgreSQL database {why}")]
    Postgres { why: String },
    #[error("event {seq}: {source}")]
    Decode { seq: Seq, source: DecodeError },
    #[error("store is damaged at {at}: {reason}; run `roster verify` for details")]
    Corrupt { at: String, reason: String },
    /// The store let go of sled's handles (see the module documentation) and could not open
    /// the database again.
    #[error("the store's database could not be opened again during this command ({why}); what it wrote before stays (an unfinished run is closed as aborted when the store is next opened); run the command again")]
    Closed { why: String },
    #[error("server directory in the store is inconsistent: {0}")]
    Server(#[from] ServerStateError),
    #[error(
        "the store {dir} is in use by {holder}; wait for it to finish (or stop it) and try again"
    )]
    InUse { dir: String, holder: String },
    #[error("cannot lock the store {dir}: {reason}")]
    Lock { dir: String, reason: String },
    #[error("the embedded server is incomplete: a `roster server load` was interrupted before it finished; run it again")]
    LoadUnfinished,
    #[error("there is no roster store in {dir}; give the store with --store DIR (or $ROSTER_STORE), or add an org first to start one")]
    NoStore { dir: String },
    #[error("{dir} is not a roster store: {why}")]
    NotAStore { dir: String, why: String },
    /// A store URL roster cannot read (never shown: it may hold a password).
    #[error("the store's PostgreSQL URL {why}")]
    BadUrl { why: String },
    #[error("not enough free disk space for the store in {dir}: {what} needs about {need}, {free} free; free some space or move the store (--store DIR), then run again")]
    DiskFull {
        dir: String,
        what: String,
        need: Bytes,
        free: Bytes,
    },
}

impl StoreError {
    /// Whether the user must fix what they gave (exit 2): no store where they pointed, or a
    /// store URL that cannot be read.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::NoStore { .. } | StoreError::NotAStore { .. } | StoreError::BadUrl { .. }
        )
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

/// sled's error in words a person can act on.
fn sled_reason(e: &sled::Error) -> String {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            "could not be written: the disk is full; free some space, then run again (the next command closes what was left unfinished)".into()
        }
        sled::Error::Io(io) => {
            let text = io.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            format!("could not be read or written: {text}")
        }
        sled::Error::Corruption { .. } => "file itself is damaged and cannot be read (sled found corrupted data); nothing in it could be checked: restore the store from a backup (`roster restore`)".into(),
        other => format!("failed: {other}"),
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
    /// The sequence number it is stored under (the record repeats it; verify compares both).
    pub seq: Seq,
    pub hash: Hash,
    /// The JSON record, a slice of the stored value (no copy).
    pub record: sled::IVec,
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
pub trait EventStore: Sync {
    /// Appends `events` for `run` and applies `writes` to the embedded server, atomically:
    /// all of it or none of it (a step without writes larger than [`MAX_BATCH_CHUNKS`] chunks
    /// is written in several batches, in order). Events are encoded as they come, so a caller
    /// can stream a large step without holding it all. Not durable until [`EventStore::flush`].
    fn commit_stream(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &mut dyn Iterator<Item = Cow<'_, Event>>,
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError>;

    fn commit(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError> {
        self.commit_stream(run, time, &mut events.iter().map(Cow::Borrowed), writes)
    }

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

    /// Whether other processes may append to the log while this one reads it (a database a
    /// team shares). A verification then covers the log up to the head it began with.
    fn shared(&self) -> bool {
        false
    }

    /// The run's events in order, decoded and upcast.
    fn read_run(&self, run: RunId) -> Result<Vec<Envelope>, StoreError> {
        self.read_run_where(run, &|_| true)
    }

    /// The run's events whose type `keep` accepts, in order; the others are not decoded.
    fn read_run_where(
        &self,
        run: RunId,
        keep: &(dyn Fn(EventKind) -> bool + Sync),
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        self.visit_run(run, keep, &mut |env| out.push(env))?;
        Ok(out)
    }

    /// Hands the run's events whose type `keep` accepts to `visit`, in order, one chunk
    /// decoded at a time: a fold over a large run never holds the run whole.
    fn visit_run(
        &self,
        run: RunId,
        keep: &(dyn Fn(EventKind) -> bool + Sync),
        visit: &mut dyn FnMut(Envelope),
    ) -> Result<(), StoreError>;

    /// The sequence numbers of a run's events, in order.
    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError>;

    /// A run's first and last events (the same one for a run of one event); `None` for a run
    /// the log does not hold. Most readers of a run need only these.
    fn run_ends(&self, run: RunId) -> Result<Option<(Seq, Seq)>, StoreError> {
        let seqs = self.run_seqs(run)?;
        Ok(seqs.first().copied().zip(seqs.last().copied()))
    }

    /// One event, decoded and upcast.
    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError>;

    /// Every run, oldest first.
    fn runs(&self) -> Result<Vec<RunId>, StoreError>;

    /// Stored events from `from` on, undecoded.
    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_>;

    /// Every (run, seq) pair of the run index.
    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_>;
}

/// Everything roster keeps in a store, whichever backend keeps it: the log ([`EventStore`]),
/// org settings, the embedded server's directory and the mirrors. [`SledStore`] (embedded, one
/// host, the default) and [`PgStore`] (PostgreSQL, shared by a team) implement it; the
/// commands see only this.
pub trait Store: EventStore {
    fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError>;
    fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every org, by name.
    fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    fn remove_org(&self, name: &str) -> Result<bool, StoreError>;

    /// The embedded server's directory as stored.
    fn server_state(&self) -> Result<ServerState, StoreError>;
    /// One user (by login) and every group: what one user's page reads.
    fn server_user_and_groups(&self, login: &str) -> Result<ServerState, StoreError>;
    /// Replaces the embedded server's directory (`roster server load`), with `record`
    /// (`ServerLoaded`) in the log before any of it is used.
    fn load_server_state(
        &self,
        state: &ServerState,
        record: Option<(RunId, DateTime<Utc>, &Event)>,
    ) -> Result<(), StoreError>;
    fn replace_server_state(&self, state: &ServerState) -> Result<(), StoreError> {
        self.load_server_state(state, None)
    }
    /// The embedded server's version: a new one with every change of its directory.
    fn server_version(&self) -> Result<Option<String>, StoreError>;

    /// Refuses a run that cannot fit (a disk too full), before it writes anything.
    fn check_room_for_run(&self, _events: u64, _server_records: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Appends a run's last step and writes the org's next mirror with it, atomically.
    fn commit_with_mirror(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        mirror: &MirrorWrite,
    ) -> Result<Head, StoreError>;
    fn mirror(&self, id: &MirrorId) -> Result<Option<StoredMirror>, StoreError>;
    fn mirror_stamp(&self, id: &MirrorId) -> Result<Option<mirror::StampRead>, StoreError>;
    fn mirrors(&self) -> Result<Vec<(MirrorId, mirror::StampRead)>, StoreError>;

    /// Appends events exactly as another store holds them (a backup restored).
    fn append_verbatim(&self, events: &[(Seq, Hash, Vec<u8>)]) -> Result<Head, StoreError>;

    /// Cuts back a torn end of the log (see [`SledStore::cut_torn_tail`]); a backend whose
    /// steps are transactions is never torn.
    fn cut_torn_tail(
        &self,
        _at: DateTime<Utc>,
        _repair_run: RunId,
    ) -> Result<Option<TailCut>, StoreError> {
        Ok(None)
    }

    /// Encodes and chains a step (its events, and the server records they change) to follow
    /// `after`, without writing it: a caller prepares the next step while the store writes
    /// this one. Steps are committed in the order they were prepared.
    fn prepare_step(
        &self,
        after: Head,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Prepared;

    /// Writes a prepared step atomically, if the log still ends where it was prepared to
    /// follow (else nothing is written).
    fn commit_step(&self, step: Prepared) -> Result<Head, StoreError>;
}

/// A step encoded and chained by [`Store::prepare_step`], for the store that prepared it.
pub enum Prepared {
    Sled(PreparedStep),
    Postgres(pg::PreparedRows),
}

impl Prepared {
    /// The head the log reaches once this step is written.
    pub fn head(&self) -> Head {
        match self {
            Prepared::Sled(step) => step.head(),
            Prepared::Postgres(rows) => rows.head(),
        }
    }
}

impl Store for SledStore {
    fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        SledStore::put_org(self, name, config)
    }
    fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        SledStore::org(self, name)
    }
    fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        SledStore::orgs(self)
    }
    fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        SledStore::remove_org(self, name)
    }
    fn server_state(&self) -> Result<ServerState, StoreError> {
        SledStore::server_state(self)
    }
    fn server_user_and_groups(&self, login: &str) -> Result<ServerState, StoreError> {
        SledStore::server_user_and_groups(self, login)
    }
    fn load_server_state(
        &self,
        state: &ServerState,
        record: Option<(RunId, DateTime<Utc>, &Event)>,
    ) -> Result<(), StoreError> {
        SledStore::load_server_state(self, state, record)
    }
    fn server_version(&self) -> Result<Option<String>, StoreError> {
        SledStore::server_version(self)
    }
    fn check_room_for_run(&self, events: u64, server_records: u64) -> Result<(), StoreError> {
        SledStore::check_room_for_run(self, events, server_records)
    }
    fn commit_with_mirror(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        mirror: &MirrorWrite,
    ) -> Result<Head, StoreError> {
        SledStore::commit_with_mirror(self, run, time, events, mirror)
    }
    fn mirror(&self, id: &MirrorId) -> Result<Option<StoredMirror>, StoreError> {
        SledStore::mirror(self, id)
    }
    fn mirror_stamp(&self, id: &MirrorId) -> Result<Option<mirror::StampRead>, StoreError> {
        SledStore::mirror_stamp(self, id)
    }
    fn mirrors(&self) -> Result<Vec<(MirrorId, mirror::StampRead)>, StoreError> {
        SledStore::mirrors(self)
    }
    fn append_verbatim(&self, events: &[(Seq, Hash, Vec<u8>)]) -> Result<Head, StoreError> {
        SledStore::append_verbatim(self, events)
    }
    fn cut_torn_tail(
        &self,
        at: DateTime<Utc>,
        repair_run: RunId,
    ) -> Result<Option<TailCut>, StoreError> {
        SledStore::cut_torn_tail(self, at, repair_run)
    }
    fn prepare_step(
        &self,
        after: Head,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Prepared {
        Prepared::Sled(self.prepare(after, run, time, events, writes))
    }
    fn commit_step(&self, step: Prepared) -> Result<Head, StoreError> {
        match step {
            Prepared::Sled(step) => self.commit_prepared(step),
            Prepared::Postgres(_) => Err(corrupt(
                "a step",
                "prepared for a store in PostgreSQL, committed to a directory",
            )),
        }
    }
}

impl Store for PgStore {
    fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        PgStore::put_org(self, name, config)
    }
    fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        PgStore::org(self, name)
    }
    fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        PgStore::orgs(self)
    }
    fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        PgStore::remove_org(self, name)
    }
    fn server_state(&self) -> Result<ServerState, StoreError> {
        PgStore::server_state(self)
    }
    fn server_user_and_groups(&self, login: &str) -> Result<ServerState, StoreError> {
        PgStore::server_user_and_groups(self, login)
    }
    fn load_server_state(
        &self,
        state: &ServerState,
        record: Option<(RunId, DateTime<Utc>, &Event)>,
    ) -> Result<(), StoreError> {
        PgStore::load_server_state(self, state, record)
    }
    fn server_version(&self) -> Result<Option<String>, StoreError> {
        PgStore::server_version(self)
    }
    fn commit_with_mirror(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        mirror: &MirrorWrite,
    ) -> Result<Head, StoreError> {
        PgStore::commit_with_mirror(self, run, time, events, mirror)
    }
    fn mirror(&self, id: &MirrorId) -> Result<Option<StoredMirror>, StoreError> {
        PgStore::mirror(self, id)
    }
    fn mirror_stamp(&self, id: &MirrorId) -> Result<Option<mirror::StampRead>, StoreError> {
        PgStore::mirror_stamp(self, id)
    }
    fn mirrors(&self) -> Result<Vec<(MirrorId, mirror::StampRead)>, StoreError> {
        PgStore::mirrors(self)
    }
    fn append_verbatim(&self, events: &[(Seq, Hash, Vec<u8>)]) -> Result<Head, StoreError> {
        PgStore::append_verbatim(self, events)
    }
    fn prepare_step(
        &self,
        after: Head,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> Prepared {
        Prepared::Postgres(pg::PreparedRows::new(after, run, time, events, writes))
    }
    fn commit_step(&self, step: Prepared) -> Result<Head, StoreError> {
        match step {
            Prepared::Postgres(rows) => self.commit_prepared(rows),
            Prepared::Sled(_) => Err(corrupt(
                "a step",
                "prepared for a store in a directory, committed to PostgreSQL",
            )),
        }
    }
}

fn corrupt(at: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        at: at.into(),
        reason: reason.into(),
    }
}

/// Bytes written through one set of sled handles before the store lets go of them and opens
/// the database again (see the module documentation).
pub const LET_GO_EVERY: u64 = 96 << 20;

/// sled's handles to one database.
struct Sled {
    db: sled::Db,
    log: sled::Tree,
    orgs: sled::Tree,
}

impl Sled {
    fn of(db: sled::Db) -> Result<Sled, StoreError> {
        let log = db.open_tree("log")?;
        let orgs = db.open_tree("orgs")?;
        Ok(Sled { db, log, orgs })
    }
}

/// The sled-backed store. One process at a time; within it, appends are serialized.
pub struct SledStore {
    /// sled's handles, shared with each call (and each iterator) that uses them; or why
    /// opening the database again failed. Dropped with the store, unless sled failed a write
    /// (see [`Drop`]).
    sled: RwLock<Result<Arc<Sled>, String>>,
    /// Bytes written through the handles since they were opened.
    written: AtomicU64,
    /// After how many bytes written the store lets go of its handles.
    let_go_every: AtomicU64,
    /// How many times the handles were opened.
    opened: AtomicU32,
    /// Set when sled returned an error from a write or a flush.
    failed: AtomicBool,
    /// The database directory, where free space is measured (`None`: in memory).
    dir: Option<std::path::PathBuf>,
    head: Mutex<Head>,
    /// Set when the end of the log did not decode at open: why.
    torn: Mutex<Option<String>>,
    /// Held while the store is open through [`SledStore::open_locked`].
    _lock: Option<StoreLock>,
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Dropping sled's last handle flushes whatever is still buffered. After a write error
        // (a full disk, say) sled 0.34 can wait in that flush for ever, which once left roster
        // hanging with the store locked. The process is about to report the error and exit,
        // and the operating system closes the files: what was not flushed was never reported
        // as done, and the next open recovers the log's last durable prefix.
        let handles = self.sled.get_mut().unwrap_or_else(|p| p.into_inner());
        let sled = std::mem::replace(handles, Err(String::new()));
        if *self.failed.get_mut() {
            std::mem::forget(sled);
        }
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// A store whose last writes were torn (a full disk, sled failing a write) still opens:
    /// its head is then unknown and every write is refused until [`SledStore::cut_torn_tail`]
    /// has cut the log back to its last verified prefix (or `verify` names the damage).
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        tail::remove_unfinished_snapshots(dir);
        Self::from_db(open_db(dir)?, Some(dir.to_owned()))
    }

    /// Opens the store kept in `root` (the database in `root/db`), first taking the store lock
    /// so that no other roster process uses it at the same time. `holder` says who holds it.
    /// A directory that is not a roster store is never written into (see [`Opening`]).
    pub fn open_locked(
        root: &Path,
        holder: &str,
        opening: Opening,
    ) -> Result<SledStore, StoreError> {
        check_store_dir(root, opening)?;
        let lock = StoreLock::acquire(root, holder)?;
        let mut store = Self::open(&root.join("db"))?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// A store that lives in memory only; for tests and benchmarks.
    pub fn temporary() -> Result<SledStore, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?, None)
    }

    fn from_db(db: sled::Db, dir: Option<std::path::PathBuf>) -> Result<SledStore, StoreError> {
        let store = SledStore {
            sled: RwLock::new(Ok(Arc::new(Sled::of(db)?))),
            written: AtomicU64::new(0),
            let_go_every: AtomicU64::new(LET_GO_EVERY),
            opened: AtomicU32::new(1),
            failed: AtomicBool::new(false),
            dir,
            head: Mutex::new(Head::default()),
            torn: Mutex::new(None),
            _lock: None,
        };
        match store.stored_head() {
            Ok(head) => *store.head.lock().unwrap_or_else(|p| p.into_inner()) = head,
            Err(StoreError::Corrupt { at, reason }) => {
                *store.torn.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("{at}: {reason}"))
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// The last stored event, read from the last chunk (or the last single-event key).
    fn stored_head(&self) -> Result<Head, StoreError> {
        let legacy = match self.sled()?.log.scan_prefix([EVENT]).next_back() {
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
        let chunked = match self.sled()?.log.scan_prefix([CHUNK]).next_back() {
            None => Head::default(),
            Some(kv) => {
                let (k, v) = kv?;
                let raw = decode_chunk(seq_of_event_key(&k)?, &v)?;
                raw.last()
                    .map(|e| Head {
                        seq: e.seq,
                        hash: e.hash,
                    })
                    .unwrap_or_default()
            }
        };
        Ok(if chunked.seq > legacy.seq {
            chunked
        } else {
            legacy
        })
    }

    /// sled's answer to a write or a flush. An error marks the store failed: it is then never
    /// flushed again, not even when dropped (see [`Drop`]).
    fn wrote<T>(&self, result: sled::Result<T>) -> Result<T, StoreError> {
        result.map_err(|e| {
            self.failed.store(true, Ordering::SeqCst);
            StoreError::Sled(e)
        })
    }

    /// Refuses a write while the tail is torn: it would chain onto an unknown head.
    fn check_writable(&self) -> Result<(), StoreError> {
        match self.torn.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(why) => Err(corrupt(
                "the end of the log",
                format!("{why}; it must be cut back before anything is written"),
            )),
            None => Ok(()),
        }
    }

    /// sled's handles, for one call or one iterator: the store does not let go of them while
    /// a copy is out.
    fn sled(&self) -> Result<Arc<Sled>, StoreError> {
        match &*self.sled.read().unwrap_or_else(|p| p.into_inner()) {
            Ok(sled) => Ok(Arc::clone(sled)),
            Err(why) => Err(StoreError::Closed { why: why.clone() }),
        }
    }

    /// Writes `batch` (`bytes` long) atomically; once the handles wrote [`LET_GO_EVERY`]
    /// bytes, lets go of them (see the module documentation).
    fn write_batch(&self, batch: sled::Batch, bytes: u64) -> Result<(), StoreError> {
        self.wrote(self.sled()?.log.apply_batch(batch))?;
        let written = self.written.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if written >= self.let_go_every.load(Ordering::SeqCst) {
            self.let_go()?;
        }
        Ok(())
    }

    /// Flushes, drops sled's handles and opens the database again, which frees what sled held
    /// of the values written. Only a store on disk does, and only while nothing else holds a
    /// copy of the handles (an iterator being read, say): then it waits for the next write.
    fn let_go(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut handles = self.sled.write().unwrap_or_else(|p| p.into_inner());
        let sled = match std::mem::replace(&mut *handles, Err(String::new())) {
            Ok(sled) if Arc::strong_count(&sled) == 1 => sled,
            other => {
                *handles = other;
                return Ok(());
            }
        };
        if let Err(e) = self.wrote(sled.db.flush()) {
            *handles = Ok(sled);
            return Err(e);
        }
        drop(sled);
        match open_db(dir).and_then(Sled::of) {
            Ok(sled) => {
                *handles = Ok(Arc::new(sled));
                self.written.store(0, Ordering::SeqCst);
                self.opened.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                *handles = Err(e.to_string());
                Err(e)
            }
        }
    }

    /// Lets go of the handles after `bytes` written instead of [`LET_GO_EVERY`]: for tests.
    #[doc(hidden)]
    pub fn let_go_every(&self, bytes: u64) {
        self.let_go_every.store(bytes, Ordering::SeqCst);
    }

    /// How many times the store opened its database: for tests.
    #[doc(hidden)]
    pub fn times_opened(&self) -> u32 {
        self.opened.load(Ordering::SeqCst)
    }

    /// Direct access for tests that play the attacker editing the database behind roster's back.
    #[doc(hidden)]
    pub fn raw_tree(&self) -> RawTree {
        RawTree(self.sled().expect("the database is open"))
    }
}

/// The log's sled tree, for tests; the store does not let go of its handles while one is out.
#[doc(hidden)]
pub struct RawTree(Arc<Sled>);

impl std::ops::Deref for RawTree {
    type Target = sled::Tree;
    fn deref(&self) -> &sled::Tree {
        &self.0.log
    }
}

/// Opens the database in `dir`.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    // sled's page cache defaults to 1 GiB; a log is read sequentially, a small one will do.
    let config = sled::Config::new().path(dir).cache_capacity(64 << 20);
    // sled locks its file too, and a handle just dropped in this process can hold that lock a
    // moment longer (its I/O threads let go of the file after the drop returns). Another
    // process is kept out by the store lock, so a short wait is all it takes.
    let mut waited = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && waited < 100 =>
            {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

impl EventStore for SledStore {
    fn commit_stream(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &mut dyn Iterator<Item = Cow<'_, Event>>,
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError> {
        write::commit_stream(self, run, time, events, writes)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.wrote(self.sled()?.db.flush())?;
        Ok(())
    }

    fn head(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError> {
        read::run_seqs(self, run)
    }

    fn run_ends(&self, run: RunId) -> Result<Option<(Seq, Seq)>, StoreError> {
        read::run_ends(self, run)
    }

    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        read::read_event(self, seq)
    }

    fn visit_run(
        &self,
        run: RunId,
        keep: &(dyn Fn(EventKind) -> bool + Sync),
        visit: &mut dyn FnMut(Envelope),
    ) -> Result<(), StoreError> {
        read::visit_run(self, run, keep, visit)
    }

    fn runs(&self) -> Result<Vec<RunId>, StoreError> {
        read::runs(self)
    }

    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_> {
        read::raw_events(self, from)
    }

    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_> {
        read::run_index(self)
    }
}
