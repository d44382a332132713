//! The embedded server's records, beside the log in the same tree: read whole, replaced whole
//! (`roster server load`, in batches under a marker), and written record by record in the same
//! atomic batch as the `Imported` events that change them.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::ids::RunId;
use crate::model::{KeyWrite, ServerGroup, ServerState, ServerUser};
use crate::store::EventStore;

use super::keys::{group_key, user_key, GROUP, LOADING, SERVER_VERSION, USER};
use super::space::RECORD_DISK_BYTES;
use super::{corrupt, SledStore, StoreError};

/// Server records per batch when the whole directory is replaced.
const LOAD_BATCH: usize = 4096;

impl SledStore {
    /// The embedded server's directory as stored; refused while a `server load` is unfinished.
    pub fn server_state(&self) -> Result<ServerState, StoreError> {
        self.refuse_unfinished_load()?;
        // Each record decoded as the directory is built from it: a large directory is never
        // held twice, as records and as the state made of them.
        let (mut users_failed, mut groups_failed) = (None, None);
        let state = ServerState::from_parts(
            self.decoded::<ServerUser>(USER, "server user", &mut users_failed)?,
            self.decoded::<ServerGroup>(GROUP, "server group", &mut groups_failed)?,
        );
        // A record that did not read ended its listing: what was built of the rest is not it.
        match users_failed.or(groups_failed) {
            Some(failed) => Err(failed),
            None => Ok(state?),
        }
    }

    /// The server records stored under `prefix`, decoded one by one; the first that does not
    /// read ends them, left in `failed`.
    fn decoded<'a, T: serde::de::DeserializeOwned + 'a>(
        &self,
        prefix: u8,
        what: &'a str,
        failed: &'a mut Option<StoreError>,
    ) -> Result<impl Iterator<Item = T> + 'a, StoreError> {
        let records = self.sled()?.log.scan_prefix([prefix]);
        Ok(records.map_while(move |kv| {
            let record = kv
                .map_err(StoreError::from)
                .and_then(|(k, v)| decode_record(&k, &v, what));
            record.map_err(|e| *failed = Some(e)).ok()
        }))
    }

    /// What one user's page needs of the embedded server's directory: that user (read by its
    /// login alone, if there is one) and every group — not every user (`server show` of one
    /// user on a large directory). Refused, as the whole directory is, while a `server load`
    /// is unfinished.
    pub fn server_user_and_groups(&self, login: &str) -> Result<ServerState, StoreError> {
        self.refuse_unfinished_load()?;
        let key = user_key(login);
        let user = match self.sled()?.log.get(&key)? {
            Some(v) => Some(decode_record::<ServerUser>(&key, &v, "server user")?),
            None => None,
        };
        let groups = self.records::<ServerGroup>(GROUP, "server group")?;
        Ok(ServerState::from_parts(user, groups)?)
    }

    /// The server records stored under `prefix`, decoded.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        prefix: u8,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.sled()?
            .log
            .scan_prefix([prefix])
            .map(|kv| {
                let (k, v) = kv?;
                decode_record(&k, &v, what)
            })
            .collect()
    }

    /// The directory is refused while a `server load` is unfinished: half of it is not it.
    fn refuse_unfinished_load(&self) -> Result<(), StoreError> {
        match self.sled()?.log.contains_key([LOADING])? {
            true => Err(StoreError::LoadUnfinished),
            false => Ok(()),
        }
    }

    /// Replaces the embedded server's directory (`roster server load`, an administrative
    /// reset that is not part of any run). Written in batches of [`LOAD_BATCH`] records, so a
    /// large directory is never held twice in memory: a marker written first and removed last
    /// says whether a load was interrupted, and until a load completes the directory is
    /// refused as incomplete ([`SledStore::server_state`]) rather than half-used.
    pub fn replace_server_state(&self, state: &ServerState) -> Result<(), StoreError> {
        self.load_server_state(state, None)
    }

    /// [`SledStore::replace_server_state`], recorded: `record` (`ServerLoaded`, under a run id
    /// of its own) is committed and flushed once the load is marked begun and before the
    /// directory is touched — so the log never misses a load that changed the directory, and
    /// a load it records but that did not finish leaves the directory refused until one does.
    pub fn load_server_state(
        &self,
        state: &ServerState,
        record: Option<(RunId, DateTime<Utc>, &Event)>,
    ) -> Result<(), StoreError> {
        let records = (state.users().len() + state.groups().len()) as u64;
        self.check_space(
            records.saturating_mul(RECORD_DISK_BYTES),
            "the server's directory",
        )?;
        let mut begun = sled::Batch::default();
        begun.insert(&[LOADING], &records.to_le_bytes()[..]);
        begun.insert(&[SERVER_VERSION], &new_version()[..]);
        self.wrote(self.sled()?.log.apply_batch(begun))?;
        if let Some((run, at, event)) = record {
            self.commit_stream(run, at, &mut std::iter::once(Cow::Borrowed(event)), &[])?;
            self.flush()?;
        }
        let old: Vec<sled::IVec> = self
            .sled()?
            .log
            .scan_prefix([USER])
            .chain(self.sled()?.log.scan_prefix([GROUP]))
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for keys in old.chunks(LOAD_BATCH) {
            let mut batch = sled::Batch::default();
            keys.iter().for_each(|k| batch.remove(k));
            self.wrote(self.sled()?.log.apply_batch(batch))?;
        }
        drop(old);
        let mut writes = Vec::with_capacity(LOAD_BATCH);
        let mut records = state
            .users()
            .map(|u| KeyWrite::PutUser(std::sync::Arc::new(u.clone())))
            .chain(
                state
                    .groups()
                    .map(|g| KeyWrite::PutGroup(std::sync::Arc::new(g.clone()))),
            )
            .peekable();
        while records.peek().is_some() {
            writes.clear();
            writes.extend(records.by_ref().take(LOAD_BATCH));
            let mut batch = sled::Batch::default();
            let bytes = add_writes(&mut batch, &writes);
            self.write_batch(batch, bytes)?;
        }
        self.wrote(self.sled()?.log.remove([LOADING]))?;
        Ok(())
    }
}

impl SledStore {
    /// The embedded server's version (hex): a new one with every batch that writes a server
    /// record, so an equal version means an unchanged directory. `None` in a store whose
    /// server was last written by a roster that kept no version.
    pub fn server_version(&self) -> Result<Option<String>, StoreError> {
        Ok(self.sled()?.log.get([SERVER_VERSION])?.map(hex::encode))
    }
}

/// A server record stored under `key`, decoded; damage names the record.
pub(super) fn decode_record<T: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| {
        corrupt(
            format!("{what} {}", String::from_utf8_lossy(&key[1..])),
            e.to_string(),
        )
    })
}

/// A server version never given before.
pub(super) fn new_version() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Adds the server records `writes` change to `batch`, with a new server version when there is
/// any (see [`record_writes`]); returns the bytes it adds.
pub(super) fn add_writes(batch: &mut sled::Batch, writes: &[KeyWrite]) -> u64 {
    let mut bytes = 0;
    for (key, value) in record_writes(writes) {
        bytes += (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    bytes
}

/// The keys `writes` put (with their values) or remove, with a new server version first when
/// there is any: what every backend writes beside a step's events. A record written more than
/// once (a group listing several users renamed in one batch) is encoded once, as the last
/// write leaves it: a step is applied whole, so the earlier writes would never be seen.
pub(super) fn record_writes(writes: &[KeyWrite]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::with_capacity(writes.len() + 1);
    if !writes.is_empty() {
        out.push((vec![SERVER_VERSION], Some(new_version().to_vec())));
    }
    // From the last write back, each key once: what the step leaves.
    let mut written = std::collections::HashSet::with_capacity(writes.len());
    for w in writes.iter().rev() {
        let key = match w {
            KeyWrite::PutUser(u) => user_key(&u.login),
            KeyWrite::DeleteUser { login } => user_key(login),
            KeyWrite::PutGroup(g) => group_key(&g.name),
            KeyWrite::DeleteGroup { name } => group_key(name),
        };
        if !written.insert(key.clone()) {
            continue;
        }
        let value = match w {
            KeyWrite::PutUser(u) => Some(serde_json::to_vec(u).expect("server users serialize")),
            KeyWrite::PutGroup(g) => Some(serde_json::to_vec(g).expect("server groups serialize")),
            KeyWrite::DeleteUser { .. } | KeyWrite::DeleteGroup { .. } => None,
        };
        out.push((key, value));
    }
    out
}
