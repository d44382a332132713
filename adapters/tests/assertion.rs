//! Client assertions as the Microsoft identity platform documents them, checked against an
//! implementation that is not roster's (OpenSSL's command line), and every certificate or token
//! file roster must refuse, refused in one line that says what to do.

use std::path::Path;
use std::process::Command;

use adapters::auth::assertion::{
    federated_token, CertificateCredential, Jwt, TrustedCertificate, FEDERATED_AUDIENCE,
};
use base64::Engine as _;
use chrono::{Duration, Utc};
use testkit::credentials::{write_private, Credential};

const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const AUDIENCE: &str = "https://login.example/tenant/oauth2/v2.0/token";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian's openssl package; .ci/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `openssl x509 -fingerprint` of a certificate: its thumbprint as bytes.
fn fingerprint(dir: &Path, cert: &str, digest: &str) -> Vec<u8> {
    let out = openssl(
        dir,
        &["x509", "-in", cert, "-noout", "-fingerprint", digest],
    );
    hex::decode(out.trim().rsplit('=').next().unwrap().replace(':', "")).unwrap()
}

#[test]
fn an_assertion_is_what_the_identity_platform_documents_and_openssl_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::current();
    let pair = cred.write_pair(&dir.path().join("roster.pem"));
    cred.write_certificate(&dir.path().join("cert.pem"));
    let now = Utc::now();
    let loaded = CertificateCredential::load(&pair, now).unwrap();
    let one = loaded.assertion(CLIENT, AUDIENCE, now).unwrap();
    let two = loaded.assertion(CLIENT, AUDIENCE, now).unwrap();

    let parts: Vec<&str> = one.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        header["x5t"],
        b64(&fingerprint(dir.path(), "cert.pem", "-sha1"))
    );
    assert_eq!(
        header["x5t#S256"],
        b64(&fingerprint(dir.path(), "cert.pem", "-sha256"))
    );
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    assert_eq!(claims["nbf"], now.timestamp());
    assert_eq!(claims["exp"], now.timestamp() + 600, "ten minutes at most");
    let other: serde_json::Value =
        serde_json::from_slice(&unb64(two.expose().split('.').nth(1).unwrap())).unwrap();
    assert_ne!(claims["jti"], other["jti"], "a fresh jti every time");
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());

    // OpenSSL verifies the signature with the certificate's public key.
    std::fs::write(
        dir.path().join("input"),
        format!("{}.{}", parts[0], parts[1]),
    )
    .unwrap();
    std::fs::write(dir.path().join("sig"), unb64(parts[2])).unwrap();
    let public = openssl(
        dir.path(),
        &["x509", "-in", "cert.pem", "-noout", "-pubkey"],
    );
    std::fs::write(dir.path().join("pub.pem"), public).unwrap();
    let verified = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "input",
        ],
    );
    assert!(verified.contains("Verified OK"), "{verified}");

    // The checks the fake makes agree, and a byte changed is caught.
    let trusted = TrustedCertificate::read(&dir.path().join("cert.pem")).unwrap();
    let jwt = Jwt::parse(one.expose()).unwrap();
    assert!(trusted.named_by(&jwt) && jwt.signed_by(&trusted.public_key));
    let mut forged = one.expose().to_owned();
    forged.replace_range(parts[0].len() + 3..parts[0].len() + 4, "A");
    let forged = Jwt::parse(&forged);
    assert!(forged.is_none_or(|j| !j.signed_by(&trusted.public_key)));
    let stranger = TrustedCertificate::read(
        &Credential::current().write_certificate(&dir.path().join("stranger.pem")),
    )
    .unwrap();
    assert!(!stranger.named_by(&jwt) && !jwt.signed_by(&stranger.public_key));
}

/// OpenSSL's own files load: `openssl req -x509 -newkey` (PKCS#8) and a traditional
/// `RSA PRIVATE KEY` (PKCS#1), the certificate before or after the key, a chain after it.
#[test]
fn certificate_files_as_openssl_writes_them_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=roster",
        ],
    );
    openssl(
        d,
        &["rsa", "-in", "key.pem", "-traditional", "-out", "key1.pem"],
    );
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let chain = Credential::current().cert_pem;
    for (name, text) in [
        (
            "pkcs8.pem",
            format!("{}{}", read("key.pem"), read("cert.pem")),
        ),
        (
            "pkcs1.pem",
            format!("{}{}", read("key1.pem"), read("cert.pem")),
        ),
        (
            "cert-first.pem",
            format!("{}{}", read("cert.pem"), read("key.pem")),
        ),
        (
            "chain.pem",
            format!("{}{}{chain}", read("key.pem"), read("cert.pem")),
        ),
        (
            "other-first.pem",
            format!("{chain}{}{}", read("key.pem"), read("cert.pem")),
        ),
    ] {
        write_private(&d.join(name), &text);
        let c = CertificateCredential::load(&d.join(name), Utc::now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            c.thumbprints().sha1,
            fingerprint(d, "cert.pem", "-sha1"),
            "{name}"
        );
    }
}

fn refused(path: &Path, want: &str) {
    let e = CertificateCredential::load(path, Utc::now())
        .expect_err(want)
        .to_string();
    assert!(e.contains(want), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(!e.contains("PRIVATE KEY-----") && !e.contains("MII"), "{e}");
    assert!(e.len() < 400, "{e}");
}

#[test]
fn certificate_files_that_cannot_work_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = Credential::current();
    let now = Utc::now();

    // Others may read the key: refused before it is read.
    for mode in [0o644, 0o640, 0o604] {
        let p = good.write_pair(&d.join(format!("m{mode:o}.pem")));
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        refused(&p, &format!("run `chmod 600 {}`", p.display()));
    }
    refused(&d.join("missing.pem"), "cannot read the certificate file");
    std::fs::create_dir(d.join("dir")).unwrap();
    refused(&d.join("dir"), "not a regular file");

    let expired = Credential::rsa(now - Duration::days(400), now - Duration::days(2));
    refused(
        &expired.write_pair(&d.join("expired.pem")),
        "the certificate expired on",
    );
    let early = Credential::rsa(now + Duration::days(2), now + Duration::days(400));
    refused(
        &early.write_pair(&d.join("early.pem")),
        "is not valid before",
    );

    let write = |name: &str, text: &str| {
        write_private(&d.join(name), text);
        d.join(name)
    };
    refused(
        &write("key-only.pem", &good.key_pem),
        "holds no certificate",
    );
    refused(
        &write("cert-only.pem", &good.cert_pem),
        "holds no private key",
    );
    let other = Credential::current();
    refused(
        &write(
            "mismatch.pem",
            &format!("{}{}", good.key_pem, other.cert_pem),
        ),
        "holds the public half of its private key",
    );
    refused(
        &write(
            "two-keys.pem",
            &format!("{}{}{}", good.key_pem, other.key_pem, good.cert_pem),
        ),
        "holds 2 private keys",
    );
    refused(
        &write("garbage.pem", "not a certificate\n"),
        "holds no private key",
    );
    refused(&write("empty.pem", ""), "holds no private key");
    // A file cut short, or with a bad line, is refused without quoting a line of the key.
    let cut: String = good
        .key_pem
        .lines()
        .take(10)
        .map(|l| format!("{l}\n"))
        .collect();
    refused(&write("cut.pem", &cut), "a section has no END line");
    let bad_begin =
        good.key_pem
            .replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
    refused(&write("bad-begin.pem", &bad_begin), "give the PEM file");
    let bad_body = good.key_pem.replacen('A', "!", 3);
    refused(
        &write("bad-body.pem", &format!("{bad_body}{}", good.cert_pem)),
        "give the PEM file",
    );
    let huge = format!("{}{}", good.key_pem, "x".repeat(300 << 10));
    refused(
        &write("huge.pem", &huge),
        "cannot read the certificate file",
    );

    // A passphrase-protected key, and an EC key: said what to do.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-aes-256-cbc",
            "-pass",
            "pass:x",
            "-out",
            "enc.pem",
        ],
    );
    let enc = std::fs::read_to_string(d.join("enc.pem")).unwrap();
    refused(
        &write("encrypted.pem", &format!("{enc}{}", good.cert_pem)),
        "encrypted with a passphrase",
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "eck.pem",
            "-out",
            "ecc.pem",
            "-days",
            "3",
            "-subj",
            "/CN=ec",
        ],
    );
    let ec = format!(
        "{}{}",
        std::fs::read_to_string(d.join("eck.pem")).unwrap(),
        std::fs::read_to_string(d.join("ecc.pem")).unwrap()
    );
    refused(&write("ec.pem", &ec), "not an RSA key");
}

#[test]
fn a_federated_token_file_is_read_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Credential::current();
    let file = dir.path().join("token");
    let now = Utc::now();
    let write = |text: &str| std::fs::write(&file, text).unwrap();

    let token = issuer.federated_token("https://issuer.example", "job", Duration::minutes(30));
    write(&format!("{token}\n"));
    assert_eq!(federated_token(&file, now).unwrap().expose(), token);
    let jwt = Jwt::parse(&token).unwrap();
    assert!(jwt.audience_is(FEDERATED_AUDIENCE));

    for (text, want) in [
        ("", "is empty"),
        ("  \n", "is empty"),
        ("not-a-jwt", "does not hold a JWT"),
        ("a.b", "does not hold a JWT"),
        (&format!("{token}\n{token}"), "a line break"),
        (
            &issuer.federated_token("https://issuer.example", "job", -Duration::minutes(1)),
            "the federated token expired at",
        ),
    ] {
        write(text);
        let e = federated_token(&file, now).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!e.contains(&token), "the token is never said");
    }
    std::fs::remove_file(&file).unwrap();
    let e = federated_token(&file, now).unwrap_err().to_string();
    assert!(e.contains("cannot read the federated token file"), "{e}");
}
