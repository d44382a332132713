//! Tenant sources: where a run reads Entra ID from.

use std::path::{Path, PathBuf};

use engine::event::SourceKind;

use crate::error::Result;
use crate::fixture::{read_tenant, Loaded};

/// Reads one tenant snapshot. A source that cannot read everything either fails (a listing
/// the rules need did not complete) or says so in the snapshot's completeness.
pub trait TenantSource {
    fn kind(&self) -> SourceKind;
    /// The fixture path or Graph base URL, for the log.
    fn location(&self) -> String;
    fn read(&self) -> Result<Loaded>;
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
