//! The directory served: the fixture's users, groups, members and recycle bins, and the
//! queries Graph answers over them — paging, `$select`, `$top`, `$filter`, `$search`, `$count`.

use super::*;

/// The tenant as Graph JSON objects.
pub(super) struct Directory {
    pub(super) tenant: String,
    users: Vec<Value>,
    groups: Vec<Value>,
    deleted_users: Vec<Value>,
    deleted_groups: Vec<Value>,
    /// id → ("user" | "group", index)
    index: HashMap<String, (&'static str, usize)>,
    /// group id → its direct member references
    members: HashMap<String, Vec<Value>>,
    /// member id → the groups that list it directly (`/users/{id}/memberOf`)
    member_of: HashMap<String, Vec<String>>,
}

impl Directory {
    /// Loads a tenant fixture of the shape `roster org add` reads. Its objects are served as
    /// they are, even one roster would refuse (a user without `accountEnabled`, say): the fake
    /// is also the hostile Graph the tests read from.
    pub(super) fn load(bytes: &[u8], origin: &str) -> Result<Directory> {
        from_json::<adapters::fixture::TenantFile>(bytes, origin, "tenant fixture (Graph JSON)")?;
        let raw: Value = from_json(bytes, origin, "tenant fixture (Graph JSON)")?;
        let list = |k: &str| {
            raw.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let groups_raw = list("groups");
        let mut members = HashMap::new();
        let mut groups = Vec::with_capacity(groups_raw.len());
        for g in groups_raw {
            members.insert(
                id_of(&g),
                g.get("members")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            groups.push(strip(g, "members"));
        }
        let users = list("users");
        let mut index = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            index.insert(id_of(u), ("user", i));
        }
        for (i, g) in groups.iter().enumerate() {
            index.insert(id_of(g), ("group", i));
        }
        let mut member_of: HashMap<String, Vec<String>> = HashMap::new();
        for (group, refs) in &members {
            for r in refs {
                member_of.entry(id_of(r)).or_default().push(group.clone());
            }
        }
        Ok(Directory {
            tenant: raw
                .get("tenantId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase(),
            users,
            groups,
            deleted_users: list("deletedUsers"),
            deleted_groups: list("deletedGroups"),
            index,
            members,
            member_of,
        })
    }

    /// Whether only an app granted `Member.Read.Hidden` is shown the group's members.
    pub(super) fn hides_members(&self, group: &str) -> bool {
        match self.index.get(group) {
            Some(("group", i)) => self.groups[*i]
                .get("visibility")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("HiddenMembership")),
            _ => false,
        }
    }

    /// Whether `id` is a user of the tenant (not deleted).
    pub(super) fn is_user(&self, id: &str) -> bool {
        matches!(self.index.get(id), Some(("user", _)))
    }

    pub(super) fn users(&self) -> &[Value] {
        &self.users
    }

    pub(super) fn groups(&self) -> &[Value] {
        &self.groups
    }

    pub(super) fn deleted_users(&self) -> &[Value] {
        &self.deleted_users
    }

    pub(super) fn deleted_groups(&self) -> &[Value] {
        &self.deleted_groups
    }

    /// A member as Graph lists it: the object with its `@odata.type`.
    pub(super) fn member_object(&self, reference: &Value) -> Value {
        let id = id_of(reference);
        match self.index.get(&id) {
            Some(("user", i)) => with_type(&self.users[*i], "#microsoft.graph.user"),
            Some((_, i)) => with_type(&self.groups[*i], "#microsoft.graph.group"),
            None => reference.clone(),
        }
    }

    pub(super) fn direct_members(&self, group: &str) -> Vec<Value> {
        self.members
            .get(group)
            .map(|m| m.iter().map(|r| self.member_object(r)).collect())
            .unwrap_or_default()
    }

    /// Users, groups and other objects reachable through nesting, each once.
    pub(super) fn transitive_members(&self, group: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([group.to_owned()]);
        let mut queue = VecDeque::from([group.to_owned()]);
        while let Some(g) = queue.pop_front() {
            for r in self.members.get(&g).map(Vec::as_slice).unwrap_or_default() {
                let id = id_of(r);
                if !seen.insert(id.clone()) {
                    continue;
                }
                if matches!(self.index.get(&id), Some(("group", _))) {
                    queue.push_back(id);
                }
                out.push(self.member_object(r));
            }
        }
        out
    }
}

impl State {
    pub(super) fn route(&self, req: &Request<'_>) -> Answer {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let d = self.dir();
        let d = &*d;
        let collection = |items: Vec<&Value>, context: &str| self.collection(items, req, context);
        match (req.method, segments.as_slice()) {
            ("GET", [kind @ ("users" | "groups"), "delta"]) => self.delta(kind, req),
            ("GET", ["users"]) => collection(d.users.iter().collect(), "users"),
            ("GET", ["groups"]) => collection(d.groups.iter().collect(), "groups"),
            ("GET", [kind @ ("users" | "groups"), "$count"]) => {
                if !req.eventual {
                    return count_needs_header();
                }
                Answer::Text(
                    if *kind == "users" {
                        d.users.len()
                    } else {
                        d.groups.len()
                    }
                    .to_string(),
                )
            }
            ("GET", ["users", id]) => self.single(id, "user"),
            ("GET", ["users", id, "memberOf", cast @ ..]) => {
                let id = id.to_ascii_lowercase();
                if !d.is_user(&id) {
                    return not_found(&id);
                }
                if !matches!(cast, [] | ["microsoft.graph.group"]) {
                    return self.unexpected(req);
                }
                let items: Vec<Value> = d
                    .member_of
                    .get(&id)
                    .map(|gs| {
                        gs.iter()
                            .map(|g| d.member_object(&serde_json::json!({"id": g})))
                            .collect()
                    })
                    .unwrap_or_default();
                collection(items.iter().collect(), "directoryObjects")
            }
            ("GET", ["groups", id]) => self.single(id, "group"),
            ("GET", ["groups", id, rel @ ("members" | "transitiveMembers"), cast @ ..]) => {
                let id = id.to_ascii_lowercase();
                if !matches!(d.index.get(&id), Some(("group", _))) {
                    return not_found(&id);
                }
                // Without Member.Read.Hidden, Graph leaves a hidden membership out.
                let hidden = d.hides_members(&id) && !self.grants("Member.Read.Hidden");
                let mut items = if hidden {
                    Vec::new()
                } else if *rel == "members" {
                    d.direct_members(&id)
                } else {
                    d.transitive_members(&id)
                };
                match cast {
                    [] => {}
                    [t @ ("microsoft.graph.user" | "microsoft.graph.group")] => {
                        let want = format!("#{t}");
                        items.retain(|m| {
                            m.get("@odata.type").and_then(Value::as_str) == Some(want.as_str())
                        });
                    }
                    _ => return self.unexpected(req),
                }
                collection(items.iter().collect(), "directoryObjects")
            }
            ("GET", ["directory", "deletedItems", "microsoft.graph.user"]) => {
                collection(d.deleted_users.iter().collect(), "users")
            }
            ("GET", ["directory", "deletedItems", "microsoft.graph.group"]) => {
                collection(d.deleted_groups.iter().collect(), "groups")
            }
            _ => self.unexpected(req),
        }
    }

    pub(super) fn unexpected(&self, req: &Request<'_>) -> Answer {
        self.counters.unexpected.fetch_add(1, Ordering::Relaxed);
        let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "fake-graph: UNEXPECTED REQUEST {} /v1.0/{}?{} (answered 400)",
            req.method,
            req.path,
            q.join("&")
        );
        Answer::Error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "Unsupported request: {} /v1.0/{}: fake-graph does not serve it",
                req.method, req.path
            ),
            vec![],
        )
    }

    pub(super) fn single(&self, id: &str, kind: &str) -> Answer {
        let id = id.to_ascii_lowercase();
        let dir = self.dir();
        match dir.index.get(&id) {
            Some((k, i)) if *k == kind => {
                let obj = if kind == "user" {
                    &dir.users[*i]
                } else {
                    &dir.groups[*i]
                };
                let mut o = obj.clone();
                o["@odata.context"] =
                    format!("{}/v1.0/$metadata#{kind}s/$entity", self.base).into();
                Answer::Json(StatusCode::OK, o, vec![])
            }
            _ => not_found(&id),
        }
    }

    /// A page of `items` per the query: filter, search, order, select, count, page.
    /// Only the page served is copied: the items are borrowed until then.
    pub(super) fn collection(
        &self,
        mut items: Vec<&Value>,
        req: &Request<'_>,
        context: &str,
    ) -> Answer {
        let mut select: Option<Vec<String>> = None;
        let mut top: Option<usize> = None;
        let mut skip = 0usize;
        let mut count = false;
        for (k, v) in &req.query {
            match k.as_str() {
                "$select" => select = Some(select_fields(v)),
                "$top" => match v.parse::<usize>() {
                    Ok(n) if (1..=999).contains(&n) => top = Some(n),
                    _ => {
                        return bad_request(&format!(
                            "Invalid value '{v}' for $top: must be between 1 and 999"
                        ))
                    }
                },
                "$skiptoken" => match v
                    .strip_prefix("fake-")
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                {
                    Some(n) => skip = n,
                    None => return bad_request("Invalid $skiptoken"),
                },
                "$count" => count = v == "true",
                "$filter" => match filter(v) {
                    Ok((prop, prefix)) => items.retain(|i| {
                        i.get(&prop)
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.to_lowercase().starts_with(&prefix))
                    }),
                    Err(msg) => {
                        return Answer::Error(
                            StatusCode::BAD_REQUEST,
                            "Request_UnsupportedQuery",
                            msg,
                            vec![],
                        )
                    }
                },
                "$search" => {
                    if !req.eventual {
                        return Answer::Error(
                            StatusCode::BAD_REQUEST,
                            "Request_UnsupportedQuery",
                            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'".into(),
                            vec![],
                        );
                    }
                    match search(v) {
                        Ok((prop, term)) => items.retain(|i| {
                            i.get(&prop).and_then(Value::as_str).is_some_and(|s| {
                                s.split(|c: char| !c.is_alphanumeric())
                                    .any(|w| w.to_lowercase().starts_with(&term))
                            })
                        }),
                        Err(msg) => return bad_request(&msg),
                    }
                }
                "$orderby" => {
                    let prop = v
                        .split_whitespace()
                        .next()
                        .unwrap_or("displayName")
                        .to_owned();
                    items.sort_by_key(|i| {
                        i.get(&prop)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_lowercase()
                    });
                }
                other if other.starts_with('$') => {
                    return bad_request(&format!(
                        "Unrecognized query argument specified: '{other}'."
                    ))
                }
                _ => {}
            }
        }
        if count && !req.eventual {
            return count_needs_header();
        }
        let total = items.len();
        let size = top.unwrap_or(100).min(self.config.page_size.max(1));
        let page: Vec<Value> = items
            .into_iter()
            .skip(skip)
            .take(size)
            .map(|i| match &select {
                Some(fields) => project(i, fields),
                None => i.clone(),
            })
            .collect();
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            format!("{}/v1.0/$metadata#{context}", self.base).into(),
        );
        if count {
            body.insert("@odata.count".into(), total.into());
        }
        let next = if self.config.loop_next_link {
            Some(0)
        } else {
            (skip + size < total).then_some(skip + size)
        };
        if let Some(n) = next.filter(|_| skip + size < total || self.config.loop_next_link) {
            let mut url = url::Url::parse(&format!("{}/v1.0/{}", self.base, req.path))
                .expect("the base URL parses");
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in req.query.iter().filter(|(k, _)| k != "$skiptoken") {
                    q.append_pair(k, v);
                }
                q.append_pair("$skiptoken", &format!("fake-{n:x}"));
            }
            body.insert("@odata.nextLink".into(), url.to_string().into());
        }
        body.insert("value".into(), Value::Array(page));
        Answer::Json(StatusCode::OK, Value::Object(body), vec![])
    }
}

/// The fields a `$select` names.
pub(super) fn select_fields(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(super) fn strip(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

pub(super) fn id_of(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

pub(super) fn with_type(v: &Value, odata_type: &str) -> Value {
    let mut o = Map::new();
    o.insert("@odata.type".into(), odata_type.into());
    if let Some(src) = v.as_object() {
        for (k, val) in src {
            o.insert(k.clone(), val.clone());
        }
    }
    Value::Object(o)
}

pub(super) fn project(item: &Value, fields: &[String]) -> Value {
    let mut o = Map::new();
    if let Some(t) = item.get("@odata.type") {
        o.insert("@odata.type".into(), t.clone());
    }
    for f in fields {
        if let Some(v) = item.get(f) {
            o.insert(f.clone(), v.clone());
        }
    }
    Value::Object(o)
}

/// `startswith(prop,'value')`
pub(super) fn filter(expr: &str) -> std::result::Result<(String, String), String> {
    let e = expr.trim();
    let inner = e
        .strip_prefix("startswith(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("Unsupported filter: {e:?} (fake-graph supports startswith(property,'value'))")
        })?;
    let (prop, value) = inner.split_once(',').ok_or("Invalid startswith")?;
    let value = value.trim().trim_matches('\'').to_lowercase();
    Ok((prop.trim().to_owned(), value))
}

/// `"prop:term"`
pub(super) fn search(expr: &str) -> std::result::Result<(String, String), String> {
    let e = expr.trim().trim_matches('"');
    let (prop, term) = e
        .split_once(':')
        .ok_or("Invalid $search: expected \"property:term\"")?;
    Ok((prop.trim().to_owned(), term.trim().to_lowercase()))
}

pub(super) fn bad_request(msg: &str) -> Answer {
    Answer::Error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        msg.to_owned(),
        vec![],
    )
}

pub(super) fn count_needs_header() -> Answer {
    Answer::Error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "$count is only supported with the header 'ConsistencyLevel: eventual'".into(),
        vec![],
    )
}

pub(super) fn not_found(id: &str) -> Answer {
    Answer::Error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."), vec![])
}

pub(super) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}
