//! The `roster` binary: parses arguments, calls the library crates, renders. Nothing else.

mod cli;
mod cmd;
mod config;
mod context;
mod render;
mod wizard;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

// roster allocates a great deal of small, short-lived objects (one per directory object and
// event); mimalloc handles that pattern far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn exit_code_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(q) = cause.downcast_ref::<Quiet>() {
            return q.0;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return Exit::Usage;
        }
        if let Some(engine::StoreError::NoStore { .. } | engine::StoreError::NotAStore { .. }) =
            cause.downcast_ref::<engine::StoreError>()
        {
            return Exit::Usage;
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Usage as u8 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Libraries' own log lines (sled's, on a write error) stay out of the way unless asked
    // for with ROSTER_LOG: roster says what went wrong in its own one line. Colour only on a
    // terminal, and never under NO_COLOR.
    // Progress events (engine::PROGRESS) feed the spinner, whatever ROSTER_LOG says.
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal())
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG")
                .unwrap_or_else(|_| "warn,sled=off,rustls_platform_verifier=off".into()),
        );
    let steps =
        render::progress::Steps.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target() == engine::PROGRESS
        }));
    tracing_subscriber::registry().with(log).with(steps).init();
    match cmd::dispatch(cli) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code_of(&err);
            if err.downcast_ref::<Quiet>().is_none() {
                // One line: the outermost context and the root cause.
                let mut msg = err.to_string();
                let root = err.root_cause().to_string();
                if !msg.contains(&root) {
                    msg = format!("{msg}: {root}");
                }
                let msg = adapters::error::one_line(&msg);
                let _ = writeln!(std::io::stderr(), "error: {msg}");
            }
            ExitCode::from(code as u8)
        }
    }
}
