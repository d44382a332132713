//! `/v1.0/$batch`: up to twenty requests answered together, each through the same faults and
//! budget as on its own.

use super::*;

pub(super) fn batch(state: &State, body: &Bytes, outer_eventual: bool) -> Response {
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
