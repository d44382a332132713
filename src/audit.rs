//! The auditor's commands: verify, replay, events, diff — and apply, which turns a reviewed
//! dry run into an import only if it is still exactly what was reviewed.

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::json;

use adapters::clock::SystemClock;
use adapters::org;
use adapters::target::{EmbeddedTarget, FileTarget, Target};
use app::run::{execute, RunRequest};
use engine::event::{Event, Hash, Mode, RunStatus, TargetInfo};
use engine::projection::{Report, RunInfo};
use engine::{EventStore, Seq};
use replay::{VerifyError, VerifyOptions};

use crate::commands::{holder, out, out_json, print_run, resolve_run, started_by, Ctx};
use crate::render;
use crate::{Exit, Quiet, UsageError};

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

pub fn verify(ctx: &Ctx, head: Option<&str>) -> Result<Exit> {
    let noted_head = match head {
        Some(h) => Some(Hash::from_hex(h).ok_or_else(|| {
            usage(format!(
                "--head {h:?}: expected the 64 hexadecimal digits `roster verify` printed"
            ))
        })?),
        None => None,
    };
    let store = ctx.open_store()?;
    match replay::verify(
        &store,
        &VerifyOptions {
            noted_head,
            until: None,
        },
    ) {
        Ok(v) => {
            let mut repairs = Vec::new();
            for seq in &v.repairs {
                if let Some(Event::LogRepaired(r)) = store.read_event(*seq)?.map(|e| e.event) {
                    repairs.push((*seq, r));
                }
            }
            if ctx.json {
                out_json(&json!({
                    "ok": true,
                    "events": v.events,
                    "runs": v.runs,
                    "head": { "seq": v.head.seq.0, "hash": v.head.hash.to_hex() },
                    "notedHeadAt": v.noted_head_at.map(|s| s.0),
                    "unfinished": v.unfinished.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    "repairs": repairs.iter().map(|(seq, r)| json!({
                        "seq": seq.0,
                        "run": r.run.to_string(),
                        "cutFrom": r.cut_from.0,
                        "eventsCut": r.events_cut,
                        "reason": r.reason,
                        "serverRebuilt": r.server_rebuilt,
                    })).collect::<Vec<_>>(),
                }))?;
            } else {
                let mut text = format!(
                    "The log verifies: {} events in {} runs; hash chain, sequence, runs and run index are intact.\nChain head: {} (event {})\n",
                    v.events,
                    v.runs,
                    v.head.hash,
                    v.head.seq
                );
                if let Some(at) = v.noted_head_at {
                    text.push_str(&format!(
                        "The noted head is event {at}: nothing up to it has changed.\n"
                    ));
                }
                for (seq, r) in &repairs {
                    text.push_str(&format!(
                        "Event {seq} records that the log was cut back from event {}: {} events of run {}, unfinished, were torn by a write error ({}).\n",
                        r.cut_from, r.events_cut, r.run, r.reason
                    ));
                }
                for run in &v.unfinished {
                    text.push_str(&format!(
                        "Run {run} was interrupted before it finished (not tampering).\n"
                    ));
                }
                out(&text)?;
            }
            Ok(Exit::Ok)
        }
        Err(VerifyError::Store(e)) => Err(e.into()),
        Err(e) => {
            if ctx.json {
                let (seq, run) = match &e {
                    VerifyError::Bad { seq, run, .. } => (Some(seq.0), run.map(|r| r.to_string())),
                    _ => (None, None),
                };
                out_json(&json!({ "ok": false, "seq": seq, "run": run, "error": e.to_string() }))?;
            }
            let _ = writeln!(std::io::stderr(), "error: {e}");
            Err(Quiet(Exit::Runtime).into())
        }
    }
}

pub fn replay(ctx: &Ctx, run_arg: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let run = resolve_run(&store, run_arg)?;
    let replayed = match replay::replay_run(&store, run) {
        Ok(r) => r,
        Err(replay::ReplayError::Store(e)) => return Err(e.into()),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            return Err(Quiet(Exit::Runtime).into());
        }
    };
    if ctx.json {
        out_json(&json!({
            "run": replayed.run,
            "identical": replayed.identical(),
            "entries": replayed.entries,
            "differences": replayed.differences,
            "note": replayed.note,
        }))?;
    } else {
        out(&render::replay_text(&replayed))?;
    }
    Ok(if replayed.identical() {
        Exit::Ok
    } else {
        Exit::Runtime
    })
}

pub fn events(ctx: &Ctx, run_arg: Option<&str>, since: Option<u64>) -> Result<Exit> {
    let store = ctx.open_store()?;
    let mut stdout = std::io::stdout().lock();
    let mut emit = |env: &engine::Envelope| -> Result<()> {
        serde_json::to_writer(&mut stdout, &replay::export::event_line(env))?;
        stdout.write_all(b"\n")?;
        Ok(())
    };
    match (run_arg, since) {
        (Some(r), _) => {
            let run = resolve_run(&store, r)?;
            for env in store.read_run(run)? {
                emit(&env)?;
            }
        }
        (None, since) => {
            for raw in store.raw_events(Seq(since.unwrap_or(1).max(1))) {
                emit(&raw?.decode()?)?;
            }
        }
    }
    stdout.flush()?;
    Ok(Exit::Ok)
}

pub fn backup(ctx: &Ctx, path: &std::path::Path) -> Result<Exit> {
    use adapters::clock::Clock;
    let store = ctx.open_store()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".roster-backup-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write a backup in {}", dir.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let contents = replay::backup::write_backup(&store, SystemClock.now(), &mut writer)
        .with_context(|| format!("cannot write the backup {}", path.display()))?;
    let tmp = writer
        .into_inner()
        .map_err(|e| anyhow::Error::from(e.into_error()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| anyhow::Error::from(e.error))
        .with_context(|| format!("cannot write the backup {}", path.display()))?;
    if ctx.json {
        out_json(&contents)?;
    } else {
        eprintln!(
            "Backed up {} events (chain head {}, event {}), {} orgs, {} server users and {} groups to {}; `roster restore {}` puts them in a new store.",
            contents.events,
            contents.head.hash,
            contents.head.seq,
            contents.orgs,
            contents.server_users,
            contents.server_groups,
            path.display(),
            path.display()
        );
    }
    Ok(Exit::Ok)
}

pub fn restore(ctx: &Ctx, path: &std::path::Path) -> Result<Exit> {
    use replay::backup::{read_backup, BackupError, Part};
    let open = || -> Result<std::io::BufReader<std::fs::File>> {
        let meta = std::fs::metadata(path).map_err(|e| {
            usage(format!(
                "{}: cannot read the backup: {}",
                path.display(),
                adapters::fixture::io_reason(&e)
            ))
        })?;
        if !meta.is_file() {
            return Err(usage(format!(
                "{}: not a regular file; expected a file `roster backup` wrote",
                path.display()
            )));
        }
        Ok(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path)?,
        ))
    };
    let named = |e: BackupError| match e {
        BackupError::Bad { .. } => usage(format!("{}: {e}", path.display())),
        other => anyhow::Error::from(other),
    };
    // First the whole file is checked; only then is anything written.
    let contents = read_backup(&mut open()?, None).map_err(named)?;
    let store = ctx.create_store()?;
    if store.head().seq.0 > 0
        || !store.orgs()?.is_empty()
        || store.server_state()?.users().len() > 0
    {
        return Err(usage(format!(
            "the store {} is not empty; restore into a new store: --store NEW_DIR",
            ctx.store_dir.display()
        )));
    }
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    read_backup(
        &mut open()?,
        Some(&mut |part| {
            match part {
                Part::Events(events) => {
                    store.append_verbatim(&events)?;
                }
                Part::Org { name, settings } => store.put_org(&name, &settings)?,
                Part::ServerUser(u) => users.push(*u),
                Part::ServerGroup(g) => groups.push(g),
            }
            Ok(())
        }),
    )
    .map_err(named)?;
    let server = engine::model::ServerState::from_parts(users, groups).map_err(|e| {
        usage(format!(
            "{}: the server records do not fit together: {e}",
            path.display()
        ))
    })?;
    store.replace_server_state(&server)?;
    store.flush()?;
    let verified = replay::verify(&store, &VerifyOptions::default())?;
    if ctx.json {
        out_json(&contents)?;
    } else {
        eprintln!(
            "Restored {} events (chain head {}, event {}, as in the backup), {} orgs, {} server users and {} groups into {}; the log verifies.",
            verified.events,
            verified.head.hash,
            verified.head.seq,
            contents.orgs,
            contents.server_users,
            contents.server_groups,
            ctx.store_dir.display()
        );
    }
    Ok(Exit::Ok)
}

pub fn diff(ctx: &Ctx, a: &str, b: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let (a, b) = (resolve_run(&store, a)?, resolve_run(&store, b)?);
    let d = replay::diff::diff_runs(&store, a, b).map_err(|e| match e {
        replay::diff::DiffError::Store(e) => anyhow::Error::from(e),
        other => usage(other.to_string()),
    })?;
    if ctx.json {
        out_json(&d)?;
    } else {
        out(&render::diff_text(&d))?;
    }
    Ok(Exit::Ok)
}

pub fn apply(ctx: &Ctx, run_arg: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let reviewed = resolve_run(&store, run_arg)?;
    let events = store.read_run(reviewed)?;
    let info = RunInfo::fold(&events)
        .ok_or_else(|| usage(format!("run {reviewed} has no RunStarted event")))?;
    if info.mode != Mode::DryRun {
        return Err(usage(format!("run {reviewed} is an import, not a dry run; `roster apply` applies a reviewed `roster plan`")));
    }
    if info.status != Some(RunStatus::Completed) {
        let status = info.status.map_or("unfinished", |s| s.as_str());
        return Err(usage(format!(
            "dry run {reviewed} is {status}; there is no reviewed plan to apply"
        )));
    }
    let Some(Event::RunStarted(started)) = events.first().map(|e| &e.event) else {
        return Err(usage(format!("run {reviewed} has no RunStarted event")));
    };
    let org = org::get_org(&store, &started.org)?;
    if org.tenant_id != started.tenant_id {
        return Err(usage(format!(
            "org {} now reads tenant {}, but dry run {reviewed} read tenant {}",
            org.name, org.tenant_id, started.tenant_id
        )));
    }
    let mut file_target = match (&started.target, &ctx.server_file) {
        (TargetInfo::File { path }, None) => {
            Some(FileTarget::open(std::path::Path::new(path), &holder())?)
        }
        (TargetInfo::File { path }, Some(given)) if std::path::Path::new(path) == given => {
            Some(FileTarget::open(given, &holder())?)
        }
        (TargetInfo::Embedded, None) => None,
        _ => {
            return Err(usage(format!(
                "dry run {reviewed} was planned against {}; apply it against the same server",
                match &started.target {
                    TargetInfo::Embedded => "the embedded server (no --server-file)".to_owned(),
                    TargetInfo::File { path } => format!("--server-file {path}"),
                }
            )))
        }
    };
    let mut embedded = EmbeddedTarget::new(&store);
    let target: &mut dyn Target = match file_target.as_mut() {
        Some(t) => t,
        None => &mut embedded,
    };
    let req = RunRequest {
        mode: Mode::Apply,
        selection: started.selection.clone(),
        options: started.options.clone(),
        started_by: started_by(),
        applied_from: Some(reviewed),
        reviewed: Some(Report::fold(&events).entries),
    };
    let env = ctx.source_env();
    let source = org.source(&env)?;
    let result = crate::live::with_progress(&env.stats, crate::live::is_live(&org), || {
        execute(&store, &org, source.as_ref(), target, &req, &SystemClock)
    })?;
    if !result.stale.is_empty() && !ctx.json {
        let _ = writeln!(std::io::stderr(), "{}", render::stale_table(&result.stale));
    }
    print_run(ctx, &org.name, &result)
}
