//! Tenant sources: where a run reads Entra ID from.

use std::path::{Path, PathBuf};

use engine::event::{DeltaLinks, SourceKind};
use engine::model::{EntraGroup, EntraUser};
use engine::RunId;

use crate::error::Result;
use crate::fixture::{read_tenant, Loaded};

/// Reads one tenant snapshot. A source that cannot read everything either fails (a listing
/// the rules need did not complete) or says so in the snapshot's completeness.
pub trait TenantSource {
    fn kind(&self) -> SourceKind;
    /// The fixture path or Graph base URL, for the log.
    fn location(&self) -> String;
    fn read(&self) -> Result<Loaded>;

    /// Whom the source read the tenant as, once it read: the administrator who signed in to
    /// Graph, or the application; `None` for a file.
    fn signed_in_as(&self) -> Option<String> {
        None
    }

    /// Whether the source can read only what changed since an earlier read (Graph delta).
    fn tracks_changes(&self) -> bool {
        false
    }

    /// Reads the tenant as it is now from what changed since `base` was read; a source that
    /// cannot (or whose change tracking fails) reads the whole tenant, saying so in the
    /// problems.
    fn read_changes(&self, base: Mirror) -> Result<Loaded> {
        drop(base);
        self.read()
    }
}

/// An earlier read of the tenant, as the log holds it: the base run's Entra users and groups
/// and the change-tracking links its read ended with.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub run: RunId,
    pub users: Vec<EntraUser>,
    pub groups: Vec<EntraGroup>,
    pub links: DeltaLinks,
}

/// A recorded or hand-made tenant fixture file.
#[derive(Debug, Clone)]
pub struct FixtureSource {
    path: PathBuf,
}

impl FixtureSource {
    pub fn new(path: &Path) -> Self {
        FixtureSource {
            path: path.to_owned(),
        }
    }
}

impl TenantSource for FixtureSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Fixture
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn read(&self) -> Result<Loaded> {
        tracing::info!(target: engine::PROGRESS, "reading the tenant file");
        read_tenant(&self.path)
    }
}

/// A snapshot already in memory (tests, generated tenants).
#[derive(Debug, Clone)]
pub struct SnapshotSource {
    pub loaded: Loaded,
    pub location: String,
}

impl TenantSource for SnapshotSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Fixture
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn read(&self) -> Result<Loaded> {
        Ok(self.loaded.clone())
    }
}
