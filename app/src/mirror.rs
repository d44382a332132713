//! The base of an incremental run, from the org's mirror kept in the store when the log
//! vouches for it, else folded from the log; and the mirror a completed run leaves for the
//! next.
//!
//! The mirror is a cache: a run records the same events whether its base came from the mirror
//! or from the log, and the mirror is taken only when its stamp names the base run and that
//! run's last event as the log holds them, and its body is the one the stamp hashed.

use engine::chain::mirror::{self as kept, Whole};
use engine::chain::{self, ChainState, Through};
use engine::event::{RunStarted, TargetInfo};
use engine::store::{MirrorBody, MirrorWrite};
use engine::{RunId, Store, StoreError};

use adapters::error::{Error, Result};
use adapters::org::OrgConfig;

/// Where a run's base came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFrom {
    /// The mirror kept in the store.
    Mirror,
    /// Folded from the log, for the reason given (no mirror, or one not trusted).
    Log(String),
    /// None was needed: the run's inputs were its base's, unchanged, and its base changed
    /// nothing (see `run::repeat`).
    Settled,
}

/// The chain's state after `run` — the org's last completed run against `target`, which
/// `started` began — as the next run records against it; with the Entra objects whole when
/// `whole` (a live org that reads only the changes since).
pub(crate) fn base(
    store: &dyn Store,
    org: &OrgConfig,
    target: &TargetInfo,
    run: RunId,
    started: &RunStarted,
    whole: bool,
) -> Result<(ChainState, Option<Whole>, BaseFrom)> {
    let id = kept::mirror_id(&org.name, &org.tenant_id, target);
    let why = match trusted(store, &id, run, started, whole, true)? {
        Ok(Some(decoded)) => return Ok((decoded.state, decoded.whole, BaseFrom::Mirror)),
        Ok(None) => unreachable!("asked to decode"),
        Err(why) => why,
    };
    tracing::info!(
        target: engine::PROGRESS,
        "the org's mirror is not used ({why}): folding its runs from the log"
    );
    let keep = match whole {
        true => chain::Keep::Whole,
        false => chain::Keep::Digests,
    };
    let mut state = chain::fold(store, run, Through::Outcomes, keep).map_err(chain_error)?;
    let entra = whole.then(|| state.take_entra());
    Ok((state, entra, BaseFrom::Log(why)))
}

/// The mirror kept for `id`, if the log vouches for it — decoded when `decode` (else only
/// its stamp and body are checked); else why not.
fn trusted(
    store: &dyn Store,
    id: &engine::store::MirrorId,
    run: RunId,
    started: &RunStarted,
    whole: bool,
    decode: bool,
) -> Result<std::result::Result<Option<kept::Decoded>, String>> {
    let stored = match store.mirror(id) {
        Ok(Some(stored)) => stored,
        Ok(None) => return Ok(Err("none is kept".into())),
        Err(StoreError::Corrupt { reason, .. }) => return Ok(Err(reason)),
        Err(e) => return Err(e.into()),
    };
    if stored.stamp.run != run {
        return Ok(Err(format!(
            "it is of run {}, not of the last run {run}",
            stored.stamp.run
        )));
    }
    if !vouches(store, run, &stored.stamp)? {
        return Ok(Err(format!(
            "the log's last event of run {run} is not the one it was written with"
        )));
    }
    let body = match stored.body {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    if !decode {
        return Ok(Ok(None));
    }
    let place = kept::Place {
        run,
        full: stored.stamp.full,
        length: stored.stamp.length as usize,
    };
    let decoded = match kept::decode(&body, place, started.clone(), whole) {
        Ok(decoded) => decoded,
        Err(why) => return Ok(Err(format!("its body does not read: {why}"))),
    };
    if whole && decoded.whole.is_none() {
        return Ok(Err(
            "it keeps no Entra objects whole to read changes from".into()
        ));
    }
    Ok(Ok(Some(decoded)))
}

/// Whether the log vouches for `stamp` as `run`'s: it names that run's last event as the log
/// holds it (its seq and hash).
pub(crate) fn vouches(
    store: &dyn Store,
    run: RunId,
    stamp: &engine::store::MirrorStamp,
) -> Result<bool> {
    let last = match store.run_ends(run)? {
        Some((_, seq)) => store.read_event(seq)?,
        None => None,
    };
    Ok(stamp.run == run
        && last.is_some_and(|e| e.seq == stamp.seq && e.hash.to_hex() == stamp.hash))
}

/// The mirror `state` (the chain after its last run) makes, to write with the run's last
/// step; `whole`: the run's Entra objects as `encode_whole` keeps them, for a live org;
/// `settled`: the run changed nothing on the embedded server and found this many deleted
/// objects (see [`engine::store::MirrorStamp::settled`]).
pub(crate) fn write(
    org: &OrgConfig,
    target: &TargetInfo,
    state: ChainState,
    whole: Option<&[u8]>,
    settled: Option<u32>,
) -> MirrorWrite {
    let place = state.place();
    MirrorWrite {
        id: kept::mirror_id(&org.name, &org.tenant_id, target),
        org: org.name.clone(),
        server: kept::server_name(target),
        run: place.run,
        full: place.full,
        length: u32::try_from(place.length).unwrap_or(u32::MAX),
        body: MirrorBody::New(kept::encode(state, whole)),
        settled,
    }
}

pub(crate) fn chain_error(e: chain::ReadError) -> Error {
    match e {
        chain::ReadError::Store(s) => Error::Store(s),
        other => Error::Store(StoreError::Corrupt {
            at: "the chain of runs".into(),
            reason: other.to_string(),
        }),
    }
}

/// What `verify` says of one stored mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorCheck {
    pub org: String,
    pub server: String,
    pub run: Option<RunId>,
    pub state: MirrorState,
    /// Why it is not used, or how it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MirrorState {
    /// The log vouches for it, and folding the log gives exactly it.
    Matches,
    /// The log vouches for it; its contents were not compared with the log folded again.
    Vouched,
    /// The log does not vouch for it: no run takes it (the next folds the log and writes a
    /// new one).
    NotUsed,
    /// The log vouches for it, but it is not what folding the log gives: the store was edited
    /// outside roster, and the next run would take it.
    Differs,
}

/// Every mirror in the store, checked against the log: whether the log vouches for it (its
/// stamp, its body), and when `deep`, whether it is what folding the log gives (each chain
/// folded again: as long as a run without its mirror takes).
pub fn check_all(store: &dyn Store, deep: bool) -> Result<Vec<MirrorCheck>> {
    let mut out = Vec::new();
    for (id, stamp) in store.mirrors()? {
        let stamp = match stamp {
            Ok(stamp) => stamp,
            Err(why) => {
                out.push(MirrorCheck {
                    org: String::new(),
                    server: String::new(),
                    run: None,
                    state: MirrorState::NotUsed,
                    why: Some(format!("its stamp does not read: {why}")),
                });
                continue;
            }
        };
        let (state, why) = check_one(store, &id, &stamp, deep)?;
        out.push(MirrorCheck {
            org: stamp.org,
            server: stamp.server,
            run: Some(stamp.run),
            state,
            why,
        });
    }
    Ok(out)
}

fn check_one(
    store: &dyn Store,
    id: &engine::store::MirrorId,
    stamp: &engine::store::MirrorStamp,
    deep: bool,
) -> Result<(MirrorState, Option<String>)> {
    let Some(started) = chain::started_of(store, stamp.run)? else {
        let why = format!("run {} is not in the log", stamp.run);
        return Ok((MirrorState::NotUsed, Some(why)));
    };
    // A mirror keeps the Entra objects whole when its run left links to read changes from.
    let whole = started.source.delta_links.is_some();
    let decoded = match trusted(store, id, stamp.run, &started, whole, deep)? {
        Ok(decoded) => decoded,
        Err(why) => return Ok((MirrorState::NotUsed, Some(why))),
    };
    let Some(decoded) = decoded else {
        return Ok((MirrorState::Vouched, None));
    };
    let keep = match whole {
        true => chain::Keep::Whole,
        false => chain::Keep::Digests,
    };
    let mut folded = chain::fold(store, stamp.run, Through::Outcomes, keep).map_err(chain_error)?;
    let entra = whole.then(|| folded.take_entra());
    let differs = match (decoded.whole, entra) {
        (Some(a), Some(b)) if a != b => Some("the Entra objects kept whole differ".to_owned()),
        _ => kept::difference(&decoded.state, &folded),
    };
    Ok(match differs {
        None => (MirrorState::Matches, None),
        Some(why) => (MirrorState::Differs, Some(why)),
    })
}
