//! `roster wizard [ORG]`: the seed's import wizard in the terminal (ratatui over crossterm).
//!
//! The state machine (`state`) decides; the view (`view`) draws; this module runs them: it
//! owns the terminal, turns keys and clicks into state changes, and does the work the state
//! asks for (reading a tenant, a dry-run preview, the import) on worker threads, so the screen
//! keeps answering. The work goes through the same use cases as the commands: the import is
//! `app::runs::plan_or_import`, recorded exactly as `roster import` with the same selection.

pub mod state;
pub mod view;

use std::io::IsTerminal;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use crossterm::event::{self, Event, KeyEventKind};

use adapters::org::OrgSource;
use app::session::Session;
use engine::event::Mode;
use engine::search::TypeFilter;
use engine::store::Opening;

use crate::context::Ctx;
use crate::Exit;
use state::{Done, Effect, OrgRow, PreviewView, Read, ResultsView, Wizard};

/// What to type instead, when there is no terminal to draw the wizard on.
const COMMANDS: &str = "the wizard needs a terminal (stdin and stdout on a TTY, TERM not \"dumb\"); the same steps as commands: roster org list / org add, roster search ORG, roster plan ORG --select ID... --check-deleted, roster deleted last, roster import ORG --select ID... --check-deleted --action ID=disable, roster report last";

pub fn run(ctx: &Ctx, start: Option<&str>) -> Result<Exit> {
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb" || t.is_empty());
    if dumb || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(crate::UsageError(COMMANDS.into()).into());
    }
    let orgs = list_orgs(ctx)?;
    if let Some(name) = start {
        if !orgs.iter().any(|o| o.name == name) {
            return Err(crate::UsageError(format!(
                "there is no organization {name:?}; `roster org list` lists them, or start the wizard without one and add it (n)"
            ))
            .into());
        }
    }
    let mut wizard = Wizard::new(orgs, start);
    wizard.target = match &ctx.app.server {
        app::Server::Embedded => None,
        app::Server::File(path) => Some(format!("server file {}", path.display())),
        // The host is what tells services apart; the title line has little room.
        app::Server::Scim(url) => Some(match adapters::scim::target::parse_url(url) {
            Ok(u) => format!(
                "SCIM {}{}",
                u.host_str().unwrap_or_default(),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
            Err(_) => format!("SCIM {}", adapters::address::shown(url)),
        }),
    };
    let theme = view::Theme {
        colour: std::env::var_os("NO_COLOR").is_none(),
    };
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let result = event_loop(ctx, &mut terminal, &mut wizard, theme);
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    // The screen is cleared on leaving: what was imported stays said, with how to see it again.
    if let Some(r) = &wizard.results {
        crate::render::say(&crate::render::wizard_left(r));
    }
    result
}

/// The orgs of the store (none when there is no store yet: adding one creates it).
fn list_orgs(ctx: &Ctx) -> Result<Vec<OrgRow>> {
    let store = match ctx.app.open(Opening::Existing) {
        Ok(opened) => opened.store,
        Err(app::Error::Store(engine::StoreError::NoStore { .. })) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(org_rows(app::orgs::list(&*store)?))
}

/// The orgs as the first page lists them.
fn org_rows(orgs: Vec<adapters::org::OrgConfig>) -> Vec<OrgRow> {
    orgs.into_iter()
        .map(|o| OrgRow {
            source: match &o.source {
                OrgSource::Fixture { path } => format!("fixture {}", path.display()),
                OrgSource::Graph(_) => format!("live, tenant {}", o.tenant_id),
            },
            name: o.name,
        })
        .collect()
}

fn event_loop(
    ctx: &Ctx,
    terminal: &mut ratatui::DefaultTerminal,
    w: &mut Wizard,
    theme: view::Theme,
) -> Result<Exit> {
    let (tx, rx) = channel::<Done>();
    let worker = Worker {
        ctx: worker_context(ctx, tx.clone()),
        tx,
        session: Arc::new(Mutex::new(None)),
    };
    let mut importing: Option<std::thread::JoinHandle<()>> = None;
    let mut tick = 0usize;
    let mut quitting = false;
    loop {
        terminal.draw(|f| view::draw(f, w, theme, tick))?;
        drain(&rx, w);
        if quitting && importing.as_ref().is_none_or(|h| h.is_finished()) {
            return Ok(Exit::Ok);
        }
        if !event::poll(Duration::from_millis(100))? {
            tick = tick.wrapping_add(1);
            w.progress = progress(&ctx.app.stats.snapshot());
            continue;
        }
        let effect = match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => w.key(k),
            Event::Mouse(m) => w.mouse(m),
            // A resize is redrawn on the next turn.
            _ => None,
        };
        match effect {
            None => {}
            Some(Effect::Quit) => {
                // An import under way finishes first: its run is recorded whole.
                if importing.as_ref().is_some_and(|h| !h.is_finished()) {
                    w.busy = "Finishing the import before quitting…".into();
                }
                quitting = true;
            }
            Some(Effect::Import {
                org,
                selection,
                options,
            }) => {
                importing = Some(worker.import(org, selection, options));
            }
            Some(other) => worker.start(other),
        }
    }
}

/// Graph's counters as a line, once a live read has started.
fn progress(s: &adapters::graph::StatsSnapshot) -> String {
    if s.requests == 0 {
        return String::new();
    }
    let held = if s.held_ms > 0 {
        format!(
            ", held back {:.1} s by throttling",
            s.held_ms as f64 / 1000.0
        )
    } else {
        String::new()
    };
    format!(
        "Graph: {} objects in {} pages, {} requests{held}",
        s.objects, s.pages, s.requests
    )
}

fn drain(rx: &Receiver<Done>, w: &mut Wizard) {
    while let Ok(done) = rx.try_recv() {
        w.done(done);
    }
}

/// The use cases' context, its device-code prompt shown on the wizard's screen.
fn worker_context(ctx: &Ctx, tx: Sender<Done>) -> app::Context {
    let tx = Mutex::new(tx);
    app::Context {
        holder: "roster wizard".into(),
        prompt: Arc::new(move |p: &adapters::auth::DevicePrompt| {
            let text = format!(
                "To sign in, open {} and enter the code {} (this screen waits and checks).",
                p.verification_uri, p.user_code
            );
            let _ = tx.lock().map(|tx| tx.send(Done::SignIn(text)));
        }),
        ..ctx.app.clone()
    }
}

struct Worker {
    ctx: app::Context,
    tx: Sender<Done>,
    /// The tenant and server read for the search page, for the previews.
    session: Arc<Mutex<Option<Session>>>,
}

fn message(e: impl std::fmt::Display) -> String {
    adapters::error::one_line(&e.to_string())
}

impl Worker {
    fn spawn(
        &self,
        work: impl FnOnce(&app::Context, &Arc<Mutex<Option<Session>>>) -> Done + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let ctx = self.ctx.clone();
        let tx = self.tx.clone();
        let session = self.session.clone();
        std::thread::spawn(move || {
            let done = work(&ctx, &session);
            let _ = tx.send(done);
        })
    }

    fn start(&self, effect: Effect) {
        match effect {
            Effect::Read { org } => {
                self.spawn(move |ctx, session| {
                    Done::Read(read(ctx, &org, session).map_err(message))
                });
            }
            Effect::Preview { selection, options } => {
                self.spawn(move |_, session| {
                    let guard = session.lock().unwrap_or_else(|p| p.into_inner());
                    Done::Preview(match guard.as_ref() {
                        None => Err("the tenant is not read yet".into()),
                        Some(s) => s
                            .preview(&selection, &options)
                            .map(|p| PreviewView {
                                entries: p.entries,
                                refusal: p.refusal.map(|r| r.to_string()),
                            })
                            .map_err(message),
                    })
                });
            }
            Effect::AddFixture { name, path } => {
                self.spawn(move |ctx, _| {
                    Done::OrgAdded(add_fixture(ctx, &name, &path).map_err(message))
                });
            }
            Effect::AddLive {
                name,
                tenant,
                client_id,
                url,
            } => {
                self.spawn(move |ctx, _| {
                    Done::OrgAdded(add_live(ctx, &name, &tenant, client_id, url).map_err(message))
                });
            }
            Effect::Import { .. } | Effect::Quit => unreachable!("handled by the loop"),
        }
    }

    fn import(
        &self,
        org: String,
        selection: engine::event::SelectionSpec,
        options: engine::event::RunOptions,
    ) -> std::thread::JoinHandle<()> {
        self.spawn(move |ctx, _| {
            Done::Imported(import(ctx, &org, selection, options).map_err(message))
        })
    }
}

/// Reads the org's tenant and the server; the store is closed before the tenant is read.
fn read(ctx: &app::Context, org: &str, session: &Mutex<Option<Session>>) -> app::Result<Read> {
    let (config, server, unkept) = {
        let store = ctx.open(Opening::Existing)?.store;
        let config = app::orgs::get(&*store, org)?;
        let (server, unkept) = app::server::state_for(ctx, &*store, &config)?;
        (config, server, unkept)
    };
    let s = app::session::read(ctx, config, server, unkept)?;
    let rows = s
        .search_view()
        .search("", TypeFilter::All)
        .into_iter()
        .cloned()
        .collect();
    let read = Read {
        rows,
        deleted: s.deleted(),
        problems: s.problems.clone(),
    };
    *session.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    Ok(read)
}

fn import(
    ctx: &app::Context,
    org: &str,
    selection: engine::event::SelectionSpec,
    options: engine::event::RunOptions,
) -> app::Result<ResultsView> {
    let store = ctx.open(Opening::Existing)?.store;
    let request = app::run::RunRequest {
        mode: Mode::Apply,
        selection,
        options,
        started_by: ctx.started_by.clone(),
        applied_from: None,
        approved: None,
        reviewed: None,
        full: false,
        // The wizard shows every entry.
        every_entry: true,
    };
    let (_, r) = app::runs::plan_or_import(ctx, &*store, ctx.outside_target()?, org, &request)?;
    let status = match &r.end {
        app::run::RunEnd::Completed => "completed".to_owned(),
        app::run::RunEnd::Refused(why) => format!("refused: {why}"),
        app::run::RunEnd::Aborted(why) => format!("aborted: {why}"),
    };
    Ok(ResultsView {
        run: r.run.to_string(),
        mode: r.mode,
        entries: r.entries,
        status,
        problems: r.problems,
    })
}

fn add_fixture(ctx: &app::Context, name: &str, path: &str) -> app::Result<(Vec<OrgRow>, String)> {
    let fixture = app::orgs::read_fixture(ctx, name, std::path::Path::new(path))?;
    let store = ctx.open(Opening::CreateIfMissing)?.store;
    app::orgs::add_fixture(&*store, &fixture)?;
    Ok((org_rows(app::orgs::list(&*store)?), name.to_owned()))
}

/// As `roster org add NAME --tenant ID [--client-id ID] [--graph-url URL --login-url URL]`
/// with device-code sign-in, the code shown on the wizard's screen.
fn add_live(
    ctx: &app::Context,
    name: &str,
    tenant: &str,
    client_id: Option<String>,
    url: Option<String>,
) -> app::Result<(Vec<OrgRow>, String)> {
    let guid = |what: &str, v: &str| {
        engine::TenantId::parse(v)
            .map_err(|_| app::Error::bad_input(format!("{what} {v:?} is not a GUID")))
    };
    let a = app::orgs::AddGraphOrg {
        name: name.to_owned(),
        tenant: guid("tenant id", tenant)?,
        client_id: client_id.map(|c| guid("client id", &c)).transpose()?,
        auth: adapters::auth::AuthMode::DeviceCode,
        client_secret_file: None,
        certificate: None,
        assertion_file: None,
        cloud: adapters::auth::Cloud::Global,
        graph_url: url.clone(),
        login_url: url,
    };
    let store = ctx.open(Opening::CreateIfMissing)?.store;
    app::orgs::add_graph(ctx, &*store, &a)?;
    Ok((org_rows(app::orgs::list(&*store)?), name.to_owned()))
}
