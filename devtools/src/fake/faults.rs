//! Graph's ways of failing, injected: throttling with `Retry-After`, 5xx, missing
//! permissions, objects gone, dropped connections, truncated or oversized bodies — by request
//! count, never into the same request twice in a row.

use super::*;

impl State {
    pub(super) fn every(&self, n: Option<u64>, count: u64) -> bool {
        n.is_some_and(|n| n > 0 && count.is_multiple_of(n))
    }

    /// Whether a fault that is `due` (by the request count) is injected into the request
    /// `key`: never into the same request twice in a row. Against real Graph a retry after
    /// `Retry-After` gets through; with faults by count alone, concurrent requests arriving
    /// in a fixed order could hand one request every faulty count until it gives up.
    pub(super) fn inject(&self, due: bool, key: u64) -> bool {
        let mut faulted = self.faulted.lock().unwrap();
        let again = faulted.remove(&key);
        let inject = due && !again;
        if inject {
            faulted.insert(key);
        }
        inject
    }

    /// Serves one Graph request, faults and budget included.
    pub(super) fn graph(&self, req: &Request<'_>, count: u64) -> Answer {
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
}

/// Identifies a request for [`State::inject`]: the same request sent again has the same key.
pub(super) fn request_key(request: impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    request.hash(&mut h);
    h.finish()
}

/// Applies the body-level faults: dropped connection, truncated JSON, missing `value`.
pub(super) async fn damage(state: &State, count: u64, key: u64, response: Response) -> Response {
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
                1 + (adapters::graph::client::MAX_RESPONSE_BYTES >> 20),
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

/// A body that yields `first` and then fails: hyper aborts the connection mid-body.
pub(super) fn futures_stream(
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

/// Whether a request path (after `/v1.0/`) lies under `prefix`, given with or without the
/// leading `/v1.0/` (`--forbid /v1.0/groups` and `--forbid groups` are the same).
pub(super) fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_start_matches('/');
    let prefix = prefix.strip_prefix("v1.0/").unwrap_or(prefix);
    path.starts_with(prefix)
}

/// A body streamed from an iterator of chunks.
pub(super) struct IterStream<I>(I);

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
