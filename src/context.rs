//! The command line's context: the global options, and the `app::Context` every command hands
//! to the use cases.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use adapters::auth::{DevicePrompt, Prompt};
use adapters::clock::SystemClock;
use engine::store::Opening;
use engine::SledStore;

use crate::cli::Cli;
use crate::render;

pub struct Ctx {
    pub app: app::Context,
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// Whether the store was named (`--store` or `$ROSTER_STORE`), or is the default one.
    pub store_named: bool,
    /// `--no-wait`: a store held by another process fails at once.
    pub no_wait: bool,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Ctx {
        let from_env = std::env::var_os("ROSTER_STORE").filter(|d| !d.is_empty());
        let store_named = cli.store.is_some() || from_env.is_some();
        let store_dir = cli
            .store
            .clone()
            .or(from_env.map(PathBuf::from))
            .unwrap_or_else(|| {
                dirs::data_dir()
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join("roster")
            });
        Ctx {
            app: app::Context {
                store_dir,
                server_file: cli.server_file.clone(),
                holder: holder(),
                started_by: started_by(),
                clock: Arc::new(SystemClock),
                prompt: prompt(),
                stats: Arc::default(),
            },
            json: cli.json,
            store_named,
            no_wait: cli.no_wait,
        }
    }

    /// The store, which must exist: reading commands never create one.
    pub fn open_store(&self) -> Result<SledStore> {
        self.open(Opening::Existing, false)
    }

    /// The store for a command that only reads it (an auditor's): while another process holds
    /// it, waits — saying once for whom — unless `--no-wait`.
    pub fn read_store(&self) -> Result<SledStore> {
        self.open(Opening::Existing, !self.no_wait)
    }

    /// The store, started in a new or empty directory if there is none yet.
    pub fn create_store(&self) -> Result<SledStore> {
        self.open(Opening::CreateIfMissing, false)
    }

    fn open(&self, opening: Opening, wait: bool) -> Result<SledStore> {
        let opened = self.open_waiting(opening, wait).map_err(|e| match e {
            app::Error::Store(
                e @ (engine::StoreError::InUse { .. }
                | engine::StoreError::NoStore { .. }
                | engine::StoreError::NotAStore { .. }),
            ) => anyhow::Error::from(app::Error::Store(e)),
            e => anyhow::Error::from(e).context(format!(
                "cannot open the store in {}",
                self.app.store_dir.display()
            )),
        })?;
        render::say(&render::recovered(&opened.recovered));
        Ok(opened.store)
    }
}

impl Ctx {
    /// Opens the store; with `wait`, while another roster process holds it (an import, a sync
    /// cycle), waits for it, saying once for whom.
    fn open_waiting(&self, opening: Opening, wait: bool) -> app::Result<app::Opened> {
        let mut said = false;
        loop {
            match self.app.open(opening) {
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
    let words = std::env::args()
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!("roster {words}")
}

/// Who is recorded as starting runs.
pub fn started_by() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Shows the device-code sign-in on stderr: stdout stays data.
fn prompt() -> Prompt {
    Arc::new(|p: &DevicePrompt| render::say(&render::device_prompt(p)))
}
