//! The identity endpoints: client credentials, device code (with the admin's answer in the
//! browser played by `--device`), refresh, and the tokens Graph requests must carry.

use super::*;

pub(super) struct Device {
    pub(super) polls: u32,
    pub(super) slowed: bool,
}

impl State {
    /// An access token shaped as the identity platform's (a JWT, unsigned here) whose `scp`
    /// and `roles` claims name the permissions granted: what roster reads to know whether a
    /// group's hidden members will be listed.
    pub(super) fn issue_access(&self) -> String {
        use base64::Engine as _;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let granted = self.granted();
        // The header's place holds the fake's own mark, so tests can tell its tokens.
        let t = format!(
            "{}.{}.",
            random_token("fake-at-"),
            b64(json!({"scp": granted.join(" "), "roles": granted, "tid": self.dir().tenant})),
        );
        self.access
            .lock()
            .unwrap()
            .insert(t.clone(), Instant::now() + self.config.token_ttl);
        self.counters.tokens_issued.fetch_add(1, Ordering::Relaxed);
        t
    }

    pub(super) fn token_body(&self, with_refresh: Option<String>) -> Response {
        let access = self.issue_access();
        let mut body = json!({
            "token_type": "Bearer",
            "expires_in": self.config.expires_in.clone().unwrap_or(self.config.token_ttl.as_secs().into()),
            "ext_expires_in": self.config.token_ttl.as_secs(),
            "access_token": access,
        });
        if let Some(r) = with_refresh {
            body["refresh_token"] = r.into();
            body["scope"] = self.granted().join(" ").into();
            body["id_token"] = self.id_token().into();
        }
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    /// An ID token for the administrator who signed in, shaped as the identity platform's
    /// (header, claims, signature; unsigned here: roster reads it only to record who).
    fn id_token(&self) -> String {
        use base64::Engine as _;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({"typ": "JWT", "alg": "none"})),
            b64(json!({
                "ver": "2.0",
                "tid": self.dir().tenant,
                "preferred_username": self.config.signed_in,
                "name": "Fake Graph Administrator",
            })),
        )
    }

    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
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
}

pub(super) fn token_error(
    status: StatusCode,
    error: &str,
    code: u64,
    description: &str,
) -> Response {
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

pub(super) fn pending(error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description, "error_codes": [70016] });
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub(super) fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `/{tenant}/oauth2/v2.0/...`: the tenant must be the fixture's.
pub(super) fn tenant_ok(state: &State, path: &str) -> bool {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(&state.dir().tenant))
}

pub(super) fn device_code(state: &State, path: &str, body: &Bytes) -> Response {
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

pub(super) fn token(state: &State, path: &str, body: &Bytes) -> Response {
    if !tenant_ok(state, path) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, "Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.");
    }
    let f = form(body);
    let c = &state.config;
    match f.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            // The app proves itself with a client assertion or with its secret.
            if f.contains_key("client_assertion") {
                if let Some(refused) = assertion_refused(state, path, &f) {
                    return refused;
                }
            } else {
                let given = f
                    .get("client_secret")
                    .map(String::as_str)
                    .unwrap_or_default();
                if given.is_empty() || c.client_secret.as_deref().is_some_and(|want| want != given)
                {
                    return token_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.");
                }
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

/// The checks the identity platform makes of a client assertion (RFC 7523), and the answer
/// refusing it when one fails: its type, its form, whose key signed it — a certificate uploaded to the app (named by `x5t#S256` or
/// `x5t`), or the issuer of the app's federated credential — and its claims: for a
/// certificate `aud` = this token endpoint, `iss` = `sub` = the client id, `nbf`/`exp` around
/// now, a `jti` never seen before; for a federated token its issuer, subject and audience
/// `api://AzureADTokenExchange`, and its lifetime.
fn assertion_refused(state: &State, path: &str, f: &HashMap<String, String>) -> Option<Response> {
    use adapters::auth::assertion::{Jwt, ASSERTION_TYPE, CLOCK_SKEW_S, FEDERATED_AUDIENCE};
    let refuse = |code: u64, description: &str| {
        Some(token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        ))
    };
    if f.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
        return Some(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let Some(jwt) = f.get("client_assertion").and_then(|a| Jwt::parse(a)) else {
        return Some(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        ));
    };
    let now = chrono::Utc::now();
    let skew = chrono::Duration::seconds(CLOCK_SKEW_S);
    let in_time = |jwt: &Jwt| {
        jwt.time("exp").is_some_and(|exp| exp + skew > now)
            && jwt.time("nbf").is_none_or(|nbf| nbf - skew <= now)
    };
    let client = f.get("client_id").map(String::as_str).unwrap_or_default();
    let certificate = jwt.header.get("x5t#S256").is_some() || jwt.header.get("x5t").is_some();
    if certificate {
        let Some(cert) = state
            .config
            .trust_certificates
            .iter()
            .find(|c| c.named_by(&jwt))
        else {
            return refuse(700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]");
        };
        if !jwt.signed_by(&cert.public_key) {
            return refuse(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used to sign it does not match the registered certificate.]",
            );
        }
        if now > cert.not_after || now < cert.not_before {
            return refuse(700027, "Client assertion contains an invalid signature. [Reason - The key used is expired.]");
        }
        if jwt.claim("iss") != Some(client) || jwt.claim("sub") != Some(client) {
            return refuse(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            );
        }
        let endpoint = format!("{}{path}", state.base);
        if !jwt.audience_is(&endpoint) {
            return refuse(50013, &format!("Assertion audience claim does not match the token endpoint. [Expected '{endpoint}']"));
        }
        if !in_time(&jwt) {
            return refuse(
                700024,
                "Client assertion is not within its valid time range.",
            );
        }
        let Some(jti) = jwt.claim("jti").filter(|j| !j.is_empty()) else {
            return refuse(50013, "Assertion is invalid: it carries no jti.");
        };
        if !state.assertions_seen.lock().unwrap().insert(jti.to_owned()) {
            return refuse(
                50013,
                "Assertion is invalid: the jti was already used (a replayed assertion).",
            );
        }
        return None;
    }
    let Some(trust) = &state.config.trust_federated else {
        return refuse(700027, "Client assertion failed signature validation. [Reason - No key or federated credential is registered for the application.]");
    };
    if jwt.claim("iss") != Some(trust.issuer.as_str()) {
        return refuse(
            700211,
            "No matching federated identity record found for presented assertion issuer.",
        );
    }
    if !jwt.signed_by(&trust.key.public_key) {
        return refuse(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found.]",
        );
    }
    if !jwt.audience_is(FEDERATED_AUDIENCE) {
        return refuse(
            700212,
            "No matching federated identity record found for presented assertion audience.",
        );
    }
    if trust
        .subject
        .as_deref()
        .is_some_and(|want| jwt.claim("sub") != Some(want))
    {
        return refuse(
            700213,
            "No matching federated identity record found for presented assertion subject.",
        );
    }
    if !in_time(&jwt) {
        return refuse(
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    None
}
