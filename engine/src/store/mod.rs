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
//! Keys in the `log` tree:
//! - `c` + first seq (u64 BE)      → chunk: version byte 2, count (u32 LE), then the events
//!   compressed as one LZ4 block (`lz4_flex`, uncompressed size prepended as u32 LE); once
//!   uncompressed, per event: seq (u64 LE), hash (32 bytes), length (u32 LE), JSON record (see
//!   `event::encode_record`). Version 1 chunks hold the same events uncompressed, and are read
//!   as they are. JSON records shrink about fourfold, and sled keeps recently written values in
//!   memory: compression is what keeps a large import's memory and disk writes down.
//! - `R` + run (16 bytes) + first seq → count (u32 LE): the run index, one entry per chunk
//! - `u` + case-folded login       → JSON `ServerUser`
//! - `g` + case-folded group name  → JSON `ServerGroup`
//!
//! Stores written before chunks (roster 0.1 development builds) hold one event per key, and
//! are read as they are: `e` + seq → hash + record, and `r` + run + seq → empty.

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::event::{decode_record, encode_record, DecodeError, Envelope, Event, Hash};
use crate::ids::{fold_case, RunId, Seq};
use crate::model::{KeyWrite, ServerGroup, ServerState, ServerStateError, ServerUser};

mod tail;
pub use tail::TailCut;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// (sled's error is said in words, not chained as a cause: its own text adds nothing.)
    #[error("the store's database {}", sled_reason(.0))]
    Sled(sled::Error),
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
    #[error("the embedded server is incomplete: a `roster server load` was interrupted before it finished; run it again")]
    LoadUnfinished,
    #[error("there is no roster store in {dir}; give the store with --store DIR (or $ROSTER_STORE), or add an org first to start one")]
    NoStore { dir: String },
    #[error("{dir} is not a roster store: {why}")]
    NotAStore { dir: String, why: String },
    #[error("not enough free disk space for the store in {dir}: {what} needs about {need}, {free} free; free some space or move the store (--store DIR), then run again")]
    DiskFull {
        dir: String,
        what: String,
        need: Bytes,
        free: Bytes,
    },
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

/// A size in bytes, shown in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = self.0 as f64 / f64::from(1u32 << 20);
        if mib < 10.0 {
            write!(f, "{mib:.1} MiB")
        } else {
            write!(f, "{mib:.0} MiB")
        }
    }
}

/// Keeps other roster processes out of a store while this one uses it: an advisory lock on
/// `DIR/lock`, which also names its holder. The operating system drops the lock when the
/// process ends, however it ends, so a crash never leaves the store locked.
#[derive(Debug)]
pub struct StoreLock {
    _file: LockFile,
}

impl StoreLock {
    /// Takes the lock of the store in `dir` (which must exist).
    pub fn acquire(dir: &Path, holder: &str) -> Result<StoreLock, StoreError> {
        let fail = |e: std::io::Error| StoreError::Lock {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        match LockFile::acquire(&dir.join("lock"), holder).map_err(fail)? {
            Ok(file) => Ok(StoreLock { _file: file }),
            Err(holder) => Err(StoreError::InUse {
                dir: dir.display().to_string(),
                holder,
            }),
        }
    }
}

/// An advisory lock on a file that names its holder (`PID n (what)`), held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: std::fs::File,
}

impl LockFile {
    /// Takes the lock on `path` (created if needed), or says who holds it. A symbolic link
    /// there is refused, never followed: the holder's name would be written into its target.
    pub fn acquire(path: &Path, holder: &str) -> std::io::Result<Result<LockFile, String>> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("{} is a symbolic link; roster never follows one where it writes its lock: remove it", path.display()),
                    )
                } else {
                    e
                }
            })?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.seek(std::io::SeekFrom::Start(0))?;
                write!(file, "PID {} ({holder})", std::process::id())?;
                Ok(Ok(LockFile { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.take(200).read_to_string(&mut who);
                let who = crate::text::printable(who.trim()).into_owned();
                Ok(Err(if who.is_empty() {
                    "another roster process".into()
                } else {
                    who
                }))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Whether opening a store may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A command that records its first data (an org, a server, a restore) starts a store in
    /// a new or empty directory.
    CreateIfMissing,
    /// Every other command needs the store to exist, and never creates one: an auditor's
    /// `verify` of a mistyped path must not answer "0 events, all verified".
    Existing,
}

/// The file that says a directory is a roster store; roster writes into no other directory.
pub const MARKER: &str = "roster-store";
const MARKER_TEXT: &str =
    "This directory is a roster store: its event log, embedded server and org settings.\n";
/// What a store held before stores were marked (so a store of an earlier roster is adopted).
const UNMARKED_STORE: [&str; 3] = ["db", "lock", "tokens"];

/// Checks `root` is a roster store (or, with [`Opening::CreateIfMissing`], starts one there),
/// before anything — the lock included — is written into it.
fn check_store_dir(root: &Path, opening: Opening) -> Result<(), StoreError> {
    let dir = || root.display().to_string();
    let not_a_store = |why: &str| StoreError::NotAStore {
        dir: dir(),
        why: why.to_owned(),
    };
    let io = |e: std::io::Error| StoreError::Lock {
        dir: dir(),
        reason: e.to_string(),
    };
    let entries: Vec<String> = match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(e)),
        Ok(meta) if meta.is_dir() => std::fs::read_dir(root)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::metadata(root) {
            Ok(target) if target.is_dir() => std::fs::read_dir(root)
                .map_err(io)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            _ => return Err(not_a_store(
                "it is a link to something that is not a directory; give a directory with --store",
            )),
        },
        Ok(_) => {
            return Err(not_a_store(
                "it is a file, not a directory; give a directory with --store",
            ))
        }
    };
    if entries.iter().any(|e| e == MARKER) {
        return Ok(());
    }
    let earlier_roster = root.join("db").join("conf").is_file()
        && entries.iter().all(|e| UNMARKED_STORE.contains(&e.as_str()));
    match (entries.is_empty(), earlier_roster, opening) {
        (true, _, Opening::Existing) => Err(StoreError::NoStore { dir: dir() }),
        (false, false, _) => Err(not_a_store(
            "it holds files that are not a roster store's (no roster-store file); roster never writes into another tool's directory: give a new or empty directory with --store",
        )),
        _ => {
            std::fs::create_dir_all(root).map_err(io)?;
            std::fs::write(root.join(MARKER), MARKER_TEXT).map_err(io)?;
            Ok(())
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

    /// The run's events in order, decoded and upcast.
    fn read_run(&self, run: RunId) -> Result<Vec<Envelope>, StoreError> {
        self.read_run_where(run, &|_| true)
    }

    /// The run's events whose type `keep` accepts, in order; the others are not decoded.
    fn read_run_where(
        &self,
        run: RunId,
        keep: &(dyn Fn(&str) -> bool + Sync),
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
        keep: &(dyn Fn(&str) -> bool + Sync),
        visit: &mut dyn FnMut(Envelope),
    ) -> Result<(), StoreError>;

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

/// Events per chunk, at most.
pub const CHUNK_EVENTS: usize = 1024;
/// Chunks per sled batch for steps that write no server records (see `commit_stream`).
pub const MAX_BATCH_CHUNKS: usize = 16;
/// Bytes per chunk, about (a chunk is closed once it holds this much).
const CHUNK_BYTES: usize = 1 << 20;
/// No chunk's events take more than this uncompressed: it is closed at [`CHUNK_BYTES`], and
/// its last event is bounded by the largest record an import can write.
const MAX_CHUNK_PLAIN_BYTES: usize = 1 << 30;
/// Chunks as first written: events uncompressed (still read).
const CHUNK_PLAIN: u8 = 1;
/// Chunks as written now: the events after the header are one LZ4 block.
const CHUNK_LZ4: u8 = 2;
const CHUNK: u8 = b'c';
/// What sled writes to disk for a byte of value, at most (measured about 1.7).
const DISK_FACTOR: u64 = 3;
/// Room always left free for sled to finish: a last event, a flush, a snapshot.
const RESERVE: u64 = 8 << 20;
/// A write this small (a run's last event, an org setting) may use all but the last MiB.
const SMALL_WRITE: u64 = 64 << 10;
const SMALL_RESERVE: u64 = 1 << 20;
/// Disk per event and per embedded-server record, as a run's estimate (measured: 180-250 and
/// about 760 bytes on generated tenants of 20,000 users).
const EVENT_DISK_BYTES: u64 = 320;
const RECORD_DISK_BYTES: u64 = 1024;
/// Threads decoding a run's chunks in `visit_run`.
const DECODE_LANES: usize = 2;
const RUN_CHUNKS: u8 = b'R';

fn chunk_key(first: Seq) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&first.0.to_be_bytes());
    k
}

fn run_chunk_key(run: RunId, first: Seq) -> [u8; 25] {
    let mut k = [RUN_CHUNKS; 25];
    k[1..17].copy_from_slice(run.as_bytes());
    k[17..].copy_from_slice(&first.0.to_be_bytes());
    k
}

/// Builds chunk values as events are encoded.
struct ChunkWriter {
    first: Seq,
    count: u32,
    /// The events, uncompressed.
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(first: Seq) -> Self {
        ChunkWriter {
            first,
            count: 0,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    fn push(&mut self, seq: Seq, hash: &Hash, record: &[u8]) {
        self.buf.extend_from_slice(&seq.0.to_le_bytes());
        self.buf.extend_from_slice(&hash.0);
        self.buf
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(record);
        self.count += 1;
    }

    fn full(&self) -> bool {
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
    fn finish(self, run: RunId, batch: &mut sled::Batch) -> u64 {
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
fn decode_chunk(first: Seq, value: &sled::IVec) -> Result<Vec<RawEvent>, StoreError> {
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
fn encode_chunk(events: &[(Seq, Hash, Vec<u8>)]) -> Vec<u8> {
    let mut w = ChunkWriter::new(events.first().map_or(Seq(0), |e| e.0));
    for (seq, hash, record) in events {
        w.push(*seq, hash, record);
    }
    w.value()
}

const EVENT: u8 = b'e';
const RUN: u8 = b'r';
const USER: u8 = b'u';
/// Present while `server load` replaces the embedded server (the records it will write).
const LOADING: u8 = b'L';
/// Server records per batch when the whole directory is replaced.
const LOAD_BATCH: usize = 4096;
const GROUP: u8 = b'g';

fn event_key(seq: Seq) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
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

/// An event stored on its own (the layout before chunks).
fn parse_event_value(seq: Seq, value: &sled::IVec) -> Result<RawEvent, StoreError> {
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
        record: value.subslice(32, value.len() - 32),
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

/// sled's handles to one database.
struct Sled {
    db: sled::Db,
    log: sled::Tree,
    orgs: sled::Tree,
}

/// The sled-backed store. One process at a time; within it, appends are serialized.
pub struct SledStore {
    /// Dropped with the store, unless sled failed a write (see [`Drop`]).
    sled: ManuallyDrop<Sled>,
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
        if !*self.failed.get_mut() {
            // SAFETY: `sled` is dropped here, once, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.sled) }
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
        // sled's page cache defaults to 1 GiB; a log is read sequentially, a small one will do.
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 << 20)
            .open()?;
        Self::from_db(db, Some(dir.to_owned()))
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
        let log = db.open_tree("log")?;
        let orgs = db.open_tree("orgs")?;
        let store = SledStore {
            sled: ManuallyDrop::new(Sled { db, log, orgs }),
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
        let legacy = match self.sled.log.scan_prefix([EVENT]).next_back() {
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
        let chunked = match self.sled.log.scan_prefix([CHUNK]).next_back() {
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

    /// Free bytes where the database lives (`None`: in memory, or not measurable).
    fn free_space(&self) -> Option<u64> {
        let dir = self.dir.as_deref()?;
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Refuses to write `bytes` (about) when the disk would keep less than sled needs to finish
    /// cleanly. sled 0.34 misbehaves when a write fails (it can tear the end of its log, or
    /// wait for ever in a flush), so roster never lets it run out of space: a run stops at the
    /// last batch that fits, with room left to record why and to flush.
    fn check_space(&self, bytes: u64, what: &str) -> Result<(), StoreError> {
        let Some(free) = self.free_space() else {
            return Ok(());
        };
        let reserve = if bytes < SMALL_WRITE {
            SMALL_RESERVE
        } else {
            RESERVE
        };
        let need = bytes.saturating_mul(DISK_FACTOR).saturating_add(reserve);
        if free < need {
            return Err(StoreError::DiskFull {
                dir: self
                    .dir
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                what: what.to_owned(),
                need: Bytes(need),
                free: Bytes(free),
            });
        }
        Ok(())
    }

    /// Refuses a run early when the disk cannot hold what it will write: about `events`
    /// events and `server_records` embedded-server records (sizes measured on large tenants,
    /// with room to spare; BENCHMARKS.md).
    pub fn check_room_for_run(&self, events: u64, server_records: u64) -> Result<(), StoreError> {
        let bytes = events
            .saturating_mul(EVENT_DISK_BYTES)
            .saturating_add(server_records.saturating_mul(RECORD_DISK_BYTES));
        // The estimate is already what lands on disk: no factor on top, only the reserve.
        self.check_space(bytes / DISK_FACTOR, "this run")
    }

    /// The embedded server's directory as stored; refused while a `server load` is unfinished.
    pub fn server_state(&self) -> Result<ServerState, StoreError> {
        if self.sled.log.contains_key([LOADING])? {
            return Err(StoreError::LoadUnfinished);
        }
        let users = self.records::<ServerUser>(USER, "server user")?;
        let groups = self.records::<ServerGroup>(GROUP, "server group")?;
        Ok(ServerState::from_parts(users, groups)?)
    }

    /// The server records stored under `prefix`, decoded.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        prefix: u8,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.sled
            .log
            .scan_prefix([prefix])
            .map(|kv| {
                let (k, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| {
                    corrupt(
                        format!("{what} {}", String::from_utf8_lossy(&k[1..])),
                        e.to_string(),
                    )
                })
            })
            .collect()
    }

    /// Replaces the embedded server's directory (`roster server load`, an administrative
    /// reset that is not part of any run). Written in batches of [`LOAD_BATCH`] records, so a
    /// large directory is never held twice in memory: a marker written first and removed last
    /// says whether a load was interrupted, and until a load completes the directory is
    /// refused as incomplete ([`SledStore::server_state`]) rather than half-used.
    pub fn replace_server_state(&self, state: &ServerState) -> Result<(), StoreError> {
        let records = (state.users().len() + state.groups().len()) as u64;
        self.check_space(
            records.saturating_mul(RECORD_DISK_BYTES),
            "the server's directory",
        )?;
        self.wrote(self.sled.log.insert([LOADING], &records.to_le_bytes()[..]))?;
        let old: Vec<sled::IVec> = self
            .sled
            .log
            .scan_prefix([USER])
            .chain(self.sled.log.scan_prefix([GROUP]))
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for keys in old.chunks(LOAD_BATCH) {
            let mut batch = sled::Batch::default();
            keys.iter().for_each(|k| batch.remove(k));
            self.wrote(self.sled.log.apply_batch(batch))?;
        }
        drop(old);
        let mut writes = Vec::with_capacity(LOAD_BATCH);
        let mut records = state
            .users()
            .map(|u| KeyWrite::PutUser(Box::new(u.clone())))
            .chain(state.groups().map(|g| KeyWrite::PutGroup(g.clone())))
            .peekable();
        while records.peek().is_some() {
            writes.clear();
            writes.extend(records.by_ref().take(LOAD_BATCH));
            let mut batch = sled::Batch::default();
            add_writes(&mut batch, &writes);
            self.wrote(self.sled.log.apply_batch(batch))?;
        }
        self.wrote(self.sled.log.remove([LOADING]))?;
        Ok(())
    }

    pub fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        self.check_space(config.len() as u64, "the org's settings")?;
        self.wrote(self.sled.orgs.insert(name.as_bytes(), config))?;
        Ok(())
    }

    pub fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.sled.orgs.get(name.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.sled
            .orgs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    pub fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .wrote(self.sled.orgs.remove(name.as_bytes()))?
            .is_some())
    }

    /// Direct access for tests that play the attacker editing the database behind roster's back.
    #[doc(hidden)]
    pub fn raw_tree(&self) -> &sled::Tree {
        &self.sled.log
    }
}

/// Adds the server records `writes` change to `batch`; returns the bytes it adds.
fn add_writes(batch: &mut sled::Batch, writes: &[KeyWrite]) -> u64 {
    let mut bytes = 0;
    for w in writes {
        let (key, value) = match w {
            KeyWrite::PutUser(u) => (
                user_key(&u.login),
                Some(serde_json::to_vec(u).expect("server users serialize")),
            ),
            KeyWrite::DeleteUser { login } => (user_key(login), None),
            KeyWrite::PutGroup(g) => (
                group_key(&g.name),
                Some(serde_json::to_vec(g).expect("server groups serialize")),
            ),
            KeyWrite::DeleteGroup { name } => (group_key(name), None),
        };
        bytes += (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    bytes
}

/// Encodes a step's events one by one: each record chained to the one before, packed into
/// chunks, the chunks into a sled batch.
struct StepEncoder {
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
    fn new(after: Head, run: RunId, time: DateTime<Utc>) -> Self {
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

    fn push(&mut self, event: &Event) {
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

    fn finish(mut self, writes: &[KeyWrite]) -> PreparedStep {
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
        self.wrote(self.sled.log.apply_batch(step.batch))?;
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
            let header = crate::event::decode_header(record)
                .map_err(|source| StoreError::Decode { seq: *seq, source })?;
            let expected = Hash::chain(&next.hash, record);
            if *seq != next.seq.next() || header.seq != *seq || expected != *hash {
                return Err(corrupt(
                    format!("event {seq}"),
                    format!("does not follow event {} in the chain", next.seq),
                ));
            }
            next = Head {
                seq: *seq,
                hash: *hash,
            };
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
        self.wrote(self.sled.log.apply_batch(batch))?;
        *head = next;
        Ok(next)
    }

    /// The events of one run-index range (a chunk, or one old single-event key) that `keep`
    /// accepts, decoded and checked against the index.
    fn decode_range(
        &self,
        run: RunId,
        (first, count): (Seq, u32),
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::with_capacity(count as usize);
        let raws: Vec<RawEvent> = if let Some(v) = self.sled.log.get(event_key(first))? {
            vec![parse_event_value(first, &v)?]
        } else {
            let v = self.sled.log.get(chunk_key(first))?.ok_or_else(|| {
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
            let header =
                crate::event::decode_header(&raw.record).map_err(|source| StoreError::Decode {
                    seq: raw.seq,
                    source,
                })?;
            // The record must say it is the event the index puts here. (Its decoded envelope
            // reads seq and run from the same bytes with the same parsers: checked once.)
            if header.run != run || header.seq != raw.seq {
                return Err(corrupt(
                    format!("event {}", raw.seq),
                    format!(
                        "indexed for run {run} but records run {} seq {}",
                        header.run, header.seq
                    ),
                ));
            }
            if keep(&header.event_type) {
                out.push(raw.decode()?);
            }
        }
        Ok(out)
    }

    /// The chunk holding `seq`, if any: its first seq and its events.
    fn chunk_of(&self, seq: Seq) -> Result<Option<Vec<RawEvent>>, StoreError> {
        let Some(kv) = self
            .sled
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
            let Some(kv) = self.sled.log.range(from.clone()..).next() else {
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
            for kv in self.sled.log.scan_prefix(p) {
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
            .sled
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
            .sled
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
            .sled
            .log
            .remove(run_chunk_key(run, first))
            .expect("writable");
    }

    /// Removes the chunk holding `seq`, leaving its run-index entry: what a torn write of a
    /// large value looks like after sled 0.34 recovers from a full disk.
    pub fn drop_chunk(&self, seq: Seq) {
        let (first, _) = self.chunk(seq);
        self.store
            .sled
            .log
            .remove(chunk_key(first))
            .expect("writable");
    }

    /// Writes `bytes` over the chunk holding `seq` (a damaged value).
    pub fn overwrite_chunk(&self, seq: Seq, bytes: &[u8]) {
        let (first, _) = self.chunk(seq);
        self.store
            .sled
            .log
            .insert(chunk_key(first), bytes)
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
            .sled
            .log
            .insert(
                run_chunk_key(run, first),
                &(events.len() as u32).to_le_bytes()[..],
            )
            .expect("writable");
        let later: Vec<(sled::IVec, sled::IVec)> = self
            .store
            .sled
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
                .sled
                .log
                .remove(run_chunk_key(run, first))
                .expect("writable");
            self.store.sled.log.remove(k).expect("writable");
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
        self.check_writable()?;
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut encoder = StepEncoder::new(*head, run, time);
        for event in events {
            encoder.push(&event);
            // A step without server writes may be written in several batches, in order:
            // memory stays bounded however large the tenant. Interrupted half-way, the run
            // is unfinished (closed as aborted on the next open) and nothing was applied.
            if writes.is_empty() && encoder.chunks_in_batch >= MAX_BATCH_CHUNKS {
                let (batch, bytes, reached) = encoder.take_batch();
                self.check_space(bytes, "this run's next step")?;
                self.wrote(self.sled.log.apply_batch(batch))?;
                *head = reached;
            }
        }
        let step = encoder.finish(writes);
        self.check_space(step.bytes, "this run's next step")?;
        self.wrote(self.sled.log.apply_batch(step.batch))?;
        *head = step.head;
        Ok(step.head)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.wrote(self.sled.db.flush())?;
        Ok(())
    }

    fn head(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError> {
        Ok(self
            .run_ranges(run)?
            .into_iter()
            .flat_map(|(first, count)| (0..u64::from(count)).map(move |i| Seq(first.0 + i)))
            .collect())
    }

    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        if let Some(v) = self.sled.log.get(event_key(seq))? {
            return Ok(Some(parse_event_value(seq, &v)?.decode()?));
        }
        match self.chunk_of(seq)? {
            Some(events) => events
                .into_iter()
                .find(|e| e.seq == seq)
                .map(|e| e.decode())
                .transpose(),
            None => Ok(None),
        }
    }

    fn visit_run(
        &self,
        run: RunId,
        keep: &(dyn Fn(&str) -> bool + Sync),
        visit: &mut dyn FnMut(Envelope),
    ) -> Result<(), StoreError> {
        let ranges = self.run_ranges(run)?;
        if ranges.len() < 4 {
            for range in ranges {
                self.decode_range(run, range, keep)?
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
                            let decoded = self.decode_range(run, range, keep);
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
                let decoded = lanes[i % DECODE_LANES].recv().map_err(|_| {
                    corrupt(format!("run {run}"), "a decoding thread stopped early")
                })?;
                decoded?.into_iter().for_each(&mut *visit);
            }
            Ok(())
        })
    }

    fn runs(&self) -> Result<Vec<RunId>, StoreError> {
        let mut runs = self.runs_under(RUN)?;
        runs.extend(self.runs_under(RUN_CHUNKS)?);
        runs.sort();
        runs.dedup();
        Ok(runs)
    }

    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_> {
        let legacy = self
            .sled
            .log
            .range(event_key(from)..=event_key(Seq(u64::MAX)))
            .map(|kv| {
                let (k, v) = kv?;
                parse_event_value(seq_of_event_key(&k)?, &v)
            });
        // The chunk holding `from` starts at or before it.
        let start = match self
            .sled
            .log
            .range(chunk_key(Seq(0))..=chunk_key(from))
            .next_back()
        {
            Some(Ok((k, _))) => seq_of_event_key(&k).unwrap_or(from),
            _ => from,
        };
        let chunks = self
            .sled
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
        Box::new(legacy.chain(chunks))
    }

    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_> {
        let legacy = self.sled.log.scan_prefix([RUN]).map(|kv| {
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
        let chunked = self.sled.log.scan_prefix([RUN_CHUNKS]).flat_map(|kv| {
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
        Box::new(legacy.chain(chunked))
    }
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
