//! The HTTP plumbing Graph and a SCIM service share: how hard a request is tried
//! ([`RetryPolicy`], `Retry-After`), a body read whole and bounded or not at all, and a client
//! that never follows a redirect — a redirect would carry a request's body (personal data) to
//! an origin nobody named, and get round "no plain http beyond loopback".

use std::time::Duration;

/// A client with roster's user agent, `timeout` per request, and no redirects followed: a
/// 3xx comes back as the answer, for the caller to refuse.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with these settings builds")
}

/// How long connecting to a host may take: a host that does not answer is said within
/// seconds, not after the request's whole timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// Why a request got no answer, in the admin's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// `host:port` the request went to.
    pub host: String,
    pub why: String,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection, and trying again at once will not make one: refused, a name that does
    /// not resolve, a server that does not speak TLS, a certificate not trusted.
    NoConnection,
    /// No connection within [`CONNECT_TIMEOUT`]: the host may be down or filtered.
    ConnectTimeout,
    /// Connected, then no (whole) answer in time, or the connection dropped: transient.
    Answer,
}

impl std::fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.why, self.host)
    }
}

/// What went wrong sending `e`'s request, from the error and its causes: refused, an unknown
/// host name, plain http where https was asked, an untrusted certificate, a timeout.
pub fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    let host = e
        .url()
        .map(|u| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or("?"),
                u.port_or_known_default().unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "the service".into());
    let mut chain = String::new();
    let mut refused = false;
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        chain.push_str(&err.to_string().to_lowercase());
        chain.push(' ');
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = err.source();
    }
    let (why, kind) = if refused || chain.contains("connection refused") {
        (
            "the connection was refused: nothing listens there",
            FailureKind::NoConnection,
        )
    } else if chain.contains("dns error") || chain.contains("failed to lookup address") {
        ("the host name does not resolve", FailureKind::NoConnection)
    } else if chain.contains("invalidcontenttype")
        || chain.contains("corrupt message")
        || chain.contains("wrong version number")
    {
        (
            "the server does not speak TLS — an https:// URL to a plain-http server? (a test endpoint on this machine is http://)",
            FailureKind::NoConnection,
        )
    } else if chain.contains("certificate") {
        (
            "its TLS certificate is not trusted (expired, self-signed, or for another name)",
            FailureKind::NoConnection,
        )
    } else if e.is_connect() && e.is_timeout() {
        (
            "no connection within the connect timeout",
            FailureKind::ConnectTimeout,
        )
    } else if e.is_timeout() {
        ("timed out", FailureKind::Answer)
    } else if e.is_connect() {
        ("could not connect", FailureKind::NoConnection)
    } else if e.is_body() || e.is_decode() {
        (
            "the connection dropped while reading the response",
            FailureKind::Answer,
        )
    } else {
        ("the connection failed", FailureKind::Answer)
    };
    TransportFailure {
        host,
        why: why.to_owned(),
        kind,
    }
}

/// How hard to try before giving up on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Waiting between attempts of one request, at most.
    pub max_total_wait: Duration,
    /// First backoff; doubles each attempt, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per attempt, from sending to the whole body read.
    pub timeout: Duration,
    /// Pages one listing follows, at most ([`crate::graph::client::MAX_PAGES`]).
    pub max_pages: u64,
    /// Time one listing takes, at most ([`crate::graph::client::MAX_LISTING`]).
    pub max_listing: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_total_wait: Duration::from_secs(300),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            max_pages: crate::graph::client::MAX_PAGES,
            max_listing: crate::graph::client::MAX_LISTING,
        }
    }
}

impl RetryPolicy {
    /// The default policy, with `ROSTER_RETRY_ATTEMPTS`, `ROSTER_RETRY_MAX_WAIT_S`,
    /// `ROSTER_RETRY_BASE_MS`, `ROSTER_HTTP_TIMEOUT_S`, `ROSTER_MAX_PAGES` and
    /// `ROSTER_MAX_LISTING_S` applied where set.
    pub fn from_env() -> Self {
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| *v >= 0.0)
        };
        let mut p = RetryPolicy::default();
        if let Some(n) = num("ROSTER_RETRY_ATTEMPTS") {
            p.max_attempts = (n as u32).max(1);
        }
        if let Some(s) = num("ROSTER_RETRY_MAX_WAIT_S") {
            p.max_total_wait = Duration::from_secs_f64(s);
        }
        if let Some(ms) = num("ROSTER_RETRY_BASE_MS") {
            p.base_delay = Duration::from_secs_f64(ms / 1000.0);
        }
        if let Some(s) = num("ROSTER_HTTP_TIMEOUT_S") {
            p.timeout = Duration::from_secs_f64(s.max(0.001));
        }
        if let Some(n) = num("ROSTER_MAX_PAGES") {
            p.max_pages = (n as u64).max(1);
        }
        if let Some(s) = num("ROSTER_MAX_LISTING_S") {
            p.max_listing = Duration::from_secs_f64(s.max(0.001));
        }
        p
    }

    /// The wait before attempt `attempt + 1`: exponential, capped, with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        // Full jitter keeps many clients from retrying in step.
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// `Retry-After` as Graph and SCIM services send it: seconds, possibly decimal.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Why a response body could not be read.
pub enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// A response's body, read chunk by chunk and given up past `limit` bytes (announced or sent).
pub async fn body_bounded(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
