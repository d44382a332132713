//! The HTTP client of a SCIM service: bounded, whole answers; throttling waited out; writes
//! whose outcome is known or said to be unknown.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use engine::model::ServerState;

use super::discovery::{self, Discovered, ServiceConfig};
use super::mapping::{
    group_from_resource, id_and_version, owned, patch_body, resource_path, str_at,
    user_from_resource, ScimGroup, ScimUser,
};
use super::{ScimDirectory, WriteError, Written, BULK_REQUEST, TOKEN_ENV};
use crate::auth::Secret;
use crate::error::{Error, Result};
use crate::http::{body_bounded, parse_retry_after, BodyError, RetryPolicy};

/// Resources asked per page (`count`); a service may send fewer.
const PAGE: usize = 100;
/// The most resources of one type read: past it, the directory is refused as too large.
const MAX_RESOURCES: usize = 5_000_000;
/// Readings of a listing that changed while it was read, before roster gives up.
const LIST_TRIES: u32 = 3;
/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// What an error answer says under `key` (`detail`, `scimType`): escaped, at most 500
/// characters.
fn said(answer: Option<&Value>, key: &str) -> Option<String> {
    let text = str_at(answer?, key)?;
    Some(engine::text::printable(text).chars().take(500).collect())
}

/// One operation of a bulk response: made (its id from `location`, its version), refused, or
/// `None` when the answer does not say.
fn bulk_result(op: &Value) -> Option<std::result::Result<Written, WriteError>> {
    let status: u16 = match op.get("status")? {
        Value::String(s) => s.trim().parse().ok()?,
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        _ => return None,
    };
    if (200..300).contains(&status) {
        let id = str_at(op, "location")
            .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
            .map(str::to_owned)?;
        let version = owned(str_at(op, "version"));
        return Some(Ok(Written {
            id,
            version,
            resource: None,
        }));
    }
    let field = |k: &str| said(op.get("response"), k);
    Some(Err(match status {
        409 => WriteError::Conflict(field("detail").unwrap_or_default()),
        // Throttled or failing inside the bulk: not settled; looked for and sent alone.
        429 | 500..=599 => return None,
        _ => WriteError::Refused {
            status,
            scim_type: field("scimType"),
            detail: field("detail").unwrap_or_default(),
        },
    }))
}

/// Which answers a request is sent again for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// 429 and 503: the service did not take the request; sending it again is safe.
    Throttled,
    /// Those, and any other server error: for a read, or a write that the same request
    /// repeated leaves the same (PATCH, DELETE).
    ServerErrors,
}

/// A SCIM service: its base URL (the one `ServiceProviderConfig`, `Users` and `Groups` hang
/// from) and the bearer token, never printed.
pub struct ScimClient {
    http: reqwest::Client,
    base: Url,
    token: Secret,
    /// How throttling and server errors are waited out: Graph's policy
    /// ([`RetryPolicy::from_env`]).
    policy: RetryPolicy,
    /// Whether the service says it filters (`userName eq "…"`).
    filters: std::sync::atomic::AtomicBool,
    /// The resource types whose filter was seen to work: a filter on a resource the listing
    /// showed found exactly it. Only these are searched for a resource whose create was
    /// answered with a server error or without an id; a service that answers an unknown
    /// filter with nothing would have a record created twice.
    proven: std::sync::Mutex<HashMap<String, bool>>,
    /// Set when the service refused a bulk request as a whole (501 though announced).
    bulk_refused: std::sync::atomic::AtomicBool,
    /// The member removal the service took ([`ScimClient::removal_form`]): 0 not yet seen.
    removal: std::sync::atomic::AtomicU8,
}

/// A form of a member's removal in a `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalForm {
    /// `{"op": "remove", "path": "members[value eq \"ID\"]"}`, one per member.
    Filter,
    /// `{"op": "remove", "path": "members", "value": [{"value": "ID"}, …]}`, as Entra sends.
    List,
}

impl ScimClient {
    pub fn new(base: &Url, token: Secret) -> ScimClient {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let policy = RetryPolicy::from_env();
        ScimClient {
            http: crate::http::client(policy.timeout),
            base,
            token,
            policy,
            filters: std::sync::atomic::AtomicBool::new(true),
            proven: std::sync::Mutex::new(HashMap::new()),
            bulk_refused: std::sync::atomic::AtomicBool::new(false),
            removal: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// A request to the service: SCIM's media type accepted, the token as bearer.
    fn request(&self, method: reqwest::Method, url: &Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/scim+json")
            .bearer_auth(self.token.expose())
    }

    /// GET `path` (relative to the base) as JSON.
    async fn get(&self, path: &str) -> Result<Value> {
        match self.get_status(path).await? {
            (_, Ok(body)) => Ok(body),
            (_, Err(e)) => Err(e),
        }
    }

    /// GET `path`: the status, and the body or the error that status means. Throttling and
    /// server errors are waited out within the retry policy's bounds.
    async fn get_status(&self, path: &str) -> Result<(u16, Result<Value>)> {
        let (status, body) = self
            .send(reqwest::Method::GET, path, None, None, Retry::ServerErrors)
            .await
            .map_err(Error::Service)?;
        if (200..300).contains(&status) {
            // A read answered with no JSON object is not an empty resource.
            return match body {
                Some(body @ Value::Object(_)) => Ok((status, Ok(body))),
                _ => Err(Error::Service(format!(
                    "the SCIM service at {} answered GET {} with {status} but no JSON object; is this the SCIM base URL?",
                    self.base,
                    path.split('?').next().unwrap_or_default()
                ))),
            };
        }
        let body = body.unwrap_or(Value::Null);
        let detail = said(Some(&body), "detail")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let answered = format!(
            "the SCIM service at {} answered {} to GET {}{detail}",
            self.base,
            status,
            path.split('?').next().unwrap_or_default(),
        );
        let error = match status {
            401 | 403 => Error::bad_input(format!(
                "{answered}; check the token (--scim-token-file FILE or {TOKEN_ENV})"
            )),
            404 if path == "ServiceProviderConfig" => Error::bad_input(format!(
                "{answered}; is {} the service's SCIM base URL (the one /Users and /Groups hang from)?",
                self.base
            )),
            _ => Error::Service(answered),
        };
        Ok((status, Err(error)))
    }

    /// One resource (`Users/ID`), or `None` when the service says it is gone.
    pub async fn get_resource(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        match self.get_status(&resource_path(kind, id)).await? {
            (_, Ok(v)) => Ok(Some(v)),
            (404, Err(_)) => Ok(None),
            (_, Err(e)) => Err(e),
        }
    }

    /// Sends a request to `path` (relative to the base), with `If-Match` when a version is
    /// known, and reads the answer (bounded). Sent again, within the retry policy's bounds,
    /// while the service answers 429 or 503 (waiting its `Retry-After`) and, with
    /// [`Retry::ServerErrors`], any other 5xx (backing off). The last status and body; `Err`
    /// when the service cannot be reached at all (why, in a few words).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<&Value>,
        retry: Retry,
    ) -> std::result::Result<(u16, Option<Value>), String> {
        let url = self.base.join(path).map_err(|e| format!("{path}: {e}"))?;
        // Ids are percent-encoded (`resource_path`); whatever a path holds, it stays under the
        // base, where the token is meant to go.
        if !url.as_str().starts_with(self.base.as_str()) {
            return Err(format!(
                "{} is not under the SCIM base URL; roster sends nothing there",
                engine::text::printable(url.as_str())
            ));
        }
        let policy = &self.policy;
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.request(method.clone(), &url).timeout(policy.timeout);
            if let Some(v) = version {
                req = req.header(reqwest::header::IF_MATCH, v);
            }
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                    .body(b.to_string());
            }
            let resp = req.send().await.map_err(|e| {
                format!(
                    "cannot reach the SCIM service at {}: {}",
                    url.origin().ascii_serialization(),
                    crate::http::transport_failure(&e).why
                )
            })?;
            let status = resp.status().as_u16();
            if resp.status().is_redirection() {
                // Never followed: the body (personal data) and the run's trust would go to an
                // origin nobody named, and round "no plain http beyond loopback".
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|l| {
                        String::from_utf8_lossy(l.as_bytes())
                            .chars()
                            .take(300)
                            .collect::<String>()
                    })
                    .unwrap_or_else(|| "nowhere it says".into());
                return Err(format!(
                    "the SCIM service at {} answered {method} {} with a redirect ({status}) to {}; roster follows no redirect — if that is the service, give its URL as --scim",
                    url.origin().ascii_serialization(),
                    path.split('?').next().unwrap_or_default(),
                    // Said without any credentials it carries.
                    engine::text::printable(&crate::address::shown(&to))
                ));
            }
            let asked = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // An answer that cannot be read whole is no answer: never an empty one.
            let bytes = body_bounded(resp, MAX_RESPONSE_BYTES).await.map_err(|e| {
                format!(
                    "the SCIM service at {} {}",
                    url.origin().ascii_serialization(),
                    match e {
                        BodyError::TooLarge => format!(
                            "answered more than {} MiB, more than roster reads",
                            MAX_RESPONSE_BYTES >> 20
                        ),
                        BodyError::Transport(e) if e.is_timeout() => {
                            "timed out while sending its answer".to_owned()
                        }
                        BodyError::Transport(_) => {
                            "cut its answer short (the connection dropped)".to_owned()
                        }
                    }
                )
            })?;
            let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
            let again = match status {
                429 | 503 => true,
                500..=599 => retry == Retry::ServerErrors && status != 501,
                _ => false,
            };
            let wait = asked
                .unwrap_or_else(|| policy.backoff(attempt))
                .min(policy.max_delay);
            if !again || attempt >= policy.max_attempts || waited + wait > policy.max_total_wait {
                return Ok((status, answer));
            }
            tracing::debug!(status, ?wait, "the SCIM service asked to come back later");
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// Sends a write (`POST`, `PATCH`, `DELETE`) to `path` (see [`ScimClient::send`]); the
    /// body of a 2xx answer, if any, else why not.
    async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        version: Option<&str>,
        body: Option<&Value>,
        retry: Retry,
    ) -> std::result::Result<Option<Value>, WriteError> {
        let (status, answer) = self
            .send(method.clone(), path, version, body, retry)
            .await
            .map_err(WriteError::Unreachable)?;
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let field = |k: &str| said(answer.as_ref(), k);
        Err(match status {
            409 => WriteError::Conflict(field("detail").unwrap_or_default()),
            412 => WriteError::Stale,
            404 => WriteError::Gone,
            501 => WriteError::NotImplemented(format!(
                "{method} {}",
                path.split('/').next().unwrap_or_default()
            )),
            429 | 503 => WriteError::Unreachable(format!("it kept answering {status}")),
            _ => WriteError::Refused {
                status,
                scim_type: field("scimType"),
                detail: field("detail").unwrap_or_default(),
            },
        })
    }

    /// `POST` a new resource of `kind` (`Users`, `Groups`), which `key` (`userName`,
    /// `displayName` and its value) finds. A server error may come after the service made it:
    /// before it is sent again, the service is asked whether it holds it — never created twice.
    pub async fn create(
        &self,
        kind: &str,
        body: &Value,
        key: (&str, &str),
    ) -> std::result::Result<Written, WriteError> {
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            match self
                .write(
                    reqwest::Method::POST,
                    kind,
                    None,
                    Some(body),
                    Retry::Throttled,
                )
                .await
            {
                Err(WriteError::Refused { status, .. })
                    if (500..600).contains(&status)
                        && attempt < self.policy.max_attempts
                        && self.can_find(kind) =>
                {
                    tokio::time::sleep(self.policy.backoff(attempt)).await;
                    let (attr, value) = key;
                    let found = self
                        .find(kind, attr, value)
                        .await
                        .map_err(|e| WriteError::Unreachable(e.to_string()))?;
                    if let Some(made) = found.first() {
                        break made.clone();
                    }
                }
                other => break other?.unwrap_or(Value::Null),
            }
        };
        match id_and_version(&answer, kind) {
            Ok((id, version)) => {
                // A service's first record of a kind is where its filter can first be tried.
                self.prove_filter(kind, key.0, key.1, &id).await;
                Ok(Written {
                    id,
                    version,
                    resource: Some(answer),
                })
            }
            // Made, most likely, but roster cannot name it: looked up, never guessed.
            Err(why) => self.look_up_made(kind, key, &why).await,
        }
    }

    /// A create answered with no usable id: the record its filter finds, when the service's
    /// filter on `kind` is proven and finds exactly one; else the create is unconfirmed.
    async fn look_up_made(
        &self,
        kind: &str,
        (attr, value): (&str, &str),
        why: &str,
    ) -> std::result::Result<Written, WriteError> {
        let why = format!(" ({why})");
        if !self.can_find(kind) {
            return Err(WriteError::Unconfirmed(format!(
                "{why}, and its filter on {kind} is not proven to work"
            )));
        }
        let found = self
            .find(kind, attr, value)
            .await
            .map_err(|e| WriteError::Unreachable(e.to_string()))?;
        match found.as_slice() {
            [made] => id_and_version(made, kind)
                .map(|(id, version)| Written {
                    id,
                    version,
                    resource: Some(made.clone()),
                })
                .map_err(|e| {
                    WriteError::Unconfirmed(format!("{why}, and what its filter found has {e}"))
                }),
            _ => Err(WriteError::Unconfirmed(format!(
                "{why}, and its filter finds {} {kind} named so",
                found.len()
            ))),
        }
    }

    /// Creates `items` — resources of `kind`, each with the filter that finds it (`userName`,
    /// `displayName` and its value) — in one `/Bulk` request (RFC 7644 §3.7), each answered on
    /// its own; the service is asked to go on past errors. An item the answer does not settle
    /// (the request failed as a whole, which may come after the service made some) is looked
    /// for, and created alone if it is not there: never made twice. One result per item.
    pub async fn create_many(
        &self,
        kind: &str,
        items: &[(Value, (String, String))],
    ) -> Vec<std::result::Result<Written, WriteError>> {
        let operations: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, (data, _))| {
                json!({"method": "POST", "path": format!("/{kind}"), "bulkId": i.to_string(), "data": data})
            })
            .collect();
        let request = json!({"schemas": [BULK_REQUEST], "Operations": operations});
        let mut results: Vec<Option<std::result::Result<Written, WriteError>>> =
            (0..items.len()).map(|_| None).collect();
        let answer = self
            .write(
                reqwest::Method::POST,
                "Bulk",
                None,
                Some(&request),
                Retry::Throttled,
            )
            .await;
        match &answer {
            Err(WriteError::Unreachable(why)) => {
                // Whether it made any is for the next run's read to say.
                return items
                    .iter()
                    .map(|_| Err(WriteError::Unreachable(why.clone())))
                    .collect();
            }
            Err(
                WriteError::NotImplemented(_)
                | WriteError::Refused {
                    status: 400..=499, ..
                },
            ) => {
                // Refused as a whole (501, or a 4xx): nothing was made. Each is sent alone,
                // and bulk is not used again by this client.
                tracing::debug!(?answer, "bulk refused; records are created one by one");
                self.bulk_refused
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let mut out = Vec::with_capacity(items.len());
                for (body, (attr, value)) in items {
                    out.push(self.create(kind, body, (attr, value)).await);
                }
                return out;
            }
            _ => {}
        }
        if let Ok(Some(answer)) = answer {
            for op in answer
                .get("Operations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(i) = str_at(op, "bulkId").and_then(|b| b.parse::<usize>().ok()) else {
                    continue;
                };
                let Some(slot) = results.get_mut(i) else {
                    continue;
                };
                *slot = bulk_result(op);
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for ((body, (attr, value)), result) in items.iter().zip(results) {
            out.push(match result {
                Some(r) => r,
                // Whether the service made it cannot be asked: not sent again.
                None if !self.can_find(kind) => Err(WriteError::Unsettled),
                None => match self.find(kind, attr, value).await {
                    Ok(found) => match found.first() {
                        Some(made) => id_and_version(made, kind)
                            .map(|(id, version)| Written {
                                id,
                                version,
                                resource: Some(made.clone()),
                            })
                            .map_err(|e| WriteError::Refused {
                                status: 200,
                                scim_type: None,
                                detail: format!("the service's answer: {e}"),
                            }),
                        None => self.create(kind, body, (attr, value)).await,
                    },
                    Err(e) => Err(WriteError::Unreachable(e.to_string())),
                },
            });
        }
        out
    }

    /// `PATCH` a resource with `operations`: the resource as the answer shows it, when it
    /// shows one (a `204` does not).
    pub async fn patch(
        &self,
        kind: &str,
        id: &str,
        version: Option<&str>,
        operations: Vec<Value>,
    ) -> std::result::Result<Option<Value>, WriteError> {
        let answer = self
            .write(
                reqwest::Method::PATCH,
                &resource_path(kind, id),
                version,
                Some(&patch_body(operations)),
                Retry::ServerErrors,
            )
            .await?;
        Ok(answer.filter(Value::is_object))
    }

    /// `PUT` a whole resource (where a `PATCH` is answered 501): the resource as the answer
    /// shows it, when it shows one.
    pub async fn put(
        &self,
        kind: &str,
        id: &str,
        version: Option<&str>,
        resource: &Value,
    ) -> std::result::Result<Option<Value>, WriteError> {
        let mut body = resource.clone();
        if let Some(map) = body.as_object_mut() {
            map.insert("id".into(), Value::String(id.to_owned()));
        }
        let answer = self
            .write(
                reqwest::Method::PUT,
                &resource_path(kind, id),
                version,
                Some(&body),
                Retry::ServerErrors,
            )
            .await?;
        Ok(answer.filter(Value::is_object))
    }

    /// How this service takes a member's removal, once seen: `members[value eq "…"]` (RFC
    /// 7644 §3.5.2.2), or Entra's `path: members` with a `value` list.
    pub fn removal_form(&self) -> Option<RemovalForm> {
        match self.removal.load(std::sync::atomic::Ordering::Relaxed) {
            1 => Some(RemovalForm::Filter),
            2 => Some(RemovalForm::List),
            _ => None,
        }
    }

    /// Keeps the form of removal the service took.
    pub fn removal_took(&self, form: RemovalForm) {
        let n = match form {
            RemovalForm::Filter => 1,
            RemovalForm::List => 2,
        };
        self.removal.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// `DELETE` a resource.
    pub async fn delete(
        &self,
        kind: &str,
        id: &str,
        version: Option<&str>,
    ) -> std::result::Result<(), WriteError> {
        self.write(
            reqwest::Method::DELETE,
            &resource_path(kind, id),
            version,
            None,
            Retry::ServerErrors,
        )
        .await
        .map(|_| ())
    }

    /// The resources of `kind` whose `attribute` equals `value` (a filter: `userName eq "…"`,
    /// `externalId eq "…"`): how a rerun finds what an interrupted run already created.
    pub async fn find(&self, kind: &str, attribute: &str, value: &str) -> Result<Vec<Value>> {
        let filter = format!("{attribute} eq {}", Value::String(value.to_owned()));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .finish();
        let page = self.get(&format!("{kind}?{query}")).await?;
        Ok(page
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// What the service supports and holds; refused, in one line naming what is missing,
    /// when it cannot hold a user's login and account state, a group's members, or has no
    /// Users or Groups. `/ResourceTypes` or `/Schemas` answered 404 or 501 say nothing: the
    /// core types are assumed, without the enterprise extension.
    pub async fn discover(&self) -> Result<Discovered> {
        let config = self.service_config().await?;
        let refused = |why: String| {
            Error::bad_input(format!(
                "the SCIM service at {} cannot hold what roster writes: {why}",
                self.base
            ))
        };
        let enterprise = match self.get_status("ResourceTypes").await? {
            (_, Ok(types)) => discovery::resource_types(&types).map_err(refused)?,
            (404 | 501, Err(_)) => false,
            (_, Err(e)) => return Err(e),
        };
        match self.get_status("Schemas").await? {
            (_, Ok(schemas)) => discovery::schemas(&schemas).map_err(refused)?,
            (404 | 501, Err(_)) => {}
            (_, Err(e)) => return Err(e),
        }
        Ok(Discovered { config, enterprise })
    }

    /// What the service supports.
    pub async fn service_config(&self) -> Result<ServiceConfig> {
        let config = ServiceConfig::from_json(&self.get("ServiceProviderConfig").await?);
        self.filters.store(
            config.filter.is_some(),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(config)
    }

    /// Whether bulk requests still may be sent: announced, and not refused as a whole.
    pub fn bulk_works(&self) -> bool {
        !self.bulk_refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a resource of `kind` can be looked for by a filter: the service says it
    /// filters, and its filter found a known resource of that kind and nothing else.
    fn can_find(&self, kind: &str) -> bool {
        self.filters.load(std::sync::atomic::Ordering::Relaxed)
            && self
                .proven
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(kind)
                .copied()
                .unwrap_or(false)
    }

    /// Tries the service's filter on a resource the listing showed (`attr` = `value`, SCIM id
    /// `id`), once per resource type: proven for `kind` when it finds exactly that one. A
    /// filter refused or answered otherwise leaves it unproven — never an error.
    async fn prove_filter(&self, kind: &str, attr: &str, value: &str, id: &str) {
        let tried = self
            .proven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(kind);
        if tried || !self.filters.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let works = match self.find(kind, attr, value).await {
            Ok(found) => found.len() == 1 && str_at(&found[0], "id") == Some(id),
            Err(_) => false,
        };
        tracing::debug!(kind, works, "the SCIM service's filter tried");
        self.proven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind.to_owned(), works);
    }

    /// Every resource of `kind` (`Users`, `Groups`), page by page (`startIndex`, `count`),
    /// each made roster's as it arrives (`parse`: its SCIM id and what roster keeps of it), so
    /// that memory holds what roster keeps, not what the service sent.
    ///
    /// A listing is whole or it is an error: read until a page comes back empty; the total
    /// the service announces (`totalResults`, when it says one) must be what its pages held.
    /// Index paging is not a snapshot: a directory that changes while it is read (another
    /// client writing, or a request of a roster that was killed still being carried out) can
    /// show a resource twice, or more than announced, so such a listing is read again, a few
    /// times.
    pub async fn list<T>(
        &self,
        kind: &str,
        parse: impl Fn(&Value) -> std::result::Result<(String, T), String>,
    ) -> Result<Vec<T>> {
        for attempt in 1..=LIST_TRIES {
            if let Some(all) = self.list_once(kind, &parse).await? {
                return Ok(all);
            }
            tracing::debug!(
                kind,
                attempt,
                "the SCIM directory changed while it was read"
            );
            tokio::time::sleep(self.policy.backoff(attempt)).await;
        }
        Err(Error::Service(format!(
            "the SCIM service at {}: its {kind} kept changing while roster read them, or its pages hold more than it says ({LIST_TRIES} tries); run again when nothing else writes to it",
            self.base
        )))
    }

    /// One listing; `None` when it changed while it was read: the announced total moved, a
    /// resource came twice, or the pages held more than announced.
    async fn list_once<T>(
        &self,
        kind: &str,
        parse: &impl Fn(&Value) -> std::result::Result<(String, T), String>,
    ) -> Result<Option<Vec<T>>> {
        let fail = |why: String| {
            Error::Service(format!(
                "the SCIM service at {}: {why}; roster does not decide from a partial directory",
                self.base
            ))
        };
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut announced = None;
        let mut start = 1usize;
        loop {
            let mut page = self
                .get(&format!("{kind}?startIndex={start}&count={PAGE}"))
                .await?;
            let total = match page.get("totalResults") {
                None | Some(Value::Null) => None,
                Some(t) => Some(t.as_u64().ok_or_else(|| {
                    fail(format!(
                        "its {kind} listing says totalResults {}, which is not a count",
                        engine::text::printable(&t.to_string())
                    ))
                })?),
            };
            if let Some(t) = total.filter(|t| *t > MAX_RESOURCES as u64) {
                return Err(Error::bad_input(format!(
                    "the SCIM service at {} says it holds {t} {kind}; roster reads at most {MAX_RESOURCES}",
                    self.base
                )));
            }
            if *announced.get_or_insert(total) != total {
                return Ok(None);
            }
            let resources = match page.get_mut("Resources").map(Value::take) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(r)) => r,
                Some(_) => {
                    return Err(fail(format!(
                        "its {kind} page at {start} holds Resources that are not a list"
                    )))
                }
            };
            if resources.is_empty() {
                let held = all.len() as u64;
                return match total {
                    Some(t) if held < t => Err(fail(format!(
                        "it says it holds {t} {kind}, but its pages stopped after {held}"
                    ))),
                    Some(t) if held > t => Ok(None),
                    _ => Ok(Some(all)),
                };
            }
            let got = resources.len();
            for resource in resources {
                let (id, item) = parse(&resource)
                    .map_err(|e| Error::bad_input(format!("the SCIM service's directory: {e}")))?;
                if !seen.insert(id) {
                    return Ok(None);
                }
                all.push(item);
            }
            if all.len() > MAX_RESOURCES {
                return Err(Error::bad_input(format!(
                    "the SCIM service at {} lists more than {MAX_RESOURCES} {kind}; roster reads at most that",
                    self.base
                )));
            }
            if total.is_some_and(|t| all.len() as u64 > t) {
                return Ok(None);
            }
            start += got;
        }
    }

    /// The whole directory: users first (groups name their members by SCIM id). Each
    /// resource type's filter is tried on a resource the listing showed ([`Self::can_find`]).
    pub async fn load(&self) -> Result<ScimDirectory> {
        let bad = |e: String| Error::bad_input(format!("the SCIM service's directory: {e}"));
        let users: Vec<ScimUser> = self
            .list("Users", |v| {
                user_from_resource(v).map(|u| (u.id.clone(), u))
            })
            .await?;
        let logins: HashMap<String, engine::SmolStr> = users
            .iter()
            .map(|u| (u.id.clone(), u.user.login.clone()))
            .collect();
        let groups: Vec<ScimGroup> = self
            .list("Groups", |v| {
                group_from_resource(v, &logins).map(|g| (g.id.clone(), g))
            })
            .await?;
        if let Some(u) = users.first() {
            self.prove_filter("Users", "userName", &u.user.login, &u.id)
                .await;
        }
        if let Some(g) = groups.first() {
            self.prove_filter("Groups", "displayName", &g.group.name, &g.id)
                .await;
        }
        let state = ServerState::from_parts(
            users.iter().map(|u| u.user.clone()),
            groups.iter().map(|g| g.group.clone()),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(ScimDirectory {
            state,
            users,
            groups,
        })
    }
}
