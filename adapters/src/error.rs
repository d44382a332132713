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

/// Longest message shown: enough for any real explanation, bounded for hostile input.
const MAX_MESSAGE_CHARS: usize = 1000;

/// `msg` as one bounded line: control characters (newlines, escapes, NUL) are shown escaped,
/// and an overlong message is cut with an ellipsis.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE_CHARS + 4));
    for (n, c) in msg.chars().enumerate() {
        if n == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
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
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
