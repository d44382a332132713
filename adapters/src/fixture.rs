//! Tenant fixtures: a tenant as Graph returns it, in one JSON file, so that a recording is a
//! fixture. Groups list their *direct* members, as `/groups/{id}/members` returns them;
//! nesting is resolved here into each group's transitive member users.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use engine::event::DeltaLinks;
use engine::model::{Completeness, DirectMembers, EntraUser, OtherMember, TenantSnapshot};
use engine::{ObjectId, RunId, TenantId};

use crate::bounded::{io_reason, open_regular_file, read_regular_file};
use crate::error::{Error, Result};
use crate::streamed::{self, Member};
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
/// are hashed while they are parsed ([`Loaded::content`]). The file is read a block at a
/// time, each user and group parsed as it arrives, and never held whole beside what is made
/// of it ([`streamed`]); a file that does not read that way — any error, any odd shape — is
/// read whole, which says what is wrong.
pub fn read_tenant(path: &Path) -> Result<Loaded> {
    match read_tenant_streamed(path) {
        Some(loaded) => loaded,
        None => read_tenant_whole(path),
    }
}

/// The keys of a fixture's arrays of objects, read element by element.
const ARRAYS: [&str; 4] = ["users", "groups", "deletedUsers", "deletedGroups"];

/// [`read_tenant`] a block at a time; `None` when the file does not read this way, for the
/// whole read to judge.
fn read_tenant_streamed(path: &Path) -> Option<Result<Loaded>> {
    let (file, _) = open_regular_file(path, MAX_FIXTURE_BYTES).ok()?;
    let mut reader = Hashing {
        inner: std::io::Read::take(file, MAX_FIXTURE_BYTES + 1),
        hasher: sha2::Sha256::default(),
        read: 0,
    };
    let (mut tenant_id, mut arrays) = (None, Vec::new());
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    let (mut deleted_users, mut deleted_groups) = (Vec::new(), Vec::new());
    streamed::walk_object(&mut reader, &ARRAYS, |member| {
        match member {
            // A field named twice is the whole read's to refuse.
            Member::Value {
                key: "tenantId",
                json,
            } if tenant_id.is_none() => {
                tenant_id = Some(serde_json::from_slice::<TenantId>(json).ok()?);
            }
            Member::Value { key, json } if !ARRAYS.contains(&key) && key != "tenantId" => {
                serde_json::from_slice::<serde::de::IgnoredAny>(json).ok()?;
            }
            Member::Array { key } if !arrays.iter().any(|a| a == key) => {
                arrays.push(key.to_owned())
            }
            Member::Element { key: "users", json } => {
                users.push(serde_json::from_slice::<StrictUser>(json).ok()?.0)
            }
            Member::Element {
                key: "groups",
                json,
            } => groups.push(serde_json::from_slice::<StrictGroup>(json).ok()?.0),
            Member::Element {
                key: "deletedUsers",
                json,
            } => deleted_users.push(serde_json::from_slice(json).ok()?),
            Member::Element {
                key: "deletedGroups",
                json,
            } => deleted_groups.push(serde_json::from_slice(json).ok()?),
            _ => return None,
        }
        Some(())
    })?;
    // What follows the object is hashed too: the digest is the file's.
    std::io::copy(&mut reader, &mut std::io::sink()).ok()?;
    if reader.read > MAX_FIXTURE_BYTES {
        return None;
    }
    let content = hex::encode(sha2::Digest::finalize(reader.hasher));
    let loaded = snapshot_of(
        tenant_id?,
        users,
        groups,
        deleted_users,
        deleted_groups,
        &path.display().to_string(),
    );
    Some(loaded.map(|loaded| Loaded {
        content: Some(content),
        ..loaded
    }))
}

/// A reader that hashes what it reads, and counts it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// [`read_tenant`], the file read whole first.
fn read_tenant_whole(path: &Path) -> Result<Loaded> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo tenant as bundled, and written other ways: compact; pretty, with members
    /// roster ignores (one of them shaped like the arrays it reads).
    fn demo_written_three_ways() -> Vec<(&'static str, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let bundled = std::fs::read(root.join("demo/tenant.json")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bundled).unwrap();
        let mut odd = value.clone();
        odd["@odata.context"] = serde_json::json!("https://graph.microsoft.com/v1.0/$metadata");
        odd["extra"] = serde_json::json!({"users": [1, {"a": "]}\"["}], "n": -1.5e-3, "t": true});
        vec![
            ("bundled.json", bundled),
            ("compact.json", serde_json::to_vec(&value).unwrap()),
            ("pretty.json", serde_json::to_vec_pretty(&odd).unwrap()),
        ]
    }

    #[test]
    fn a_tenant_file_read_block_by_block_is_the_file_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in demo_written_three_ways() {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let streamed = read_tenant_streamed(&path)
                .unwrap_or_else(|| panic!("{name} is read block by block"))
                .unwrap();
            let whole = parse_tenant(&bytes, &path.display().to_string()).unwrap();
            assert_eq!(streamed.snapshot, whole.snapshot, "{name}");
            assert_eq!(streamed.problems, whole.problems, "{name}");
            assert_eq!(streamed.content, Some(sha256_hex(&bytes)), "{name}");
            assert!(!streamed.snapshot.users.is_empty() && !streamed.snapshot.groups.is_empty());
        }
    }

    #[test]
    fn a_tenant_file_of_another_shape_is_left_to_the_whole_read() {
        let dir = tempfile::tempdir().unwrap();
        let t = "11111111-1111-4111-8111-111111111111";
        for (name, doc) in [
            (
                "twice.json",
                format!(r#"{{"tenantId": "{t}", "users": [], "users": []}}"#),
            ),
            ("no-tenant.json", r#"{"users": []}"#.to_owned()),
            (
                "null.json",
                format!(r#"{{"tenantId": "{t}", "users": null}}"#),
            ),
            (
                "escaped.json",
                format!(r#"{{"tenantId": "{t}", "us\u0065rs": []}}"#),
            ),
            (
                "bad-user.json",
                format!(r#"{{"tenantId": "{t}", "users": [{{"id": 1}}]}}"#),
            ),
            (
                "bad-extra.json",
                format!(r#"{{"tenantId": "{t}", "extra": [1,,2]}}"#),
            ),
            ("cut.json", format!(r#"{{"tenantId": "{t}", "users": ["#)),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &doc).unwrap();
            assert!(read_tenant_streamed(&path).is_none(), "{name}");
            // The whole read says what is wrong, as it always did (an escaped key is fine).
            let read = read_tenant(&path)
                .map(|l| l.snapshot)
                .map_err(|e| e.to_string());
            let whole = parse_tenant(doc.as_bytes(), &path.display().to_string());
            let whole = whole.map(|l| l.snapshot).map_err(|e| e.to_string());
            assert_eq!(read, whole, "{name}");
            assert_eq!(read.is_ok(), name == "escaped.json", "{name}: {read:?}");
        }
    }
}
