//! Server targets: the embedded server kept in the store, and a JSON server state file.
//!
//! A target makes a plan's server changes and records each entry's `Imported` event so
//! that the log and the server can never disagree:
//! - embedded: each batch of entries and the records they change go into one atomic sled batch;
//! - file: the whole new state is written atomically (temp file, fsync, rename, fsync of the
//!   directory) *before* the `Imported` events are appended; if the write fails, the entries
//!   are recorded as failed and nothing on the server changed.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use engine::event::{EntryOutcome, Event, Outcome, Reason, ServerWriteIntended, TargetInfo};
use engine::model::{AuthType, KeyWrite, ServerState};
use engine::store::{LockFile, Prepared};
use engine::{RunId, Store};

use crate::bounded::io_reason;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fixture::{from_json, read_input};
use crate::interrupt::Interrupt;

/// Entries committed per atomic batch by the embedded target.
const BATCH: usize = 1024;

/// What applying a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entries as recorded in `Imported` events.
    pub entries: Vec<EntryOutcome>,
    /// Set when the target failed: the run must end as aborted.
    pub failure: Option<String>,
    /// Optional user attributes the server was seen not to keep
    /// ([`engine::event::RunFinished::learned`]).
    pub learned: Vec<String>,
}

/// `Sync` because a run loads the server on one thread while it reads the tenant on another.
pub trait Target: Sync {
    /// The server, as the run records it.
    fn info(&self) -> TargetInfo;

    /// Takes what earlier runs against this server saw it not keep (`unkept`, see
    /// [`TargetInfo::unkept`]): a server that keeps everything ignores it.
    fn inherit(&mut self, _unkept: &[String]) {}

    /// The server's current directory.
    fn load(&self) -> Result<ServerState>;

    /// The directory's version, if the server keeps one that changes with every write (the
    /// embedded server's, [`SledStore::server_version`]): equal versions, the same directory,
    /// without loading it. `None`: only loading it tells.
    fn version(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Makes the entries' changes on the server, starting from `state` (as loaded), and
    /// records one `Imported` event per entry in `store`.
    fn import(
        &mut self,
        store: &dyn Store,
        run: RunId,
        clock: &dyn Clock,
        state: &mut ServerState,
        entries: Vec<EntryOutcome>,
        stop: &Interrupt,
    ) -> Result<Applied>;
}

/// The server directory kept in the store, beside the log.
pub struct EmbeddedTarget<'s> {
    store: &'s dyn Store,
}

impl<'s> EmbeddedTarget<'s> {
    pub fn new(store: &'s dyn Store) -> Self {
        EmbeddedTarget { store }
    }
}

impl Target for EmbeddedTarget<'_> {
    fn info(&self) -> TargetInfo {
        TargetInfo::Embedded
    }

    fn load(&self) -> Result<ServerState> {
        Ok(self.store.server_state()?)
    }

    fn version(&self) -> Result<Option<String>> {
        Ok(self.store.server_version()?)
    }

    fn import(
        &mut self,
        store: &dyn Store,
        run: RunId,
        clock: &dyn Clock,
        state: &mut ServerState,
        entries: Vec<EntryOutcome>,
        stop: &Interrupt,
    ) -> Result<Applied> {
        let total = entries.len();
        let entries = record_imported(store, run, clock, entries, stop, |batch| {
            batch
                .iter()
                .filter_map(|e| e.op.as_ref())
                .flat_map(|op| state.apply(op))
                .collect()
        })?;
        let failure = (entries.len() < total).then(|| interrupted_after(entries.len(), total));
        Ok(Applied {
            entries,
            failure,
            learned: Vec::new(),
        })
    }
}

/// Why a target stopped when asked to (Ctrl-C): after `done` of `total` entries.
pub fn interrupted_after(done: usize, total: usize) -> String {
    format!(
        "interrupted (Ctrl-C) after {done} of {total} entries were applied and recorded; the other {} were not applied",
        total - done
    )
}

/// Marks `entry` as not applied (`failed`, `WriteFailed`), saying `why`: it changed nothing.
pub fn not_applied(entry: &mut EntryOutcome, why: &str) {
    entry.outcome = Outcome::Failed;
    entry.detail = format!("not applied: {why}");
    entry.reason = Some(Reason::WriteFailed);
    entry.changes.clear();
    entry.op = None;
}

/// A server state JSON file (`--server-file`), locked for the run: an advisory lock beside it
/// (`FILE.lock`, naming its holder) keeps a second roster out, whatever store it uses.
///
/// The file is written once per run, after the run's intent is in the log: a
/// `ChangeIntended` per entry that changes it and a `ServerWriteIntended` with the file's
/// digests before and after, flushed. Killed between the write and the `Imported` events, the
/// next open of the store reads the file and records what it shows as done
/// (`app::run::close_interrupted_runs`). A file that changed since the run read it is not
/// written (another program wrote it; the plan no longer holds).
pub struct FileTarget {
    /// As the admin named it: what the run records.
    path: PathBuf,
    /// Where the file is, a symlink followed: what is read, locked and replaced.
    real: PathBuf,
    /// SHA-256 of the file as the run loaded it.
    loaded: std::sync::Mutex<Option<[u8; 32]>>,
    _lock: LockFile,
}

impl FileTarget {
    /// Targets `path`, which must exist and hold a valid server state; locks it for as long
    /// as the target lives. `holder` says who holds the lock.
    pub fn open(path: &Path, holder: &str) -> Result<FileTarget> {
        let real = std::fs::canonicalize(path).map_err(|e| {
            Error::bad_input(format!(
                "{}: cannot read server state: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
        read_server_file(&real)?;
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock_path = real.with_file_name(format!("{name}.lock"));
        let lock = LockFile::acquire(&lock_path, holder)
            .map_err(|e| {
                Error::io(
                    format!(
                        "cannot lock the server file {} ({})",
                        path.display(),
                        lock_path.display()
                    ),
                    e,
                )
            })?
            .map_err(|holder| Error::InUse {
                path: path.to_owned(),
                holder,
            })?;
        remove_leftovers(&real);
        Ok(FileTarget {
            path: path.to_owned(),
            real,
            loaded: std::sync::Mutex::new(None),
            _lock: lock,
        })
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

impl Target for FileTarget {
    fn info(&self) -> TargetInfo {
        TargetInfo::File {
            path: self.path.display().to_string(),
        }
    }

    fn load(&self) -> Result<ServerState> {
        let bytes = read_input(&self.real, "server state")?;
        let state = parse_server_state(&bytes, &self.path.display().to_string())?;
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(digest(&bytes));
        Ok(state)
    }

    fn import(
        &mut self,
        store: &dyn Store,
        run: RunId,
        clock: &dyn Clock,
        state: &mut ServerState,
        mut entries: Vec<EntryOutcome>,
        stop: &Interrupt,
    ) -> Result<Applied> {
        let changes: Vec<&EntryOutcome> = entries.iter().filter(|e| e.op.is_some()).collect();
        let failure = if changes.is_empty() {
            None
        } else if stop.requested() {
            // The file is written whole or not at all: asked to stop first, it is not.
            Some(format!(
                "{}: interrupted (Ctrl-C) before the server file was written; nothing was changed",
                self.path.display()
            ))
        } else {
            let mut next = state.clone();
            for e in &changes {
                if let Some(op) = &e.op {
                    next.apply(op);
                }
            }
            let mut bytes = serde_json::to_vec_pretty(&next).map_err(|e| {
                Error::io("cannot encode the server records", std::io::Error::other(e))
            })?;
            bytes.push(b'\n');
            let loaded = *self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::fs::read(&self.real).map(|b| digest(&b)).ok();
            if loaded.is_none() || now != loaded {
                Some(format!(
                    "{}: the server file changed since this run read it (another program wrote it), so it was not written; run the import again",
                    self.path.display()
                ))
            } else {
                // The intent first, flushed: what this run is about to write, and how to tell
                // afterwards whether it did.
                let intent = ServerWriteIntended {
                    path: self.real.display().to_string(),
                    before: hex::encode(loaded.unwrap_or_default()),
                    after: hex::encode(digest(&bytes)),
                    changes: changes.len() as u32,
                };
                let mut intended = changes
                    .iter()
                    .map(|e| Cow::Owned(Event::ChangeIntended((*e).clone())))
                    .chain(std::iter::once(Cow::Owned(Event::ServerWriteIntended(
                        intent,
                    ))));
                store.commit_stream(run, clock.now(), &mut intended, &[])?;
                store.flush()?;
                match write_bytes_atomic(&self.real, &bytes) {
                    Ok(()) => {
                        *state = next;
                        None
                    }
                    Err(e) => Some(format!(
                        "{}: cannot write the server file: {}",
                        self.path.display(),
                        io_reason(&e)
                    )),
                }
            }
        };
        if let Some(why) = &failure {
            for entry in entries.iter_mut().filter(|e| e.op.is_some()) {
                not_applied(entry, why);
            }
        }
        // Every entry is recorded, applied or failed: the file was written whole or not at all.
        let entries = record_imported(store, run, clock, entries, &Interrupt::default(), |_| {
            Vec::new()
        })?;
        Ok(Applied {
            entries,
            failure,
            learned: Vec::new(),
        })
    }
}

/// Records `entries` as `Imported` events, [`BATCH`] to a commit, each commit with the server
/// records `writes_for` gives for its entries. The entries are moved into the events and back,
/// not copied, and stay in the one buffer they came in (taken from its front, put back at its
/// end): on a large tenant they are most of what a run holds.
///
/// Each commit is encoded on this thread while a second one writes the commit before it to
/// the store, in order: every commit is still one atomic batch, and a failed write stops the rest.
fn record_imported(
    store: &dyn Store,
    run: RunId,
    clock: &dyn Clock,
    entries: Vec<EntryOutcome>,
    stop: &Interrupt,
    mut writes_for: impl FnMut(&[EntryOutcome]) -> Vec<KeyWrite>,
) -> Result<Vec<EntryOutcome>> {
    let total = entries.len();
    let mut ring = std::collections::VecDeque::from(entries);
    std::thread::scope(|scope| {
        let (to_writer, prepared) = std::sync::mpsc::sync_channel::<Prepared>(2);
        let writer = scope.spawn(move || -> Result<()> {
            for step in prepared {
                store.commit_step(step)?;
            }
            Ok(())
        });
        let mut head = store.head();
        let mut done = 0;
        while done < total {
            tracing::info!(target: "roster::progress", "applying: {done} of {total} entries");
            if stop.requested() {
                break;
            }
            let n = BATCH.min(total - done);
            let batch: Vec<EntryOutcome> = ring.drain(..n).collect();
            let writes = writes_for(&batch);
            let events: Vec<Event> = batch.into_iter().map(Event::Imported).collect();
            let step = store.prepare_step(head, run, clock.now(), &events, &writes);
            head = step.head();
            if to_writer.send(step).is_err() {
                // The writer stopped at an error: it says which when joined.
                break;
            }
            ring.extend(events.into_iter().filter_map(|e| match e {
                Event::Imported(entry) => Some(entry),
                _ => None,
            }));
            done += n;
        }
        drop(to_writer);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        // Stopped early, the entries not applied are still at the front: they were neither
        // applied nor recorded.
        ring.drain(..total - done);
        Ok::<(), Error>(())
    })?;
    Ok(Vec::from(ring))
}

/// Reads a server state file; errors name the file and the field.
pub fn read_server_file(path: &Path) -> Result<ServerState> {
    let bytes = read_input(path, "server state")?;
    parse_server_state(&bytes, &path.display().to_string())
}

pub fn parse_server_state(bytes: &[u8], origin: &str) -> Result<ServerState> {
    let state: ServerState = from_json(
        bytes,
        origin,
        "server state ({\"users\": [...], \"groups\": [...]})",
    )?;
    // Only an Entra user may carry an Entra link: a local or Windows account with one would
    // be taken over by the next import, silently becoming an Entra account.
    if let Some(u) = state
        .users()
        .find(|u| u.auth_type != AuthType::Entra && u.entra_id.is_some())
    {
        return Err(Error::bad_input(format!(
            "{origin}: user {} has authType {} and an entraId: only an Entra ID user is linked to Entra ID; remove entraId and tenantId, or set authType to entra",
            u.login,
            serde_json::to_value(u.auth_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )));
    }
    Ok(state)
}

/// Writes `state` to `path` atomically: a reader (or a crash) sees the old file or the new
/// one, never a torn one. The file keeps its permissions.
pub fn write_server_file(path: &Path, state: &ServerState) -> std::io::Result<()> {
    write_json_atomic(path, state)
}

/// The temporary files written beside `path` are named `.NAME.roster-XXXXXX.tmp`: a process
/// killed while writing leaves one, which the next run that locks `path` removes.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.roster-")
}

/// Removes what killed writes of `path` left beside it (see [`temp_prefix`]); called with the
/// file's lock held, so none of them is being written.
fn remove_leftovers(path: &Path) {
    let (Some(dir), prefix) = (path.parent(), temp_prefix(path)) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `value` as pretty JSON to `path` atomically (see [`write_bytes_atomic`]).
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_bytes_atomic(path, &bytes)
}

/// Writes `bytes` to `path`: temporary file in the same directory, fsync, rename over the
/// target, fsync of the directory. An existing file keeps its permissions.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // A write that would fill the disk is refused before anything is written: a full disk
    // can fail other programs too, and the old file stays as it was either way.
    if let Ok(st) = rustix::fs::statvfs(&dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let need = bytes.len() as u64 + (1 << 20);
        if free < need {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "not enough free disk space in {}: the new file needs {} KiB, {} KiB are free",
                    dir.display(),
                    need >> 10,
                    free >> 10
                ),
            ));
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    match std::fs::metadata(path) {
        Ok(meta) => tmp.as_file().set_permissions(meta.permissions())?,
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
        }
    }
    // fdatasync: the data and the size, all a renamed new file needs.
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The new file is in place from here on: a failure to sync the directory only means the
    // rename might not survive a power loss, so it is told, not turned into "not applied".
    if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(
            "the server file {} was replaced, but its directory could not be synced: {}",
            path.display(),
            crate::bounded::io_reason(&e)
        );
    }
    Ok(())
}
