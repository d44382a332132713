//! Progress on stderr while a long command works — only on a terminal: a spinner naming the
//! step under way (the library crates announce steps as `tracing` events with the target
//! [`engine::PROGRESS`]) and what reading Graph costs so far; and, once a live read is done,
//! what it cost.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::graph::GraphStats;
use indicatif::ProgressBar;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

use super::io::say;

/// The step under way, as last announced.
static STEP: Mutex<String> = Mutex::new(String::new());
/// The spinner on screen, if any: what prints on stderr meanwhile hides it first.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Takes the progress events (see [`engine::PROGRESS`]) into the spinner's step.
pub struct Steps;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Steps {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        *STEP.lock().unwrap_or_else(|p| p.into_inner()) = m.0;
    }
}

/// Runs `show` with the spinner taken off the screen (a device-code prompt, say), so that what
/// it prints stands on its own lines.
pub fn suspend<R>(show: impl FnOnce() -> R) -> R {
    let bar = BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(show),
        None => show(),
    }
}

/// Runs `work`, showing on stderr what it is doing while it runs (on a terminal), and what
/// reading Graph cost once it succeeded (a failure stays one line: its error).
pub fn with_progress<T, E>(
    stats: &Arc<GraphStats>,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let result = spinner(stats, "", work);
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

/// Runs `work` with a spinner naming `step` (until the work announces steps of its own), on a
/// terminal.
pub fn working<T>(step: &str, work: impl FnOnce() -> T) -> T {
    spinner(&Arc::default(), step, work)
}

fn spinner<T>(stats: &Arc<GraphStats>, step: &str, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    *STEP.lock().unwrap_or_else(|p| p.into_inner()) = step.to_owned();
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}")
            .expect("the template parses"),
    );
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (bar, done, stats) = (bar.clone(), done.clone(), stats.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let step = STEP.lock().unwrap_or_else(|p| p.into_inner()).clone();
                bar.set_message(message(&step, &stats));
                bar.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let result = work();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    BAR.lock().unwrap_or_else(|p| p.into_inner()).take();
    bar.finish_and_clear();
    result
}

/// The step, and what reading Graph has cost once Graph was asked anything.
fn message(step: &str, stats: &GraphStats) -> String {
    let s = stats.snapshot();
    let step = match step {
        "" => "working",
        step => step,
    };
    if s.requests == 0 {
        return step.to_owned();
    }
    format!(
        "{step}: {} objects, {} pages, {} requests, {} retries, {:.1} s throttled",
        s.objects,
        s.pages,
        s.requests,
        s.retries,
        s.held_ms as f64 / 1000.0
    )
}
