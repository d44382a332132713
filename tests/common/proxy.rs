//! A hostile Graph for the tests: a loopback proxy in front of `roster fake-graph` that passes
//! every request on and lets a test answer some itself or change what Graph answered (an
//! `@removed` made up, a property nulled, a nextLink that never ends). Links in the answers
//! are rewritten to point at the proxy, as they would at a real Graph.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// A request as the proxy saw it: method, and path with its query (`/v1.0/users/delta?…`).
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

type Answer = dyn Fn(&Seen) -> Option<(u16, Value)> + Send + Sync;
type Rewrite = dyn Fn(&Seen, &mut Value) + Send + Sync;

pub struct Proxy {
    /// The proxy's base URL (no trailing slash): give it as `--graph-url` and `--login-url`.
    pub url: String,
    /// Every request passed through, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy in front of `upstream` (the fake's base URL). `answer` may answer a request
    /// itself; `rewrite` may change a JSON answer from upstream before it is passed on.
    pub fn start(
        upstream: &str,
        answer: impl Fn(&Seen) -> Option<(u16, Value)> + Send + Sync + 'static,
        rewrite: impl Fn(&Seen, &mut Value) + Send + Sync + 'static,
    ) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_end_matches('/').to_owned();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let rewrite: Arc<Rewrite> = Arc::new(rewrite);
        let http = reqwest::Client::new();
        let (log, me) = (seen.clone(), url.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (http, upstream, me, log, answer, rewrite) = (
                    http.clone(),
                    upstream.clone(),
                    me.clone(),
                    log.clone(),
                    answer.clone(),
                    rewrite.clone(),
                );
                async move {
                    let seen = Seen {
                        method: method.to_string(),
                        path: uri
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                    };
                    log.lock().unwrap().push(seen.clone());
                    let json = |status: u16, v: Value| {
                        (
                            StatusCode::from_u16(status).unwrap(),
                            [("content-type", "application/json")],
                            v.to_string().replace(&upstream, &me),
                        )
                    };
                    if let Some((status, body)) = answer(&seen) {
                        return json(status, body);
                    }
                    let mut req = http.request(method, format!("{upstream}{}", seen.path));
                    for (k, v) in &headers {
                        if k != "host" && k != "content-length" {
                            req = req.header(k, v);
                        }
                    }
                    let resp = req.body(body).send().await.unwrap();
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap();
                    match serde_json::from_str::<Value>(&text) {
                        Ok(mut v) => {
                            rewrite(&seen, &mut v);
                            json(status, v)
                        }
                        Err(_) => (
                            StatusCode::from_u16(status).unwrap(),
                            [("content-type", "text/plain")],
                            text,
                        ),
                    }
                }
            },
        );
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy { url, seen, _rt: rt }
    }

    /// The requests seen whose path starts with `prefix` (after `/v1.0/`).
    pub fn requests(&self, prefix: &str) -> Vec<Seen> {
        let want = format!("/v1.0/{prefix}");
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with(&want))
            .cloned()
            .collect()
    }
}
