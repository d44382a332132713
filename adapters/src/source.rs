//! Tenant sources: where a run reads Entra ID from.

use std::path::{Path, PathBuf};

use engine::event::{DeltaLinks, SourceKind};
use engine::model::{EntraGroup, EntraUser};
use engine::RunId;

use crate::bounded::open_regular_file;
use crate::error::Result;
use crate::fixture::{read_tenant, Loaded, MAX_FIXTURE_BYTES};

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

    /// SHA-256 (hex) of what [`TenantSource::read`] would read now — a fixture file's bytes —
    /// computed without parsing it: equal to an earlier read's [`Loaded::content`], the read
    /// would give what that one gave. `None` when the source cannot tell (Graph), or the file
    /// cannot be read (the read then says why).
    fn content_digest(&self) -> Option<String> {
        None
    }

    /// For a source that tracks changes: whether nothing changed since the read that left
    /// `links` and whose content was `content` ([`Loaded::content`]) — then where the next read
    /// resumes; `None` when something changed, or the source cannot tell.
    fn quiet_since(&self, links: &DeltaLinks, content: &str) -> Result<Option<Quiet>> {
        let _ = (links, content);
        Ok(None)
    }
}

/// A change listing that found nothing changed ([`TenantSource::quiet_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    /// Where the next read resumes.
    pub links: DeltaLinks,
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

    /// The file's bytes hashed as they are read, a block at a time: as bounded as the read.
    fn content_digest(&self) -> Option<String> {
        use sha2::Digest;
        use std::io::Read;
        let (file, _) = open_regular_file(&self.path, MAX_FIXTURE_BYTES).ok()?;
        let mut file = file.take(MAX_FIXTURE_BYTES + 1);
        let (mut hasher, mut block, mut total) = (sha2::Sha256::new(), vec![0u8; 1 << 20], 0u64);
        loop {
            match file.read(&mut block) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&block[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        (total <= MAX_FIXTURE_BYTES).then(|| hex::encode(hasher.finalize()))
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
        let mut loaded = self.loaded.clone();
        loaded.content = self.content_digest();
        Ok(loaded)
    }

    /// The snapshot's fingerprint, completeness and problems, hashed: what a file's bytes are
    /// to a fixture.
    fn content_digest(&self) -> Option<String> {
        let Loaded {
            snapshot, problems, ..
        } = &self.loaded;
        let canonical =
            serde_json::to_vec(&(snapshot.fingerprint(), snapshot.completeness, problems)).ok()?;
        Some(crate::fixture::sha256_hex(&canonical))
    }
}
