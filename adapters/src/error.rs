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
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(msg.into())
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
