//! Change tracking as Graph serves it: `/users/delta` and `/groups/delta` (groups with
//! `members@delta`), `@odata.nextLink` pages ending in an `@odata.deltaLink`, `@removed` with
//! reason `changed` (now in the recycle bin) or `deleted` (gone for good), `$deltatoken=latest`,
//! an updated object as its id and changed properties only (Graph promises at least those),
//! and a token the fake no longer knows answered `410 Gone` with `syncStateNotFound`, as Graph
//! answers an expired one. The tenant can be reloaded while the fake runs: every load is a
//! version, a delta token names the version it was issued at, and the changes served are the
//! difference between that version and the current one.

use std::collections::VecDeque;

use super::directory::{project, select_fields, Directory};
use super::*;

/// Versions kept for delta tokens; a token older than these answers 410.
const HISTORY: usize = 32;

/// Every version of the tenant the fake has served, oldest first, the current one last.
pub(super) struct Versions {
    /// The version number of `list[0]`.
    first: u64,
    list: VecDeque<Arc<Directory>>,
}

impl Versions {
    pub(super) fn new(dir: Directory) -> Versions {
        Versions {
            first: 1,
            list: VecDeque::from([Arc::new(dir)]),
        }
    }

    fn current(&self) -> (u64, Arc<Directory>) {
        let n = self.first + self.list.len() as u64 - 1;
        (n, self.list.back().expect("one version at least").clone())
    }

    fn at(&self, version: u64) -> Option<Arc<Directory>> {
        version
            .checked_sub(self.first)
            .and_then(|i| self.list.get(i as usize))
            .cloned()
    }
}

impl State {
    /// The tenant as served now.
    pub(super) fn dir(&self) -> Arc<Directory> {
        self.versions.read().unwrap().current().1
    }

    /// Serves `dir` from now on, as a new version; returns its number.
    pub(super) fn replace(&self, dir: Directory) -> u64 {
        let mut v = self.versions.write().unwrap();
        v.list.push_back(Arc::new(dir));
        while v.list.len() > HISTORY {
            v.list.pop_front();
            v.first += 1;
        }
        v.current().0
    }

    /// Forgets every version: every delta token issued so far answers 410 (the tenant served
    /// stays the same, as a new version).
    pub(super) fn expire_delta(&self) {
        let mut v = self.versions.write().unwrap();
        let current = v.current().1;
        v.first += v.list.len() as u64;
        v.list = VecDeque::from([current]);
    }

    /// `GET /users/delta` or `/groups/delta`.
    pub(super) fn delta(&self, kind: &str, req: &Request<'_>) -> Answer {
        let mut select: Option<Vec<String>> = None;
        let (mut token, mut skip) = (None, None);
        for (k, v) in &req.query {
            match k.as_str() {
                "$select" => select = Some(select_fields(v)),
                "$deltatoken" => token = Some(v.clone()),
                "$skiptoken" => skip = Some(v.clone()),
                "$top" => {}
                other => {
                    return Answer::Error(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        format!("Unsupported query option for delta: '{other}'."),
                        vec![],
                    )
                }
            }
        }
        let now_version = self.versions.read().unwrap().current().0;
        // A page of a delta already under way: from which version, to which, from where.
        let (from, to, offset) = match (&token, &skip) {
            (Some(t), _) if t == "latest" => {
                return self.delta_page(kind, req, Vec::new(), now_version, None);
            }
            (Some(t), None) => match t.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
                Some(n) => (Some(n), now_version, 0),
                None => return resync(),
            },
            (None, Some(s)) => match parse_skip(s) {
                Some(p) => p,
                None => return bad_request("Invalid $skiptoken"),
            },
            (None, None) => (None, now_version, 0),
            (Some(_), Some(_)) => return bad_request("Both $deltatoken and $skiptoken"),
        };
        let versions = self.versions.read().unwrap();
        let Some(to_dir) = versions.at(to) else {
            return resync();
        };
        let from_dir = match from {
            None => None,
            Some(n) => match versions.at(n) {
                Some(d) => Some(d),
                None => return resync(),
            },
        };
        drop(versions);
        let changes = changes(kind, from_dir.as_deref(), &to_dir, select.as_deref());
        self.delta_page(kind, req, changes, to, Some((from, offset)))
    }

    /// One page of `changes` (from `offset`), with a nextLink, or the deltaLink at the end.
    fn delta_page(
        &self,
        kind: &str,
        req: &Request<'_>,
        changes: Vec<Value>,
        to: u64,
        paging: Option<(Option<u64>, usize)>,
    ) -> Answer {
        let (from, offset) = paging.unwrap_or((None, 0));
        let size = self.config.page_size.clamp(1, 999);
        let end = (offset + size).min(changes.len());
        let page: Vec<Value> = changes[offset.min(end)..end].to_vec();
        let mut url =
            url::Url::parse(&format!("{}/v1.0/{kind}/delta", self.base)).expect("the base parses");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in req
                .query
                .iter()
                .filter(|(k, _)| k != "$skiptoken" && k != "$deltatoken")
            {
                q.append_pair(k, v);
            }
            if end < changes.len() {
                let from = from.map_or("x".to_owned(), |n| n.to_string());
                q.append_pair("$skiptoken", &format!("d{from}-{to}-{end}"));
            } else {
                q.append_pair("$deltatoken", &format!("v{to}"));
            }
        }
        let link = if end < changes.len() {
            "@odata.nextLink"
        } else {
            "@odata.deltaLink"
        };
        let body = json!({
            "@odata.context": format!("{}/v1.0/$metadata#{kind}", self.base),
            link: url.to_string(),
            "value": page,
        });
        Answer::Json(StatusCode::OK, body, vec![])
    }
}

/// `d{from|x}-{to}-{offset}`.
fn parse_skip(s: &str) -> Option<(Option<u64>, u64, usize)> {
    let mut parts = s.strip_prefix('d')?.splitn(3, '-');
    let from = match parts.next()? {
        "x" => None,
        n => Some(n.parse().ok()?),
    };
    Some((
        from,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// What Graph answers a delta token it no longer holds.
fn resync() -> Answer {
    Answer::Error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state for this delta token was not found or has expired; start a full synchronization without a token.".into(),
        vec![],
    )
}

/// The changes from `from` (`None`: everything, as an initial sync) to `to`, in `to`'s order,
/// then the removed objects.
fn changes(
    kind: &str,
    from: Option<&Directory>,
    to: &Directory,
    select: Option<&[String]>,
) -> Vec<Value> {
    let shown = |o: &Value| match select {
        Some(fields) => project(o, fields),
        None => o.clone(),
    };
    let groups = kind == "groups";
    let (now, before, recycled) = if groups {
        (
            to.groups(),
            from.map(Directory::groups),
            to.deleted_groups(),
        )
    } else {
        (to.users(), from.map(Directory::users), to.deleted_users())
    };
    let before_by_id: HashMap<String, &Value> = before
        .unwrap_or_default()
        .iter()
        .map(|o| (id_of(o), o))
        .collect();
    // As Graph: a group's changes do not report that a user deleted (soft or hard) left it,
    // nor that a restored user joined it again. Those members' changes are left out.
    let user_ids = |d: &Directory| -> HashSet<String> { d.users().iter().map(id_of).collect() };
    let (users_now, users_before) = (user_ids(to), from.map(user_ids).unwrap_or_default());
    let deleted_before: HashSet<String> = from
        .map(|f| f.deleted_users().iter().map(id_of).collect())
        .unwrap_or_default();
    let silent = |id: &str| {
        let (was, is) = (users_before.contains(id), users_now.contains(id));
        (was && !is) || (!was && is && deleted_before.contains(id))
    };
    let mut out = Vec::new();
    let mut listed = HashSet::new();
    for o in now {
        let id = id_of(o);
        listed.insert(id.clone());
        let old = before_by_id.get(&id).copied();
        // An updated object comes as Graph may send it: its id and only what changed.
        let mut value = match old {
            Some(b) => changed_only(&shown(b), shown(o)),
            None => shown(o),
        };
        if groups {
            let members_now = member_refs(to, &id);
            let members_before = from.map(|f| member_refs(f, &id)).unwrap_or_default();
            let mut delta: Vec<Value> = members_now
                .iter()
                .filter(|m| !members_before.contains(*m) && (old.is_none() || !silent(&m.1)))
                .map(|(t, m)| json!({"@odata.type": t, "id": m}))
                .collect();
            delta.extend(
                members_before
                    .iter()
                    .filter(|m| !members_now.contains(*m) && !silent(&m.1))
                    .map(|(t, m)| json!({"@odata.type": t, "id": m, "@removed": {"reason": "deleted"}})),
            );
            let unchanged = old.is_some_and(|b| *b == *o) && delta.is_empty();
            if unchanged {
                continue;
            }
            if !delta.is_empty() || old.is_none() {
                value["members@delta"] = Value::Array(delta);
            }
            out.push(value);
        } else if old != Some(o) {
            out.push(value);
        }
    }
    let in_bin: HashSet<String> = recycled.iter().map(id_of).collect();
    let mut gone: Vec<&String> = before_by_id
        .keys()
        .filter(|id| !listed.contains(*id))
        .collect();
    gone.sort();
    for id in gone {
        let reason = if in_bin.contains(id) {
            "changed"
        } else {
            "deleted"
        };
        out.push(json!({"id": id, "@removed": {"reason": reason}}));
    }
    out
}

/// `now` as the properties that differ from `before` (a property gone is `null`), with its id.
fn changed_only(before: &Value, now: Value) -> Value {
    let (Some(b), Value::Object(n)) = (before.as_object(), &now) else {
        return now;
    };
    let mut out = Map::new();
    for (k, v) in n {
        if k == "id" || k.starts_with('@') || b.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in b.keys() {
        if !n.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// A group's direct members as (`@odata.type`, id), sorted.
fn member_refs(dir: &Directory, group: &str) -> Vec<(String, String)> {
    let mut refs: Vec<(String, String)> = dir
        .direct_members(group)
        .iter()
        .map(|m| {
            (
                m.get("@odata.type")
                    .and_then(Value::as_str)
                    .unwrap_or("#microsoft.graph.directoryObject")
                    .to_owned(),
                id_of(m),
            )
        })
        .collect();
    refs.sort();
    refs
}
