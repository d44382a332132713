//! The adapters' error type: a rejected input (the user's to fix) is kept apart from an
//! infrastructure failure (retry or report).

use engine::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a file, argument or name the user must fix. Nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The tenant could not be read (Graph failed after retries, sign-in failed, ...).
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

    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::BadInput(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
