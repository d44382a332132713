//! The use cases' error: a rejected input (the user's to fix: nothing was changed) kept apart
//! from an infrastructure failure (retry or report).

use engine::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: an argument, a name or a file the user must fix. Nothing was changed.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Adapters(#[from] adapters::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backup(#[from] replay::backup::BackupError),
    #[error(transparent)]
    Verify(#[from] replay::VerifyError),
    #[error(transparent)]
    Rebuild(#[from] replay::rebuild::RebuildError),
}

impl Error {
    /// Bad input, told in one line.
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(adapters::error::one_line(&msg.into()))
    }

    /// Whether the user must fix something (exit 2) rather than retry or report (exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::BadInput(_) => true,
            Error::Store(e) | Error::Adapters(adapters::Error::Store(e)) if e.is_bad_input() => {
                true
            }
            Error::Adapters(e) => e.is_bad_input(),
            Error::Backup(replay::backup::BackupError::Bad { .. }) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
