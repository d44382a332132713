//! Progress on stderr while a live tenant is read, and what reading it cost once done — only
//! on a terminal for the spinner, and only when Graph was asked anything.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::graph::GraphStats;

use super::io::say;

/// Runs `work`, showing on stderr what reading Graph costs while it runs (on a terminal) and
/// once it succeeded (a failure stays one line: its error).
pub fn with_progress<T, E>(
    stats: &Arc<GraphStats>,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let result = spinner(stats, work);
    let s = stats.snapshot();
    if result.is_ok() && s.requests > 0 {
        say(&format!(
            "Read from Graph: {} objects in {} pages, {} requests, {} retries ({} throttled), held back {:.1} s by throttling\n",
            s.objects,
            s.pages,
            s.requests,
            s.retries,
            s.throttled,
            s.held_ms as f64 / 1000.0
        ));
    }
    result
}

fn spinner<T>(stats: &Arc<GraphStats>, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .expect("the template parses"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (bar, done, stats) = (bar.clone(), done.clone(), stats.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let s = stats.snapshot();
                // Nothing to show until Graph is asked (a fixture is read in a moment).
                if s.requests > 0 {
                    bar.set_message(format!(
                        "reading the tenant: {} objects, {} pages, {} requests, {} retries, {:.1} s throttled",
                        s.objects,
                        s.pages,
                        s.requests,
                        s.retries,
                        s.held_ms as f64 / 1000.0
                    ));
                    bar.tick();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let result = work();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    bar.finish_and_clear();
    result
}
