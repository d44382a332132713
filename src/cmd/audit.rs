//! The auditor's commands: `verify`, `replay`, `events`, `diff`, `backup`, `restore`.

use anyhow::Result;

use app::runs::resolve_run;
use engine::event::Event;
use engine::Seq;
use replay::{VerifyError, VerifyOptions};

use super::usage;
use crate::context::Ctx;
use crate::render::{self, out, out_json, say};
use crate::{Exit, Quiet};

/// `--head HASH` as given: a noted chain head, or bad usage.
fn noted_head(head: Option<&str>) -> Result<Option<replay::verify::NotedHead>> {
    Ok(match head {
        Some(h) => Some(replay::verify::NotedHead::parse(h).ok_or_else(|| {
            usage(format!(
                "--head {:?}: expected a chain head roster printed — its 64 hexadecimal digits, or at least the first 16",
                engine::text::printable(&h.chars().take(100).collect::<String>())
            ))
        })?),
        None => None,
    })
}

pub fn verify(ctx: &Ctx, head: Option<&str>, deep: bool) -> Result<Exit> {
    let noted_head = noted_head(head)?;
    let store = ctx.read_store()?;
    let verified = render::progress::working("verifying the log", || {
        replay::verify(
            &*store,
            &VerifyOptions {
                noted_head,
                until: None,
            },
        )
    });
    match verified {
        Ok(v) => {
            let mut repairs = Vec::new();
            for seq in &v.repairs {
                if let Some(Event::LogRepaired(r)) = store.read_event(*seq)?.map(|e| e.event) {
                    repairs.push((*seq, r));
                }
            }
            // The mirrors beside the log, each checked against it (not up to a noted head:
            // they are of the log's last runs).
            let mirrors =
                render::progress::working("checking the mirrors against the log", || {
                    app::mirror::check_all(&*store, deep)
                })?;
            if ctx.json {
                out_json(&render::verified_json(&v, &repairs, &mirrors))?;
            } else {
                out(&render::verified(&v, &repairs, &mirrors))?;
            }
            let differs = mirrors
                .iter()
                .find(|m| m.state == app::mirror::MirrorState::Differs);
            match differs {
                None => Ok(Exit::Ok),
                Some(m) => {
                    say(&render::mirror_differs(m));
                    Err(Quiet(Exit::Runtime).into())
                }
            }
        }
        Err(VerifyError::Store(e)) => Err(e.into()),
        Err(e) => {
            if ctx.json {
                out_json(&render::unverified_json(&e))?;
            }
            say(&format!("error: {e}\n"));
            Err(Quiet(Exit::Runtime).into())
        }
    }
}

pub fn replay(ctx: &Ctx, run_arg: &str) -> Result<Exit> {
    let store = ctx.read_store()?;
    let run = resolve_run(&*store, run_arg)?;
    let replayed = render::progress::working(&format!("replaying run {run}"), || {
        replay::replay_run(&*store, run)
    });
    let replayed = match replayed {
        Ok(r) => r,
        Err(replay::ReplayError::Store(e)) => return Err(e.into()),
        Err(e) => {
            say(&format!("error: {e}\n"));
            return Err(Quiet(Exit::Runtime).into());
        }
    };
    if ctx.json {
        out_json(&render::replayed_json(&replayed))?;
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
    if run_arg.is_none() && since.is_none() {
        return Err(usage(
            "give a run (`roster events last`, a run id or a prefix of it), or `--since SEQ` for the whole log from event SEQ on (`--since 1`: all of it)",
        ));
    }
    let store = ctx.read_store()?;
    match (run_arg, since) {
        (Some(r), _) => {
            let run = resolve_run(&*store, r)?;
            render::out_event_lines(store.read_run(run)?.into_iter().map(Ok))?;
        }
        (None, since) => {
            render::out_event_lines(
                store
                    .raw_events(Seq(since.unwrap_or(1).max(1)))
                    .map(|raw| Ok(raw?.decode()?)),
            )?;
        }
    }
    Ok(Exit::Ok)
}

pub fn diff(ctx: &Ctx, a: &str, b: &str) -> Result<Exit> {
    let store = ctx.read_store()?;
    let (a, b) = (resolve_run(&*store, a)?, resolve_run(&*store, b)?);
    let d = render::progress::working(&format!("comparing runs {a} and {b}"), || {
        replay::diff::diff_runs(&*store, a, b)
    })
    .map_err(|e| match e {
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

pub fn backup(ctx: &Ctx, path: &std::path::Path) -> Result<Exit> {
    let store = ctx.wait_for_store()?;
    let contents = render::progress::working("backing up the log", || {
        app::backup::backup(&*store, ctx.app.clock.as_ref(), &ctx.app.started_by, path)
    })?;
    if ctx.json {
        out_json(&contents)?;
    } else {
        say(&render::backed_up(&contents, path));
    }
    Ok(Exit::Ok)
}

pub fn restore(ctx: &Ctx, path: &std::path::Path, head: Option<&str>) -> Result<Exit> {
    let noted = noted_head(head)?;
    let (_store, restored) = render::progress::working("restoring the log", || {
        app::backup::restore(
            || {
                ctx.app
                    .open(engine::store::Opening::CreateIfMissing)
                    .map(|o| o.store)
            },
            path,
            noted.as_ref(),
        )
    })?;
    if ctx.json {
        out_json(&restored.contents)?;
    } else {
        say(&render::restored(&restored, &ctx.app.store_shown()));
    }
    Ok(Exit::Ok)
}
