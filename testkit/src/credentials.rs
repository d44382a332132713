//! Credentials made for a test, never kept: RSA certificates and their keys (rcgen), and the
//! tokens a federated identity provider would issue (signed here, with aws-lc-rs directly — not
//! with roster's own assertion code, which the tests check).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};

/// A self-signed RSA certificate and its private key.
pub struct Credential {
    pub key_pem: String,
    pub cert_pem: String,
    /// The certificate's DER encoding (its thumbprints are hashes of it).
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER (to look for it where it must never be).
    pub key_der: Vec<u8>,
}

impl Credential {
    /// A 2048-bit RSA key and a certificate for it valid from `not_before` to `not_after`.
    pub fn rsa(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Credential {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
        let mut params =
            rcgen::CertificateParams::new(vec!["roster.test".to_owned()]).expect("params");
        params.not_before = time(not_before);
        params.not_after = time(not_after);
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        Credential {
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Valid from a day ago for a year.
    pub fn current() -> Credential {
        let now = Utc::now();
        Credential::rsa(
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(365),
        )
    }

    /// The key and the certificate in one PEM file of mode 0600 (what `--certificate` takes).
    pub fn write_pair(&self, path: &Path) -> PathBuf {
        write_private(path, &format!("{}{}", self.key_pem, self.cert_pem));
        path.to_owned()
    }

    /// The certificate alone (what is uploaded to an app registration).
    pub fn write_certificate(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.cert_pem).unwrap();
        path.to_owned()
    }

    /// A JWT signed RS256 with this key: `claims` as given, header
    /// `{"alg":"RS256","typ":"JWT","kid":"test"}` (as an identity provider names its key).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_with_header(
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test"}),
            claims,
        )
    }

    /// A JWT signed RS256 with this key, `header` and `claims` as given.
    pub fn sign_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let key = RsaKeyPair::from_pkcs8(&self.key_der).expect("the test key");
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    /// A federated token as a workload identity provider issues one: `issuer`, `subject`,
    /// audience `api://AzureADTokenExchange`, valid for `lifetime` from now (negative: expired).
    pub fn federated_token(
        &self,
        issuer: &str,
        subject: &str,
        lifetime: chrono::Duration,
    ) -> String {
        let now = Utc::now();
        let start = now.min(now + lifetime) - chrono::Duration::minutes(10);
        self.sign(&serde_json::json!({
            "iss": issuer,
            "sub": subject,
            "aud": ["api://AzureADTokenExchange"],
            "iat": start.timestamp(),
            "nbf": start.timestamp(),
            "exp": (now + lifetime).timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        }))
    }
}

fn time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("a time rcgen can write")
}

/// Writes `text` to `path` with mode 0600 (created so: never readable by others on the way).
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}
