//! The event log in PostgreSQL: the same records, sequence numbers and hash chain as sled's,
//! in a database a team shares (docs/postgres.md has the schema and the locking).
//!
//! One row per event (`roster_events`: seq, run, hash, the JSON record exactly as hashed),
//! and beside it the embedded server's records under the keys sled uses (`roster_kv`). A step
//! — its events and the records they change — is one transaction: all of it or none of it,
//! durable once committed (so [`EventStore::flush`] has nothing left to do). The run a row is
//! filed under is the run index: `verify` checks it against the record, as it checks sled's.
//!
//! Writers are serialised by a session-level advisory lock held for as long as the store is
//! open to write (`roster_writer` names the holder, as the sled store's lock file does);
//! readers take no lock, and PostgreSQL never blocks them behind a writer. A writer whose
//! connection is lost (killed, unplugged) loses the lock with it, and its open transaction is
//! rolled back: the run it was in is unfinished, and closed as aborted by the next writer.
//!
//! Org settings are rows of `roster_orgs`; the embedded server's records, its version and the
//! mirrors are kept under sled's keys in `roster_kv` (`records`).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, GenericClient, NoTls};

use crate::event::{encode_record, Envelope, Event, EventKind, Hash};
use crate::ids::{RunId, Seq};
use crate::model::KeyWrite;

use super::read::run_event;
use super::server::record_writes;
use super::{corrupt, EventStore, Head, Opening, RawEvent, StoreError};

mod credentials;
mod records;
mod tls;

use postgres::config::SslMode;
use tls::Tls;

type Row = postgres::Row;

/// The schema this roster creates and reads; a database whose schema is newer is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Advisory lock keys ("rost", "rosu"), each paired with a hash of the connection's schema: a
/// store is its schema's tables, and two stores in one database do not share a lock.
const WRITER_LOCK: i32 = 0x726f_7374;
const SCHEMA_LOCK: i32 = 0x726f_7375;

/// Rows written after which a flush brings the tables' statistics up to date.
const ANALYZE_AFTER: u64 = 10_000;

/// Events read per query: reads stream, whatever the log's length.
const PAGE: i64 = 4096;

/// Version 1 of the schema (docs/postgres.md).
const SCHEMA_V1: &str = "
CREATE TABLE roster_events (
    seq    bigint PRIMARY KEY CHECK (seq > 0),
    run    uuid   NOT NULL,
    hash   bytea  NOT NULL,
    record bytea  NOT NULL
);
CREATE INDEX roster_events_by_run ON roster_events (run, seq);
CREATE TABLE roster_kv (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE roster_orgs (
    name   text PRIMARY KEY,
    config bytea NOT NULL
);
CREATE TABLE roster_writer (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    holder text NOT NULL,
    since  timestamptz NOT NULL DEFAULT now()
);
CREATE VIEW roster_events_json AS
    SELECT seq, run, encode(hash, 'hex') AS hash, convert_from(record, 'UTF8')::jsonb AS record
    FROM roster_events;
INSERT INTO roster_schema (version) VALUES (1);
";

/// The PostgreSQL-backed store. One connection; a writer holds the writer lock on it.
pub struct PgStore {
    client: Mutex<Client>,
    head: Mutex<Head>,
    /// Holds the writer lock.
    writer: bool,
    /// Rows written since the tables' statistics were last brought up to date.
    written: AtomicU64,
    /// Where the database is — host, port and database, never the user or a password — for
    /// messages.
    shown: String,
}

/// How long a writer waits for the lock of one that may have just ended (see
/// [`PgStore::connect_writer`]).
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl PgStore {
    /// Connects to the store in the database at `url` to read: never waits for a writer,
    /// never blocks one, never writes. A database without roster's tables holds no store.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::open(url, Opening::Existing, false)
    }

    /// Connects to write: takes the writer lock, naming `holder`, or says who holds it once it
    /// is still held after [`LOCK_GRACE`] (a writer that has just ended may hold it until the
    /// server has ended its session). The
    /// lock is the connection's: it goes when the store is dropped or the connection is lost.
    /// With [`Opening::CreateIfMissing`], roster's tables are created in a database that has
    /// none.
    pub fn connect_writer(
        url: &str,
        holder: &str,
        opening: Opening,
    ) -> Result<PgStore, StoreError> {
        let store = Self::open(url, opening, true)?;
        {
            let mut client = store.client();
            let shown = &store.shown;
            let mut try_lock = || -> Result<bool, StoreError> {
                Ok(client
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                        &[&WRITER_LOCK],
                    )
                    .map_err(|e| failed(shown, "could not be locked", &e))?
                    .get(0))
            };
            // A writer that has just ended still holds the lock until the server has ended its
            // session, which it does after the connection closes, not with it: a moment's
            // grace, and the lock is only in use if it is still held after it.
            let grace = std::time::Instant::now() + LOCK_GRACE;
            let mut taken = try_lock()?;
            while !taken && std::time::Instant::now() < grace {
                std::thread::sleep(std::time::Duration::from_millis(25));
                taken = try_lock()?;
            }
            if !taken {
                let holder = client
                    .query_opt("SELECT holder FROM roster_writer", &[])
                    .ok()
                    .flatten()
                    .map(|row| crate::text::printable(&row.get::<_, String>(0)).into_owned())
                    .unwrap_or_else(|| "another roster process".into());
                return Err(StoreError::InUse {
                    dir: shown.clone(),
                    holder,
                });
            }
            client
                .execute(
                    "INSERT INTO roster_writer (holder) VALUES ($1)
                     ON CONFLICT (one) DO UPDATE SET holder = EXCLUDED.holder, since = now()",
                    &[&holder],
                )
                .map_err(|e| failed(shown, "could not be locked", &e))?;
            // The log as it is now that no one else writes to it.
            let head =
                stored_head(&mut *client).map_err(|e| failed(shown, "could not be read", &e))?;
            *store.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
        }
        Ok(store)
    }

    fn open(url: &str, opening: Opening, writer: bool) -> Result<PgStore, StoreError> {
        let (config, shown, tls) = parse(url)?;
        let mut client = connect(&config, &shown, &tls)?;
        match opening {
            Opening::CreateIfMissing => migrate(&mut client, &shown)?,
            Opening::Existing => check_schema(&mut client, &shown)?,
        }
        let head = stored_head(&mut client).map_err(|e| failed(&shown, "could not be read", &e))?;
        Ok(PgStore {
            client: Mutex::new(client),
            head: Mutex::new(head),
            writer,
            written: AtomicU64::new(0),
            shown,
        })
    }

    /// Where the database is, for messages: host, port and database name only.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Refuses a write from a store opened to read.
    fn writable(&self) -> Result<(), StoreError> {
        match self.writer {
            true => Ok(()),
            false => Err(StoreError::Postgres {
                why: format!(
                    "{} was opened to read: writing needs the writer lock",
                    self.shown
                ),
            }),
        }
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, what: &str, e: &postgres::Error) -> StoreError {
        failed(&self.shown, what, e)
    }

    /// One page of stored events from `from` on.
    fn raw_page(&self, from: Seq) -> Result<Vec<RawEvent>, StoreError> {
        let rows = self
            .client()
            .query(
                "SELECT seq, hash, record FROM roster_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&seq_param(from)?, &PAGE],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        rows.iter().map(raw_event).collect()
    }
}

/// The connection settings in `url`, and how the database is named in messages.
fn parse(url: &str) -> Result<(postgres::Config, String, Tls), StoreError> {
    let unreadable = |why: String| StoreError::BadUrl { why };
    let (rest, tls) = tls::split(url)
        .map_err(|why| unreadable(format!("asks for what roster cannot do: {why}")))?;
    let mut config: postgres::Config = rest.parse().map_err(|_| {
        unreadable("could not be read: give one like postgres://USER@HOST:PORT/DATABASE (the password in $PGPASSWORD or ~/.pgpass, or in the URL)".into())
    })?;
    credentials::complete(&mut config);
    config.ssl_mode(match tls {
        Tls::Off => SslMode::Disable,
        Tls::Verified { .. } => SslMode::Require,
    });
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let shown = format!(
        "postgres://{host}:{port}/{}",
        config.get_dbname().unwrap_or("")
    );
    Ok((config, crate::text::printable(&shown).into_owned(), tls))
}

/// Connects with `config`, over TLS when the URL asked for it.
fn connect(config: &postgres::Config, shown: &str, tls: &Tls) -> Result<Client, StoreError> {
    let connected = match tls {
        Tls::Off => config.connect(NoTls),
        Tls::Verified { roots } => {
            let settings =
                tls::client_config(roots.as_ref()).map_err(|why| StoreError::Postgres {
                    why: format!("{shown} could not be reached over TLS: {why}"),
                })?;
            config.connect(tls::MakeRustls(std::sync::Arc::new(settings)))
        }
    };
    connected.map_err(|e| failed(shown, "could not be reached", &e))
}

/// A PostgreSQL failure in one line: what the store could not do, and the server's (or the
/// network's) reason — never the URL's user or password.
fn failed(shown: &str, what: &str, e: &postgres::Error) -> StoreError {
    // The server's own message, else what failed and why (a refused connection, a name
    // that does not resolve, a password refused).
    let reason = match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_owned(),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    };
    StoreError::Postgres {
        why: format!(
            "{shown} {what}: {}",
            crate::text::printable(reason.lines().next().unwrap_or_default())
        ),
    }
}

/// Creates roster's tables in a database without them, or checks that the schema is one this
/// roster reads. Two rosters opening a new database at once create them once.
fn migrate(client: &mut Client, shown: &str) -> Result<(), StoreError> {
    let fail = |e: postgres::Error| failed(shown, "could not be prepared", &e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&SCHEMA_LOCK],
    )
    .map_err(fail)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS roster_schema (version integer NOT NULL)")
        .map_err(fail)?;
    let version: Option<i32> = tx
        .query_one("SELECT max(version) FROM roster_schema", &[])
        .map_err(fail)?
        .get(0);
    match version {
        None => tx.batch_execute(SCHEMA_V1).map_err(fail)?,
        Some(version) => known_version(version, shown)?,
    }
    tx.commit().map_err(fail)
}

/// Checks that the database holds a store whose schema this roster reads; creates nothing.
fn check_schema(client: &mut Client, shown: &str) -> Result<(), StoreError> {
    let fail = |e: postgres::Error| failed(shown, "could not be read", &e);
    let exists: bool = client
        .query_one("SELECT to_regclass('roster_schema') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    let version: Option<i32> = match exists {
        true => client
            .query_one("SELECT max(version) FROM roster_schema", &[])
            .map_err(fail)?
            .get(0),
        false => None,
    };
    match version {
        None => Err(StoreError::NoStore {
            dir: shown.to_owned(),
        }),
        Some(version) => known_version(version, shown),
    }
}

fn known_version(version: i32, shown: &str) -> Result<(), StoreError> {
    match version {
        SCHEMA_VERSION => Ok(()),
        newer if newer > SCHEMA_VERSION => Err(StoreError::Postgres {
            why: format!("{shown} holds roster's schema version {newer}, newer than this roster reads ({SCHEMA_VERSION}); use a newer roster"),
        }),
        older => Err(StoreError::Postgres {
            why: format!(
                "{shown} holds roster's schema version {older}, which this roster does not know"
            ),
        }),
    }
}

/// How a PostgreSQL URL is shown: host, port and database — never the user or a password.
pub fn shown_url(url: &str) -> String {
    match parse(url) {
        Ok((_, shown, _)) => shown,
        Err(_) => "a PostgreSQL URL that does not read".into(),
    }
}

/// Whether `location` names a PostgreSQL database rather than a directory.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The last stored event, or the genesis head of an empty log.
fn stored_head(client: &mut impl GenericClient) -> Result<Head, postgres::Error> {
    let row = client.query_opt(
        "SELECT seq, hash FROM roster_events ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    Ok(row
        .and_then(|row| {
            let seq: i64 = row.get(0);
            let hash: Vec<u8> = row.get(1);
            Some(Head {
                seq: Seq(u64::try_from(seq).ok()?),
                hash: Hash(hash.try_into().ok()?),
            })
        })
        .unwrap_or_default())
}

fn seq_param(seq: Seq) -> Result<i64, StoreError> {
    i64::try_from(seq.0).map_err(|_| corrupt(format!("event {seq}"), "beyond the log's range"))
}

/// A stored row as the chain sees it; a row no roster wrote (a hash of another length, a
/// sequence number below one) is named.
fn raw_event(row: &postgres::Row) -> Result<RawEvent, StoreError> {
    let seq: i64 = row.get(0);
    let at = || format!("event {seq}");
    let seq = u64::try_from(seq)
        .map(Seq)
        .map_err(|_| corrupt(at(), "a negative sequence number"))?;
    let hash: Vec<u8> = row.get(1);
    let hash = Hash(
        hash.try_into()
            .map_err(|_| corrupt(at(), "its hash is not 32 bytes"))?,
    );
    let record: Vec<u8> = row.get(2);
    Ok(RawEvent {
        seq,
        hash,
        record: record.into(),
    })
}

/// Puts or removes keys of `roster_kv` in a step's transaction.
fn write_records(
    tx: &mut postgres::Transaction<'_>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<(), postgres::Error> {
    let (mut put_keys, mut put_values, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in writes {
        match value {
            Some(value) => {
                put_keys.push(key);
                put_values.push(value);
            }
            None => removed.push(key),
        }
    }
    if !removed.is_empty() {
        tx.execute("DELETE FROM roster_kv WHERE key = ANY($1)", &[&removed])?;
    }
    if !put_keys.is_empty() {
        tx.execute(
            "INSERT INTO roster_kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&put_keys, &put_values],
        )?;
    }
    Ok(())
}

/// A failure inside a step, before the store names its database.
enum StepError {
    Db(postgres::Error),
    Store(StoreError),
}

impl StepError {
    fn named(self, store: &PgStore) -> StoreError {
        match self {
            StepError::Db(e) => store.failed("could not be written", &e),
            StepError::Store(e) => e,
        }
    }
}

impl From<postgres::Error> for StepError {
    fn from(e: postgres::Error) -> Self {
        StepError::Db(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

/// Appends `events` after `after` in the step's transaction, each record chained to the one
/// before, streamed to the server as they are encoded; returns the head they reach.
fn copy_events(
    tx: &mut postgres::Transaction<'_>,
    after: Head,
    run: RunId,
    time: DateTime<Utc>,
    events: &mut dyn Iterator<Item = Cow<'_, Event>>,
) -> Result<Head, StepError> {
    let mut next = after;
    let mut rows = copy_in(tx)?;
    for event in events {
        next.seq = next.seq.next();
        let record = encode_record(next.seq, run, &time, &event);
        next.hash = Hash::chain(&next.hash, &record);
        rows.write(&[&seq_param(next.seq)?, &run.0, &&next.hash.0[..], &record])?;
    }
    rows.finish()?;
    Ok(next)
}

/// A step encoded and chained, not yet written ([`PgStore::commit_prepared`] writes it): its
/// rows, and the keys its server records change.
pub struct PreparedRows {
    after: Head,
    head: Head,
    run: RunId,
    rows: Vec<(Head, Vec<u8>)>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl PreparedRows {
    pub(super) fn new(
        after: Head,
        run: RunId,
        time: DateTime<Utc>,
        events: &[Event],
        writes: &[KeyWrite],
    ) -> PreparedRows {
        let mut head = after;
        let rows = events
            .iter()
            .map(|event| {
                head.seq = head.seq.next();
                let record = encode_record(head.seq, run, &time, event);
                head.hash = Hash::chain(&head.hash, &record);
                (head, record)
            })
            .collect();
        PreparedRows {
            after,
            head,
            run,
            rows,
            writes: record_writes(writes),
        }
    }

    /// The head the log reaches once this step is written.
    pub fn head(&self) -> Head {
        self.head
    }
}

impl PgStore {
    /// Writes a prepared step in one transaction, if the log still ends where it was prepared
    /// to follow.
    pub fn commit_prepared(&self, step: PreparedRows) -> Result<Head, StoreError> {
        self.writable()?;
        let mut client = self.client();
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if *head != step.after {
            return Err(corrupt(
                format!("event {}", head.seq),
                format!(
                    "a step prepared to follow event {} was committed after event {}",
                    step.after.seq, head.seq
                ),
            ));
        }
        let fail = |e: postgres::Error| self.failed("could not be written", &e);
        let mut tx = client.transaction().map_err(fail)?;
        self.check_head(&mut tx, *head)?;
        let run = step.run;
        copy_rows(
            &mut tx,
            step.rows
                .iter()
                .map(|(h, record)| (run, *h, record.as_slice())),
        )
        .map_err(|e| e.named(self))?;
        let rows = (step.rows.len() + step.writes.len()) as u64;
        write_records(&mut tx, step.writes).map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.written.fetch_add(rows, Ordering::SeqCst);
        *head = step.head;
        Ok(step.head)
    }
}

/// Appends stored events as they are (a restore): each with its run and head.
fn copy_rows<'r>(
    tx: &mut postgres::Transaction<'_>,
    events: impl Iterator<Item = (RunId, Head, &'r [u8])>,
) -> Result<(), StepError> {
    let mut rows = copy_in(tx)?;
    for (run, head, record) in events {
        rows.write(&[&seq_param(head.seq)?, &run.0, &&head.hash.0[..], &record])?;
    }
    rows.finish()?;
    Ok(())
}

fn copy_in<'t>(
    tx: &'t mut postgres::Transaction<'_>,
) -> Result<BinaryCopyInWriter<'t>, postgres::Error> {
    let sink = tx.copy_in("COPY roster_events (seq, run, hash, record) FROM STDIN BINARY")?;
    Ok(BinaryCopyInWriter::new(
        sink,
        &[Type::INT8, Type::UUID, Type::BYTEA, Type::BYTEA],
    ))
}

impl EventStore for PgStore {
    fn commit_stream(
        &self,
        run: RunId,
        time: DateTime<Utc>,
        events: &mut dyn Iterator<Item = Cow<'_, Event>>,
        writes: &[KeyWrite],
    ) -> Result<Head, StoreError> {
        self.writable()?;
        let mut client = self.client();
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let fail = |e: postgres::Error| self.failed("could not be written", &e);
        let mut tx = client.transaction().map_err(fail)?;
        self.check_head(&mut tx, *head)?;
        let next = copy_events(&mut tx, *head, run, time, events).map_err(|e| e.named(self))?;
        let records = record_writes(writes);
        let rows = next.seq.0 - head.seq.0 + records.len() as u64;
        write_records(&mut tx, records).map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.written.fetch_add(rows, Ordering::SeqCst);
        *head = next;
        Ok(next)
    }

    /// A step is durable once its transaction commits: nothing is left to flush. After many
    /// rows, the tables' statistics are brought up to date, so that the next reads (a run read
    /// by its index) are planned for what the tables now hold, not for what they held.
    fn flush(&self) -> Result<(), StoreError> {
        if self.written.load(Ordering::SeqCst) >= ANALYZE_AFTER {
            self.client()
                .batch_execute("ANALYZE roster_events, roster_kv")
                .map_err(|e| self.failed("could not be analysed", &e))?;
            self.written.store(0, Ordering::SeqCst);
        }
        Ok(())
    }

    /// A writer's head is the one it keeps (it alone appends); a reader asks the database, as
    /// other writers append (and keeps the last it was told if the database cannot say).
    fn head(&self) -> Head {
        let stored = match self.writer {
            true => None,
            false => stored_head(&mut *self.client()).ok(),
        };
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stored) = stored {
            *head = stored;
        }
        *head
    }

    fn shared(&self) -> bool {
        true
    }

    fn visit_run(
        &self,
        run: RunId,
        keep: &(dyn Fn(EventKind) -> bool + Sync),
        visit: &mut dyn FnMut(Envelope),
    ) -> Result<(), StoreError> {
        let mut after = 0i64;
        loop {
            let rows = self
                .client()
                .query(
                    "SELECT seq, hash, record FROM roster_events
                     WHERE run = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&run.0, &after, &PAGE],
                )
                .map_err(|e| self.failed("could not be read", &e))?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.get(0);
            for row in &rows {
                if let Some(env) = run_event(raw_event(row)?, run, keep)? {
                    visit(env);
                }
            }
        }
    }

    fn run_seqs(&self, run: RunId) -> Result<Vec<Seq>, StoreError> {
        let rows = self
            .client()
            .query(
                "SELECT seq FROM roster_events WHERE run = $1 ORDER BY seq",
                &[&run.0],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        Ok(rows
            .iter()
            .map(|row| Seq(row.get::<_, i64>(0).max(0) as u64))
            .collect())
    }

    fn run_ends(&self, run: RunId) -> Result<Option<(Seq, Seq)>, StoreError> {
        let row = self
            .client()
            .query_one(
                "SELECT (SELECT seq FROM roster_events WHERE run = $1 ORDER BY seq LIMIT 1),
                        (SELECT seq FROM roster_events WHERE run = $1 ORDER BY seq DESC LIMIT 1)",
                &[&run.0],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        let seq = |i: usize| row.get::<_, Option<i64>>(i).map(|s| Seq(s.max(0) as u64));
        Ok(seq(0).zip(seq(1)))
    }

    fn read_event(&self, seq: Seq) -> Result<Option<Envelope>, StoreError> {
        let row = self
            .client()
            .query_opt(
                "SELECT seq, hash, record FROM roster_events WHERE seq = $1",
                &[&seq_param(seq)?],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        row.map(|row| raw_event(&row)?.decode()).transpose()
    }

    fn runs(&self) -> Result<Vec<RunId>, StoreError> {
        let rows = self
            .client()
            // One index probe per run, not a scan of every event.
            .query(
                "WITH RECURSIVE r(run) AS (
                     (SELECT run FROM roster_events ORDER BY run LIMIT 1)
                     UNION ALL
                     SELECT (SELECT e.run FROM roster_events e WHERE e.run > r.run ORDER BY e.run LIMIT 1)
                     FROM r WHERE r.run IS NOT NULL)
                 SELECT run FROM r WHERE run IS NOT NULL",
                &[],
            )
            .map_err(|e| self.failed("could not be read", &e))?;
        let mut runs: Vec<RunId> = rows.iter().map(|row| RunId(row.get(0))).collect();
        runs.sort();
        Ok(runs)
    }

    fn raw_events(&self, from: Seq) -> Box<dyn Iterator<Item = Result<RawEvent, StoreError>> + '_> {
        let mut next = Some(from);
        let mut page: VecDeque<RawEvent> = VecDeque::new();
        Box::new(std::iter::from_fn(move || {
            if page.is_empty() {
                let from = next.take()?;
                match self.raw_page(from) {
                    Ok(rows) => {
                        if rows.len() as i64 == PAGE {
                            next = rows.last().map(|e| e.seq.next());
                        }
                        page.extend(rows);
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            page.pop_front().map(Ok)
        }))
    }

    fn run_index(&self) -> Box<dyn Iterator<Item = Result<(RunId, Seq), StoreError>> + '_> {
        let mut after = Some(0i64);
        let mut page: VecDeque<(RunId, Seq)> = VecDeque::new();
        Box::new(std::iter::from_fn(move || {
            if page.is_empty() {
                let from = after.take()?;
                let rows = self.client().query(
                    "SELECT run, seq FROM roster_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&from, &PAGE],
                );
                match rows {
                    Ok(rows) => {
                        if rows.len() as i64 == PAGE {
                            after = rows.last().map(|row| row.get(1));
                        }
                        page.extend(rows.iter().map(|row| {
                            (RunId(row.get(0)), Seq(row.get::<_, i64>(1).max(0) as u64))
                        }));
                    }
                    Err(e) => return Some(Err(self.failed("could not be read", &e))),
                }
            }
            page.pop_front().map(Ok)
        }))
    }
}
