//! `roster fake-graph`: a tenant fixture served over HTTP on loopback with the behaviour of
//! Graph v1.0 that the live adapter depends on — paging, `$select`, `$top`, `$filter`
//! (startswith), `$search` and `$count` (both requiring `ConsistencyLevel: eventual`),
//! `$batch`, members and transitive members, the recycle bins, the OAuth token and device-code
//! endpoints — and Graph's ways of failing: throttling with `Retry-After`, 503s, a resource-unit
//! budget, latency, dropped connections, slow or truncated pages, looping links, expiring tokens.
//!
//! It fails loudly on anything it was not built to answer: a Graph-shaped 400, a line on
//! stderr, and a counter in `/_fake/stats`, so a test notices a request it did not expect.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::fixture::{from_json, parse_tenant};
use crate::wire::{BatchRequest, BatchResponse, BatchResponseItem};

/// What the device-code sign-in does once the admin "acts" in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceOutcome {
    #[default]
    Approve,
    Decline,
    Expire,
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The largest page served, whatever `$top` asks (Graph: 999 for directory objects;
    /// without `$top`, 100).
    pub page_size: usize,
    /// Every Nth Graph request is answered 429 with `Retry-After: retry_after`. This and the
    /// other faults by count never hit the same request twice in a row (see `State::inject`).
    pub throttle_every: Option<u64>,
    /// Every Nth Graph request is answered `fail_status` (503 unless set) without `Retry-After`.
    pub fail_every: Option<u64>,
    pub fail_status: u16,
    /// Every Graph request after the Nth is answered 500 (an outage that does not end).
    pub fail_after: Option<u64>,
    /// Every Nth Graph request has its connection dropped mid-body.
    pub drop_every: Option<u64>,
    /// Every Nth Graph request gets a body cut short (truncated JSON, complete HTTP).
    pub truncate_every: Option<u64>,
    /// Pad every Nth response past the most roster reads, sent without a length.
    pub oversize_every: Option<u64>,
    /// Every Nth Graph request gets a page without `value`.
    pub missing_value_every: Option<u64>,
    /// Every Nth Graph request is delayed by `slow`.
    pub slow_every: Option<u64>,
    pub slow: Duration,
    /// Every nextLink points back at the first page.
    pub loop_next_link: bool,
    /// Added to every response.
    pub latency: Duration,
    /// Graph's resource-unit budget per 10 seconds for the app in the tenant.
    pub ru_per_10s: Option<u64>,
    /// Seconds, as sent in `Retry-After` for `throttle_every` (decimals allowed); `None` sends
    /// no `Retry-After` at all.
    pub retry_after: Option<f64>,
    /// Device code: polls answered `authorization_pending` before the outcome.
    pub approve_after: u32,
    pub device_outcome: DeviceOutcome,
    /// Device code polling interval, seconds.
    pub poll_interval: u64,
    /// The first poll after approval is answered `slow_down` once.
    pub slow_down_once: bool,
    pub token_ttl: Duration,
    /// After this many Graph requests, every access token issued so far stops working (as if
    /// it expired mid-run); refreshed tokens work.
    pub expire_tokens_after: Option<u64>,
    /// The client secret expected by the client-credentials grant; any, if `None`.
    pub client_secret: Option<String>,
    /// Answer device-code polls with AADSTS7000218.
    pub public_client_disabled: bool,
    /// Answer sign-ins with AADSTS65001.
    pub deny_consent: bool,
    /// Answer Graph requests under these path prefixes (after `/v1.0/`) with 403.
    pub forbid: Vec<String>,
    /// Sent as `expires_in` (and a device code's) instead of the real lifetime: a hostile
    /// sign-in service's number (a huge one, a string).
    pub expires_in: Option<Value>,
    /// Answer Graph requests under these path prefixes (after `/v1.0/`) with 404, as Graph
    /// answers for an object deleted while it is read.
    pub not_found: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            page_size: 999,
            throttle_every: None,
            fail_every: None,
            fail_status: 503,
            fail_after: None,
            drop_every: None,
            truncate_every: None,
            oversize_every: None,
            missing_value_every: None,
            slow_every: None,
            slow: Duration::from_secs(0),
            loop_next_link: false,
            latency: Duration::ZERO,
            ru_per_10s: None,
            retry_after: Some(1.0),
            approve_after: 2,
            device_outcome: DeviceOutcome::Approve,
            poll_interval: 1,
            slow_down_once: false,
            token_ttl: Duration::from_secs(3600),
            expire_tokens_after: None,
            client_secret: None,
            public_client_disabled: false,
            deny_consent: false,
            forbid: Vec::new(),
            not_found: Vec::new(),
            expires_in: None,
        }
    }
}

/// What the fake has seen and done; `GET /_fake/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeStats {
    pub http_requests: u64,
    pub graph_requests: u64,
    pub throttled: u64,
    pub failed: u64,
    pub unexpected: u64,
    pub resource_units: u64,
    pub tokens_issued: u64,
}

#[derive(Default)]
struct Counters {
    http_requests: AtomicU64,
    graph_requests: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
    unexpected: AtomicU64,
    resource_units: AtomicU64,
    tokens_issued: AtomicU64,
}

/// The tenant as Graph JSON objects.
struct Directory {
    tenant: String,
    users: Vec<Value>,
    groups: Vec<Value>,
    deleted_users: Vec<Value>,
    deleted_groups: Vec<Value>,
    /// id → ("user" | "group", index)
    index: HashMap<String, (&'static str, usize)>,
    /// group id → its direct member references
    members: HashMap<String, Vec<Value>>,
}

struct Device {
    polls: u32,
    slowed: bool,
}

struct State {
    config: FakeConfig,
    dir: Directory,
    base: String,
    counters: Counters,
    /// (window start, units spent in it)
    window: Mutex<(Instant, u64)>,
    access: Mutex<HashMap<String, Instant>>,
    refresh: Mutex<HashSet<String>>,
    devices: Mutex<HashMap<String, Device>>,
    /// Requests the last attempt of which an injected fault hit (see [`State::inject`]).
    faulted: Mutex<HashSet<u64>>,
}

impl State {
    fn stats(&self) -> FakeStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FakeStats {
            http_requests: g(&c.http_requests),
            graph_requests: g(&c.graph_requests),
            throttled: g(&c.throttled),
            failed: g(&c.failed),
            unexpected: g(&c.unexpected),
            resource_units: g(&c.resource_units),
            tokens_issued: g(&c.tokens_issued),
        }
    }
}

fn strip(mut v: Value, key: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
    v
}

fn id_of(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

impl Directory {
    /// Loads a tenant fixture, checked as `roster org add` checks it.
    fn load(bytes: &[u8], origin: &str) -> Result<Directory> {
        parse_tenant(bytes, origin)?;
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
        })
    }

    /// A member as Graph lists it: the object with its `@odata.type`.
    fn member_object(&self, reference: &Value) -> Value {
        let id = id_of(reference);
        match self.index.get(&id) {
            Some(("user", i)) => with_type(&self.users[*i], "#microsoft.graph.user"),
            Some((_, i)) => with_type(&self.groups[*i], "#microsoft.graph.group"),
            None => reference.clone(),
        }
    }

    fn direct_members(&self, group: &str) -> Vec<Value> {
        self.members
            .get(group)
            .map(|m| m.iter().map(|r| self.member_object(r)).collect())
            .unwrap_or_default()
    }

    /// Users, groups and other objects reachable through nesting, each once.
    fn transitive_members(&self, group: &str) -> Vec<Value> {
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

fn with_type(v: &Value, odata_type: &str) -> Value {
    let mut o = Map::new();
    o.insert("@odata.type".into(), odata_type.into());
    if let Some(src) = v.as_object() {
        for (k, val) in src {
            o.insert(k.clone(), val.clone());
        }
    }
    Value::Object(o)
}

/// A Graph error response.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": { "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(), "request-id": uuid::Uuid::new_v4().to_string(), "client-request-id": uuid::Uuid::new_v4().to_string() }
        }
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn token_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {}\r\nCorrelation ID: {}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4()),
        "error_codes": [code],
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn pending(error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description, "error_codes": [70016] });
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// One parsed Graph request (outer, or inner in a `$batch`).
struct Request<'a> {
    method: &'a str,
    /// Path after `/v1.0/`, no leading slash.
    path: String,
    query: Vec<(String, String)>,
    eventual: bool,
}

/// What a Graph request produced, before it becomes an HTTP (or inner batch) response.
enum Answer {
    Json(StatusCode, Value, Vec<(&'static str, String)>),
    Text(String),
    Error(
        StatusCode,
        &'static str,
        String,
        Vec<(&'static str, String)>,
    ),
}

impl State {
    fn issue_access(&self) -> String {
        let t = random_token("fake-at-");
        self.access
            .lock()
            .unwrap()
            .insert(t.clone(), Instant::now() + self.config.token_ttl);
        self.counters.tokens_issued.fetch_add(1, Ordering::Relaxed);
        t
    }

    fn token_body(&self, with_refresh: Option<String>) -> Response {
        let access = self.issue_access();
        let mut body = json!({
            "token_type": "Bearer",
            "expires_in": self.config.expires_in.clone().unwrap_or(self.config.token_ttl.as_secs().into()),
            "ext_expires_in": self.config.token_ttl.as_secs(),
            "access_token": access,
        });
        if let Some(r) = with_refresh {
            body["refresh_token"] = r.into();
            body["scope"] = "User.Read.All GroupMember.Read.All Group.Read.All".into();
        }
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.access
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    /// Spends resource units; `Some(wait)` if the budget for this window is exhausted.
    fn spend(&self, units: u64) -> Option<Duration> {
        let budget = self.config.ru_per_10s?;
        let mut w = self.window.lock().unwrap();
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(10) {
            *w = (now, 0);
        }
        if w.1 + units > budget {
            return Some(Duration::from_secs(10).saturating_sub(now.duration_since(w.0)));
        }
        w.1 += units;
        self.counters
            .resource_units
            .fetch_add(units, Ordering::Relaxed);
        None
    }

    fn every(&self, n: Option<u64>, count: u64) -> bool {
        n.is_some_and(|n| n > 0 && count.is_multiple_of(n))
    }

    /// Whether a fault that is `due` (by the request count) is injected into the request
    /// `key`: never into the same request twice in a row. Against real Graph a retry after
    /// `Retry-After` gets through; with faults by count alone, concurrent requests arriving
    /// in a fixed order could hand one request every faulty count until it gives up.
    fn inject(&self, due: bool, key: u64) -> bool {
        let mut faulted = self.faulted.lock().unwrap();
        let again = faulted.remove(&key);
        let inject = due && !again;
        if inject {
            faulted.insert(key);
        }
        inject
    }

    /// Serves one Graph request, faults and budget included.
    fn graph(&self, req: &Request<'_>, count: u64) -> Answer {
        let c = &self.config;
        let (fail, throttle) = (
            self.every(c.fail_every, count),
            self.every(c.throttle_every, count),
        );
        let injected = self.inject(
            fail || throttle,
            request_key(("graph", req.method, &req.path, &req.query)),
        );
        if c.fail_after.is_some_and(|n| count > n) || (injected && fail) {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            let (status, code) = if c.fail_after.is_some_and(|n| count > n) {
                (StatusCode::INTERNAL_SERVER_ERROR, "generalException")
            } else {
                let status =
                    StatusCode::from_u16(c.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                (
                    status,
                    if status == StatusCode::SERVICE_UNAVAILABLE {
                        "serviceNotAvailable"
                    } else {
                        "generalException"
                    },
                )
            };
            return Answer::Error(
                status,
                code,
                "The service is temporarily unavailable.".into(),
                vec![],
            );
        }
        if injected && throttle {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            return Answer::Error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.".into(),
                c.retry_after
                    .map(|s| vec![("Retry-After", format!("{s}"))])
                    .unwrap_or_default(),
            );
        }
        if c.forbid.iter().any(|p| under(&req.path, p)) {
            return Answer::Error(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.".into(),
                vec![],
            );
        }
        if c.not_found.iter().any(|p| under(&req.path, p)) {
            return Answer::Error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("Resource '{}' does not exist or one of its queried reference-property objects are not present.", req.path),
                vec![],
            );
        }
        let answer = self.route(req);
        if let Answer::Json(..) | Answer::Text(_) = &answer {
            let selected = req.query.iter().any(|(k, _)| k == "$select");
            let units = cost(&req.path).saturating_sub(u64::from(selected)).max(1);
            if let Some(wait) = self.spend(units) {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                return Answer::Error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Resource unit limit exceeded. Please retry again later.".into(),
                    vec![("Retry-After", secs.to_string())],
                );
            }
        }
        answer
    }

    fn route(&self, req: &Request<'_>) -> Answer {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let d = &self.dir;
        let collection = |items: Vec<&Value>, context: &str| self.collection(items, req, context);
        match (req.method, segments.as_slice()) {
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
            ("GET", ["groups", id]) => self.single(id, "group"),
            ("GET", ["groups", id, rel @ ("members" | "transitiveMembers"), cast @ ..]) => {
                let id = id.to_ascii_lowercase();
                if !matches!(d.index.get(&id), Some(("group", _))) {
                    return not_found(&id);
                }
                let mut items = if *rel == "members" {
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

    fn unexpected(&self, req: &Request<'_>) -> Answer {
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

    fn single(&self, id: &str, kind: &str) -> Answer {
        let id = id.to_ascii_lowercase();
        match self.dir.index.get(&id) {
            Some((k, i)) if *k == kind => {
                let obj = if kind == "user" {
                    &self.dir.users[*i]
                } else {
                    &self.dir.groups[*i]
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
    fn collection(&self, mut items: Vec<&Value>, req: &Request<'_>, context: &str) -> Answer {
        let mut select: Option<Vec<String>> = None;
        let mut top: Option<usize> = None;
        let mut skip = 0usize;
        let mut count = false;
        for (k, v) in &req.query {
            match k.as_str() {
                "$select" => {
                    select = Some(
                        v.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
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

/// Resource units per request, as DESIGN.md gives Graph's costs.
fn cost(path: &str) -> u64 {
    if path.contains("/transitiveMembers") {
        5
    } else if path.contains("/members") {
        3
    } else if path.ends_with("$count")
        || path.matches('/').count() == 1 && !path.starts_with("directory")
    {
        1
    } else {
        2
    }
}

fn project(item: &Value, fields: &[String]) -> Value {
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
fn filter(expr: &str) -> std::result::Result<(String, String), String> {
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
fn search(expr: &str) -> std::result::Result<(String, String), String> {
    let e = expr.trim().trim_matches('"');
    let (prop, term) = e
        .split_once(':')
        .ok_or("Invalid $search: expected \"property:term\"")?;
    Ok((prop.trim().to_owned(), term.trim().to_lowercase()))
}

fn bad_request(msg: &str) -> Answer {
    Answer::Error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        msg.to_owned(),
        vec![],
    )
}

fn count_needs_header() -> Answer {
    Answer::Error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "$count is only supported with the header 'ConsistencyLevel: eventual'".into(),
        vec![],
    )
}

fn not_found(id: &str) -> Answer {
    Answer::Error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."), vec![])
}

fn answer_to_response(a: Answer) -> Response {
    match a {
        Answer::Json(status, body, headers) => {
            let mut r = (
                status,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
            for (k, v) in headers {
                r.headers_mut().insert(
                    k,
                    HeaderValue::from_str(&v).expect("header values are ASCII"),
                );
            }
            r
        }
        Answer::Text(t) => (StatusCode::OK, [("content-type", "text/plain")], t).into_response(),
        Answer::Error(status, code, msg, headers) => {
            let mut r = graph_error(status, code, &msg);
            for (k, v) in headers {
                r.headers_mut().insert(
                    k,
                    HeaderValue::from_str(&v).expect("header values are ASCII"),
                );
            }
            r
        }
    }
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

async fn handle(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.counters.http_requests.fetch_add(1, Ordering::Relaxed);
    let path = uri.path().to_owned();
    if path == "/_fake/stats" {
        return axum::Json(state.stats()).into_response();
    }
    if method == Method::POST && path.ends_with("/oauth2/v2.0/devicecode") {
        return device_code(&state, &path, &body);
    }
    if method == Method::POST && path.ends_with("/oauth2/v2.0/token") {
        return token(&state, &path, &body);
    }
    let Some(rest) = path.strip_prefix("/v1.0/") else {
        state.counters.unexpected.fetch_add(1, Ordering::Relaxed);
        eprintln!("fake-graph: UNEXPECTED REQUEST {method} {uri} (answered 400)");
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Unsupported request: {method} {path}"),
        );
    };
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    if !state.authorized(&headers) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not valid.",
        );
    }
    let count = state
        .counters
        .graph_requests
        .fetch_add(1, Ordering::Relaxed)
        + 1;
    if state.config.expire_tokens_after == Some(count) {
        state.access.lock().unwrap().clear();
    }
    if state.every(state.config.slow_every, count) {
        tokio::time::sleep(state.config.slow).await;
    }
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    // A whole HTTP request, for the body-level faults; `graph` keys each Graph request.
    let key = request_key(("http", method.as_str(), &uri, &body));
    let response = if rest == "$batch" && method == Method::POST {
        batch(&state, &body, eventual)
    } else {
        let req = Request {
            method: method.as_str(),
            path: rest.to_owned(),
            query: parse_query(uri.query()),
            eventual,
        };
        answer_to_response(state.graph(&req, count))
    };
    damage(&state, count, key, response).await
}

/// Identifies a request for [`State::inject`]: the same request sent again has the same key.
fn request_key(request: impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    request.hash(&mut h);
    h.finish()
}

/// Applies the body-level faults: dropped connection, truncated JSON, missing `value`.
async fn damage(state: &State, count: u64, key: u64, response: Response) -> Response {
    let c = &state.config;
    let drop = state.every(c.drop_every, count);
    let truncate = state.every(c.truncate_every, count);
    let missing = state.every(c.missing_value_every, count);
    let oversize = state.every(c.oversize_every, count);
    let due = (drop || truncate || missing || oversize) && response.status().is_success();
    if !state.inject(due, key) {
        return response;
    }
    state.counters.failed.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if oversize {
        // The body, then blank padding past the limit, in chunks: no length to refuse early.
        let chunks = std::iter::once(Ok::<Bytes, std::io::Error>(bytes)).chain(
            std::iter::repeat_n(
                Bytes::from(vec![b' '; 1 << 20]),
                1 + (crate::graph::client::MAX_RESPONSE_BYTES >> 20),
            )
            .map(Ok),
        );
        let mut r = Response::from_parts(parts, Body::from_stream(IterStream(chunks)));
        r.headers_mut().remove("content-length");
        return r;
    }
    if drop {
        // Half the body, then the connection breaks: the client sees a body error.
        let half = bytes.slice(..bytes.len() / 2);
        let stream = futures_stream(half);
        let mut r = Response::from_parts(parts, Body::from_stream(stream));
        r.headers_mut().remove("content-length");
        return r;
    }
    let damaged: Bytes = if truncate {
        bytes.slice(..bytes.len() / 2)
    } else {
        let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("value");
        }
        Bytes::from(v.to_string())
    };
    let mut r = Response::from_parts(parts, Body::from(damaged.clone()));
    r.headers_mut()
        .insert("content-length", HeaderValue::from(damaged.len()));
    r
}

/// A body streamed from an iterator of chunks.
struct IterStream<I>(I);

impl<I: Iterator<Item = std::result::Result<Bytes, std::io::Error>> + Unpin> futures_core::Stream
    for IterStream<I>
{
    type Item = std::result::Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

/// A body that yields `first` and then fails: hyper aborts the connection mid-body.
fn futures_stream(
    first: Bytes,
) -> impl futures_core::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    struct Broken(Option<Bytes>);
    impl futures_core::Stream for Broken {
        type Item = std::result::Result<Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(Some(match self.0.take() {
                Some(b) => Ok(b),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fake-graph dropped the connection",
                )),
            }))
        }
    }
    Broken(Some(first))
}

fn batch(state: &State, body: &Bytes, outer_eventual: bool) -> Response {
    let Ok(batch) = serde_json::from_slice::<BatchRequest>(body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        );
    };
    if batch.requests.is_empty() || batch.requests.len() > 20 {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A batch must hold between 1 and 20 requests.",
        );
    }
    let mut responses = Vec::with_capacity(batch.requests.len());
    for item in batch.requests {
        let count = state
            .counters
            .graph_requests
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let (path, query) = match item.url.trim_start_matches('/').split_once('?') {
            Some((p, q)) => (p.to_owned(), parse_query(Some(q))),
            None => (item.url.trim_start_matches('/').to_owned(), Vec::new()),
        };
        let eventual = outer_eventual
            || item.headers.as_ref().is_some_and(|h| {
                h.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("ConsistencyLevel") && v.eq_ignore_ascii_case("eventual")
                })
            });
        let req = Request {
            method: &item.method,
            path,
            query,
            eventual,
        };
        let (status, body, headers) = match state.graph(&req, count) {
            Answer::Json(s, b, h) => (s, Some(b), h),
            Answer::Text(t) => (StatusCode::OK, Some(Value::String(t)), vec![]),
            Answer::Error(s, code, msg, h) => {
                let err = json!({ "error": { "code": code, "message": msg } });
                (s, Some(err), h)
            }
        };
        let mut hs: std::collections::BTreeMap<String, String> = headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        hs.insert("Content-Type".into(), "application/json".into());
        responses.push(BatchResponseItem {
            id: item.id,
            status: status.as_u16(),
            headers: Some(hs),
            body,
        });
    }
    axum::Json(BatchResponse { responses }).into_response()
}

/// Whether a request path (after `/v1.0/`) lies under `prefix`, given with or without the
/// leading `/v1.0/` (`--forbid /v1.0/groups` and `--forbid groups` are the same).
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_start_matches('/');
    let prefix = prefix.strip_prefix("v1.0/").unwrap_or(prefix);
    path.starts_with(prefix)
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `/{tenant}/oauth2/v2.0/...`: the tenant must be the fixture's.
fn tenant_ok(state: &State, path: &str) -> bool {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(&state.dir.tenant))
}

fn device_code(state: &State, path: &str, body: &Bytes) -> Response {
    if !tenant_ok(state, path) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, "Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.");
    }
    let f = form(body);
    if f.get("client_id").is_none_or(|c| c.is_empty()) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    }
    let device = random_token("fake-dc-");
    let user_code = format!(
        "FAKE-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase()
    );
    state.devices.lock().unwrap().insert(
        device.clone(),
        Device {
            polls: 0,
            slowed: false,
        },
    );
    let uri = format!("{}/devicelogin", state.base);
    let body = json!({
        "device_code": device,
        "user_code": user_code,
        "verification_uri": uri,
        "expires_in": state.config.expires_in.clone().unwrap_or(900.into()),
        "interval": state.config.poll_interval,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn token(state: &State, path: &str, body: &Bytes) -> Response {
    if !tenant_ok(state, path) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, "Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.");
    }
    let f = form(body);
    let c = &state.config;
    match f.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let given = f
                .get("client_secret")
                .map(String::as_str)
                .unwrap_or_default();
            if given.is_empty() || c.client_secret.as_deref().is_some_and(|want| want != given) {
                return token_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.");
            }
            if c.deny_consent {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application.",
                );
            }
            state.token_body(None)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            if c.public_client_disabled {
                return token_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
            }
            let code = f.get("device_code").cloned().unwrap_or_default();
            let mut devices = state.devices.lock().unwrap();
            let Some(d) = devices.get_mut(&code) else {
                return pending(
                    "bad_verification_code",
                    "AADSTS70019: Verification code is not valid.",
                );
            };
            d.polls += 1;
            if d.polls <= c.approve_after {
                return pending("authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.");
            }
            if c.slow_down_once && !d.slowed {
                d.slowed = true;
                return pending("slow_down", "AADSTS70016: Slow down.");
            }
            match c.device_outcome {
                DeviceOutcome::Decline => return pending("authorization_declined", "AADSTS70000: The user declined to authorize the application."),
                DeviceOutcome::Expire => return pending("expired_token", "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. This device code has expired."),
                DeviceOutcome::Approve => {}
            }
            if c.deny_consent {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application.",
                );
            }
            devices.remove(&code);
            drop(devices);
            let refresh = random_token("fake-rt-");
            state.refresh.lock().unwrap().insert(refresh.clone());
            state.token_body(Some(refresh))
        }
        Some("refresh_token") => {
            let r = f.get("refresh_token").cloned().unwrap_or_default();
            if !state.refresh.lock().unwrap().contains(&r) {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity.",
                );
            }
            state.token_body(Some(r))
        }
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

/// A running fake; dropping it stops the server.
pub struct FakeGraph {
    pub base_url: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGraph {
    /// Serves `fixture` (tenant JSON bytes) on `addr` (port 0 picks one) in a thread.
    pub fn start(
        fixture: &[u8],
        origin: &str,
        config: FakeConfig,
        addr: SocketAddr,
    ) -> Result<FakeGraph> {
        let dir = Directory::load(fixture, origin)?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| Error::BadInput(format!("cannot listen on {addr}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Source(e.to_string()))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Source(e.to_string()))?;
        let base_url = format!("http://{local}");
        let state = Arc::new(State {
            config,
            dir,
            base: base_url.clone(),
            counters: Counters::default(),
            window: Mutex::new((Instant::now(), 0)),
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashSet::new()),
            devices: Mutex::new(HashMap::new()),
            faulted: Mutex::new(HashSet::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-graph".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime starts");
                runtime.block_on(async move {
                    use axum::serve::ListenerExt;
                    // Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms stalls to every
                    // large response: the fake would be slower than the service it imitates.
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the listener converts")
                        .tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                    let app = axum::Router::new().fallback(
                        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                            let state = served.clone();
                            async move { handle(state, method, uri, headers, body).await }
                        },
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .map_err(|e| Error::Source(e.to_string()))?;
        Ok(FakeGraph {
            base_url,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> FakeStats {
        self.state.stats()
    }

    /// Blocks until the server stops (it does not, unless the process is killed).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
