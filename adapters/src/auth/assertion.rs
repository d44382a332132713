//! Signing in as the app without a secret: a **client assertion** — a JWT the sign-in service
//! takes in place of a client secret (RFC 7523, `client_assertion_type=…jwt-bearer`).
//!
//! - *Certificate*: roster signs the assertion with the private key of a certificate uploaded
//!   to the app registration, as the Microsoft identity platform documents it: RS256, headers
//!   `x5t#S256` and `x5t` (the certificate's SHA-256 and SHA-1 thumbprints), claims `aud` = the
//!   token endpoint, `iss` = `sub` = the client id, a fresh `jti`, and `nbf`/`exp` ten minutes
//!   apart. The key file is read when a token is needed and dropped after signing.
//! - *Workload identity federation*: the platform roster runs on (Kubernetes, a CI system,
//!   another cloud) writes a short-lived token to a file; roster reads it at every token
//!   request and sends it as the assertion.
//!
//! The checks the sign-in service makes are here too ([`Jwt`], [`TrustedCertificate`]), for
//! `roster fake-graph` to make them the same way.

use std::path::Path;

use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use x509_cert::der::Decode as _;
use zeroize::Zeroizing;

use super::{AuthError, Secret};

/// `client_assertion_type` for a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience Microsoft Entra ID expects in a federated token (the app's federated
/// credential names it).
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// How long a signed assertion may be used: Microsoft asks for five to ten minutes.
const ASSERTION_LIFETIME_S: i64 = 600;

/// The largest certificate file roster reads: a key and a chain of a few certificates.
const MAX_CERTIFICATE_FILE: u64 = 256 << 10;

/// The largest federated token file roster reads (a JWT of a few KiB).
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// How far the sign-in service's clock may be from ours (Entra allows five minutes).
pub const CLOCK_SKEW_S: i64 = 300;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A certificate credential read from its file: the private key, and the certificate that
/// holds its public half. Never printed, never stored.
pub struct CertificateCredential {
    key: RsaKeyPair,
    thumbprints: Thumbprints,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint", &self.thumbprints.sha1_hex())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// A certificate's thumbprints: the hashes of its DER encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprints {
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
}

impl Thumbprints {
    fn of(der: &[u8]) -> Self {
        use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
        Thumbprints {
            sha1: digest(&SHA1_FOR_LEGACY_USE_ONLY, der).as_ref().to_vec(),
            sha256: digest(&SHA256, der).as_ref().to_vec(),
        }
    }

    /// The SHA-1 thumbprint in hex, as the Entra admin center shows it beside an uploaded
    /// certificate.
    pub fn sha1_hex(&self) -> String {
        hex::encode_upper(&self.sha1)
    }
}

/// One certificate as read from DER: what the checks need.
struct Parsed {
    public_key: Vec<u8>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    thumbprints: Thumbprints,
}

fn parse_certificate(der: &[u8]) -> Option<Parsed> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    let time = |t: x509_cert::time::Time| {
        Utc.timestamp_opt(i64::try_from(t.to_unix_duration().as_secs()).ok()?, 0)
            .single()
    };
    Some(Parsed {
        public_key: tbs
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
            .to_vec(),
        not_before: time(tbs.validity().not_before)?,
        not_after: time(tbs.validity().not_after)?,
        thumbprints: Thumbprints::of(der),
    })
}

/// The PEM sections of a file: certificates and private keys (with what kind they are).
struct Sections {
    certificates: Vec<Vec<u8>>,
    keys: Vec<(rustls_pki_types::pem::SectionKind, Zeroizing<Vec<u8>>)>,
}

fn sections(text: &[u8]) -> Result<Sections, String> {
    use rustls_pki_types::pem::SectionKind;
    let mut out = Sections {
        certificates: Vec::new(),
        keys: Vec::new(),
    };
    // Read from the bytes themselves (a slice is its own buffer): no copy of the key is left
    // in a reader's buffer.
    let mut reader: &[u8] = text;
    loop {
        match rustls_pki_types::pem::from_buf(&mut reader) {
            Ok(None) => return Ok(out),
            Ok(Some((SectionKind::Certificate, der))) => out.certificates.push(der),
            Ok(Some((
                kind @ (SectionKind::PrivateKey
                | SectionKind::RsaPrivateKey
                | SectionKind::EcPrivateKey),
                der,
            ))) => out.keys.push((kind, Zeroizing::new(der))),
            Ok(Some(_)) => {}
            // Said without the error's own words: they quote the file's lines, which may be
            // the key's.
            Err(e) => {
                use rustls_pki_types::pem::Error;
                let why = match e {
                    Error::MissingSectionEnd { .. } => "a section has no END line",
                    Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
                    Error::Base64Decode(_) => "a section is not base64",
                    _ => "it cannot be read as PEM",
                };
                return Err(format!(
                    "is not a PEM file roster can read ({why}): give the PEM file holding the private key and the certificate"
                ));
            }
        }
    }
}

impl CertificateCredential {
    /// Reads the certificate credential in `path`: a PEM file holding the private key (PKCS#8
    /// or PKCS#1, RSA, not encrypted) and the certificate whose public key it is (a chain may
    /// follow). Refused, in one line saying what to do, when others may read the file, when
    /// the key or its certificate is missing or does not match, or when the certificate is
    /// not valid at `now`.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<Self, AuthError> {
        let shown = path.display();
        let bad = |why: String| AuthError::Config(format!("{shown}: {why}"));
        let bytes = Zeroizing::new(super::read_private_bytes(
            path,
            "certificate",
            super::Readers::GroupOrWorld,
            MAX_CERTIFICATE_FILE,
        )?);
        if contains(&bytes, b"ENCRYPTED PRIVATE KEY") || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
        {
            return Err(bad("the private key is encrypted with a passphrase, which an unattended run cannot type: write it out unencrypted to a file only roster's user may read (`openssl pkey -in KEY -out roster.pem`, then `chmod 600 roster.pem`)".into()));
        }
        let found = sections(&bytes).map_err(bad)?;
        let (kind, der) = match found.keys.as_slice() {
            [] => return Err(bad("holds no private key: put the private key and the certificate in one PEM file (`cat key.pem cert.pem > roster.pem`)".into())),
            [one] => one,
            more => return Err(bad(format!("holds {} private keys; keep only the one whose certificate is uploaded to the app registration", more.len()))),
        };
        use rustls_pki_types::pem::SectionKind;
        let key = match kind {
            SectionKind::PrivateKey => RsaKeyPair::from_pkcs8(der),
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(der),
            _ => return Err(bad(not_rsa())),
        }
        .map_err(|_| bad(not_rsa()))?;
        if found.certificates.is_empty() {
            return Err(bad("holds no certificate: put the certificate uploaded to the app registration in the same PEM file as its private key (`cat key.pem cert.pem > roster.pem`)".into()));
        }
        let public = key.public_key().as_ref().to_vec();
        let parsed: Vec<Parsed> = found
            .certificates
            .iter()
            .filter_map(|der| parse_certificate(der))
            .collect();
        let Some(cert) = parsed.into_iter().find(|c| c.public_key == public) else {
            return Err(bad("none of its certificates holds the public half of its private key: put the private key together with its own certificate".into()));
        };
        if now < cert.not_before {
            return Err(bad(format!(
                "the certificate is not valid before {} (thumbprint {}): check this machine's clock, or use a certificate valid now",
                day(cert.not_before),
                cert.thumbprints.sha1_hex()
            )));
        }
        if now > cert.not_after {
            return Err(bad(format!(
                "the certificate expired on {} (thumbprint {}): create a new one, upload it to the app registration (Certificates & secrets) and put it with its key in this file",
                day(cert.not_after),
                cert.thumbprints.sha1_hex()
            )));
        }
        Ok(CertificateCredential {
            key,
            thumbprints: cert.thumbprints,
            not_before: cert.not_before,
            not_after: cert.not_after,
        })
    }

    pub fn thumbprints(&self) -> &Thumbprints {
        &self.thumbprints
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid for ten
    /// minutes from `now`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: DateTime<Utc>,
    ) -> Result<Secret, AuthError> {
        let header = json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": b64(&self.thumbprints.sha1),
            "x5t#S256": b64(&self.thumbprints.sha256),
        });
        let t = now.timestamp();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": t,
            "nbf": t,
            "exp": t + ASSERTION_LIFETIME_S,
        });
        sign_rs256(&header, &claims, &self.key).map(Secret::new)
    }
}

fn not_rsa() -> String {
    "the private key is not an RSA key of 2048 to 8192 bits; Microsoft Entra ID signs apps in with RSA certificates: create one with `openssl req -x509 -newkey rsa:3072 …`".into()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `header.claims.signature`, signed RS256 with `key`.
pub fn sign_rs256(header: &Value, claims: &Value, key: &RsaKeyPair) -> Result<String, AuthError> {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| {
        AuthError::Config(
            "cannot sign the client assertion with the certificate's private key".into(),
        )
    })?;
    Ok(format!("{input}.{}", b64(&sig)))
}

/// Reads the federated token the platform wrote to `path`: re-read at every token request (the
/// platform renews it), one line of a JWT, not expired at `now`. Its signature is the sign-in
/// service's to check; roster only refuses to send what cannot work.
pub fn federated_token(path: &Path, now: DateTime<Utc>) -> Result<Secret, AuthError> {
    let shown = path.display();
    let bad = |why: &str| AuthError::Config(format!("{shown}: {why}"));
    let bytes = crate::bounded::read_regular_file(path, MAX_TOKEN_FILE).map_err(|e| {
        AuthError::Config(format!(
            "{shown}: cannot read the federated token file: {}",
            crate::bounded::io_reason(&e)
        ))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("the federated token file is empty: the platform that writes it (a Kubernetes projected token, a CI job's OIDC token) has not written one yet"));
    }
    super::one_line_secret(
        token,
        &format!("{shown}: the federated token file"),
        "federated token",
    )?;
    let Some(jwt) = Jwt::parse(token) else {
        return Err(bad("the federated token file does not hold a JWT (three base64url parts joined by dots): point --assertion-file at the token the platform writes"));
    };
    if let Some(exp) = jwt.time("exp") {
        if exp <= now {
            return Err(bad(&format!(
                "the federated token expired at {}: the platform that writes it must renew it (is the token volume still mounted, the job still running?)",
                day(exp)
            )));
        }
    }
    Ok(Secret::new(token))
}

/// A JWT in compact form, split and decoded, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// `None` unless `token` is three base64url parts, the first two JSON objects.
    pub fn parse(token: &str) -> Option<Jwt> {
        if token.len() as u64 > MAX_TOKEN_FILE {
            return None;
        }
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&unb64(h)?).ok()?;
        let claims: Value = serde_json::from_slice(&unb64(c)?).ok()?;
        (header.is_object() && claims.is_object()).then(|| Jwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: unb64(s).unwrap_or_default(),
        })
    }

    /// A string claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name)?.as_str()
    }

    /// A NumericDate claim (`exp`, `nbf`, `iat`).
    pub fn time(&self, name: &str) -> Option<DateTime<Utc>> {
        let v = self.claims.get(name)?;
        let secs = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
        Utc.timestamp_opt(secs, 0).single()
    }

    /// Whether `aud` is, or lists, `audience`.
    pub fn audience_is(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }

    /// Whether the signature is `public_key`'s (an RSA public key, PKCS#1 DER), by the
    /// header's `alg`: RS256 or PS256.
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm =
            match self.header.get("alg").and_then(Value::as_str) {
                Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
                Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
                _ => return false,
            };
        signature::UnparsedPublicKey::new(alg, public_key)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

/// A certificate the sign-in service trusts (one uploaded to an app registration): its public
/// key, thumbprints and validity.
#[derive(Debug, Clone)]
pub struct TrustedCertificate {
    pub public_key: Vec<u8>,
    pub thumbprints: Thumbprints,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl TrustedCertificate {
    /// The first certificate in a PEM file (what is uploaded to an app registration: the
    /// certificate alone, no key).
    pub fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let bytes = crate::bounded::read_regular_file(path, MAX_CERTIFICATE_FILE)
            .map_err(|e| format!("{shown}: {}", crate::bounded::io_reason(&e)))?;
        let found = sections(&bytes).map_err(|e| format!("{shown}: {e}"))?;
        let der = found
            .certificates
            .first()
            .ok_or_else(|| format!("{shown}: holds no certificate"))?;
        let c = parse_certificate(der)
            .ok_or_else(|| format!("{shown}: the certificate cannot be read"))?;
        Ok(TrustedCertificate {
            public_key: c.public_key,
            thumbprints: c.thumbprints,
            not_before: c.not_before,
            not_after: c.not_after,
        })
    }

    /// Whether `jwt`'s header names this certificate (`x5t#S256`, else `x5t`).
    pub fn named_by(&self, jwt: &Jwt) -> bool {
        let named = |h: &str, want: &[u8]| {
            jwt.header
                .get(h)
                .and_then(Value::as_str)
                .and_then(unb64)
                .is_some_and(|got| got == want)
        };
        named("x5t#S256", &self.thumbprints.sha256) || named("x5t", &self.thumbprints.sha1)
    }
}
