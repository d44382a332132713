//! How a command ends: its exit code (docs/cli.md), the errors the binary raises itself, and
//! which exit code an error from anywhere below stands for.

/// Exit codes (docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Runtime = 1,
    Usage = 2,
    Problems = 3,
    Refused = 4,
}

/// An error the user must fix (exit 2), raised by the binary itself.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A failure with its own exit code (a refusal, say), whose message is already printed.
#[derive(Debug)]
pub struct Quiet(pub Exit);

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0 as u8)
    }
}

impl std::error::Error for Quiet {}

pub fn exit_code_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(q) = cause.downcast_ref::<Quiet>() {
            return q.0;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<engine::StoreError>() {
            if e.is_bad_input() {
                return Exit::Usage;
            }
        }
        if let Some(e) = cause.downcast_ref::<app::Error>() {
            return if e.is_bad_input() {
                Exit::Usage
            } else {
                Exit::Runtime
            };
        }
        if let Some(e) = cause.downcast_ref::<adapters::Error>() {
            return if e.is_bad_input() {
                Exit::Usage
            } else {
                Exit::Runtime
            };
        }
    }
    Exit::Runtime
}

pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
