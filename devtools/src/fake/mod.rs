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
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub use adapters::auth::assertion::TrustedCertificate;
use adapters::error::{Error, Result};
use adapters::fixture::from_json;
use adapters::wire::{BatchRequest, BatchResponse, BatchResponseItem};

mod batch;
mod budget;
mod delta;
mod directory;
mod faults;
mod identity;

use batch::*;
use budget::*;
use directory::*;
use faults::*;
use identity::*;

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
    /// Certificates uploaded to the app: client assertions signed by their keys are taken.
    pub trust_certificates: Vec<TrustedCertificate>,
    /// A federated credential of the app: tokens from this issuer are taken as assertions.
    pub trust_federated: Option<FederatedTrust>,
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
    /// The administrator a device-code sign-in signs in as: the ID token's
    /// `preferred_username`.
    pub signed_in: String,
    /// Permissions the app is *not* granted (`Member.Read.Hidden`): left out of the tokens'
    /// `scp`/`roles` and the granted scopes, and Graph behaves as without them (a group with
    /// hidden membership lists no members).
    pub deny: Vec<String>,
}

/// A federated identity credential, as an app registration holds one: the issuer, the subject
/// (any, if `None`) and the audience `api://AzureADTokenExchange`; the issuer's signing
/// certificate stands for its published keys.
#[derive(Debug, Clone)]
pub struct FederatedTrust {
    pub issuer: String,
    pub subject: Option<String>,
    pub key: TrustedCertificate,
}

/// The permissions the fake grants unless denied.
pub const PERMISSIONS: [&str; 4] = [
    "User.Read.All",
    "GroupMember.Read.All",
    "Group.Read.All",
    "Member.Read.Hidden",
];

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
            trust_certificates: Vec::new(),
            trust_federated: None,
            public_client_disabled: false,
            deny_consent: false,
            forbid: Vec::new(),
            not_found: Vec::new(),
            expires_in: None,
            signed_in: "admin@fake-graph.example".into(),
            deny: Vec::new(),
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
    /// Requests to the sign-in endpoints (token, device code), taken or refused.
    pub sign_in_requests: u64,
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
    sign_in_requests: AtomicU64,
}

struct State {
    config: FakeConfig,
    /// The tenant served, and its earlier versions (for delta tokens).
    versions: RwLock<delta::Versions>,
    base: String,
    counters: Counters,
    /// (window start, units spent in it)
    window: Mutex<(Instant, u64)>,
    access: Mutex<HashMap<String, Instant>>,
    refresh: Mutex<HashSet<String>>,
    devices: Mutex<HashMap<String, Device>>,
    /// The `jti` of every client assertion taken: one used again is refused.
    assertions_seen: Mutex<HashSet<String>>,
    /// Requests the last attempt of which an injected fault hit (see [`State::inject`]).
    faulted: Mutex<HashSet<u64>>,
}

impl State {
    /// Whether the app holds `permission` (every one of [`PERMISSIONS`] not denied).
    fn grants(&self, permission: &str) -> bool {
        PERMISSIONS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(permission))
            && !self
                .config
                .deny
                .iter()
                .any(|d| d.eq_ignore_ascii_case(permission))
    }

    /// The permissions granted, space-separated.
    fn granted(&self) -> Vec<&'static str> {
        PERMISSIONS.into_iter().filter(|p| self.grants(p)).collect()
    }

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
            sign_in_requests: g(&c.sign_in_requests),
        }
    }
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
    if method == Method::POST && path == "/_fake/reload" {
        return match Directory::load(&body, "the reloaded tenant") {
            Ok(dir) => axum::Json(json!({"version": state.replace(dir)})).into_response(),
            Err(e) => graph_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
        };
    }
    if method == Method::POST && path == "/_fake/expire-delta" {
        state.expire_delta();
        return axum::Json(json!({"expired": true})).into_response();
    }
    if method == Method::POST && path.ends_with("/oauth2/v2.0/devicecode") {
        state
            .counters
            .sign_in_requests
            .fetch_add(1, Ordering::Relaxed);
        return device_code(&state, &path, &body);
    }
    if method == Method::POST && path.ends_with("/oauth2/v2.0/token") {
        state
            .counters
            .sign_in_requests
            .fetch_add(1, Ordering::Relaxed);
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
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let base_url = format!("http://{local}");
        let state = Arc::new(State {
            config,
            versions: RwLock::new(delta::Versions::new(dir)),
            base: base_url.clone(),
            counters: Counters::default(),
            window: Mutex::new((Instant::now(), 0)),
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashSet::new()),
            devices: Mutex::new(HashMap::new()),
            assertions_seen: Mutex::new(HashSet::new()),
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
                    // A reloaded tenant is as large as a fixture may be (axum refuses bodies
                    // over 2 MB unless told).
                    let app = axum::Router::new()
                        .fallback(
                            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                                let state = served.clone();
                                async move { handle(state, method, uri, headers, body).await }
                            },
                        )
                        .layer(axum::extract::DefaultBodyLimit::max(
                            adapters::fixture::MAX_FIXTURE_BYTES as usize,
                        ));
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .map_err(|e| Error::io("cannot start the fake Graph endpoint's thread", e))?;
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

    /// What changes the tenant served while the fake runs (another thread may hold it).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: self.state.clone(),
        }
    }

    /// Blocks until the server stops (it does not, unless the process is killed).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Changes the tenant a running fake serves.
#[derive(Clone)]
pub struct Reloader {
    state: Arc<State>,
}

impl Reloader {
    /// Serves `fixture` (tenant JSON bytes) from now on, as a new version of the tenant: delta
    /// tokens issued before it answer the changes. Returns the version's number.
    pub fn reload(&self, fixture: &[u8], origin: &str) -> Result<u64> {
        Ok(self.state.replace(Directory::load(fixture, origin)?))
    }

    /// Makes every delta token issued so far unknown (answered 410 `syncStateNotFound`).
    pub fn expire_delta(&self) {
        self.state.expire_delta();
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
