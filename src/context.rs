//! The command line's context: the global options, and the `app::Context` every command hands
//! to the use cases.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use adapters::auth::{DevicePrompt, Prompt};
use adapters::clock::SystemClock;
use engine::store::Opening;
use engine::Store;

use crate::cli::Cli;
use crate::config::Config;
use crate::render;
use crate::UsageError;

pub struct Ctx {
    pub app: app::Context,
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// What named the store.
    pub store_from: StoreFrom,
    /// The config file's settings (empty when there is none).
    pub config: Config,
    /// `--no-wait`: a store held by another process fails at once.
    pub no_wait: bool,
    /// `--wide`: tables keep their Id column on a narrow terminal.
    pub wide: bool,
}

/// What named the store a command uses: a flag wins over the environment, which wins over
/// the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFrom {
    Flag,
    Env,
    Config,
    Default,
}

impl StoreFrom {
    /// Named on this command (`--store` or `$ROSTER_STORE`): the demo uses its own store
    /// unless it was.
    pub fn on_the_command(self) -> bool {
        matches!(self, StoreFrom::Flag | StoreFrom::Env)
    }

    /// `--store`, `$ROSTER_STORE`, `the config file PATH` or `the default`.
    pub fn describe(self, config: &Config) -> String {
        match self {
            StoreFrom::Flag => "--store".into(),
            StoreFrom::Env => "$ROSTER_STORE".into(),
            StoreFrom::Config => format!(
                "the config file {}",
                config
                    .path
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            ),
            StoreFrom::Default => "the default".into(),
        }
    }
}

impl Ctx {
    /// The context of one command: flags first, then the environment, then the config file.
    pub fn new(cli: &Cli) -> Result<Ctx, UsageError> {
        let config = Config::load()?;
        let from_env = std::env::var_os("ROSTER_STORE").filter(|d| !d.is_empty());
        let (store_dir, store_from) = match (&cli.store, from_env, &config.store) {
            (Some(dir), _, _) => (dir.clone(), StoreFrom::Flag),
            (None, Some(dir), _) => (PathBuf::from(dir), StoreFrom::Env),
            (None, None, Some(dir)) => (dir.clone(), StoreFrom::Config),
            (None, None, None) => (
                dirs::data_dir()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join("roster"),
                StoreFrom::Default,
            ),
        };
        // A server named by a flag wins over the config file's, whichever kind it is.
        let server = match (&cli.server_file, &cli.scim) {
            (Some(file), _) => app::Server::File(file.clone()),
            (None, Some(url)) => app::Server::Scim(url.clone()),
            (None, None) => match (&config.server_file, &config.scim) {
                (Some(file), _) => app::Server::File(file.clone()),
                (None, Some(url)) => app::Server::Scim(url.clone()),
                (None, None) => app::Server::Embedded,
            },
        };
        let scim_token_file = cli
            .scim_token_file
            .clone()
            .or(config.scim_token_file.clone());
        let wide = cli.wide || config.defaults.wide.unwrap_or(false);
        // A store in PostgreSQL is shared: what is this host's own (token caches) stays here.
        let local_dir = match store_dir
            .to_str()
            .filter(|s| engine::store::is_postgres_url(s))
        {
            Some(_) => dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("roster-local"),
            None => store_dir.clone(),
        };
        Ok(Ctx {
            app: app::Context {
                store_dir,
                local_dir,
                server,
                scim_token_file,
                holder: holder(),
                started_by: started_by(),
                clock: Arc::new(SystemClock),
                prompt: prompt(),
                stats: Arc::default(),
                stop: Default::default(),
            },
            json: cli.json,
            store_from,
            config,
            no_wait: cli.no_wait,
            wide,
        })
    }

    /// The store, which must exist: reading commands never create one.
    pub fn open_store(&self) -> Result<Box<dyn Store>> {
        self.open(Opening::Existing, false)
    }

    /// The store for a command that only reads it (an auditor's): while another process holds
    /// it, waits — saying once for whom — unless `--no-wait`. A store in PostgreSQL is read
    /// without waiting: a writer never blocks a reader there.
    pub fn read_store(&self) -> Result<Box<dyn Store>> {
        self.open_as(Opening::Existing, !self.no_wait, true)
    }

    /// The store for a command that writes but may wait for another writer to finish (a
    /// `backup`, which records that it ran; a cycle of `sync --every`): while another process
    /// holds it, waits — saying once for whom — unless `--no-wait`.
    pub fn wait_for_store(&self) -> Result<Box<dyn Store>> {
        self.open(Opening::Existing, !self.no_wait)
    }

    /// The store, started in a new or empty directory if there is none yet.
    pub fn create_store(&self) -> Result<Box<dyn Store>> {
        self.open(Opening::CreateIfMissing, false)
    }

    fn open(&self, opening: Opening, wait: bool) -> Result<Box<dyn Store>> {
        self.open_as(opening, wait, false)
    }

    fn open_as(&self, opening: Opening, wait: bool, to_read: bool) -> Result<Box<dyn Store>> {
        let opened = self
            .open_waiting(opening, wait, to_read)
            .map_err(|e| match e {
                app::Error::Store(
                    e @ (engine::StoreError::InUse { .. }
                    | engine::StoreError::NoStore { .. }
                    | engine::StoreError::NotAStore { .. }
                    | engine::StoreError::BadUrl { .. }),
                ) => anyhow::Error::from(app::Error::Store(e)),
                e => anyhow::Error::from(e).context(format!(
                    "cannot open the store in {}",
                    self.app.store_shown()
                )),
            })?;
        render::say(&render::recovered(&opened.recovered));
        Ok(opened.store)
    }
}

impl Ctx {
    /// Opens the store; with `wait`, while another roster process holds it (an import, a sync
    /// cycle), waits for it, saying once for whom.
    fn open_waiting(
        &self,
        opening: Opening,
        wait: bool,
        to_read: bool,
    ) -> app::Result<app::Opened> {
        let mut said = false;
        loop {
            let opened = match to_read {
                true => self.app.open_to_read(opening),
                false => self.app.open(opening),
            };
            match opened {
                Err(app::Error::Store(engine::StoreError::InUse { dir, holder })) if wait => {
                    if !said {
                        render::say(&format!(
                            "waiting for the store in {}: it is in use by {}; --no-wait fails at once instead\n",
                            render::cell(&dir),
                            render::cell(&holder)
                        ));
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }
}

/// Who holds a lock this process takes: the command, as typed (its first words).
fn holder() -> String {
    holder_of(std::env::args().skip(1))
}

/// The holder's name for `args`: its first three words, a PostgreSQL URL among them shown by
/// host, port and database only — the name is written where other hosts read it.
fn holder_of(args: impl Iterator<Item = String>) -> String {
    let words = args
        .take(3)
        .map(|word| {
            let at = word.find("postgres://").or(word.find("postgresql://"));
            match at {
                Some(i) => format!("{}{}", &word[..i], engine::store::shown_url(&word[i..])),
                None => word,
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("roster {words}")
}

/// Who is recorded as starting runs: the operating-system account of the process's real uid
/// (not `$USER`, which anyone can set), as `name (uid N)`, or `uid N` when it has no name. A
/// process running as root under sudo adds whom sudo ran it for (`SUDO_UID`, which sudo sets
/// and only root could set otherwise; the name from the user database):
/// `root (uid 0), through sudo by alice (uid 1000)`.
pub fn started_by() -> String {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let account = |uid: libc::uid_t| match account_name(uid) {
        Some(name) => format!("{} (uid {uid})", engine::text::printable(&name)),
        None => format!("uid {uid}"),
    };
    let sudo = std::env::var("SUDO_UID")
        .ok()
        .and_then(|v| v.trim().parse::<libc::uid_t>().ok())
        .filter(|by| uid == 0 && *by != 0);
    match sudo {
        Some(by) => format!("{}, through sudo by {}", account(uid), account(by)),
        None => account(uid),
    }
}

/// The account name of `uid` from the system's user database (`getpwuid_r`).
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain data; getpwuid_r writes into it and into buf (of the length
    // given), and sets found to it or to null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy();
        (!name.is_empty()).then(|| name.chars().take(64).collect())
    }
}

/// Shows the device-code sign-in on stderr: stdout stays data.
fn prompt() -> Prompt {
    Arc::new(|p: &DevicePrompt| {
        render::progress::suspend(|| render::say(&render::device_prompt(p)))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_holder_never_names_a_password() {
        let args = |a: &[&str]| {
            a.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(
            super::holder_of(args(&[
                "--store",
                "postgres://ann:pw-1@db:5432/r",
                "import",
                "x"
            ])),
            "roster --store postgres://db:5432/r import"
        );
        assert_eq!(
            super::holder_of(args(&["--store=postgresql://ann:pw-1@db/r", "sync"])),
            "roster --store=postgres://db:5432/r sync"
        );
        assert_eq!(
            super::holder_of(args(&["import", "contoso"])),
            "roster import contoso"
        );
    }
}
