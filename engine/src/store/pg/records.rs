//! What the PostgreSQL store keeps beside its log: org settings (`roster_orgs`), and under the
//! keys sled uses (`roster_kv`) the embedded server's directory, its version and the mirrors.
//! The byte layouts and the mirror's stamp are the sled store's own code (`keys`, `server`,
//! `mirror`); only where they live differs.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::GenericClient;

use crate::event::{Event, Hash};
use crate::ids::{RunId, Seq};
use crate::model::{ServerGroup, ServerState, ServerUser};

use super::super::keys::{group_key, user_key, GROUP, MIRROR, SERVER_VERSION, USER};
use super::super::mirror::{
    mirror_writes, read_mirror, stamp_id, stamp_of, MirrorId, MirrorWrite, StampRead, StoredMirror,
};
use super::super::server::{decode_record, new_version};
use super::super::write::follows;
use super::super::{corrupt, Head, StoreError};
use super::{stored_head, PgStore, Row};

impl PgStore {
    pub fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        self.client()
            .execute(
                "INSERT INTO roster_orgs (name, config) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config",
                &[&name, &config],
            )
            .map_err(|e| self.failed("could not be written", &e))?;
        Ok(())
    }

    pub fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .query_opt("SELECT config FROM roster_orgs WHERE name = $1", &[&name])
            .map_err(|e| self.failed("could not be read", &e))?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Every org, by name (in the byte order sled keeps them in).
    pub fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self
            .client()
            .query("SELECT name, config FROM roster_orgs", &[])
            .map_err(|e| self.failed("could not be read", &e))?;
        let mut orgs: Vec<(String, Vec<u8>)> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        orgs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(orgs)
    }

    pub fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .client()
            .execute("DELETE FROM roster_orgs WHERE name = $1", &[&name])
            .map_err(|e| self.failed("could not be written", &e))?;
        Ok(removed > 0)
    }

    /// The value stored under `key`.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        get(&mut *self.client(), key).map_err(|e| self.failed("could not be read", &e))
    }

    /// The server records stored under `prefix`, decoded, in key order.
    fn records<T: serde::de::DeserializeOwned>(
        &self,
        prefix: u8,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self
            .client()
            .query(
                "SELECT key, value FROM roster_kv WHERE key >= $1 AND key < $2 ORDER BY key",
                &[&vec![prefix], &vec![prefix + 1]],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        rows.iter()
            .map(|row: &Row| {
                let (k, v): (Vec<u8>, Vec<u8>) = (row.get(0), row.get(1));
                decode_record(&k, &v, what)
            })
            .collect()
    }

    /// The embedded server's directory as stored.
    pub fn server_state(&self) -> Result<ServerState, StoreError> {
        let users = self.records::<ServerUser>(USER, "server user")?;
        let groups = self.records::<ServerGroup>(GROUP, "server group")?;
        Ok(ServerState::from_parts(users, groups)?)
    }

    /// One user (by login) and every group: what `server show` of one user reads.
    pub fn server_user_and_groups(&self, login: &str) -> Result<ServerState, StoreError> {
        let key = user_key(login);
        let user = match self.get(&key)? {
            Some(v) => Some(decode_record::<ServerUser>(&key, &v, "server user")?),
            None => None,
        };
        let groups = self.records::<ServerGroup>(GROUP, "server group")?;
        Ok(ServerState::from_parts(user, groups)?)
    }

    /// Replaces the embedded server's directory, with `record` (`ServerLoaded`) appended in
    /// the same transaction: the log never misses a load that changed the directory, and a
    /// load cut off half-way changed nothing (sled's marker of an unfinished load is not
    /// needed here).
    pub fn load_server_state(
        &self,
        state: &ServerState,
        record: Option<(RunId, DateTime<Utc>, &Event)>,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let mut client = self.client();
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let fail = |e: postgres::Error| self.failed("could not be written", &e);
        let mut tx = client.transaction().map_err(fail)?;
        self.check_head(&mut tx, *head)?;
        let reached = match record {
            Some((run, at, event)) => super::copy_events(
                &mut tx,
                *head,
                run,
                at,
                &mut std::iter::once(Cow::Borrowed(event)),
            )
            .map_err(|e| e.named(self))?,
            None => *head,
        };
        tx.execute(
            "DELETE FROM roster_kv WHERE (key >= $1 AND key < $2) OR (key >= $3 AND key < $4)",
            &[&vec![USER], &vec![USER + 1], &vec![GROUP], &vec![GROUP + 1]],
        )
        .map_err(fail)?;
        // Streamed, a record at a time: the directory is never held twice.
        {
            let sink = tx
                .copy_in("COPY roster_kv (key, value) FROM STDIN BINARY")
                .map_err(fail)?;
            let mut rows = BinaryCopyInWriter::new(sink, &[Type::BYTEA, Type::BYTEA]);
            for u in state.users() {
                let value = serde_json::to_vec(u).expect("server users serialize");
                rows.write(&[&user_key(&u.login), &value]).map_err(fail)?;
            }
            for g in state.groups() {
                let value = serde_json::to_vec(g).expect("server groups serialize");
                rows.write(&[&group_key(&g.name), &value]).map_err(fail)?;
            }
            rows.finish().map_err(fail)?;
        }
        // A version even for an empty directory: a load is a change.
        super::write_records(
            &mut tx,
            vec![(vec![SERVER_VERSION], Some(new_version().to_vec()))],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.written.fetch_add(
            state.users().len() as u64 + state.groups().len() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        *head = reached;
        Ok(())
    }

    /// The embedded server's version (hex), as sled's store keeps it.
    pub fn server_version(&self) -> Result<Option<String>, StoreError> {
        Ok(self.get(&[SERVER_VERSION])?.map(hex::encode))
    }

    /// Appends `events` (a run's last step) and writes `mirror`, in one transaction.
    pub fn commit_with_mirror(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        mirror: &MirrorWrite,
    ) -> Result<Head, StoreError> {
        debug_assert_eq!(mirror.run, run);
        self.writable()?;
        let old = self.mirror_stamp(&mirror.id)?.and_then(Result::ok);
        let version = match mirror.settled {
            Some(_) => self.get(&[SERVER_VERSION])?,
            None => None,
        };
        let mut client = self.client();
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let fail = |e: postgres::Error| self.failed("could not be written", &e);
        let mut tx = client.transaction().map_err(fail)?;
        self.check_head(&mut tx, *head)?;
        let reached = super::copy_events(
            &mut tx,
            *head,
            run,
            time,
            &mut events.iter().map(Cow::Borrowed),
        )
        .map_err(|e| e.named(self))?;
        let writes = mirror_writes(mirror, old.as_ref(), reached, version);
        super::write_records(&mut tx, writes).map_err(fail)?;
        tx.commit().map_err(fail)?;
        *head = reached;
        Ok(reached)
    }

    /// The mirror stored under `id`, if any.
    pub fn mirror(&self, id: &MirrorId) -> Result<Option<StoredMirror>, StoreError> {
        read_mirror(id, &|key| self.get(key))
    }

    /// The stamp of the mirror stored under `id`, if any (or why it does not read).
    pub fn mirror_stamp(&self, id: &MirrorId) -> Result<Option<StampRead>, StoreError> {
        let key = super::super::keys::mirror_stamp_key(id);
        Ok(self.get(&key)?.map(|v| stamp_of(&v)))
    }

    /// Every stored mirror's id and stamp (or why its stamp does not read).
    pub fn mirrors(&self) -> Result<Vec<(MirrorId, StampRead)>, StoreError> {
        let rows = self
            .client()
            .query(
                "SELECT key, value FROM roster_kv WHERE key >= $1 AND key < $2 AND length(key) = 18 ORDER BY key",
                &[&vec![MIRROR], &vec![MIRROR + 1]],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let (k, v): (Vec<u8>, Vec<u8>) = (row.get(0), row.get(1));
                stamp_id(&k).map(|id| (id, stamp_of(&v)))
            })
            .collect())
    }

    /// Appends events exactly as another store holds them (a backup being restored): each
    /// must follow the head, its record naming its seq and its hash chaining it to the event
    /// before. Nothing of a call is written unless all of its events pass.
    pub fn append_verbatim(&self, events: &[(Seq, Hash, Vec<u8>)]) -> Result<Head, StoreError> {
        self.writable()?;
        let mut client = self.client();
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *head;
        let mut rows = Vec::with_capacity(events.len());
        for (seq, hash, record) in events {
            let header = follows(&mut next, *seq, *hash, record)?;
            rows.push((header.run, next, record.as_slice()));
        }
        let fail = |e: postgres::Error| self.failed("could not be written", &e);
        let mut tx = client.transaction().map_err(fail)?;
        self.check_head(&mut tx, *head)?;
        super::copy_rows(&mut tx, rows.into_iter()).map_err(|e| e.named(self))?;
        tx.commit().map_err(fail)?;
        *head = next;
        Ok(next)
    }

    /// The log must end where this store last saw it end: anything else was written behind
    /// the writer lock's back, and nothing is chained onto it.
    pub(super) fn check_head(
        &self,
        client: &mut impl GenericClient,
        head: Head,
    ) -> Result<(), StoreError> {
        let stored = stored_head(client).map_err(|e| self.failed("could not be read", &e))?;
        match stored == head {
            true => Ok(()),
            false => Err(corrupt(
                format!("event {}", stored.seq),
                format!(
                    "the log ends at event {} where this store wrote up to event {}: it was written to by someone not holding the writer lock",
                    stored.seq, head.seq
                ),
            )),
        }
    }
}

fn get(client: &mut impl GenericClient, key: &[u8]) -> Result<Option<Vec<u8>>, postgres::Error> {
    Ok(client
        .query_opt("SELECT value FROM roster_kv WHERE key = $1", &[&key])?
        .map(|row| row.get(0)))
}
