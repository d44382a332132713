//! The adapters' error type: a rejected input (the user's to fix) is kept apart from an
//! infrastructure failure (retry or report).

use engine::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a file, argument or name the user must fix. Nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// Signing in or reading the tenant failed for a reason the admin must fix (tenant, app
    /// registration, consent, permission, secret). Nothing was changed.
    #[error("{0}")]
    Auth(String),
    /// The tenant could not be read (Graph failed after retries, the network, ...).
    #[error("{0}")]
    Source(String),
    /// Writing the server target failed.
    #[error("{0}")]
    Target(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Bad input, told in one line (a hostile file's names may hold newlines or escapes).
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(one_line(&msg.into()))
    }

    /// Whether the user must fix something (exit 2) rather than retry or report (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::BadInput(_) | Error::Auth(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::auth::AuthError> for Error {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Config(m) => Error::Auth(m),
            other => Error::Source(other.to_string()),
        }
    }
}

/// Longest message shown, in bytes: enough for any real explanation, bounded for hostile input.
const MAX_MESSAGE_BYTES: usize = 1000;

/// `msg` as one bounded line: control characters (newlines, escapes, NUL, DEL) are shown
/// escaped, and a message longer than [`MAX_MESSAGE_BYTES`] once escaped is cut with an ellipsis.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE_BYTES + 4));
    let mut shown = 0;
    for c in msg.chars() {
        let escaped = c.is_control().then(|| c.escape_default());
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
    }
}
