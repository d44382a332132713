//! The adapters' error type: a rejected input (the user's to fix) is kept apart from an
//! infrastructure failure (retry or report).

use std::path::PathBuf;

use engine::{RunId, StoreError};

use crate::auth::AuthError;
use crate::bounded::io_reason;
use crate::graph::GraphError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a file, argument or name the user must fix. Nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// Signing in failed: the admin's setup (tenant, app registration, consent, secret), the
    /// token service, or the token cache.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The tenant could not be read (Graph refused or failed after retries, the network, ...).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A local file, directory or thread could not be used: what roster was doing, and the
    /// operating system's reason.
    #[error("{doing}: {}", io_reason(.cause))]
    Io {
        doing: String,
        #[source]
        cause: std::io::Error,
    },
    /// The SCIM service (`--scim`) failed or could not be reached: what roster asked, and
    /// what the service said.
    #[error("{0}")]
    Service(String),
    /// The admin asked the run to stop (Ctrl-C) while it read the tenant.
    #[error("interrupted (Ctrl-C) while reading the tenant; nothing was changed on the server")]
    Interrupted,
    /// The server file is held by another run.
    #[error("the server file {} is in use by {holder}; wait for it to finish (or stop it) and try again", .path.display())]
    InUse { path: PathBuf, holder: String },
    /// A run that could not read its tenant: recorded as aborted, nothing changed.
    #[error("run {run} aborted: {cause}")]
    Aborted {
        run: RunId,
        #[source]
        cause: Box<Error>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Bad input, told in one line (a hostile file's names may hold newlines or escapes).
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(one_line(&msg.into()))
    }

    /// A failed use of a local file or directory; `doing` says what roster was doing
    /// ("cannot write the backup FILE").
    pub fn io(doing: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            doing: doing.into(),
            cause,
        }
    }

    /// Whether the user must fix something (exit 2) rather than retry or report (exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::BadInput(_) => true,
            Error::Auth(e) | Error::Graph(GraphError::Auth(e)) => {
                matches!(e, AuthError::Config(_))
            }
            Error::Graph(GraphError::Forbidden { .. }) => true,
            Error::Aborted { cause, .. } => cause.is_bad_input(),
            _ => false,
        }
    }

    /// Whether reading the tenant failed (signing in included): the run is recorded as
    /// aborted and nothing is changed.
    pub fn is_source_failure(&self) -> bool {
        matches!(self, Error::Auth(_) | Error::Graph(_) | Error::Interrupted)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest message shown, in bytes: enough for any real explanation, bounded for hostile input.
const MAX_MESSAGE_BYTES: usize = 1000;

/// `msg` as one bounded line: control characters (newlines, escapes, NUL, DEL), bidi controls
/// and invisible characters ([`engine::text::needs_escape`]) are shown escaped, and a message longer than [`MAX_MESSAGE_BYTES`] once escaped is cut with an ellipsis.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE_BYTES + 4));
    let mut shown = 0;
    for c in msg.chars() {
        let escaped = engine::text::needs_escape(c).then(|| c.escape_default());
        let width = escaped.clone().map_or(c.len_utf8(), Iterator::count);
        if shown + width > MAX_MESSAGE_BYTES {
            out.push('…');
            break;
        }
        shown += width;
        match escaped {
            Some(e) => out.extend(e),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("field `a\nb\u{0}`"), "field `a\\nb\\u{0}`");
        let long = one_line(&"x".repeat(5000));
        assert_eq!(long.len(), MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(long.ends_with('…'));
        // Escaping widens a character up to ten times, and a character may take four bytes:
        // the bound holds on what is shown.
        for hostile in ["\u{7f}", "😀"] {
            let shown = one_line(&hostile.repeat(5000));
            assert!(
                shown.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8(),
                "{}",
                shown.len()
            );
        }
        assert!(one_line("\u{7f}").starts_with("\\u{7f}"));
        assert_eq!(one_line("user \u{202e}nimda"), "user \\u{202e}nimda");
    }
}
