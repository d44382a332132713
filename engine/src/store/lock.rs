//! Who may use a store: the lock that keeps a second roster process out, the marker that says
//! a directory is a roster store, and the refusal to follow a symbolic link where the lock is
//! written.

use std::path::Path;

use super::StoreError;

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
pub(super) fn check_store_dir(root: &Path, opening: Opening) -> Result<(), StoreError> {
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
