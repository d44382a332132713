//! Runs: `plan`, `import`, `apply`, `demo` — and what the log says of them: `runs`, `report`,
//! `deleted`.

use anyhow::Result;

use app::attention::{self, Attention};
use app::run::{RunEnd, RunRequest, RunResult};
use app::runs::{self, RunFilter};
use engine::event::{ActionOverride, DeletedAction, Mode, RunOptions, RunStatus, SelectionSpec};

use super::usage;
use crate::cli::{Format, RunArgs, RunsArgs, SyncArgs};
use crate::context::Ctx;
use crate::render::{self, out, out_json, say, ReportView};
use crate::{Exit, Quiet};

pub fn plan_or_import(ctx: &Ctx, a: &RunArgs, mode: Mode) -> Result<Exit> {
    let request = request_from(ctx, a, mode)?;
    // A server file is checked (and locked), a SCIM service asked what it supports, before
    // the store is opened.
    let outside = ctx.app.outside_target()?;
    let store = ctx.open_store()?;
    stop_at_ctrl_c(ctx)?;
    let (org, result) = render::with_progress(&ctx.app.stats, || {
        runs::plan_or_import(&ctx.app, &*store, outside, &a.org, &request)
    })?;
    let attention = attention::classify(&*store, &org, result.run, &result.entries)?;
    print_run(ctx, &org, &result, a.all, &attention)
}

pub fn apply(ctx: &Ctx, run_arg: &str, approve: bool) -> Result<Exit> {
    let store = ctx.open_store()?;
    let reviewed = runs::resolve_run(&*store, run_arg)?;
    stop_at_ctrl_c(ctx)?;
    let (org, result) = render::with_progress(&ctx.app.stats, || {
        if approve {
            runs::approve(&ctx.app, &*store, reviewed)
        } else {
            runs::apply(&ctx.app, &*store, reviewed)
        }
    })?;
    if approve && !ctx.json {
        say(&render::approved(reviewed, &ctx.app.started_by));
    }
    if !result.stale.is_empty() && !ctx.json {
        say(&format!("{}\n", render::stale_table(&result.stale)));
    }
    let attention = attention::classify(&*store, &org, result.run, &result.entries)?;
    print_run(ctx, &org, &result, false, &attention)
}

pub fn demo(ctx: &Ctx) -> Result<Exit> {
    if ctx.store_from.on_the_command() && ctx.app.store_url().is_some() {
        return Err(app::Error::bad_input(
            "the demo builds a store of its own in a directory: give --store DIR, or no --store",
        )
        .into());
    }
    let dir = if ctx.store_from.on_the_command() {
        ctx.app.store_dir.clone()
    } else {
        dirs::data_dir()
            .unwrap_or_else(|| std::path::PathBuf::from("."))
            .join("roster-demo")
    };
    stop_at_ctrl_c(ctx)?;
    let (_store, org, result) =
        render::with_progress(&ctx.app.stats, || app::demo::run(&ctx.app, &dir))?;
    // Conflicts are part of the demo data: what they are to the admin is not the point here.
    let exit = print_run(ctx, &org, &result, false, &Attention::default())?;
    say(&render::demo_hint(&dir));
    // Conflicts are part of the demo data: the demo succeeded if the run completed.
    Ok(if exit == Exit::Problems {
        Exit::Ok
    } else {
        exit
    })
}

fn parse_actions(raw: &[String]) -> Result<Vec<ActionOverride>> {
    raw.iter()
        .map(|a| {
            let (target, action) = a.rsplit_once('=').ok_or_else(|| {
                usage(format!(
                    "--action {a:?}: expected ID=ACTION, e.g. --action 3f0c…=disable"
                ))
            })?;
            let action = DeletedAction::parse(action).ok_or_else(|| {
                usage(format!(
                    "--action {a:?}: action {action:?} is not one of ignore, disable, delete"
                ))
            })?;
            if target.trim().is_empty() {
                return Err(usage(format!(
                    "--action {a:?}: the object (id, login or name) is empty"
                )));
            }
            Ok(ActionOverride {
                target: target.trim().to_owned(),
                action,
            })
        })
        .collect()
}

fn request_from(ctx: &Ctx, a: &RunArgs, mode: Mode) -> Result<RunRequest> {
    let actions = parse_actions(&a.action)?;
    let on_deleted = a.on_deleted.as_deref().and_then(DeletedAction::parse);
    if !a.check_deleted && on_deleted.is_some_and(|d| d != DeletedAction::Ignore) {
        return Err(usage(
            "--on-deleted needs --check-deleted: deleted objects are only looked for with it",
        ));
    }
    // The config file's default applies to a run that looks for deleted objects.
    let defaults = &ctx.config.defaults;
    let on_deleted = on_deleted.or(defaults.on_deleted.filter(|_| a.check_deleted));
    Ok(RunRequest {
        mode,
        selection: SelectionSpec {
            select: a.select.clone(),
            select_all: a.select_all,
            search: a.search.clone(),
            invert: a.invert,
        },
        options: RunOptions {
            check_deleted: a.check_deleted,
            on_deleted: on_deleted.unwrap_or_default(),
            actions,
            max_deletions: a
                .max_deletions
                .or(defaults.max_deletions)
                .unwrap_or(RunOptions::default().max_deletions),
            allow_empty_source: a.allow_empty_source,
            // The org's own, filled in when the run starts.
            leave_out: Vec::new(),
        },
        started_by: ctx.app.started_by.clone(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: a.full,
        // Every entry printed: every entry decided.
        every_entry: a.all,
    })
}

/// Prints a run's report and turns its end into an exit code: a completed run exits 3 only
/// when a conflict or failure is new (see `app::attention`).
fn print_run(
    ctx: &Ctx,
    org: &adapters::org::OrgConfig,
    result: &RunResult,
    all: bool,
    attention: &Attention,
) -> Result<Exit> {
    say(&render::warnings(&result.problems));
    say(&render::attention::leaving_out(&org.name, &org.left_out));
    if let (Some(app::mirror::BaseFrom::Settled), Some(base)) = (&result.base_from, result.base) {
        say(&render::as_before(base));
    }
    let org = org.name.as_str();
    let recorded;
    let entries = if all || result.base.is_none() {
        &result.entries
    } else {
        recorded = result.recorded_entries();
        &recorded
    };
    let annotated;
    let entries = if ctx.json || attention.acknowledged() == 0 {
        entries
    } else {
        annotated = render::attention::annotated(entries, attention);
        &annotated
    };
    let reason = run_status(result).1;
    let view = ReportView {
        all,
        reason: reason.as_deref(),
        ..run_view(org, result, entries)
    };
    if ctx.json {
        out_json(&render::report_json(&view))?;
    } else {
        // A refusal or an abort is explained once, on stderr, below.
        let table = ReportView {
            reason: None,
            ..view
        };
        render::out_with(|w| render::write_report_table(w, &table, render::terminal_width()))?;
        if result.mode == Mode::DryRun {
            say(&render::deleted_hint(result.run, result.deleted));
            if result.end == RunEnd::Completed {
                say(&render::apply_hint(result.run));
            }
        }
    }
    match &result.end {
        RunEnd::Refused(r) => {
            say(&render::refused(result.run, r));
            Err(Quiet(Exit::Refused).into())
        }
        RunEnd::Aborted(why) => {
            say(&render::aborted(result.run, why));
            Err(Quiet(Exit::Runtime).into())
        }
        RunEnd::Completed => {
            say(&render::attention::attention_line(
                org,
                &result.summary(),
                attention,
            ));
            Ok(if attention.new_problems() > 0 {
                Exit::Problems
            } else {
                Exit::Ok
            })
        }
    }
}

/// `conflict list [ORG]`.
pub fn conflicts(ctx: &Ctx, org: Option<&str>) -> Result<Exit> {
    let store = ctx.read_store()?;
    let list = attention::list(&*store, org)?;
    out(&render::attention::conflicts_list(&list))?;
    Ok(Exit::Ok)
}

/// `conflict ack ORG OBJECT [--note TEXT]`.
pub fn acknowledge(ctx: &Ctx, org: &str, object: &str, note: Option<&str>) -> Result<Exit> {
    let store = ctx.open_store()?;
    let acked = attention::acknowledge(&ctx.app, &*store, org, object, note)?;
    say(&render::attention::conflict_acked(org, &acked));
    Ok(Exit::Ok)
}

/// `conflict unack ORG OBJECT`.
pub fn withdraw(ctx: &Ctx, org: &str, object: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let withdrawn = attention::withdraw(&ctx.app, &*store, org, object)?;
    say(&render::attention::conflict_withdrawn(
        org,
        object,
        withdrawn.as_ref(),
    ));
    Ok(Exit::Ok)
}

/// A `--since`/`--until` bound: a date (UTC midnight; `end` moves it to the next midnight) or
/// an RFC 3339 time.
fn parse_bound(flag: &str, value: &str, end: bool) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        usage(format!(
            "{flag} {value:?}: expected a date like 2026-11-27 or a time like 2026-11-27T08:00:00Z"
        ))
    })?;
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

pub fn runs(ctx: &Ctx, a: &RunsArgs) -> Result<Exit> {
    let filter = RunFilter {
        org: a.org.clone(),
        since: a
            .since
            .as_deref()
            .map(|v| parse_bound("--since", v, false))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|v| parse_bound("--until", v, true))
            .transpose()?,
    };
    let store = ctx.read_store()?;
    let mut infos = runs::runs(&*store, &filter)?;
    if let Some(n) = a.last {
        infos.drain(..infos.len().saturating_sub(n));
    }
    if ctx.json {
        // Oldest first, as the log holds them: what scripts read.
        out_json(&infos)?;
    } else {
        let names = runs::short_ids(&*store)?;
        let filtered = filter.is_set() || a.last.is_some();
        out(&render::runs_list(
            &infos,
            &names,
            filtered,
            render::terminal_width(),
        ))?;
    }
    Ok(Exit::Ok)
}

pub fn report(ctx: &Ctx, run_arg: &str, format: Option<Format>, all: bool) -> Result<Exit> {
    let store = ctx.read_store()?;
    let run = runs::resolve_run(&*store, run_arg)?;
    let format = format.unwrap_or(if ctx.json {
        Format::Json
    } else {
        Format::Table
    });
    if format == Format::Html {
        // The auditor's page lists every entry, an incremental run's too (it filters them).
        let page = runs::report_page(&*store, run, true, ctx.app.clock.now())?;
        out(&render::report_html(&page))?;
        return Ok(Exit::Ok);
    }
    let report = if all {
        runs::report_all(&*store, run)?
    } else {
        runs::report(&*store, run)?
    };
    let view = ReportView::from_report(run, &report, all);
    match format {
        Format::Table => {
            // Problems acknowledged when the run was made say so (the org may be gone).
            let attention = match app::orgs::get(&*store, &report.org) {
                Ok(org) => attention::classify(&*store, &org, run, &report.entries)?,
                Err(_) => Attention::default(),
            };
            let annotated = render::attention::annotated(&report.entries, &attention);
            let view = ReportView {
                entries: &annotated,
                ..view
            };
            render::out_with(|w| render::write_report_table(w, &view, render::terminal_width()))?
        }
        Format::Json => out_json(&render::report_json(&view))?,
        Format::Csv => out(&render::report_csv(&view)?)?,
        Format::Html => unreachable!("answered above"),
    }
    Ok(Exit::Ok)
}

pub fn deleted(ctx: &Ctx, run_arg: &str) -> Result<Exit> {
    let store = ctx.read_store()?;
    let run = runs::resolve_run(&*store, run_arg)?;
    let view = runs::deleted(&*store, run)?;
    if ctx.json {
        out_json(&view.rows)?;
    } else {
        out(&render::deleted_table(
            &view.rows,
            render::show_ids(ctx.wide),
        ))?;
    }
    Ok(Exit::Ok)
}

/// `sync ORG`: the org's last import repeated once (printed as an import is), or with
/// `--every` once per interval until SIGINT/SIGTERM — one summary line per cycle on stderr and,
/// with `--json`, one report per run on stdout. A failing cycle is reported and the next one
/// still runs; the store is opened for each cycle and let go after it.
pub fn sync(ctx: &Ctx, a: &SyncArgs) -> Result<Exit> {
    let request = app::sync::SyncRequest {
        org: a.org.clone(),
        full: a.full,
        max_deletions: a.max_deletions,
    };
    if a.show {
        let store = ctx.read_store()?;
        let what = app::sync::repeated(&*store, &a.org)?;
        out(&render::sync_repeats(&what, &ctx.app.server, true))?;
        return Ok(Exit::Ok);
    }
    if let Some(run) = &a.set_from {
        let store = ctx.open_store()?;
        let run = runs::resolve_run(&*store, run)?;
        app::sync::define(&ctx.app, &*store, &a.org, run, a.max_deletions)?;
        let what = app::sync::repeated(&*store, &a.org)?;
        out(&render::sync_repeats(&what, &ctx.app.server, true))?;
        return Ok(Exit::Ok);
    }
    let Some(every) = a.every.as_deref() else {
        let store = ctx.open_store()?;
        let what = app::sync::repeated(&*store, &a.org)?;
        say(&render::sync_repeats(&what, &ctx.app.server, false));
        stop_at_ctrl_c(ctx)?;
        let (org, result) = render::with_progress(&ctx.app.stats, || {
            app::sync::sync_once(&ctx.app, &*store, &request, &what)
        })?;
        let attention = attention::classify(&*store, &org, result.run, &result.entries)?;
        return print_run(ctx, &org, &result, false, &attention);
    };
    let every = parse_duration(every)?;
    // Bad usage ends it before the loop: there must be an import to repeat. (Read: a writer
    // at work elsewhere does not stop the daemon from starting.)
    app::sync::repeated(&*ctx.read_store()?, &a.org)?;
    let signals = stop_signals()?;
    loop {
        let started = std::time::Instant::now();
        // A cycle that finds another writer at work (an admin's import on another host, with
        // the store shared) waits for it, saying so once, rather than skipping a cycle.
        let cycle = ctx.wait_for_store().and_then(|store| {
            // What this cycle repeats, said every cycle: a definition set meanwhile shows.
            let what = app::sync::repeated(&*store, &a.org)?;
            say(&render::sync_repeats(&what, &ctx.app.server, false));
            let (org, result) = app::sync::sync_once(&ctx.app, &*store, &request, &what)?;
            let attention = attention::classify(&*store, &org, result.run, &result.entries)?;
            Ok((org, result, attention))
        });
        match cycle {
            Ok((org, result, attention)) => {
                say(&render::sync_line(
                    ctx.app.clock.now(),
                    &org.name,
                    &result,
                    &attention,
                    started.elapsed(),
                ));
                if ctx.json {
                    let recorded = result.recorded_entries();
                    render::out_json_line(&render::report_json(&run_view(
                        &org.name, &result, &recorded,
                    )))?;
                }
            }
            Err(e) => say(&render::sync_failed(ctx.app.clock.now(), &a.org, &e)),
        }
        match signals.recv_timeout(every) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            // A signal (or the listener gone): the cycle that ran is finished; stop.
            _ => break,
        }
    }
    say("sync stopped\n");
    Ok(Exit::Ok)
}

/// How long a run may take to reach a safe point after Ctrl-C before it is stopped where it is.
const SAFE_POINT_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Ctrl-C (or SIGTERM) during one run asks it to stop at its next safe point: it says in one
/// line what was and was not changed. A run that does not reach one within a second (a long
/// step that does not look) is stopped where it is — as a kill would, which the log survives:
/// the next command closes the run as aborted, and what it recorded is what it changed. A
/// second Ctrl-C ends the process at once.
fn stop_at_ctrl_c(ctx: &Ctx) -> Result<()> {
    let signals = stop_signals()?;
    let stop = ctx.app.stop.clone();
    std::thread::spawn(move || {
        if signals.recv().is_ok() {
            stop.request();
            if !stop.seen_within(SAFE_POINT_WITHIN) {
                say("error: interrupted (Ctrl-C) in the middle of a long step, stopped there: the next roster command closes the run as aborted, and its log says what it changed (nothing, if it had not begun to write)\n");
                std::process::exit(1);
            }
        }
    });
    Ok(())
}

/// The first SIGINT or SIGTERM is sent on the returned channel (the run under way finishes);
/// a second one ends the process at once (the run it interrupts is closed as aborted when the
/// store is next opened).
fn stop_signals() -> Result<std::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = std::sync::mpsc::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let mut received = 0;
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                received += 1;
                if received > 1 {
                    std::process::exit(130);
                }
                let _ = tx.send(());
            }
        })
    });
    Ok(rx)
}

/// `40m`, `1h30m`, `90s`, `2d`: at least one second.
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || {
        usage(format!(
            "--every {s:?}: expected a duration like 40m, 1h, 1h30m or 90s"
        ))
    };
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

fn run_view<'a>(
    org: &'a str,
    result: &'a RunResult,
    entries: &'a [engine::event::EntryOutcome],
) -> ReportView<'a> {
    let (status, _) = run_status(result);
    ReportView {
        run: result.run,
        org,
        mode: result.mode,
        entries,
        summary: result.summary(),
        base: result.base,
        all: false,
        status: Some(status),
        reason: None,
        started_by: Some(&result.started_by),
        signed_in_as: result.signed_in_as.as_deref(),
    }
}

fn run_status(result: &RunResult) -> (RunStatus, Option<String>) {
    match &result.end {
        RunEnd::Completed => (RunStatus::Completed, None),
        RunEnd::Refused(r) => (RunStatus::Refused, Some(r.to_string())),
        RunEnd::Aborted(why) => (RunStatus::Aborted, Some(why.clone())),
    }
}
