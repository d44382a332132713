//! Signing in to a tenant: device code (delegated, the admin signs in with MFA in a browser)
//! or app-only, unattended — a client secret, a certificate, or a federated token from the
//! platform roster runs on ([`assertion`]) — against the Microsoft identity platform or any
//! endpoint that speaks its protocol (`roster fake-graph`).
//!
//! Tokens live in a cache file beside the store, `0600`, one per org; never in the log, the
//! org settings or any output. The client secret is read when needed (`ROSTER_CLIENT_SECRET`
//! or a file that is not world-readable) and never stored. Every type holding a secret or a
//! token redacts it in `Debug`.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use engine::TenantId;

pub mod assertion;

/// A secret string: a client secret, an access or refresh token. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How an org signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    DeviceCode,
    ClientSecret,
    /// A client assertion signed with a certificate's private key.
    Certificate,
    /// A client assertion from another identity provider, read from a file the platform
    /// writes (workload identity federation).
    Federated,
}

impl AuthMode {
    /// Whether the app signs in as itself (client credentials), with no one at the keyboard.
    pub fn app_only(self) -> bool {
        !matches!(self, AuthMode::DeviceCode)
    }
}

/// Which Microsoft cloud: it picks the Graph and login hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Global,
    Usgov,
    China,
}

impl Cloud {
    pub fn graph_root(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    pub fn login_root(self) -> &'static str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::Usgov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
}

/// The public client used for device-code sign-in when the org names none: Microsoft Graph
/// Command Line Tools, a first-party app admins can consent to for the read permissions.
pub const DEFAULT_PUBLIC_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// Where the client secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "from")]
pub enum SecretSource {
    /// `ROSTER_CLIENT_SECRET`.
    Env,
    /// A file readable by its owner only.
    File { path: PathBuf },
}

/// The environment variable holding a client secret.
pub const SECRET_ENV: &str = "ROSTER_CLIENT_SECRET";

impl SecretSource {
    pub fn load(&self) -> Result<Secret, AuthError> {
        match self {
            SecretSource::Env => match std::env::var(SECRET_ENV) {
                Ok(s) if !s.trim().is_empty() => {
                    one_line_secret(s.trim(), SECRET_ENV, "client secret")?;
                    Ok(Secret(s.trim().to_owned()))
                }
                _ => Err(AuthError::Config(format!(
                    "no client secret: set {SECRET_ENV}, or add the org with --client-secret-file FILE"
                ))),
            },
            SecretSource::File { path } => read_secret_file(path),
        }
    }
}

/// Reads a client secret file, refusing one that anybody may read.
pub fn read_secret_file(path: &Path) -> Result<Secret, AuthError> {
    read_private_file(path, "client secret")
}

/// Reads a secret (`what`: "client secret", "SCIM token") from a file only its owner may
/// read: trimmed, at most 64 KiB, not empty.
pub fn read_private_file(path: &Path, what: &str) -> Result<Secret, AuthError> {
    let text = String::from_utf8_lossy(&read_private_bytes(path, what, Readers::World, 64 << 10)?)
        .into_owned();
    let secret = text.trim();
    if secret.is_empty() {
        return Err(AuthError::Config(format!(
            "{}: the {what} file is empty",
            path.display()
        )));
    }
    one_line_secret(
        secret,
        &format!("{}: the {what} file", path.display()),
        what,
    )?;
    Ok(Secret(secret.to_owned()))
}

/// Who besides its owner a credential file must not be readable by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readers {
    /// Everybody (a client secret, a SCIM token: a group the service account shares is
    /// allowed).
    World,
    /// Its group or everybody (a private key, kept as ssh keeps one).
    GroupOrWorld,
}

/// The bytes of a credential file (`what`: "client secret", "certificate"): a regular file,
/// its mode checked against `refused` before anything is read, at most `limit` bytes.
pub(crate) fn read_private_bytes(
    path: &Path,
    what: &str,
    refused: Readers,
    limit: u64,
) -> Result<Vec<u8>, AuthError> {
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        AuthError::Config(format!(
            "{shown}: cannot read the {what} file: {}",
            crate::bounded::io_reason(&e)
        ))
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    // Before its mode: `/dev/zero` is world-readable, and no chmod makes it a secret.
    if !meta.is_file() {
        return Err(AuthError::Config(format!(
            "{shown}: the {what} file is not a regular file (a directory, a pipe, a device or a socket); give the path of a file holding the {what}"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        let (mask, who) = match refused {
            Readers::World => (0o004, "is world-readable"),
            Readers::GroupOrWorld => (0o044, "holds a private key that others may read"),
        };
        if mode & mask != 0 {
            return Err(AuthError::Config(format!(
                "{shown}: the {what} file {who} (mode {:o}); run `chmod 600 {shown}`",
                mode & 0o777
            )));
        }
    }
    crate::bounded::read_regular_file(path, limit).map_err(unreadable)
}

/// Refuses a secret that holds a line break, a NUL or another control character: sent in a
/// header or a form it would be cut or refused on the way, and reported as a network failure.
/// `origin` names where it came from (a file, a variable); the secret itself is never said.
pub fn one_line_secret(secret: &str, origin: &str, what: &str) -> Result<(), AuthError> {
    match secret.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(AuthError::Config(format!(
            "{origin} holds {} inside the {what}; a {what} is one line of printable characters: check that the right value was copied",
            match c {
                '\n' | '\r' => "a line break",
                '\0' => "a NUL character",
                _ => "a control character",
            }
        ))),
    }
}

/// The certificate credential in `path`, checked as a sign-in would check it now (see
/// [`assertion::CertificateCredential::load`]).
pub fn certificate_now(path: &Path) -> Result<assertion::CertificateCredential, AuthError> {
    assertion::CertificateCredential::load(path, Utc::now())
}

/// The federated token in `path`, checked as a sign-in would check it now (see
/// [`assertion::federated_token`]).
pub fn federated_token_now(path: &Path) -> Result<Secret, AuthError> {
    assertion::federated_token(path, Utc::now())
}

/// Why signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The admin's setup must change (tenant, app registration, consent, secret): exit 2.
    #[error("{0}")]
    Config(String),
    /// The token service or Graph refused, or could not be reached.
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    Cache(String),
}

/// What the admin must do to finish a device-code sign-in.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    pub verification_uri: String,
    pub user_code: String,
    pub message: String,
}

/// Shows the admin where to sign in (device code); called once per sign-in.
pub type Prompt = Arc<dyn Fn(&DevicePrompt) + Send + Sync>;

/// Something that hands out access tokens.
pub trait TokenSource: Send + Sync {
    /// A valid access token, signing in or refreshing if needed.
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + '_>>;
    /// A new access token, after Graph rejected `stale` (401). Concurrent callers holding the
    /// same stale token share one refresh.
    fn refresh<'a>(
        &'a self,
        stale: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + 'a>>;
    /// Whom the tokens act for, once signed in: the administrator's user principal name
    /// (device code) or the application (client secret); `None` if unknown.
    fn signed_in_as(&self) -> Option<String> {
        None
    }
    /// Whether the tokens are known to carry `permission` (`Member.Read.Hidden`, say): named in
    /// the scopes the sign-in service granted, or in the access token's `scp` / `roles`
    /// claims. `false` when that is not known.
    fn grants(&self, permission: &str) -> bool {
        let _ = permission;
        false
    }
}

/// Everything needed to sign in to one org.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub tenant: TenantId,
    pub client_id: String,
    pub mode: AuthMode,
    /// `https://login.microsoftonline.com` or an override.
    pub login_root: Url,
    /// `https://graph.microsoft.com` or an override: the resource scopes are named after it.
    pub graph_root: Url,
    pub cache_file: PathBuf,
    pub secret: Option<SecretSource>,
    /// Certificate orgs: the PEM file holding the private key and its certificate.
    pub certificate: Option<PathBuf>,
    /// Federated orgs: the file the platform writes its token to.
    pub assertion_file: Option<PathBuf>,
}

#[derive(Clone, Serialize, Deserialize)]
struct CachedToken {
    tenant: String,
    client_id: String,
    access_token: Secret,
    expires_at: DateTime<Utc>,
    refresh_token: Option<Secret>,
    /// Who signed in (device code): the ID token's `preferred_username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed_in_as: Option<String>,
    /// The permissions the tokens carry, as far as the sign-in service said (see
    /// [`granted_permissions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    granted: Vec<String>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("tenant", &self.tenant)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    /// Sent for a delegated sign-in that asked for `openid`: who signed in.
    #[serde(default)]
    id_token: Option<Secret>,
    /// The scopes granted (delegated sign-ins).
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    interval: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

/// Numbers the identity platform sends either as numbers or as strings.
/// A number of seconds from a sign-in response (a number or a numeric string), bounded: the
/// service is outside roster, and a huge value must not overflow a clock.
fn seconds(v: &Option<serde_json::Value>, default: u64, max: u64) -> u64 {
    let raw = match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(default),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(default),
        _ => default,
    };
    raw.min(max)
}

/// The most roster reads of one sign-in response (a token is a few KiB).
const MAX_AUTH_RESPONSE_BYTES: usize = 1 << 20;

/// Longest an access token is taken to live (Entra's are one to a few hours).
const MAX_TOKEN_LIFETIME_S: u64 = 24 * 3600;
/// Longest a device code is taken to live (Entra's: 15 minutes), and the slowest polling.
const MAX_DEVICE_CODE_LIFETIME_S: u64 = 3600;
const MAX_POLL_INTERVAL_S: u64 = 60;

/// A sign-in error in one line, with the fix.
fn explain(e: &TokenError, s: &AuthSettings) -> AuthError {
    let code = e.error_codes.first().copied().or_else(|| {
        e.error_description
            .strip_prefix("AADSTS")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
    });
    let first_line = e
        .error_description
        .split(['\r', '\n'])
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let tenant = &s.tenant;
    let client = &s.client_id;
    let config = |m: String| AuthError::Config(m);
    match code {
        Some(7000218) => config(format!(
            "AADSTS7000218: public client flows are disabled for app {client}: in the Entra admin center, App registrations → the app → Authentication, set \"Allow public client flows\" to Yes (or use --auth client-secret)"
        )),
        Some(65001) | Some(65004) => config(format!(
            "AADSTS{}: the app {client} has no consent for the permissions roster needs: an administrator must grant admin consent for User.Read.All, GroupMember.Read.All and Group.Read.All (App registrations → API permissions → Grant admin consent)",
            code.unwrap_or(65001)
        )),
        Some(90002) | Some(90023) | Some(900023) => config(format!(
            "AADSTS{}: tenant {tenant} was not found: check --tenant (the Directory (tenant) ID on the app's overview page) and --cloud",
            code.unwrap_or(90002)
        )),
        Some(700016) => config(format!(
            "AADSTS700016: application {client} was not found in tenant {tenant}: check --client-id, and that the app is registered in (or consented to) this tenant"
        )),
        Some(7000215) => config(format!(
            "AADSTS7000215: the client secret for app {client} is not valid: check {SECRET_ENV} or the secret file (use the secret's Value, not its ID), or create a new one under Certificates & secrets"
        )),
        Some(7000222) => config(format!("AADSTS7000222: the client secret for app {client} has expired: create a new one under Certificates & secrets")),
        Some(700027) => config(format!(
            "AADSTS700027: the sign-in service does not take the certificate's signature for app {client} ({}): upload the certificate to the app registration (Certificates & secrets) and check that --certificate holds its private key",
            reason(&first_line)
        )),
        Some(c @ (700024 | 1000502 | 7000214)) => config(format!(
            "AADSTS{c}: the sign-in service refused the {} as not valid now ({}): {}",
            if s.mode == AuthMode::Federated { "federated token" } else { "client assertion" },
            reason(&first_line),
            if s.mode == AuthMode::Federated { "the platform that writes the token file must renew it" } else { "check this machine's clock, and that the certificate uploaded to the app is current and not revoked" }
        )),
        Some(700021) => config(format!(
            "AADSTS700021: the client assertion names another app than {client}: check --client-id against the app the certificate or federated credential belongs to"
        )),
        Some(c @ (70021 | 700211 | 700212 | 700213 | 700223)) => config(format!(
            "AADSTS{c}: no federated credential of app {client} matches the token ({}): in App registrations → the app → Certificates & secrets → Federated credentials, check the issuer, the subject and the audience {}",
            reason(&first_line),
            assertion::FEDERATED_AUDIENCE
        )),
        Some(c @ (50013 | 50027)) if matches!(s.mode, AuthMode::Certificate | AuthMode::Federated) => config(format!(
            "AADSTS{c}: the sign-in service refused the client assertion ({}): {}",
            reason(&first_line),
            if s.mode == AuthMode::Federated { "check that --assertion-file holds the token the platform writes" } else { "check --certificate and this machine's clock" }
        )),
        Some(700082) | Some(700084) | Some(50173) | Some(70008) => {
            config("the saved sign-in has expired or was revoked: sign in again with `roster org login ORG`".to_owned())
        }
        _ if e.error == "invalid_grant" => {
            config("the saved sign-in is no longer valid: sign in again with `roster org login ORG`".to_owned())
        }
        Some(c) => AuthError::Rejected(format!("sign-in failed: {} (AADSTS{c}: {})", e.error, first_line.trim_start_matches(&format!("AADSTS{c}: ")))),
        None => AuthError::Rejected(format!("sign-in failed: {} {}", e.error, first_line).trim().to_owned()),
    }
}

/// The sign-in service's own words after its code, for a message: printable, at most 200
/// characters.
fn reason(first_line: &str) -> String {
    let text = first_line
        .strip_prefix("AADSTS")
        .map(|r| {
            r.trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches(':')
                .trim()
        })
        .unwrap_or(first_line);
    let cut: String = text.chars().take(200).collect();
    engine::text::printable(cut.trim_end_matches('.')).into_owned()
}

/// Signs in and keeps the org's token cache.
pub struct Authenticator {
    settings: AuthSettings,
    http: reqwest::Client,
    state: tokio::sync::Mutex<Option<CachedToken>>,
    prompt: Prompt,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `prompt` shows the admin where to sign in (device code).
    pub fn new(settings: AuthSettings, prompt: Prompt) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(crate::http::CONNECT_TIMEOUT)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with these settings builds");
        let cached = load_cache(&settings.cache_file)
            .filter(|c| c.tenant == settings.tenant.as_str() && c.client_id == settings.client_id);
        Authenticator {
            settings,
            http,
            state: tokio::sync::Mutex::new(cached),
            prompt,
        }
    }

    fn endpoint(&self, what: &str) -> Url {
        let mut u = self.settings.login_root.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!(
            "{base}/{}/oauth2/v2.0/{what}",
            self.settings.tenant
        ));
        u
    }

    fn scopes(&self) -> String {
        let graph = self.settings.graph_root.as_str().trim_end_matches('/');
        match self.settings.mode {
            AuthMode::ClientSecret | AuthMode::Certificate | AuthMode::Federated => {
                format!("{graph}/.default")
            }
            AuthMode::DeviceCode => {
                format!("{graph}/User.Read.All {graph}/GroupMember.Read.All {graph}/Group.Read.All {graph}/Member.Read.Hidden offline_access openid profile")
            }
        }
    }

    /// Signs in afresh (the device-code prompt, or the app's own credential) and saves the
    /// tokens.
    pub async fn sign_in(&self) -> Result<(), AuthError> {
        let mut state = self.state.lock().await;
        let token = match self.settings.mode {
            AuthMode::DeviceCode => self.device_code().await?,
            AuthMode::ClientSecret | AuthMode::Certificate | AuthMode::Federated => {
                self.client_credentials().await?
            }
        };
        self.store(&mut state, token)?;
        Ok(())
    }

    /// Forgets the org's tokens.
    pub fn sign_out(cache_file: &Path) -> Result<bool, AuthError> {
        match std::fs::remove_file(cache_file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(AuthError::Cache(format!(
                "{}: cannot remove the token cache: {}",
                cache_file.display(),
                crate::bounded::io_reason(&e)
            ))),
        }
    }

    async fn post_form(
        &self,
        url: Url,
        form: &[(&str, &str)],
    ) -> Result<Result<reqwest::Response, TokenError>, AuthError> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                AuthError::Network(format!(
                    "cannot reach the sign-in service at {}: {}",
                    url.origin().ascii_serialization(),
                    crate::http::transport_failure(&e).why
                ))
            })?;
        if resp.status().is_success() {
            return Ok(Ok(resp));
        }
        let status = resp.status();
        let bytes = crate::http::body_bounded(resp, MAX_AUTH_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        Ok(Err(serde_json::from_slice::<TokenError>(&bytes).unwrap_or(
            TokenError {
                error: format!("http_{}", status.as_u16()),
                error_description: String::new(),
                error_codes: Vec::new(),
            },
        )))
    }

    async fn token_response(resp: reqwest::Response) -> Result<TokenResponse, AuthError> {
        let bytes = crate::http::body_bounded(resp, MAX_AUTH_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        serde_json::from_slice::<TokenResponse>(&bytes).map_err(|_| {
            AuthError::Rejected(
                "the sign-in service sent a token response roster cannot read".into(),
            )
        })
    }

    async fn client_credentials(&self) -> Result<TokenResponse, AuthError> {
        let scope = self.scopes();
        let token_url = self.endpoint("token");
        let client_id = self.settings.client_id.as_str();
        let missing = |what: &str| {
            AuthError::Config(format!("no {what} is configured for this org: `roster org remove` it and add it again with its --auth and file"))
        };
        let (credential, assertion): (&str, Secret) = match self.settings.mode {
            AuthMode::Certificate => {
                let path = self
                    .settings
                    .certificate
                    .as_ref()
                    .ok_or_else(|| missing("certificate"))?;
                let now = Utc::now();
                let cert = assertion::CertificateCredential::load(path, now)?;
                let left = cert.not_after - now;
                if left < chrono::Duration::days(30) {
                    tracing::warn!(
                        "the certificate {} in {} expires on {} (in {} days): before then, create a new one, upload it to the app registration and put it with its key in that file",
                        cert.thumbprints().sha1_hex(),
                        path.display(),
                        cert.not_after.format("%Y-%m-%d"),
                        left.num_days()
                    );
                }
                (
                    "client_assertion",
                    cert.assertion(client_id, token_url.as_str(), now)?,
                )
            }
            AuthMode::Federated => {
                let path = self
                    .settings
                    .assertion_file
                    .as_ref()
                    .ok_or_else(|| missing("federated token file"))?;
                (
                    "client_assertion",
                    assertion::federated_token(path, Utc::now())?,
                )
            }
            AuthMode::ClientSecret | AuthMode::DeviceCode => (
                "client_secret",
                self.settings
                    .secret
                    .as_ref()
                    .ok_or_else(|| missing("client secret"))?
                    .load()?,
            ),
        };
        let mut form = vec![
            ("client_id", client_id),
            ("scope", scope.as_str()),
            ("grant_type", "client_credentials"),
            (credential, assertion.expose()),
        ];
        if credential == "client_assertion" {
            form.push(("client_assertion_type", assertion::ASSERTION_TYPE));
        }
        match self.post_form(token_url, &form).await? {
            Ok(resp) => Self::token_response(resp).await,
            Err(e) => Err(explain(&e, &self.settings)),
        }
    }

    async fn device_code(&self) -> Result<TokenResponse, AuthError> {
        let scope = self.scopes();
        let form = [
            ("client_id", self.settings.client_id.as_str()),
            ("scope", scope.as_str()),
        ];
        let code = match self.post_form(self.endpoint("devicecode"), &form).await? {
            Ok(resp) => serde_json::from_slice::<DeviceCodeResponse>(
                &crate::http::body_bounded(resp, MAX_AUTH_RESPONSE_BYTES)
                    .await
                    .unwrap_or_default(),
            )
            .map_err(|_| {
                AuthError::Rejected(
                    "the sign-in service sent a device code response roster cannot read".into(),
                )
            })?,
            Err(e) => return Err(explain(&e, &self.settings)),
        };
        let message = code.message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}.",
                code.verification_uri, code.user_code
            )
        });
        (self.prompt)(&DevicePrompt {
            verification_uri: code.verification_uri.clone(),
            user_code: code.user_code.clone(),
            message,
        });
        let mut interval =
            Duration::from_secs(seconds(&code.interval, 5, MAX_POLL_INTERVAL_S).max(1));
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(seconds(&code.expires_in, 900, MAX_DEVICE_CODE_LIFETIME_S));
        loop {
            tokio::time::sleep(interval).await;
            if tokio::time::Instant::now() > deadline {
                return Err(AuthError::Config("the sign-in code expired before it was used: run the command again and sign in within the time shown".into()));
            }
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", self.settings.client_id.as_str()),
                ("device_code", code.device_code.expose()),
            ];
            match self.post_form(self.endpoint("token"), &form).await? {
                Ok(resp) => return Self::token_response(resp).await,
                Err(e) => match e.error.as_str() {
                    "authorization_pending" => continue,
                    // RFC 8628: slow down means five more seconds between polls, from now on.
                    "slow_down" => interval += Duration::from_secs(5),
                    "authorization_declined" | "access_denied" => {
                        return Err(AuthError::Config("sign-in was declined in the browser; run the command again to retry".into()))
                    }
                    "expired_token" | "code_expired" => {
                        return Err(AuthError::Config("the sign-in code expired before it was used: run the command again and sign in within the time shown".into()))
                    }
                    "bad_verification_code" => return Err(AuthError::Rejected("the sign-in service did not recognise the device code".into())),
                    _ => return Err(explain(&e, &self.settings)),
                },
            }
        }
    }

    async fn refresh_grant(&self, refresh: &Secret) -> Result<TokenResponse, AuthError> {
        let scope = self.scopes();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.settings.client_id.as_str()),
            ("refresh_token", refresh.expose()),
            ("scope", scope.as_str()),
        ];
        match self.post_form(self.endpoint("token"), &form).await? {
            Ok(resp) => Self::token_response(resp).await,
            Err(e) => Err(explain(&e, &self.settings)),
        }
    }

    fn store(&self, state: &mut Option<CachedToken>, t: TokenResponse) -> Result<(), AuthError> {
        let lifetime = seconds(&t.expires_in, 3600, MAX_TOKEN_LIFETIME_S);
        let refresh_token = t
            .refresh_token
            .or_else(|| state.as_ref().and_then(|s| s.refresh_token.clone()));
        let signed_in_as = t
            .id_token
            .as_ref()
            .and_then(|id| signed_in_user(id.expose()))
            .or_else(|| state.as_ref().and_then(|s| s.signed_in_as.clone()));
        let granted = granted_permissions(t.scope.as_deref(), t.access_token.expose());
        let cached = CachedToken {
            tenant: self.settings.tenant.to_string(),
            client_id: self.settings.client_id.clone(),
            access_token: t.access_token,
            expires_at: Utc::now() + chrono::Duration::seconds(lifetime as i64),
            refresh_token,
            signed_in_as,
            granted,
        };
        save_cache(&self.settings.cache_file, &cached)?;
        *state = Some(cached);
        Ok(())
    }

    /// A new access token, by whatever means this org allows.
    async fn renew(&self, state: &mut Option<CachedToken>) -> Result<(), AuthError> {
        let refresh = state.as_ref().and_then(|s| s.refresh_token.clone());
        let token = match (refresh, self.settings.mode) {
            (_, AuthMode::ClientSecret | AuthMode::Certificate | AuthMode::Federated) => {
                self.client_credentials().await?
            }
            (Some(r), AuthMode::DeviceCode) => match self.refresh_grant(&r).await {
                Ok(t) => t,
                // An expired or revoked sign-in falls back to signing in again.
                Err(AuthError::Config(_)) => self.device_code().await?,
                Err(e) => return Err(e),
            },
            (None, AuthMode::DeviceCode) => self.device_code().await?,
        };
        self.store(state, token)
    }
}

/// The user an ID token names (`preferred_username`, else `upn`), read without checking its
/// signature: it came straight from the sign-in service over TLS, and it is recorded for the
/// audit, never trusted for access. Bounded, printable, or `None`.
fn signed_in_user(id_token: &str) -> Option<String> {
    use base64::Engine as _;
    if id_token.len() > 16 * 1024 {
        return None;
    }
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let name = ["preferred_username", "upn"]
        .iter()
        .find_map(|c| claims.get(*c)?.as_str().filter(|s| !s.is_empty()))?;
    Some(engine::text::printable(&name.chars().take(256).collect::<String>()).into_owned())
}

/// The permissions a token response grants: the scopes it lists (`https://graph…/X` or `X`),
/// and the access token's `scp` (delegated) and `roles` (application) claims when it is a JWT
/// (read without checking its signature: it says what Graph will allow, nothing is trusted on
/// it but whether to expect hidden members to be listed). Bounded; unknown is empty.
fn granted_permissions(scope: Option<&str>, access_token: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let name = p.rsplit('/').next().unwrap_or(p).trim();
        if !name.is_empty() && name.len() <= 100 && out.len() < 500 {
            out.push(name.to_owned());
        }
    };
    scope
        .unwrap_or_default()
        .split_whitespace()
        .for_each(&mut add);
    let claims = (access_token.len() <= 64 << 10)
        .then(|| access_token.split('.').nth(1))
        .flatten()
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if let Some(c) = claims {
        if let Some(scp) = c.get("scp").and_then(|v| v.as_str()) {
            scp.split_whitespace().for_each(&mut add);
        }
        if let Some(roles) = c.get("roles").and_then(|v| v.as_array()) {
            roles.iter().filter_map(|r| r.as_str()).for_each(&mut add);
        }
    }
    out.sort();
    out.dedup();
    out
}

impl TokenSource for Authenticator {
    fn grants(&self, permission: &str) -> bool {
        self.state.try_lock().ok().is_some_and(|s| {
            s.as_ref()
                .is_some_and(|t| t.granted.iter().any(|g| g.eq_ignore_ascii_case(permission)))
        })
    }

    fn signed_in_as(&self) -> Option<String> {
        match self.settings.mode {
            m if m.app_only() => Some(format!("application {}", self.settings.client_id)),
            _ => self.state.try_lock().ok()?.as_ref()?.signed_in_as.clone(),
        }
    }

    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + '_>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let fresh = state
                .as_ref()
                .is_some_and(|t| t.expires_at > Utc::now() + chrono::Duration::seconds(60));
            if !fresh {
                self.renew(&mut state).await?;
            }
            Ok(state
                .as_ref()
                .expect("renew leaves a token")
                .access_token
                .expose()
                .to_owned())
        })
    }

    fn refresh<'a>(
        &'a self,
        stale: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + 'a>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let current = state.as_ref().map(|t| t.access_token.expose().to_owned());
            if current.as_deref() == Some(stale) || current.is_none() {
                self.renew(&mut state).await?;
            }
            Ok(state
                .as_ref()
                .expect("renew leaves a token")
                .access_token
                .expose()
                .to_owned())
        })
    }
}

fn load_cache(path: &Path) -> Option<CachedToken> {
    refuse_links(path).ok()?;
    let bytes = crate::bounded::read_regular_file(path, 1 << 20).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Refuses a token cache reached through a symbolic link (the cache file, or its directory):
/// secrets are written, and their directory's mode set, only where roster put them.
fn refuse_links(path: &Path) -> std::io::Result<()> {
    for p in [Some(path), path.parent()].into_iter().flatten() {
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link; roster keeps tokens only in a directory of its own: remove the link",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes the cache atomically, readable by its owner only, in a directory only they can list.
fn save_cache(path: &Path, token: &CachedToken) -> Result<(), AuthError> {
    let fail = |e: std::io::Error| {
        AuthError::Cache(format!(
            "{}: cannot save the token cache: {}",
            path.display(),
            crate::bounded::io_reason(&e)
        ))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    refuse_links(path).map_err(fail)?;
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    // tempfile creates the file with mode 0600 before anything is written to it.
    let mut tmp = tempfile::Builder::new()
        .prefix(".token-")
        .tempfile_in(dir)
        .map_err(fail)?;
    serde_json::to_writer(&mut tmp, token).map_err(|e| fail(std::io::Error::other(e)))?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// A token source for tests and tools that already hold a token.
pub struct StaticToken(pub Secret);

impl TokenSource for StaticToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + '_>> {
        Box::pin(async move { Ok(self.0.expose().to_owned()) })
    }

    fn refresh<'a>(
        &'a self,
        _stale: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + 'a>> {
        Box::pin(async move {
            Err(AuthError::Rejected(
                "the token was rejected and cannot be refreshed".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: AuthMode) -> AuthSettings {
        AuthSettings {
            tenant: TenantId::parse("3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11").unwrap(),
            client_id: "11111111-2222-4333-8444-555555555555".into(),
            mode,
            login_root: Url::parse("https://login.example").unwrap(),
            graph_root: Url::parse("https://graph.example").unwrap(),
            cache_file: PathBuf::from("/nonexistent/t.json"),
            secret: None,
            certificate: None,
            assertion_file: None,
        }
    }

    /// A sign-in service that answers an assertion's refusal with a hostile description — an
    /// escape sequence, a line break, ten thousand characters — is quoted escaped, on one
    /// line, bounded; its code still says what to check.
    #[test]
    fn a_hostile_refusal_of_an_assertion_is_said_escaped_in_one_bounded_line() {
        for (code, mode, want) in [
            (700027, AuthMode::Certificate, "upload the certificate"),
            (700024, AuthMode::Federated, "must renew it"),
            (700213, AuthMode::Federated, "Federated credentials"),
            (50013, AuthMode::Certificate, "check --certificate"),
        ] {
            let e = TokenError {
                error: "invalid_client".into(),
                error_description: format!(
                    "AADSTS{code}: \u{1b}[2Jcleared{}\r\nTrace ID: x",
                    "A".repeat(10_000)
                ),
                error_codes: vec![code],
            };
            let said = explain(&e, &settings(mode)).to_string();
            assert!(said.starts_with(&format!("AADSTS{code}")), "{said}");
            assert!(said.contains(want), "{said}");
            assert!(!said.contains('\u{1b}') && !said.contains('\n'), "{said:?}");
            assert!(!said.contains("Trace ID"), "{said}");
            assert!(said.len() < 800, "{} characters", said.len());
        }
    }
}
