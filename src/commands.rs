//! One function per command: read arguments, call the libraries, hand data to `render`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use adapters::clock::{Clock, SystemClock};
use adapters::fixture::read_tenant;
use adapters::org::{self, OrgConfig, OrgSource};
use adapters::target::{read_server_file, write_server_file, EmbeddedTarget, FileTarget, Target};
use app::run::{execute, RunEnd, RunRequest, RunResult};
use engine::event::{
    ActionOverride, DeletedAction, Event, Mode, RunOptions, RunStatus, SelectionSpec,
};
use engine::projection::{DeletedView, Report, RunInfo};
use engine::search::{SearchView, TypeFilter};
use engine::store::Opening;
use engine::{EventStore, RunId, SledStore};

use crate::cli::{Cli, Command, Format, OrgCommand, RunArgs, RunsArgs, ServerCommand, TypeArg};
use crate::render::{self, ReportView};
use crate::{Exit, Quiet, UsageError};

/// Global options every command sees.
pub struct Ctx {
    pub store_dir: PathBuf,
    pub json: bool,
    pub server_file: Option<PathBuf>,
}

impl Ctx {
    /// The store, which must exist: reading commands never create one.
    pub fn open_store(&self) -> Result<SledStore> {
        open_store(&self.store_dir, Opening::Existing)
    }

    /// The store, started in a new or empty directory if there is none yet.
    pub fn create_store(&self) -> Result<SledStore> {
        open_store(&self.store_dir, Opening::CreateIfMissing)
    }
}

/// Who holds a lock this process takes: the command, as typed (its first words).
pub fn holder() -> String {
    let words = std::env::args()
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!("roster {words}")
}

pub fn open_store(dir: &Path, opening: Opening) -> Result<SledStore> {
    let store = SledStore::open_locked(dir, &holder(), opening).map_err(|e| match e {
        e @ (engine::StoreError::InUse { .. }
        | engine::StoreError::NoStore { .. }
        | engine::StoreError::NotAStore { .. }) => anyhow::Error::from(e),
        e => anyhow::Error::from(e).context(format!("cannot open the store in {}", dir.display())),
    })?;
    let recovered = app::run::recover(&store, &SystemClock)
        .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    if let Some(cut) = &recovered.cut {
        eprintln!(
            "note: the store's last writes were torn ({}); run {}, unfinished, was cut back to event {} ({} events cut{}), and the cut is recorded in the log",
            render::cell(&cut.reason),
            cut.run,
            cut.from.0.saturating_sub(1),
            cut.events,
            if cut.server_rebuilt {
                "; the server's directory was rebuilt from the log"
            } else {
                ""
            }
        );
    }
    for run in recovered.closed {
        eprintln!(
            "note: run {run} was interrupted before it finished; it is now recorded as aborted"
        );
    }
    Ok(store)
}

fn default_store_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROSTER_STORE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("roster")
}

/// Writes to stdout; a closed pipe surfaces as an error that `main` treats as success.
pub fn out(s: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(s.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Writes `v` as pretty JSON to stdout, streamed: a large report is never one string.
pub fn out_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut stdout, v).map_err(|e| match e.io_error_kind() {
        Some(kind) => anyhow::Error::from(std::io::Error::from(kind)),
        None => anyhow::Error::from(e),
    })?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

pub fn dispatch(cli: Cli) -> Result<Exit> {
    let ctx = Ctx {
        store_dir: cli.store.clone().unwrap_or_else(default_store_dir),
        json: cli.json,
        server_file: cli.server_file.clone(),
    };
    match cli.command {
        Command::Org(OrgCommand::Add(a)) => match (&a.fixture, &a.tenant) {
            (Some(fixture), _) => org_add(&ctx, &a.name, fixture),
            (None, Some(tenant)) => crate::live::org_add_graph(&ctx, &a, tenant),
            (None, None) => Err(usage(
                "org add needs --fixture TENANT.json or --tenant TENANT_ID",
            )),
        },
        Command::Org(OrgCommand::Login { name }) => crate::live::org_login(&ctx, &name),
        Command::Org(OrgCommand::Logout { name }) => crate::live::org_logout(&ctx, &name),
        Command::Org(OrgCommand::List) => org_list(&ctx),
        Command::Org(OrgCommand::Remove { name }) => {
            let store = ctx.open_store()?;
            let config = org::get_org(&store, &name)?;
            crate::live::forget_tokens(&ctx, &config)?;
            org::remove_org(&store, &name)?;
            store.flush()?;
            eprintln!("Removed org {name}; its runs stay in the log.");
            Ok(Exit::Ok)
        }
        Command::Search(a) => search(&ctx, &a.org, a.term.as_deref().unwrap_or(""), a.kind),
        Command::Plan(a) => run(&ctx, &a, Mode::DryRun),
        Command::Import(a) => run(&ctx, &a, Mode::Apply),
        Command::Runs(a) => runs(&ctx, &a),
        Command::Report(a) => report(&ctx, &a.run, a.format),
        Command::Deleted(a) => deleted(&ctx, &a.run),
        Command::Apply(a) => crate::audit::apply(&ctx, &a.run),
        Command::Replay(a) => crate::audit::replay(&ctx, &a.run),
        Command::Verify(a) => crate::audit::verify(&ctx, a.head.as_deref()),
        Command::Events(a) => crate::audit::events(&ctx, a.run.as_deref(), a.since),
        Command::Diff(a) => crate::audit::diff(&ctx, &a.a, &a.b),
        Command::Backup(a) => crate::audit::backup(&ctx, &a.out),
        Command::Restore(a) => crate::audit::restore(&ctx, &a.file),
        Command::Server(c) => server(&ctx, c),
        Command::Demo => crate::demo::run(&ctx),
        Command::FakeGraph(a) => crate::live::fake_graph(&a),
        Command::Record(a) => crate::live::record(&ctx, &a),
        Command::Fixture(crate::cli::FixtureCommand::Generate(a)) => generate(&a),
    }
}

pub fn org_add(ctx: &Ctx, name: &str, fixture: &Path) -> Result<Exit> {
    org::check_org_name(name)?;
    let loaded = read_tenant(fixture)?;
    let path = std::fs::canonicalize(fixture)
        .with_context(|| format!("{}: cannot resolve the path", fixture.display()))?;
    let store = ctx.create_store()?;
    let config = OrgConfig {
        name: name.to_owned(),
        tenant_id: loaded.snapshot.tenant_id.clone(),
        source: OrgSource::Fixture { path },
        added_at: SystemClock.now(),
    };
    org::add_org(&store, &config)?;
    store.flush()?;
    eprint!("{}", render::warnings(&loaded.problems));
    if ctx.json {
        out_json(&config)?;
    } else {
        out(&format!(
            "Added org {name}: tenant {}, {} users, {} groups (fixture {}).\n",
            config.tenant_id,
            loaded.snapshot.users.len(),
            loaded.snapshot.groups.len(),
            fixture.display()
        ))?;
    }
    Ok(Exit::Ok)
}

fn org_list(ctx: &Ctx) -> Result<Exit> {
    let store = ctx.open_store()?;
    let orgs = org::list_orgs(&store)?;
    if ctx.json {
        out_json(&orgs)?;
        return Ok(Exit::Ok);
    }
    if orgs.is_empty() {
        out("No orgs yet; add one with `roster org add NAME --fixture TENANT.json`.\n")?;
        return Ok(Exit::Ok);
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(["Org", "Tenant", "Source", "Added (UTC)"]);
    for o in &orgs {
        let source = match &o.source {
            OrgSource::Fixture { path } => format!("fixture {}", path.display()),
            OrgSource::Graph(g) => format!(
                "graph {} ({})",
                g.graph_url.as_deref().unwrap_or(g.cloud.graph_root()),
                match g.auth {
                    adapters::auth::AuthMode::DeviceCode => "device code",
                    adapters::auth::AuthMode::ClientSecret => "client secret",
                }
            ),
        };
        t.add_row(vec![
            o.name.clone(),
            o.tenant_id.to_string(),
            source,
            o.added_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    out(&format!("{t}\n"))?;
    Ok(Exit::Ok)
}

fn search(ctx: &Ctx, org_name: &str, term: &str, kind: TypeArg) -> Result<Exit> {
    let store = ctx.open_store()?;
    let org = org::get_org(&store, org_name)?;
    drop(store);
    let env = ctx.source_env();
    let source = org.source(&env)?;
    let loaded =
        crate::live::with_progress(&env.stats, crate::live::is_live(&org), || source.read())?;
    eprint!("{}", render::warnings(&loaded.problems));
    let mut view = SearchView::from_snapshot(&loaded.snapshot);
    let filter = match kind {
        TypeArg::Users => TypeFilter::Users,
        TypeArg::Groups => TypeFilter::Groups,
        TypeArg::All => TypeFilter::All,
    };
    let rows = view.search(term, filter);
    if ctx.json {
        out_json(&rows)?;
    } else {
        out(&render::search_table(&rows))?;
    }
    Ok(Exit::Ok)
}

pub fn parse_actions(raw: &[String]) -> Result<Vec<ActionOverride>> {
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

pub fn started_by() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

pub fn request_from(a: &RunArgs, mode: Mode) -> Result<RunRequest> {
    let actions = parse_actions(&a.action)?;
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
            on_deleted: a
                .on_deleted
                .as_deref()
                .and_then(DeletedAction::parse)
                .unwrap_or_default(),
            actions,
            max_deletions: a.max_deletions,
            allow_empty_source: a.allow_empty_source,
        },
        started_by: started_by(),
        applied_from: None,
        reviewed: None,
    })
}

fn run(ctx: &Ctx, a: &RunArgs, mode: Mode) -> Result<Exit> {
    let req = request_from(a, mode)?;
    let mut file_target = match &ctx.server_file {
        Some(path) => Some(FileTarget::open(path, &holder())?),
        None => None,
    };
    let store = ctx.open_store()?;
    let org = org::get_org(&store, &a.org)?;
    let mut embedded = EmbeddedTarget::new(&store);
    let target: &mut dyn Target = match file_target.as_mut() {
        Some(t) => t,
        None => &mut embedded,
    };
    let env = ctx.source_env();
    let source = org.source(&env)?;
    let result = crate::live::with_progress(&env.stats, crate::live::is_live(&org), || {
        execute(&store, &org, source.as_ref(), target, &req, &SystemClock)
    })?;
    print_run(ctx, &org.name, &result)
}

/// Prints a run's report and turns its end into an exit code.
pub fn print_run(ctx: &Ctx, org: &str, result: &RunResult) -> Result<Exit> {
    eprint!("{}", render::warnings(&result.problems));
    let (status, reason) = match &result.end {
        RunEnd::Completed => (RunStatus::Completed, None),
        RunEnd::Refused(r) => (RunStatus::Refused, Some(r.to_string())),
        RunEnd::Aborted(why) => (RunStatus::Aborted, Some(why.clone())),
    };
    let view = ReportView {
        run: result.run,
        org,
        mode: result.mode,
        entries: &result.entries,
        status: Some(status),
        reason: reason.as_deref(),
    };
    if ctx.json {
        out_json(&render::report_json(&view))?;
    } else {
        out(&render::report_table(&view))?;
        if !result.deleted.is_empty() && result.mode == Mode::DryRun {
            eprintln!(
                "{} deleted objects found; `roster deleted {}` lists them, `--action ID=disable|delete` acts on them.",
                result.deleted.len(),
                result.run
            );
        }
    }
    match &result.end {
        RunEnd::Refused(r) => {
            eprintln!(
                "error: run {} refused, nothing was changed: {r}",
                result.run
            );
            Err(Quiet(Exit::Refused).into())
        }
        RunEnd::Aborted(why) => {
            eprintln!("error: run {} aborted: {}", result.run, render::cell(why));
            Err(Quiet(Exit::Runtime).into())
        }
        RunEnd::Completed if result.summary().has_problems() => Ok(Exit::Problems),
        RunEnd::Completed => Ok(Exit::Ok),
    }
}

/// Resolves a run argument: a full id, a unique prefix (4+ characters), `last`, or `last~N`
/// (the Nth run before the last).
pub fn resolve_run(store: &SledStore, arg: &str) -> Result<RunId> {
    let runs = store.runs()?;
    let arg = arg.trim();
    let lower = arg.to_ascii_lowercase();
    if let Some(back) = lower
        .strip_prefix("last")
        .or_else(|| lower.strip_prefix("latest"))
    {
        let back: usize = match back.strip_prefix('~') {
            None if back.is_empty() => 0,
            Some(n) => n
                .parse()
                .map_err(|_| usage(format!("run {arg:?}: expected last~N with N a number")))?,
            None => return Err(usage(format!("run {arg:?}: expected `last` or `last~N`"))),
        };
        if runs.is_empty() {
            return Err(usage("there are no runs yet"));
        }
        return back
            .checked_add(1)
            .and_then(|n| runs.len().checked_sub(n))
            .map(|i| runs[i])
            .ok_or_else(|| usage(format!("run {arg:?}: there are only {} runs", runs.len())));
    }
    if let Ok(id) = arg.parse::<RunId>() {
        return if runs.contains(&id) {
            Ok(id)
        } else {
            Err(usage(format!(
                "no run {id} in the log; `roster runs` lists them"
            )))
        };
    }
    if arg.len() < 4 {
        return Err(usage(format!(
            "run {arg:?}: give the run id, a prefix of at least 4 characters, or `last`"
        )));
    }
    let hits: Vec<RunId> = runs
        .into_iter()
        .filter(|r| r.to_string().starts_with(&lower))
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(usage(format!(
            "no run matches {arg:?}; `roster runs` lists them"
        ))),
        many => Err(usage(format!(
            "run prefix {arg:?} matches {} runs; give more characters",
            many.len()
        ))),
    }
}

/// A run's summary line, from its first and last events where possible.
pub fn run_info(store: &SledStore, run: RunId) -> Result<Option<RunInfo>> {
    let seqs = store.run_seqs(run)?;
    let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
        return Ok(None);
    };
    let first = store.read_event(*first)?;
    let last = store.read_event(*last)?;
    let mut info = RunInfo::fold(first.iter().chain(last.iter()));
    match (&mut info, last.as_ref().map(|e| &e.event)) {
        (Some(i), Some(Event::RunFinished(f))) => i.summary = f.summary,
        (Some(_), _) => info = RunInfo::fold(store.read_run(run)?.iter()),
        _ => {}
    }
    Ok(info)
}

/// A `--since`/`--until` bound: a date (UTC midnight; `end` moves it to the next midnight) or an RFC 3339 time.
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

fn runs(ctx: &Ctx, a: &RunsArgs) -> Result<Exit> {
    let since = a
        .since
        .as_deref()
        .map(|v| parse_bound("--since", v, false))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| parse_bound("--until", v, true))
        .transpose()?;
    let store = ctx.open_store()?;
    let mut infos = Vec::new();
    for run in store.runs()? {
        if let Some(info) = run_info(&store, run)? {
            let keep = a.org.as_deref().is_none_or(|o| o == info.org)
                && since.is_none_or(|t| info.started_at >= t)
                && until.is_none_or(|t| info.started_at < t);
            if keep {
                infos.push(info);
            }
        }
    }
    let filtered = a.org.is_some() || since.is_some() || until.is_some();
    if ctx.json {
        out_json(&infos)?;
    } else if infos.is_empty() && filtered {
        out("No runs match these filters.\n")?;
    } else {
        out(&render::runs_table(&infos))?;
    }
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, run_arg: &str, format: Option<Format>) -> Result<Exit> {
    let store = ctx.open_store()?;
    let run = resolve_run(&store, run_arg)?;
    // Folded as the run is read, each event by value; the report shows outcomes, never the
    // server operations behind them, so those are let go at once (on a large run they are
    // most of its size).
    let mut report = Report::default();
    store.visit_run(run, &|t| Report::USES.contains(&t), &mut |env| {
        let mut event = env.event;
        if let Event::Planned(e) | Event::Imported(e) = &mut event {
            e.op = None;
        }
        report.take(env.run, event);
    })?;
    let view = ReportView::from_report(run, &report);
    let format = format.unwrap_or(if ctx.json {
        Format::Json
    } else {
        Format::Table
    });
    match format {
        Format::Table => out(&render::report_table(&view))?,
        Format::Json => out_json(&render::report_json(&view))?,
        Format::Csv => out(&render::report_csv(&view)?)?,
    }
    Ok(Exit::Ok)
}

fn deleted(ctx: &Ctx, run_arg: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let run = resolve_run(&store, run_arg)?;
    let view = DeletedView::fold(
        &store.read_run_where(run, &|t| matches!(t, "ObjectDeleted" | "ActionChosen"))?,
    );
    if ctx.json {
        out_json(&view.rows)?;
    } else {
        out(&render::deleted_table(&view.rows))?;
    }
    Ok(Exit::Ok)
}

fn server(ctx: &Ctx, c: ServerCommand) -> Result<Exit> {
    match c {
        ServerCommand::Load { file } => {
            let state = read_server_file(&file)?;
            match &ctx.server_file {
                Some(target) => write_server_file(target, &state)
                    .with_context(|| format!("cannot write {}", target.display()))?,
                None => {
                    let store = ctx.create_store()?;
                    store.replace_server_state(&state)?;
                    store.flush()?;
                }
            }
            eprintln!(
                "Loaded {} users and {} groups from {}.",
                state.users().len(),
                state.groups().len(),
                file.display()
            );
            Ok(Exit::Ok)
        }
        ServerCommand::Dump => {
            let state = load_server(ctx)?;
            out_json(&state)?;
            Ok(Exit::Ok)
        }
        ServerCommand::Show { login, history } => {
            let state = load_server(ctx)?;
            let user = state.user(&login);
            let changes = if history {
                let entra = user.and_then(|u| u.tenant_id.as_ref().zip(u.entra_id.as_ref()));
                Some(replay::history::user_history(
                    &ctx.open_store()?,
                    &login,
                    entra,
                )?)
            } else {
                None
            };
            let Some(user) = user else {
                if let Some(items) = changes.filter(|h| !h.is_empty()) {
                    // Deleted by an import: its history is still in the log.
                    if ctx.json {
                        out_json(&serde_json::json!({ "user": null, "history": items }))?;
                    } else {
                        out(&format!(
                            "{login} is no longer on the server.\n{}",
                            render::history_table(&items)
                        ))?;
                    }
                    return Ok(Exit::Ok);
                }
                return Err(usage(format!(
                    "no server user with login {login:?}; `roster server dump` lists them"
                )));
            };
            match (ctx.json, changes) {
                (true, None) => out_json(user)?,
                (true, Some(items)) => {
                    out_json(&serde_json::json!({ "user": user, "history": items }))?
                }
                (false, None) => out(&render::server_user_table(user, &state))?,
                (false, Some(items)) => out(&format!(
                    "{}{}",
                    render::server_user_table(user, &state),
                    render::history_table(&items)
                ))?,
            }
            Ok(Exit::Ok)
        }
    }
}

pub fn load_server(ctx: &Ctx) -> Result<engine::model::ServerState> {
    Ok(match &ctx.server_file {
        Some(path) => read_server_file(path)?,
        None => ctx.open_store()?.server_state()?,
    })
}

fn generate(a: &crate::cli::GenerateArgs) -> Result<Exit> {
    if !(0.0..=1.0).contains(&a.linked) {
        return Err(usage(format!(
            "--linked {}: expected a fraction between 0 and 1",
            a.linked
        )));
    }
    let options = devtools::generate::GenerateOptions {
        users: a.users,
        groups: a.groups,
        members_per_group: a.members_per_group,
        seed: a.seed,
        linked: a.linked,
    };
    devtools::generate::write_tenant(&a.out, options)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    if let Some(server) = &a.server_out {
        devtools::generate::write_server(server, options)
            .with_context(|| format!("cannot write {}", server.display()))?;
    }
    eprintln!(
        "Generated {} users and {} groups (seed {}) in {}{}",
        a.users,
        a.groups,
        a.seed,
        a.out.display(),
        a.server_out
            .as_ref()
            .map(|s| format!(", server state in {}", s.display()))
            .unwrap_or_default()
    );
    Ok(Exit::Ok)
}
