//! What a SCIM service says it is before anything is written: `/ServiceProviderConfig`
//! (RFC 7643 §5).

use serde_json::Value;

/// What the service says it supports (`/ServiceProviderConfig`, RFC 7643 §5): what the
/// writes may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceConfig {
    pub patch: bool,
    /// `maxOperations` and `maxPayloadSize`, when bulk requests are supported.
    pub bulk: Option<(u64, u64)>,
    /// `maxResults`, when filtering is supported.
    pub filter: Option<u64>,
    /// Whether resources carry versions (`If-Match`).
    pub etag: bool,
}

impl ServiceConfig {
    pub fn from_json(v: &Value) -> ServiceConfig {
        let supported = |key: &str| {
            v.get(key)
                .and_then(|f| f.get("supported"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let number = |key: &str, field: &str| {
            v.get(key)
                .and_then(|f| f.get(field))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        ServiceConfig {
            patch: supported("patch"),
            bulk: supported("bulk").then(|| {
                (
                    number("bulk", "maxOperations"),
                    number("bulk", "maxPayloadSize"),
                )
            }),
            filter: supported("filter").then(|| number("filter", "maxResults")),
            etag: supported("etag"),
        }
    }
}
