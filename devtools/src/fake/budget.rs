//! Graph's resource-unit budget for an app in one tenant (`--ru-per-10s`): what each request
//! costs, and a 429 with `Retry-After` once a window is spent.

use super::*;

impl State {
    /// Spends resource units; `Some(wait)` if the budget for this window is exhausted.
    pub(super) fn spend(&self, units: u64) -> Option<Duration> {
        let budget = self.config.ru_per_10s?;
        let mut w = self.window.lock().unwrap();
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(10) {
            *w = (now, 0);
        }
        if w.1 + units > budget {
            return Some(Duration::from_secs(10).saturating_sub(now.duration_since(w.0)));
        }
        w.1 += units;
        self.counters
            .resource_units
            .fetch_add(units, Ordering::Relaxed);
        None
    }
}

/// Resource units per request: Graph's published costs (a list of users 2, members 3, transitive members 5; `$select` one less).
pub(super) fn cost(path: &str) -> u64 {
    if path.contains("/transitiveMembers") {
        5
    } else if path.contains("/members") {
        3
    } else if path.ends_with("$count")
        || path.matches('/').count() == 1 && !path.starts_with("directory")
    {
        1
    } else {
        2
    }
}
