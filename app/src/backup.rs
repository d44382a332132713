//! A store as one file: `backup` writes the whole store (the log verbatim, orgs, the embedded
//! server); `restore` puts a backup into a new, empty store, all or nothing.

use std::path::Path;

use adapters::clock::Clock;
use engine::event::Event;
use engine::model::ServerState;

use engine::{SledStore, Store};
use replay::backup::{read_backup, write_backup, BackupError, Contents, Part};
use replay::VerifyOptions;

use crate::error::{Error, Result};

/// Writes the whole store to `path`, replaced atomically (a temporary file beside it, synced,
/// renamed). The log first records the backup (`BackupTaken`, by `by`: the digest of the orgs
/// and server records it holds), and the backup's log ends with that event.
pub fn backup(store: &dyn Store, clock: &dyn Clock, by: &str, path: &Path) -> Result<Contents> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let io = |e: std::io::Error| {
        Error::Adapters(adapters::Error::io(
            format!("cannot write the backup {}", path.display()),
            e,
        ))
    };
    let tmp = tempfile::Builder::new()
        .prefix(".roster-backup-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    let taken = replay::backup::backup_taken(store, by)?;
    let (_, at) = crate::recover::record_alone(store, clock, Event::BackupTaken(taken), &[])?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let contents = write_backup(store, at, &mut writer)?;
    let tmp = writer.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(contents)
}

/// What a restore put into the store.
pub struct Restored {
    pub contents: Contents,
    pub verified: replay::Verified,
    /// Whether the log says what the embedded server holds (it then holds exactly that).
    pub server_said: bool,
}

/// Checks the backup at `path` whole, then — if `store` is empty — restores it, and verifies
/// the log it restored. An edited or truncated backup restores nothing: every line is checked
/// against the digests the chain holds, and the server records against what the backup's own
/// log says the server holds (replayed in a scratch store first).
pub fn restore(
    store_of: impl FnOnce() -> Result<Box<dyn Store>>,
    path: &Path,
    noted_head: Option<&replay::verify::NotedHead>,
) -> Result<(Box<dyn Store>, Restored)> {
    let open = || -> Result<std::io::BufReader<std::fs::File>> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::bad_input(format!(
                "{}: cannot read the backup: {}",
                path.display(),
                adapters::bounded::io_reason(&e)
            ))
        })?;
        if !meta.is_file() {
            return Err(Error::bad_input(format!(
                "{}: not a regular file; expected a file `roster backup` wrote",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| {
            Error::bad_input(format!(
                "{}: cannot read the backup: {}",
                path.display(),
                adapters::bounded::io_reason(&e)
            ))
        })?;
        Ok(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let named = |e: BackupError| match e {
        BackupError::Bad { .. } => Error::bad_input(format!("{}: {e}", path.display())),
        other => Error::from(other),
    };
    // First the whole file is checked; only then is the store opened and anything written.
    let contents = read_backup(&mut open()?, None).map_err(named)?;
    if let Some(noted) = noted_head {
        let ends_there =
            engine::event::Hash::from_hex(&contents.head.hash).is_some_and(|h| noted.matches(&h));
        if !ends_there {
            return Err(Error::bad_input(format!(
                "{}: its log ends at {} (event {}), not at the chain head noted when the backup was taken; this is not that backup, or it was changed; nothing was restored",
                path.display(),
                contents.head.hash,
                contents.head.seq
            )));
        }
    }
    // The backup's log, in a scratch store, says what the server must hold.
    let scratch = SledStore::temporary()?;
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    read_backup(
        &mut open()?,
        Some(&mut |part| {
            match part {
                Part::Events(events) => {
                    scratch.append_verbatim(&events)?;
                }
                Part::Org { .. } => {}
                Part::ServerUser(u) => users.push(*u),
                Part::ServerGroup(g) => groups.push(g),
            }
            Ok(())
        }),
    )
    .map_err(named)?;
    let server = ServerState::from_parts(users, groups).map_err(|e| {
        Error::bad_input(format!(
            "{}: the server records do not fit together: {e}",
            path.display()
        ))
    })?;
    let derived = replay::server::derive(&scratch).map_err(|e| {
        Error::bad_input(format!(
            "{}: the backup's log cannot say what the server holds: {e}",
            path.display()
        ))
    })?;
    drop(scratch);
    if let Some(difference) = derived.first_difference(&server) {
        return Err(Error::bad_input(format!(
            "{}: the server records are not the server the backup's log says ({difference}): the backup was changed; nothing was restored",
            path.display()
        )));
    }
    let store = store_of()?;
    if store.head().seq.0 > 0
        || !store.orgs()?.is_empty()
        || store.server_state()?.users().len() > 0
    {
        return Err(Error::bad_input(
            "the store is not empty; restore into a new store: --store NEW_DIR",
        ));
    }
    read_backup(
        &mut open()?,
        Some(&mut |part| {
            match part {
                Part::Events(events) => {
                    store.append_verbatim(&events)?;
                }
                Part::Org { name, settings } => store.put_org(&name, &settings)?,
                Part::ServerUser(_) | Part::ServerGroup(_) => {}
            }
            Ok(())
        }),
    )
    .map_err(named)?;
    store.replace_server_state(&server)?;
    store.flush()?;
    let verified = replay::verify(&*store, &VerifyOptions::default())?;
    Ok((
        store,
        Restored {
            contents,
            verified,
            server_said: derived != replay::server::Derived::Unknown,
        },
    ))
}
