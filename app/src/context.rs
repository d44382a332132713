//! What every use case needs: where the store is, which server a run targets, who runs it,
//! the clock, and how a device-code sign-in is shown.

use std::path::PathBuf;
use std::sync::Arc;

use adapters::auth::Prompt;
use adapters::clock::Clock;
use adapters::graph::GraphStats;
use adapters::interrupt::Interrupt;
use adapters::org::SourceEnv;
use adapters::target::{EmbeddedTarget, FileTarget, Target};
use engine::store::Opening;
use engine::SledStore;

use crate::error::Result;
use crate::run::{recover, Recovered};

#[derive(Clone)]
pub struct Context {
    pub store_dir: PathBuf,
    /// A JSON server file to target instead of the embedded server.
    pub server_file: Option<PathBuf>,
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

/// A store opened, and what opening it found left over from a process that stopped early.
pub struct Opened {
    pub store: SledStore,
    pub recovered: Recovered,
}

impl Context {
    /// Opens the store (with [`Opening::Existing`], only one that exists), taking its lock,
    /// and recovers it: a torn end cut back, interrupted runs closed.
    pub fn open(&self, opening: Opening) -> Result<Opened> {
        let store = SledStore::open_locked(&self.store_dir, &self.holder, opening)?;
        let recovered = recover(&store, self.clock.as_ref())?;
        Ok(Opened { store, recovered })
    }

    /// What a tenant source needs: the token caches, the prompt, the counters.
    pub fn source_env(&self) -> SourceEnv {
        let mut env = SourceEnv::new(&self.store_dir, self.prompt.clone());
        env.stats = self.stats.clone();
        env.stop = self.stop.clone();
        env
    }

    /// The server file named with the context, locked for as long as it is held.
    pub fn file_target(&self) -> Result<Option<FileTarget>> {
        Ok(match &self.server_file {
            Some(path) => Some(FileTarget::open(path, &self.holder)?),
            None => None,
        })
    }
}

/// The target a run changes: the server file if one is given, else the embedded server.
pub fn target<'a>(
    file: &'a mut Option<FileTarget>,
    embedded: &'a mut EmbeddedTarget<'_>,
) -> &'a mut dyn Target {
    match file.as_mut() {
        Some(t) => t,
        None => embedded,
    }
}
