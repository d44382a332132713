//! What every use case needs: where the store is, which server a run targets, who runs it,
//! the clock, and how a device-code sign-in is shown.

use std::path::PathBuf;
use std::sync::Arc;

use adapters::auth::Prompt;
use adapters::clock::Clock;
use adapters::graph::GraphStats;
use adapters::interrupt::Interrupt;
use adapters::org::SourceEnv;
use adapters::scim::target::ScimTarget;
use adapters::target::{EmbeddedTarget, FileTarget, Target};
use engine::event::TargetInfo;
use engine::store::Opening;
use engine::{PgStore, SledStore, Store};

use crate::error::Result;
use crate::recover::{recover, Recovered};

#[derive(Clone)]
pub struct Context {
    /// Where the store is: a directory (sled), or a PostgreSQL URL (`postgres://…`).
    pub store_dir: PathBuf,
    /// Where this host keeps what is its own and never shared: the Graph token caches. The
    /// store's directory, or — for a store in PostgreSQL — a directory of this host's.
    pub local_dir: PathBuf,
    /// The server runs change and the `server` commands read.
    pub server: Server,
    /// Where the SCIM token is (`--scim-token-file`); else `ROSTER_SCIM_TOKEN`.
    pub scim_token_file: Option<PathBuf>,
    /// Who holds the locks this process takes (the command, as typed).
    pub holder: String,
    /// Who is recorded as starting runs.
    pub started_by: String,
    pub clock: Arc<dyn Clock + Send + Sync>,
    /// Shows the admin a device-code sign-in (the URL and the code).
    pub prompt: Prompt,
    /// What reading a live tenant has cost so far: a caller can show it while a run reads.
    pub stats: Arc<GraphStats>,
    /// Ctrl-C: asks a run under way to stop at its next safe point.
    pub stop: Interrupt,
}

/// Which server: the embedded one, a server file, or a SCIM service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Server {
    /// The server directory kept in the store.
    #[default]
    Embedded,
    /// A JSON server state file (`--server-file`).
    File(PathBuf),
    /// A SCIM 2.0 service (`--scim URL`).
    Scim(String),
}

impl Server {
    /// The server a run records it targets: what `info` of its target says once opened.
    pub fn of(info: &TargetInfo) -> Server {
        match info {
            TargetInfo::Embedded => Server::Embedded,
            TargetInfo::File { path } => Server::File(PathBuf::from(path)),
            TargetInfo::Scim { url, .. } => Server::Scim(url.clone()),
        }
    }

    /// The target a run against it records (a SCIM URL as given; the target says it as the
    /// service spells it).
    pub fn info(&self) -> TargetInfo {
        match self {
            Server::Embedded => TargetInfo::Embedded,
            Server::File(path) => TargetInfo::File {
                path: path.display().to_string(),
            },
            Server::Scim(url) => TargetInfo::Scim {
                url: url.clone(),
                unkept: Vec::new(),
            },
        }
    }

    /// As the admin would name it on the command line.
    pub fn describe(&self) -> String {
        match self {
            Server::Embedded => "the embedded server (no --server-file or --scim)".into(),
            Server::File(path) => format!("--server-file {}", path.display()),
            Server::Scim(url) => format!("--scim {}", adapters::address::shown(url)),
        }
    }

    /// Whether this names the same server as `other` (a SCIM URL as the service spells it).
    pub fn same_as(&self, other: &Server) -> bool {
        match (self, other) {
            (Server::Scim(a), Server::Scim(b)) => {
                let norm = |u: &str| {
                    adapters::scim::target::parse_url(u)
                        .map(|u| u.to_string())
                        .unwrap_or(u.to_owned())
                };
                norm(a).trim_end_matches('/') == norm(b).trim_end_matches('/')
            }
            _ => self == other,
        }
    }
}

/// A store opened, and what opening it found left over from a process that stopped early.
pub struct Opened {
    pub store: Box<dyn Store>,
    pub recovered: Recovered,
}

impl Context {
    /// Opens the store (with [`Opening::Existing`], only one that exists), taking its lock,
    /// and recovers it: a torn end cut back, interrupted runs closed.
    pub fn open(&self, opening: Opening) -> Result<Opened> {
        let store: Box<dyn Store> = match self.store_url() {
            Some(url) => Box::new(PgStore::connect_writer(url, &self.holder, opening)?),
            None => Box::new(SledStore::open_locked(
                &self.store_dir,
                &self.holder,
                opening,
            )?),
        };
        let recovered = recover(&*store, self.clock.as_ref())?;
        Ok(Opened { store, recovered })
    }

    /// Opens the store for a command that only reads it. A store in PostgreSQL is read
    /// without the writer lock — never waiting for a writer, never blocking one — and is left
    /// as it is (an unfinished run is closed by the next writer); a directory is opened as
    /// [`Context::open`] opens it.
    pub fn open_to_read(&self, opening: Opening) -> Result<Opened> {
        match self.store_url() {
            Some(url) => Ok(Opened {
                store: Box::new(PgStore::connect(url)?),
                recovered: Recovered::default(),
            }),
            None => self.open(opening),
        }
    }

    /// The PostgreSQL URL the store is at, when it is not a directory.
    pub fn store_url(&self) -> Option<&str> {
        self.store_dir
            .to_str()
            .filter(|s| engine::store::is_postgres_url(s))
    }

    /// The store's location as messages show it: a directory, or a PostgreSQL database's
    /// host, port and name (never its user or password).
    pub fn store_shown(&self) -> String {
        match self.store_url() {
            Some(url) => engine::store::shown_url(url),
            None => self.store_dir.display().to_string(),
        }
    }

    /// What a tenant source needs: the token caches, the prompt, the counters.
    pub fn source_env(&self) -> SourceEnv {
        let mut env = SourceEnv::new(&self.local_dir, self.prompt.clone());
        env.stats = self.stats.clone();
        env.stop = self.stop.clone();
        env
    }

    /// The server named with the context, when it is not the embedded one: a server file
    /// (locked for as long as it is held) or a SCIM service (what it supports read).
    pub fn outside_target(&self) -> Result<Option<Box<dyn Target>>> {
        self.open_target(&self.server)
    }

    /// Opens `server`, when it is not the embedded one.
    pub fn open_target(&self, server: &Server) -> Result<Option<Box<dyn Target>>> {
        Ok(match server {
            Server::Embedded => None,
            Server::File(path) => Some(Box::new(FileTarget::open(path, &self.holder)?)),
            Server::Scim(url) => {
                // The URL first: a bad one is said before a missing token.
                adapters::scim::target::parse_url(url)?;
                let token = adapters::scim::token(self.scim_token_file.as_deref())?;
                Some(Box::new(ScimTarget::open(url, token)?))
            }
        })
    }

    /// Whether the server keeps a group's description and type (a SCIM service does not).
    pub fn keeps_group_details(&self) -> bool {
        self.server.info().keeps_group_details()
    }
}

/// The target a run changes: the server outside the store if one is given, else the embedded
/// server.
pub fn target<'a>(
    outside: &'a mut Option<Box<dyn Target>>,
    embedded: &'a mut EmbeddedTarget<'_>,
) -> &'a mut dyn Target {
    match outside.as_mut() {
        Some(t) => t.as_mut(),
        None => embedded,
    }
}
