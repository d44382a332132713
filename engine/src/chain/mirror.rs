//! The mirror: a chain's state after its last run ([`ChainState`] folded as digests), with the
//! run's Entra users and groups whole when a live org reads only changes next — encoded to be
//! kept in the store beside the log, so the next run starts from it instead of folding the
//! chain from the log.
//!
//! The run it is of, the chain's full run and its length are its stamp's (see
//! `store::MirrorStamp`): the body holds only the state, so a run that changed nothing leaves
//! the same body, and only a new stamp is written.
//!
//! Body (format 3), one LZ4 block (its size prepended) holding, integers little endian:
//! `roster mirror 3\n`; the Entra users, groups, deleted users and deleted groups, each a count (u32) then per object its id
//! (u8 length, bytes) and its digest (16 bytes); the server's users and groups, each a count
//! then per record its case-folded key (u32 length, bytes) and digest; the deleted objects and
//! the choices, each a count then per entry its kind (u8: 0 user, 1 group), id and digest; the
//! last outcomes, a count then per entry its kind, id, outcome and reason (their JSON names,
//! u8 length each; an empty reason is none) and whether it changed the server (u8: bit 0), its
//! change made by an import (bit 1). Stored as
//! that block's compressed length (u64), the block, then — when the Entra objects are kept
//! whole — their blocks (see [`encode_whole`]).

use std::collections::{BTreeMap, HashMap};

use sha2::Digest;

use super::{ChainState, EntryKey, Keep, LastOutcome, Objects};
use crate::event::{Outcome, Reason, RunStarted, TargetInfo};
use crate::ids::{ObjectId, RunId, TenantId};
use crate::model::{EntraGroup, EntraUser, Kind, ServerState};
use crate::store::MirrorId;

const MAGIC: &[u8] = b"roster mirror 3\n";

/// The server a mirror is kept for, as its id and stamp name it: what makes two runs' servers
/// the same for a chain ([`TargetInfo::same_server`]).
pub fn server_name(target: &TargetInfo) -> String {
    match target {
        TargetInfo::Embedded => "embedded".into(),
        TargetInfo::File { path } => format!("file {path}"),
        TargetInfo::Scim { url, .. } => format!("scim {url}"),
    }
}

/// The id of the mirror of `org`'s runs (of `tenant`) against `target`.
pub fn mirror_id(org: &str, tenant: &TenantId, target: &TargetInfo) -> MirrorId {
    let mut h = sha2::Sha256::new();
    for part in [org, tenant.as_str(), &server_name(target)] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut id = [0; 16];
    id.copy_from_slice(&h.finalize()[..16]);
    id
}

/// The Entra users and groups a mirror keeps whole.
pub type Whole = (Vec<EntraUser>, Vec<EntraGroup>);

/// Encodes `state` (a chain folded as digests, complete) and, for a live org, the run's Entra
/// objects whole ([`encode_whole`]).
pub fn encode(state: ChainState, whole: Option<&[u8]>) -> Vec<u8> {
    // Taken apart, each part let go once written: what a run holds while it writes its
    // mirror is its peak memory.
    let ChainState {
        users,
        groups,
        deleted_users,
        deleted_groups,
        server_digests,
        choices,
        deleted,
        outcomes,
        ..
    } = state;
    let (server_users, server_groups) =
        server_digests.expect("a mirror is made of a complete chain");
    // Sized once, at most what it can hold (capacity never written is never resident): no
    // copies as it grows.
    let entries = users.len()
        + groups.len()
        + deleted_users.len()
        + deleted_groups.len()
        + server_users.len()
        + server_groups.len()
        + choices.len()
        + deleted.len()
        + outcomes.len();
    let mut w = Vec::with_capacity(64 + entries * (2 + 256 + 16 + 4));
    w.extend_from_slice(MAGIC);
    let ids = |w: &mut Vec<u8>, objects: &BTreeMap<ObjectId, [u8; 16]>| {
        put_u32(w, objects.len());
        for (id, d) in objects {
            put_short(w, id.as_str().as_bytes());
            w.extend_from_slice(d);
        }
    };
    ids(&mut w, &users.digests());
    drop(users);
    ids(&mut w, &groups.digests());
    drop(groups);
    ids(&mut w, &deleted_users.digests());
    drop(deleted_users);
    ids(&mut w, &deleted_groups.digests());
    drop(deleted_groups);
    let keys = |w: &mut Vec<u8>, records: &BTreeMap<String, [u8; 16]>| {
        put_u32(w, records.len());
        for (key, d) in records {
            put_u32(w, key.len());
            w.extend_from_slice(key.as_bytes());
            w.extend_from_slice(d);
        }
    };
    keys(&mut w, &server_users.digests());
    drop(server_users);
    keys(&mut w, &server_groups.digests());
    drop(server_groups);
    let entries = |w: &mut Vec<u8>, entries: &BTreeMap<EntryKey, [u8; 16]>| {
        put_u32(w, entries.len());
        for ((kind, id), d) in entries {
            put_entry(w, *kind, id);
            w.extend_from_slice(d);
        }
    };
    entries(&mut w, &deleted.digests());
    drop(deleted);
    entries(&mut w, &choices.digests());
    drop(choices);
    // By key, so that the same state always encodes to the same bytes.
    let mut outcomes: Vec<_> = outcomes.into_iter().collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    put_u32(&mut w, outcomes.len());
    for ((kind, id), last) in outcomes {
        put_entry(&mut w, kind, &id);
        put_short(&mut w, name_of(&last.outcome).as_bytes());
        let reason = last.reason.as_ref().map(name_of).unwrap_or_default();
        put_short(&mut w, reason.as_bytes());
        w.push(u8::from(last.changed) | u8::from(last.applied) << 1);
    }
    // The compressed part first, its length before it (then, within it, its size before
    // compression, as `lz4_flex::compress_prepend_size` writes it); the Entra objects whole
    // (already compressed) after it, when kept. Compressed straight into place.
    let whole = whole.unwrap_or_default();
    let max = lz4_flex::block::get_maximum_output_size(w.len());
    let mut out = Vec::with_capacity(12 + max + whole.len());
    out.resize(12 + max, 0);
    out[8..12].copy_from_slice(&u32::try_from(w.len()).expect("under 4 GiB").to_le_bytes());
    let n = lz4_flex::block::compress_into(&w, &mut out[12..]).expect("room for the worst case");
    drop(w);
    out.truncate(12 + n);
    out[..8].copy_from_slice(&((4 + n) as u64).to_le_bytes());
    out.extend_from_slice(whole);
    out
}

/// Entra objects per block of the whole part: each block is serialized, compressed and parsed
/// on its own, so neither writing nor reading holds the whole part uncompressed.
const WHOLE_BLOCK: usize = 4096;

/// A live org's Entra users and groups whole, as a mirror keeps them: blocks of up to
/// [`WHOLE_BLOCK`] objects, each its kind (u8: 0 users, 1 groups), its length (u32) and a JSON
/// list of the objects as one LZ4 block (its size prepended). What its next run applies the
/// changes since to.
pub fn encode_whole(users: &[EntraUser], groups: &[EntraGroup]) -> Vec<u8> {
    fn blocks<T: serde::Serialize>(kind: u8, items: &[T], buf: &mut Vec<u8>, out: &mut Vec<u8>) {
        // An empty list is one empty block: a part kept whole is never empty.
        let empty: [&[T]; 1] = [&[]];
        let chunks: Box<dyn Iterator<Item = &[T]>> = match items.is_empty() {
            true => Box::new(empty.into_iter()),
            false => Box::new(items.chunks(WHOLE_BLOCK)),
        };
        for chunk in chunks {
            buf.clear();
            serde_json::to_writer(&mut *buf, chunk).expect("Entra objects serialize");
            let block = lz4_flex::compress_prepend_size(buf);
            out.push(kind);
            put_u32(out, block.len());
            out.extend_from_slice(&block);
        }
    }
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    blocks(0, users, &mut buf, &mut out);
    blocks(1, groups, &mut buf, &mut out);
    out
}

fn decode_whole(mut bytes: &[u8]) -> Result<Whole, String> {
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    while !bytes.is_empty() {
        let mut r = Reader(bytes);
        let kind = r.u8()?;
        let len = r.u32()? as usize;
        let json = decompress(r.take(len)?)?;
        match kind {
            0 => users.extend(
                serde_json::from_slice::<Vec<EntraUser>>(&json).map_err(|e| e.to_string())?,
            ),
            1 => groups.extend(
                serde_json::from_slice::<Vec<EntraGroup>>(&json).map_err(|e| e.to_string())?,
            ),
            other => return Err(format!("unknown kind {other} of Entra objects")),
        }
        bytes = r.0;
    }
    Ok((users, groups))
}

/// A mirror decoded: the chain's state after `started`'s run, and the Entra objects whole if
/// it keeps them.
pub struct Decoded {
    pub state: ChainState,
    pub whole: Option<Whole>,
}

/// Where in its chain a mirror's state is: the run it is of, the chain's full run and length
/// (its stamp says them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub run: RunId,
    pub full: RunId,
    pub length: usize,
}

impl ChainState {
    /// Where in its chain this state is.
    pub fn place(&self) -> Place {
        Place {
            run: self.run,
            full: self.full,
            length: self.length,
        }
    }
}

/// Decodes a mirror's body, of the state at `place`; `started` is its run's `RunStarted` (read
/// from the log). `whole`: whether the Entra objects kept whole are wanted (else they are not
/// decoded).
pub fn decode(
    body: &[u8],
    place: Place,
    started: RunStarted,
    whole: bool,
) -> Result<Decoded, String> {
    let mut outer = Reader(body);
    let main_len = u64::from_le_bytes(outer.take(8)?.try_into().expect("8 bytes"));
    let main = outer.take(usize::try_from(main_len).map_err(|e| e.to_string())?)?;
    let rest = outer.0;
    let bytes = decompress(main)?;
    let mut r = Reader(&bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a mirror of format 3".into());
    }
    let mut ids = || -> Result<BTreeMap<ObjectId, [u8; 16]>, String> {
        let n = r.u32()?;
        let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            out.push((r.id()?, r.digest()?));
        }
        Ok(out.into_iter().collect())
    };
    let (users, groups, deleted_users, deleted_groups) = (ids()?, ids()?, ids()?, ids()?);
    let mut keys = || -> Result<BTreeMap<String, [u8; 16]>, String> {
        let n = r.u32()?;
        let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let len = r.u32()? as usize;
            let key = std::str::from_utf8(r.take(len)?).map_err(|e| e.to_string())?;
            out.push((key.to_owned(), r.digest()?));
        }
        Ok(out.into_iter().collect())
    };
    let (server_users, server_groups) = (keys()?, keys()?);
    let mut entries = || -> Result<BTreeMap<EntryKey, [u8; 16]>, String> {
        let n = r.u32()?;
        let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            out.push((r.entry()?, r.digest()?));
        }
        Ok(out.into_iter().collect())
    };
    let (deleted, choices) = (entries()?, entries()?);
    let n = r.u32()?;
    let mut outcomes = HashMap::with_capacity(n.min(1 << 20) as usize);
    let mut names: HashMap<Vec<u8>, Outcome> = HashMap::new();
    let mut reasons: HashMap<Vec<u8>, Option<Reason>> = HashMap::new();
    for _ in 0..n {
        let key = r.entry()?;
        let outcome = cached(&mut names, r.short()?, named)?;
        let reason = cached(&mut reasons, r.short()?, |s| match s.is_empty() {
            true => Ok(None),
            false => named(s).map(Some),
        })?;
        let flags = r.u8()?;
        outcomes.insert(
            key,
            LastOutcome {
                outcome,
                reason,
                changed: flags & 1 != 0,
                applied: flags & 2 != 0,
            },
        );
    }
    if !r.0.is_empty() {
        return Err("it goes on past its last outcome".into());
    }
    let whole_objects = match (rest.is_empty(), whole) {
        (false, true) => Some(decode_whole(rest)?),
        _ => None,
    };
    let state = ChainState {
        run: place.run,
        full: place.full,
        length: place.length,
        started,
        keep: Keep::Digests,
        users: Objects::Digests(users),
        groups: Objects::Digests(groups),
        deleted_users: Objects::Digests(deleted_users),
        deleted_groups: Objects::Digests(deleted_groups),
        server: ServerState::default(),
        server_digests: Some((
            Objects::Digests(server_users),
            Objects::Digests(server_groups),
        )),
        choices: Objects::Digests(choices),
        deleted: Objects::Digests(deleted),
        outcomes,
    };
    Ok(Decoded {
        state,
        whole: whole_objects,
    })
}

/// How a stored mirror differs from the state folded from the log (`None`: it does not).
/// `folded` is the chain folded through its last run's outcomes, as digests.
pub fn difference(mirror: &ChainState, folded: &ChainState) -> Option<String> {
    let checks: [(&str, bool); 11] = [
        ("its run", mirror.run == folded.run),
        (
            "the chain's full run and length",
            mirror.full == folded.full && mirror.length == folded.length,
        ),
        ("the Entra users", mirror.users.digests_equal(&folded.users)),
        (
            "the Entra groups",
            mirror.groups.digests_equal(&folded.groups),
        ),
        (
            "the deleted users",
            mirror.deleted_users.digests_equal(&folded.deleted_users),
        ),
        (
            "the deleted groups",
            mirror.deleted_groups.digests_equal(&folded.deleted_groups),
        ),
        (
            "the server's users",
            match (&mirror.server_digests, &folded.server_digests) {
                (Some(a), Some(b)) => a.0.digests_equal(&b.0),
                _ => false,
            },
        ),
        (
            "the server's groups",
            match (&mirror.server_digests, &folded.server_digests) {
                (Some(a), Some(b)) => a.1.digests_equal(&b.1),
                _ => false,
            },
        ),
        (
            "the deleted objects",
            mirror.deleted.digests_equal(&folded.deleted),
        ),
        ("the choices", mirror.choices.digests_equal(&folded.choices)),
        ("the last outcomes", mirror.outcomes == folded.outcomes),
    ];
    checks
        .iter()
        .find(|(_, ok)| !ok)
        .map(|(what, _)| format!("{what} differ"))
}

/// An LZ4 block with its size prepended, decompressed — refused when that size is more than
/// LZ4 can make of the block (at most 255 bytes out per byte in): a size read from the store
/// is not allocated on its word.
fn decompress(block: &[u8]) -> Result<Vec<u8>, String> {
    let size = block
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("it ends early")?;
    if size > block.len().saturating_mul(255) {
        return Err(format!(
            "a block of {} bytes cannot hold {size}",
            block.len()
        ));
    }
    lz4_flex::decompress_size_prepended(block).map_err(|e| e.to_string())
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("outcomes and reasons serialize as names"),
    }
}

fn named<T: serde::de::DeserializeOwned>(name: &[u8]) -> Result<T, String> {
    let name = std::str::from_utf8(name).map_err(|e| e.to_string())?;
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|e| e.to_string())
}

fn cached<T: Copy>(
    cache: &mut HashMap<Vec<u8>, T>,
    name: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    if let Some(v) = cache.get(name) {
        return Ok(*v);
    }
    let v = parse(name)?;
    cache.insert(name.to_vec(), v);
    Ok(v)
}

fn put_u32(w: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("fewer than 2^32 objects");
    w.extend_from_slice(&n.to_le_bytes());
}

fn put_short(w: &mut Vec<u8>, bytes: &[u8]) {
    let len = u8::try_from(bytes.len()).expect("ids and names are short");
    w.push(len);
    w.extend_from_slice(bytes);
}

fn put_entry(w: &mut Vec<u8>, kind: Kind, id: &ObjectId) {
    w.push(match kind {
        Kind::User => 0,
        Kind::Group => 1,
    });
    put_short(w, id.as_str().as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn short(&mut self) -> Result<&'a [u8], String> {
        let len = self.u8()? as usize;
        self.take(len)
    }

    fn digest(&mut self) -> Result<[u8; 16], String> {
        Ok(self.take(16)?.try_into().expect("16 bytes"))
    }

    fn id(&mut self) -> Result<ObjectId, String> {
        let s = std::str::from_utf8(self.short()?).map_err(|e| e.to_string())?;
        ObjectId::parse(s).map_err(|e| e.to_string())
    }

    fn entry(&mut self) -> Result<EntryKey, String> {
        let kind = match self.u8()? {
            0 => Kind::User,
            1 => Kind::Group,
            other => return Err(format!("unknown kind {other}")),
        };
        Ok((kind, self.id()?))
    }
}
