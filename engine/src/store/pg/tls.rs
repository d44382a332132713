//! TLS to PostgreSQL, over the rustls that the Graph client already uses: the server's
//! certificate is verified — its chain against `sslrootcert=FILE` (PEM) or this host's trusted
//! roots, and its host name — whenever TLS is asked for (`sslmode=require`, `verify-ca` or
//! `verify-full`: stricter than libpq's `require`, which verifies nothing). `disable` and
//! `prefer` (the default) speak plain TCP.
//!
//! tokio-postgres parses only `disable`, `prefer` and `require`, and no `sslrootcert`: both
//! are taken out of the URL here ([`split`]) before it is parsed.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::Socket;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the URL asked of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tls {
    /// Plain TCP (`sslmode=disable` or `prefer`).
    Off,
    /// TLS, the server verified: against the roots in `roots`, else this host's.
    Verified { roots: Option<PathBuf> },
}

/// The URL without the parameters roster reads itself (`sslmode`, `sslrootcert`), and what
/// they ask. A mode roster does not know is an error naming it (never the URL).
pub(super) fn split(url: &str) -> Result<(String, Tls), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Tls::Off));
    };
    let (mut mode, mut roots, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("the URL's {key} is not UTF-8"))?
            .into_owned();
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => roots = Some(PathBuf::from(value)),
            "sslcert" | "sslkey" => {
                return Err("client certificates (sslcert, sslkey) are not supported: sign in with a password ($PGPASSWORD or ~/.pgpass)".into())
            }
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable") | Some("prefer") | Some("allow") => Tls::Off,
        Some("require") | Some("verify-ca") | Some("verify-full") => Tls::Verified { roots },
        Some(other) => {
            return Err(format!(
                "sslmode={} is not one PostgreSQL knows: disable, prefer, require, verify-ca or verify-full",
                crate::text::printable(other)
            ))
        }
    };
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, tls))
}

/// The client's TLS settings: the roots in `roots` (PEM certificates), or this host's.
pub(super) fn client_config(roots: Option<&PathBuf>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match roots {
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {}: holds no certificate roster can use",
                    path.display()
                ));
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| format!("this host's trusted roots: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// Makes a TLS connection for each host tokio-postgres connects to.
#[derive(Clone)]
pub(super) struct MakeRustls(pub(super) Arc<ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

pub(super) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// The TLS stream; channel binding (SCRAM-SHA-256-PLUS) is not offered, plain SCRAM is.
pub(super) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_loses_what_roster_reads_itself_and_keeps_the_rest() {
        assert_eq!(
            split("postgres://a@h/db").unwrap(),
            ("postgres://a@h/db".into(), Tls::Off)
        );
        assert_eq!(
            split("postgres://a@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5")
                .unwrap(),
            (
                "postgres://a@h/db?connect_timeout=5".into(),
                Tls::Verified {
                    roots: Some("/etc/ca.pem".into())
                }
            )
        );
        assert_eq!(
            split("postgres://a@h/db?sslmode=require").unwrap(),
            ("postgres://a@h/db".into(), Tls::Verified { roots: None })
        );
        assert_eq!(split("postgres://h/db?sslmode=prefer").unwrap().1, Tls::Off);
        let bad = split("postgres://a:secret@h/db?sslmode=maybe").unwrap_err();
        assert!(bad.contains("maybe") && !bad.contains("secret"), "{bad}");
        assert!(split("postgres://h/db?sslcert=c.pem").is_err());
    }
}
