//! Tenant fixtures: a tenant as Graph returns it, in one JSON file, so that a recording is a
//! fixture. Groups list their *direct* members, as `/groups/{id}/members` returns them;
//! nesting is resolved here into each group's transitive member users.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use engine::event::DeltaLinks;
use engine::model::{Completeness, DirectMembers, EntraUser, OtherMember, TenantSnapshot};
use engine::{ObjectId, RunId, TenantId};

use crate::bounded::{io_reason, read_regular_file};
use crate::error::{Error, Result};
use crate::wire::{CheckedGroup, GraphDeletedItem, GraphGroup, GraphMember, GraphUser, MemberType};

/// The tenant fixture file (`TENANT.json`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantFile {
    pub tenant_id: TenantId,
    #[serde(default)]
    pub users: Vec<GraphUser>,
    #[serde(default)]
    pub groups: Vec<GraphGroup>,
    #[serde(default)]
    pub deleted_users: Vec<GraphDeletedItem>,
    #[serde(default)]
    pub deleted_groups: Vec<GraphDeletedItem>,
}

/// A tenant read from a fixture (or from Graph), with the oddities met on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub snapshot: TenantSnapshot,
    pub problems: Vec<String>,
    /// Graph's change tracking as of this read (live sources only).
    pub tracking: Tracking,
    /// SHA-256 (hex) of what the read was made of — a fixture file's bytes — when the source
    /// can tell it again without reading ([`crate::source::TenantSource::content_digest`]).
    pub content: Option<String>,
}

/// What a read knows of Graph's change tracking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    /// Where the next read resumes; `None` when the source does not track changes, or the read
    /// could not learn where.
    pub links: Option<DeltaLinks>,
    /// The run whose links this read followed (it read only the changes); `None`: a whole read.
    pub since: Option<RunId>,
}

/// Largest fixture accepted: far above any real tenant's size, far below what would exhaust memory.
pub const MAX_FIXTURE_BYTES: u64 = 4 << 30;

/// Reads and checks a tenant fixture; every error names the file and the field. The bytes
/// are hashed while they are parsed ([`Loaded::content`]).
pub fn read_tenant(path: &Path) -> Result<Loaded> {
    let bytes = read_input(path, "tenant fixture")?;
    let (content, loaded) = std::thread::scope(|scope| {
        let content = scope.spawn(|| sha256_hex(&bytes));
        let loaded = parse_tenant(&bytes, &path.display().to_string());
        let content = content
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (content, loaded)
    });
    let mut loaded = loaded?;
    loaded.content = Some(content);
    Ok(loaded)
}

/// SHA-256 of `bytes`, hex ([`crate::target::digest`]).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(crate::target::digest(bytes))
}

/// Reads an input file, with an error that says which file and what to do.
pub fn read_input(path: &Path, what: &str) -> Result<Vec<u8>> {
    read_regular_file(path, MAX_FIXTURE_BYTES).map_err(|e| {
        Error::bad_input(format!(
            "{}: cannot read {what}: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// Deserializes JSON, naming the path of the first bad field in the error.
pub fn from_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], origin: &str, what: &str) -> Result<T> {
    // serde would read a struct from an array too; a top level that is not an object is
    // simply the wrong file.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(Error::bad_input(format!(
                "{origin}: the file is empty; expected a {what}"
            )))
        }
        Some(_) => {
            return Err(Error::bad_input(format!(
                "{origin}: not a JSON object; expected a {what}"
            )))
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        let hint = if inner.is_syntax() || inner.is_eof() {
            format!(" (not valid JSON; expected a {what})")
        } else {
            String::new()
        };
        Error::bad_input(format!("{origin}: {at}{inner}{hint}"))
    })
}

/// Parses a tenant fixture from bytes; `origin` names it in errors. Each object is checked
/// as it is read (the first that lacks a value a decision depends on stops the read, naming
/// it), and only its engine form is kept.
pub fn parse_tenant(bytes: &[u8], origin: &str) -> Result<Loaded> {
    let file: ReadTenant = from_json(bytes, origin, "tenant fixture (Graph JSON)")?;
    snapshot_of(
        file.tenant_id,
        file.users.into_iter().map(|u| u.0).collect(),
        file.groups.into_iter().map(|g| g.0).collect(),
        file.deleted_users,
        file.deleted_groups,
        origin,
    )
}

/// A tenant fixture as it is read: users and groups checked one by one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadTenant {
    tenant_id: TenantId,
    #[serde(default)]
    users: Vec<StrictUser>,
    #[serde(default)]
    groups: Vec<StrictGroup>,
    #[serde(default)]
    deleted_users: Vec<GraphDeletedItem>,
    #[serde(default)]
    deleted_groups: Vec<GraphDeletedItem>,
}

/// A fixture's user, refused where it is unless it converts ([`GraphUser::into_entra`]).
struct StrictUser(EntraUser);

impl<'de> Deserialize<'de> for StrictUser {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        GraphUser::deserialize(d)?
            .into_entra()
            .map(StrictUser)
            .map_err(|e| serde::de::Error::custom(e.describe("user")))
    }
}

/// A fixture's group, refused where it is unless its properties check
/// ([`GraphGroup::checked`]).
struct StrictGroup(CheckedGroup);

impl<'de> Deserialize<'de> for StrictGroup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        GraphGroup::deserialize(d)?
            .checked()
            .map(StrictGroup)
            .map_err(|e| serde::de::Error::custom(e.describe("group")))
    }
}

/// Converts a parsed fixture into a snapshot, resolving group nesting. A fixture is a tenant
/// as Graph returned it: an object without a value a decision depends on (`accountEnabled`,
/// say) is refused, naming it — never read as a default.
pub fn tenant_from_file(file: TenantFile, origin: &str) -> Result<Loaded> {
    let mut users = Vec::with_capacity(file.users.len());
    for (i, u) in file.users.into_iter().enumerate() {
        users.push(u.into_entra().map_err(|e| {
            Error::bad_input(format!("{origin}: users[{i}]: {}", e.describe("user")))
        })?);
    }
    let mut groups = Vec::with_capacity(file.groups.len());
    for (i, g) in file.groups.into_iter().enumerate() {
        groups.push(g.checked().map_err(|e| {
            Error::bad_input(format!("{origin}: groups[{i}]: {}", e.describe("group")))
        })?);
    }
    snapshot_of(
        file.tenant_id,
        users,
        groups,
        file.deleted_users,
        file.deleted_groups,
        origin,
    )
}

/// The snapshot of checked users and groups, nesting resolved.
fn snapshot_of(
    tenant_id: TenantId,
    users: Vec<EntraUser>,
    groups: Vec<CheckedGroup>,
    deleted_users: Vec<GraphDeletedItem>,
    deleted_groups: Vec<GraphDeletedItem>,
    origin: &str,
) -> Result<Loaded> {
    let mut problems = Vec::new();
    let user_ids: HashSet<&ObjectId> = users.iter().map(|u| &u.id).collect();
    let group_ids: HashSet<&ObjectId> = groups.iter().map(|g| &g.id).collect();
    let direct: Vec<&[GraphMember]> = groups
        .iter()
        .map(|g| g.members.as_deref().unwrap_or(&[]))
        .collect();
    let transitive = resolve_nesting(&groups, &direct, &user_ids, &group_ids, &mut problems);
    let groups = groups
        .into_iter()
        .zip(transitive)
        .map(|(g, (members, nested))| g.into_entra(members, nested))
        .collect();
    let snapshot = TenantSnapshot::new(
        tenant_id,
        users,
        groups,
        deleted_users.into_iter().map(Into::into).collect(),
        deleted_groups.into_iter().map(Into::into).collect(),
        Completeness::COMPLETE,
    )
    .map_err(|e| Error::bad_input(format!("{origin}: {e}; ids must be unique")))?;
    Ok(Loaded {
        snapshot,
        problems,
        tracking: Tracking::default(),
        content: None,
    })
}

/// Each group's transitive member users, from direct members, and its direct members when
/// groups are among them. Cycles (which Entra does not allow, but a hand-made fixture might
/// hold) are cut; unknown members are reported and skipped. The Graph source resolves what
/// `/groups/{id}/members` returned with the same function.
pub(crate) fn resolve_nesting(
    groups: &[CheckedGroup],
    direct: &[&[GraphMember]],
    users: &HashSet<&ObjectId>,
    group_ids: &HashSet<&ObjectId>,
    problems: &mut Vec<String>,
) -> Vec<(Vec<ObjectId>, Option<DirectMembers>)> {
    let index: HashMap<&ObjectId, usize> =
        groups.iter().enumerate().map(|(i, g)| (&g.id, i)).collect();
    // Classify every direct member once.
    let mut member_users: Vec<Vec<ObjectId>> = vec![Vec::new(); groups.len()];
    let mut member_groups: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    let mut member_others: Vec<Vec<OtherMember>> = vec![Vec::new(); groups.len()];
    for (gi, members) in direct.iter().enumerate() {
        for m in members.iter() {
            let is_user = users.contains(&m.id);
            let is_group = group_ids.contains(&m.id);
            match (m.member_type(), is_user, is_group) {
                (MemberType::User | MemberType::Unknown, true, _) => {
                    member_users[gi].push(m.id.clone())
                }
                (MemberType::Group | MemberType::Unknown, _, true) => {
                    member_groups[gi].push(index[&m.id])
                }
                (MemberType::Other, ..) => member_others[gi].push(OtherMember {
                    // Bounded: a type name is short; a hostile one is cut.
                    odata_type: m
                        .odata_type
                        .as_deref()
                        .unwrap_or_default()
                        .chars()
                        .take(100)
                        .collect(),
                    id: m.id.clone(),
                }),
                _ => problems.push(format!(
                    "group {} ({}): member {} is not a user or group of the tenant; ignored",
                    groups[gi].display_name.as_deref().unwrap_or("?"),
                    groups[gi].id,
                    m.id
                )),
            }
        }
    }
    (0..groups.len())
        .map(|start| {
            let mut seen = vec![false; groups.len()];
            let mut stack = vec![start];
            seen[start] = true;
            let mut out = Vec::new();
            while let Some(g) = stack.pop() {
                out.extend(member_users[g].iter().cloned());
                for &n in &member_groups[g] {
                    if !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
            out.sort();
            out.dedup();
            let nested = (!member_groups[start].is_empty() || !member_others[start].is_empty())
                .then(|| DirectMembers {
                    users: member_users[start].clone(),
                    groups: member_groups[start]
                        .iter()
                        .map(|&i| groups[i].id.clone())
                        .collect(),
                    other: std::mem::take(&mut member_others[start]),
                });
            (out, nested)
        })
        .collect()
}

/// The fixture form of a snapshot (what `roster record` writes): each group's direct members,
/// nested groups as groups.
pub fn to_tenant_file(snapshot: &TenantSnapshot) -> TenantFile {
    TenantFile {
        tenant_id: snapshot.tenant_id.clone(),
        users: snapshot.users.iter().map(GraphUser::from_entra).collect(),
        groups: snapshot.groups.iter().map(GraphGroup::from_entra).collect(),
        deleted_users: snapshot.deleted_users.iter().map(Into::into).collect(),
        deleted_groups: snapshot.deleted_groups.iter().map(Into::into).collect(),
    }
}
