//! The `roster` binary: parses arguments, calls the library crates, renders. Nothing else.

mod cli;
mod cmd;
mod config;
mod context;
mod render;
mod wizard;

use std::process::ExitCode;

use clap::Parser;

// roster allocates a great deal of small, short-lived objects (one per directory object and
// event); mimalloc handles that pattern far better than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod exit;

use exit::{exit_code_of, is_broken_pipe};
pub use exit::{Exit, Quiet, UsageError};

fn main() -> ExitCode {
    no_huge_pages();
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
                render::say(&render::error_line(&err));
            }
            ExitCode::from(code as u8)
        }
    }
}

/// Asks Linux not to back this process's memory with transparent huge pages. A run grows by
/// millions of small objects, and each huge page the kernel faults in is zeroed whole, two
/// megabytes at a time: without them a 100k import peaks about a tenth lower (BENCHMARKS.md,
/// session 21). Only this process is affected; where the call is not known, nothing changes.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes integers only, touches no memory
    // of ours and sets a flag of this process; its result is ignored (an old kernel refuses
    // it, and the run goes on as before).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
