//! Where output goes: data on stdout (a table, JSON, CSV), messages on stderr. A closed pipe
//! surfaces as an error that `main` treats as success.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Writes `s` to stdout.
pub fn out(s: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(s.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Lets `write` write to stdout, buffered: a large table is written as it is made.
pub fn out_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    write(&mut stdout)?;
    stdout.flush()?;
    Ok(())
}

/// Writes `v` as pretty JSON to stdout, streamed: a large report is never one string.
pub fn out_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    write_json(v, true)
}

/// Writes `v` as one line of JSON to stdout (JSON Lines: one object per line).
pub fn out_json_line<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    write_json(v, false)
}

fn write_json<T: Serialize + ?Sized>(v: &T, pretty: bool) -> Result<()> {
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = if pretty {
        serde_json::to_writer_pretty(&mut stdout, v)
    } else {
        serde_json::to_writer(&mut stdout, v)
    };
    written.map_err(|e| match e.io_error_kind() {
        Some(kind) => anyhow::Error::from(std::io::Error::from(kind)),
        None => anyhow::Error::from(e),
    })?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// `roster events`: each event as one JSON line (`replay::export::event_line`) on stdout,
/// written as `events` yields it — a whole log is never held.
pub fn out_event_lines(events: impl Iterator<Item = Result<engine::Envelope>>) -> Result<()> {
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for env in events {
        serde_json::to_writer(&mut stdout, &replay::export::event_line(&env?))?;
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

/// Writes `s` (whole lines) to stderr; a message that cannot be shown is not an error.
pub fn say(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}
