//! The Microsoft Graph HTTP client: one GET or `$batch` at a time, retried the way Graph asks.
//!
//! - 429 and 503 honour `Retry-After` (integer or decimal seconds), else exponential backoff
//!   with jitter; 500, 502, 504, timeouts, dropped connections, and malformed or truncated
//!   bodies are retried with backoff. Attempts and total waiting are bounded ([`RetryPolicy`]).
//! - 401 refreshes the token once, then fails.
//! - Paging follows `@odata.nextLink`, only to the same origin as the base URL (the token is
//!   never sent elsewhere), and stops on a link that repeats.
//! - `ConsistencyLevel: eventual` is sent on every page of an advanced query.
//!
//! Nothing here logs a header, a token or a request body.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{AuthError, TokenSource};
use crate::wire::{BatchRequest, BatchRequestItem, BatchResponse, GraphErrorBody, Page};

/// Counters for progress and for benchmarks: what enumeration cost.
#[derive(Debug, Default)]
pub struct GraphStats {
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub objects: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    /// Wall-clock time the whole client was held back by throttling (overlaps counted once).
    pub held_ms: AtomicU64,
}

impl GraphStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: get(&self.requests),
            pages: get(&self.pages),
            objects: get(&self.objects),
            retries: get(&self.retries),
            throttled: get(&self.throttled),
            held_ms: get(&self.held_ms),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub requests: u64,
    pub pages: u64,
    pub objects: u64,
    pub retries: u64,
    pub throttled: u64,
    pub held_ms: u64,
}

/// Why a Graph request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 403: the app lacks a permission; `hint` says which to grant.
    #[error("Graph refused {what} ({code}: {message}); grant the app {hint} (application or delegated, with admin consent)")]
    Forbidden {
        what: String,
        code: String,
        message: String,
        hint: &'static str,
    },
    /// 404: the object went away while it was being read.
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: Graph answered {status} ({code}: {message})")]
    Rejected {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{what}: gave up after {attempts} attempts in {elapsed:.1} s: {last}")]
    Exhausted {
        what: String,
        attempts: u32,
        /// Seconds since the first attempt: the real time spent, waits and attempts.
        elapsed: f64,
        last: String,
    },
    /// No connection could be made: said at once (a refused connection, an unknown name, a
    /// server without TLS), or after [`CONNECT_ATTEMPTS`] timed-out connects.
    #[error("{what}: cannot reach Graph at {}: {} — after {attempts} {} in {elapsed:.1} s; check the URL, the network and any proxy", .failure.host, .failure.why, if *.attempts == 1 { "attempt" } else { "attempts" })]
    Unreachable {
        what: String,
        failure: TransportFailure,
        attempts: u32,
        elapsed: f64,
    },
    #[error(
        "{what}: Graph sent a nextLink that repeats (a paging loop); the listing cannot complete"
    )]
    Loop { what: String },
    #[error(
        "{what}: Graph sent {kind} to another host ({}); refusing to send the token there", crate::address::shown(.link)
    )]
    ForeignLink {
        what: String,
        /// `a nextLink`, `a deltaLink`, `the stored deltaLink`.
        kind: &'static str,
        link: String,
    },
    #[error("{what}: Graph answered more than {} MiB in one response, more than roster reads; the listing cannot complete", .limit >> 20)]
    TooLarge { what: String, limit: usize },
    /// A listing that went on past roster's bounds ([`ListingBound`]): an endless chain of
    /// nextLinks is never followed for ever.
    #[error("{what}: {why}; the listing cannot complete (see ROSTER_MAX_PAGES and ROSTER_MAX_LISTING_S)")]
    Unbounded { what: String, why: String },
    /// The run was asked to stop (Ctrl-C) while changes were applied.
    #[error("interrupted (Ctrl-C)")]
    Stopped,
}

/// The most pages one listing follows: 50,000 pages of up to 999 objects, far beyond a
/// 1M-object tenant (whose change listings come in pages of a few hundred).
pub const MAX_PAGES: u64 = 50_000;
/// The longest one listing may take: half a day, far beyond reading a 1M-object tenant under
/// Graph's throttling (an hour or two), far short of stalling `sync --every` for good.
pub const MAX_LISTING: Duration = Duration::from_secs(12 * 3600);

/// Bounds one listing: its pages, and the time since it started.
pub struct ListingBound {
    what: String,
    pages: u64,
    max_pages: u64,
    started: std::time::Instant,
    max_time: Duration,
}

impl ListingBound {
    /// Counts a page about to be read; an error once the listing is past its bounds.
    pub fn page(&mut self) -> Result<(), GraphError> {
        self.pages += 1;
        let why = if self.pages > self.max_pages {
            format!("Graph kept sending nextLinks past {} pages", self.max_pages)
        } else if self.started.elapsed() > self.max_time {
            format!(
                "the listing was still going after {} s",
                self.max_time.as_secs()
            )
        } else {
            return Ok(());
        };
        Err(GraphError::Unbounded {
            what: self.what.clone(),
            why,
        })
    }
}

/// The most roster reads of one Graph response: a page of 999 objects, or a `$batch` of
/// twenty, is a few MiB; a service that sends more is not read into memory.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

use crate::http::{
    body_bounded, parse_retry_after, transport_failure, BodyError, FailureKind, RetryPolicy,
    TransportFailure,
};

impl BodyError {
    fn attempt(self, what: &str) -> Attempt {
        match self {
            BodyError::TooLarge => Attempt::Fatal(GraphError::TooLarge {
                what: what.to_owned(),
                limit: MAX_RESPONSE_BYTES,
            }),
            BodyError::Transport(e) => retry_transport(&e),
        }
    }
}

/// How Graph is asked: a plain query, or an *advanced* one (`$search`, `$count`, some
/// `$filter`s), which needs `ConsistencyLevel: eventual` on every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Plain,
    Advanced,
}

/// The permission a 403 on `path` asks for.
fn permission_for(path: &str) -> &'static str {
    if path.contains("transitiveMembers") || path.contains("/members") {
        "GroupMember.Read.All"
    } else if path.contains("microsoft.graph.group") || path.contains("/groups") {
        "Group.Read.All"
    } else if path.contains("/users") || path.contains("microsoft.graph.user") {
        "User.Read.All"
    } else {
        "Directory.Read.All"
    }
}

/// One attempt's failure, and whether (and after how long) to try again.
enum Attempt {
    Retry {
        why: String,
        after: Option<Duration>,
        throttled: bool,
    },
    Fatal(GraphError),
    Unauthorized,
    /// No connection to Graph (see [`FailureKind`]).
    Unreachable(TransportFailure),
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    /// The version root, ending with `/`: `https://graph.microsoft.com/v1.0/`.
    base: Url,
    auth: Arc<dyn TokenSource>,
    policy: RetryPolicy,
    pub stats: Arc<GraphStats>,
    /// When Graph throttles one request, every request holds back until then: hammering a
    /// throttled tenant only lengthens the throttling.
    hold_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl GraphClient {
    /// `graph_root` is the service root (`https://graph.microsoft.com`); requests go to `/v1.0`.
    pub fn new(
        graph_root: &Url,
        auth: Arc<dyn TokenSource>,
        policy: RetryPolicy,
        stats: Arc<GraphStats>,
    ) -> Self {
        let mut base = graph_root.clone();
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&format!("{path}/v1.0/"));
        let http = crate::http::client(policy.timeout);
        GraphClient {
            http,
            base,
            auth,
            policy,
            stats,
            hold_until: Arc::default(),
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Whom this client's tokens act for, once it signed in (see [`TokenSource::signed_in_as`]).
    pub fn signed_in_as(&self) -> Option<String> {
        self.auth.signed_in_as()
    }

    /// Whether the tokens are known to carry `permission` (see [`TokenSource::grants`]).
    pub fn grants(&self, permission: &str) -> bool {
        self.auth.grants(permission)
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Holds every request of this client back for `delay` from now: once Graph throttles,
    /// sending more only spends budget on 429s.
    pub fn hold(&self, delay: Duration) {
        let now = tokio::time::Instant::now();
        let until = now + delay;
        let mut h = self.hold_until.lock().unwrap_or_else(|p| p.into_inner());
        let from = match *h {
            Some(t) if t >= until => return,
            Some(t) if t > now => t,
            _ => now,
        };
        *h = Some(until);
        self.stats
            .held_ms
            .fetch_add((until - from).as_millis() as u64, Ordering::Relaxed);
    }

    /// Waits while the client is held back.
    async fn wait_for_hold(&self) {
        let until = *self.hold_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until.filter(|u| *u > tokio::time::Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// A URL under the version root: `users?$select=...`.
    pub fn url(&self, relative: &str) -> Url {
        self.base
            .join(relative.trim_start_matches('/'))
            .expect("relative Graph paths join")
    }

    pub fn same_origin(&self, link: &Url) -> bool {
        link.scheme() == self.base.scheme()
            && link.host() == self.base.host()
            && link.port_or_known_default() == self.base.port_or_known_default()
    }

    /// GETs `url` and parses the body, retrying per the policy.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        query: Query,
        what: &str,
    ) -> Result<T, GraphError> {
        self.with_retries(what, |token| async move {
            self.attempt_get::<T>(url, query, &token, what).await
        })
        .await
    }

    /// Runs `attempt` with a token until it succeeds, per the policy: a 401 refreshes the
    /// token once; throttling and transient failures wait (`Retry-After`, else backoff with
    /// jitter) within the policy's attempts and total wait; anything else fails at once.
    async fn with_retries<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, GraphError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut refreshed = false;
        let started = std::time::Instant::now();
        let mut connects = 0u32;
        loop {
            attempts += 1;
            self.wait_for_hold().await;
            let token = self.auth.token().await?;
            let (why, after, throttled) = match attempt(token.clone()).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Unreachable(failure)) => {
                    connects += 1;
                    // Trying again at once does not make a refused connection or an unknown
                    // name answer; a connect that timed out is tried once more.
                    if failure.kind != FailureKind::Answer
                        && (failure.kind == FailureKind::NoConnection
                            || connects >= CONNECT_ATTEMPTS)
                    {
                        return Err(GraphError::Unreachable {
                            what: what.to_owned(),
                            failure,
                            attempts,
                            elapsed: started.elapsed().as_secs_f64(),
                        });
                    }
                    (failure.to_string(), None, false)
                }
                Err(Attempt::Unauthorized) if !refreshed => {
                    refreshed = true;
                    attempts -= 1;
                    self.auth.refresh(&token).await?;
                    continue;
                }
                Err(Attempt::Unauthorized) => {
                    return Err(GraphError::Auth(AuthError::Rejected(
                        "Graph rejected a freshly refreshed token (401); sign in again with `roster org login ORG`".into(),
                    )))
                }
                Err(Attempt::Retry { why, after, throttled }) => (why, after, throttled),
            };
            self.pause(
                attempts,
                &mut waited,
                started,
                (why, after, throttled),
                what,
            )
            .await?;
        }
    }

    /// Sleeps before the next attempt, or gives up if the policy's budget is spent.
    /// `retry`: why the attempt failed, how long Graph asked to wait, whether it throttled.
    async fn pause(
        &self,
        attempts: u32,
        waited: &mut Duration,
        started: std::time::Instant,
        (why, after, throttled): (String, Option<Duration>, bool),
        what: &str,
    ) -> Result<(), GraphError> {
        let delay = after.unwrap_or_else(|| self.policy.backoff(attempts - 1));
        if attempts >= self.policy.max_attempts || *waited + delay > self.policy.max_total_wait {
            return Err(GraphError::Exhausted {
                what: what.to_owned(),
                attempts,
                elapsed: started.elapsed().as_secs_f64(),
                last: why,
            });
        }
        tracing::debug!(what, attempt = attempts, delay_ms = delay.as_millis() as u64, %why, "retrying");
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            self.hold(delay);
        }
        *waited += delay;
        tokio::time::sleep(delay).await;
        Ok(())
    }

    async fn attempt_get<T: DeserializeOwned>(
        &self,
        url: &Url,
        query: Query,
        token: &str,
        what: &str,
    ) -> Result<T, Attempt> {
        let mut req = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if query == Query::Advanced {
            req = req.header("ConsistencyLevel", "eventual");
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| retry_transport(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = body_bounded(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| e.attempt(what))?;
        tracing::trace!(
            what,
            status = status.as_u16(),
            bytes = body.len(),
            "graph response"
        );
        check_status(status, &headers, &body, url.path(), what)?;
        serde_json::from_slice::<T>(&body).map_err(|e| Attempt::Retry {
            why: format!("malformed response body ({e})"),
            after: None,
            throttled: false,
        })
    }

    /// Every item of a collection, following `@odata.nextLink` to the end.
    pub async fn list<T: DeserializeOwned>(
        &self,
        first: Url,
        query: Query,
        what: &str,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        self.list_into(first, query, what, &mut items).await?;
        Ok(items)
    }

    /// The bounds of one listing, from the policy (`ROSTER_MAX_PAGES`, `ROSTER_MAX_LISTING_S`).
    pub fn listing_bound(&self, what: &str) -> ListingBound {
        ListingBound {
            what: what.to_owned(),
            pages: 0,
            max_pages: self.policy.max_pages,
            started: std::time::Instant::now(),
            max_time: self.policy.max_listing,
        }
    }

    /// Like [`GraphClient::list`], appending to `items`.
    pub async fn list_into<T: DeserializeOwned>(
        &self,
        first: Url,
        query: Query,
        what: &str,
        items: &mut Vec<T>,
    ) -> Result<(), GraphError> {
        let mut seen = HashSet::new();
        let mut next = Some(first);
        let mut bound = self.listing_bound(what);
        while let Some(url) = next.take() {
            bound.page()?;
            let page: Page<T> = self.get_json(&url, query, what).await?;
            self.count_page(page.value.len());
            items.extend(page.value);
            next = self.follow(page.next_link, &mut seen, what)?;
        }
        Ok(())
    }

    fn count_page(&self, objects: usize) {
        self.stats.pages.fetch_add(1, Ordering::Relaxed);
        self.stats
            .objects
            .fetch_add(objects as u64, Ordering::Relaxed);
    }

    /// Checks a nextLink before it is followed: same origin, never seen before.
    pub fn follow(
        &self,
        link: Option<String>,
        seen: &mut HashSet<String>,
        what: &str,
    ) -> Result<Option<Url>, GraphError> {
        let Some(link) = link else { return Ok(None) };
        let url = Url::parse(&link).map_err(|_| GraphError::Rejected {
            what: what.to_owned(),
            status: 200,
            code: "BadNextLink".into(),
            message: format!("nextLink {link:?} is not a URL"),
        })?;
        if !self.same_origin(&url) {
            return Err(GraphError::ForeignLink {
                what: what.to_owned(),
                kind: "a nextLink",
                link,
            });
        }
        if !seen.insert(link) {
            return Err(GraphError::Loop {
                what: what.to_owned(),
            });
        }
        Ok(Some(url))
    }

    /// Sends up to 20 GETs in one `$batch`. Each answer is returned as it came (status, body);
    /// the outer request is retried like any other, inner failures are the caller's to retry.
    pub async fn batch(
        &self,
        requests: Vec<BatchRequestItem>,
        what: &str,
    ) -> Result<BatchResponse, GraphError> {
        let body = BatchRequest { requests };
        let url = self.url("$batch");
        let (url, body) = (&url, &body);
        self.with_retries(what, |token| async move {
            self.attempt_batch(url, body, &token, what).await
        })
        .await
    }

    async fn attempt_batch(
        &self,
        url: &Url,
        body: &BatchRequest,
        token: &str,
        what: &str,
    ) -> Result<BatchResponse, Attempt> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(body)
            .send()
            .await
            .map_err(|e| retry_transport(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = body_bounded(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| e.attempt(what))?;
        check_status(status, &headers, &bytes, url.path(), what)?;
        serde_json::from_slice::<BatchResponse>(&bytes).map_err(|e| Attempt::Retry {
            why: format!("malformed $batch response ({e})"),
            after: None,
            throttled: false,
        })
    }

    /// Counts an inner `$batch` request that failed and will be sent again.
    pub fn record_retry(&self, throttled: bool) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks one page read (for progress), for callers that read pages out of `$batch`.
    pub fn record_page(&self, objects: usize) {
        self.count_page(objects);
    }
}

/// Connects that time out are tried this often before Graph counts as unreachable.
pub const CONNECT_ATTEMPTS: u32 = 2;

fn retry_transport(e: &reqwest::Error) -> Attempt {
    tracing::debug!(error = ?e, "transport error");
    let failure = transport_failure(e);
    match failure.kind {
        FailureKind::Answer => Attempt::Retry {
            why: failure.to_string(),
            after: None,
            throttled: false,
        },
        _ => Attempt::Unreachable(failure),
    }
}

fn graph_error(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<GraphErrorBody>(body) {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (
            "unknown".into(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}

/// Classifies a response status: Ok to parse, or what to do instead.
fn check_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
    what: &str,
) -> Result<(), Attempt> {
    if status.is_success() {
        return Ok(());
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    match status.as_u16() {
        401 => Err(Attempt::Unauthorized),
        429 | 503 => Err(Attempt::Retry {
            why: format!(
                "{} {}",
                status.as_u16(),
                if status.as_u16() == 429 {
                    "throttled"
                } else {
                    "service unavailable"
                }
            ),
            after: retry_after,
            throttled: status.as_u16() == 429,
        }),
        500 | 502 | 504 => Err(Attempt::Retry {
            why: format!("{status}"),
            after: retry_after,
            throttled: false,
        }),
        403 => {
            let (code, message) = graph_error(body);
            Err(Attempt::Fatal(GraphError::Forbidden {
                what: what.to_owned(),
                code,
                message,
                hint: permission_for(path),
            }))
        }
        404 => Err(Attempt::Fatal(GraphError::NotFound {
            what: what.to_owned(),
        })),
        other => {
            let (code, message) = graph_error(body);
            Err(Attempt::Fatal(GraphError::Rejected {
                what: what.to_owned(),
                status: other,
                code,
                message,
            }))
        }
    }
}
