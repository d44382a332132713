//! One function per command, grouped by area: read the arguments, call the use cases (`app`,
//! `replay`), hand what they return to `render`, and turn it into an exit code.

mod audit;
mod dev;
mod org;
mod run;
mod server;

use anyhow::Result;

use crate::cli::{Cli, Command, ConflictCommand, OrgCommand};
use crate::context::Ctx;
use crate::{Exit, UsageError};

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Whether a command reads or writes the server: the only ones `--server-file` changes.
fn uses_server(command: &Command) -> bool {
    matches!(
        command,
        Command::Plan(_)
            | Command::Import(_)
            | Command::Apply(_)
            | Command::Sync(_)
            | Command::Wizard(_)
            | Command::Server(_)
    )
}

pub fn dispatch(cli: Cli) -> Result<Exit> {
    let ctx = Ctx::new(&cli)?;
    let named = match (&cli.server_file, &cli.scim) {
        (Some(file), _) => Some(format!("--server-file {}", file.display())),
        (None, Some(url)) => Some(format!("--scim {url}")),
        (None, None) => None,
    };
    if let Some(named) = named {
        if !uses_server(&cli.command) {
            // Never ignored silently: this command reads only the log (or the tenant).
            crate::render::say(&format!(
                "note: {} has no effect here: this command does not read the server\n",
                crate::render::cell(&named)
            ));
        }
    }
    match cli.command {
        Command::Org(OrgCommand::Add(a)) => org::add(&ctx, &a),
        Command::Org(OrgCommand::Login { name }) => org::login(&ctx, &name),
        Command::Org(OrgCommand::Logout { name }) => org::logout(&ctx, &name),
        Command::Org(OrgCommand::List) => org::list(&ctx),
        Command::Org(OrgCommand::Remove { name }) => org::remove(&ctx, &name),
        Command::Org(OrgCommand::Set { name, fixture }) => org::set(&ctx, &name, &fixture),
        Command::Org(OrgCommand::LeaveOut { name, objects }) => {
            org::leave_out(&ctx, &name, &objects)
        }
        Command::Org(OrgCommand::TakeBack { name, objects }) => {
            org::take_back(&ctx, &name, &objects)
        }
        Command::Conflict(ConflictCommand::List { org }) => run::conflicts(&ctx, org.as_deref()),
        Command::Conflict(ConflictCommand::Ack { org, object, note }) => {
            run::acknowledge(&ctx, &org, &object, note.as_deref())
        }
        Command::Conflict(ConflictCommand::Unack { org, object }) => {
            run::withdraw(&ctx, &org, &object)
        }
        Command::Search(a) => org::search(&ctx, &a),
        Command::Record(a) => org::record(&ctx, &a),
        Command::Plan(a) => run::plan_or_import(&ctx, &a, engine::event::Mode::DryRun),
        Command::Import(a) => run::plan_or_import(&ctx, &a, engine::event::Mode::Apply),
        Command::Apply(a) => run::apply(&ctx, &a.run, a.approve),
        Command::Sync(a) => run::sync(&ctx, &a),
        Command::Wizard(a) => crate::wizard::run(&ctx, a.org.as_deref()),
        Command::Demo => run::demo(&ctx),
        Command::Runs(a) => run::runs(&ctx, &a),
        Command::Report(a) => run::report(&ctx, &a.run, a.format, a.all),
        Command::Deleted(a) => run::deleted(&ctx, &a.run),
        Command::Replay(a) => audit::replay(&ctx, &a.run),
        Command::Verify(a) => audit::verify(&ctx, a.head.as_deref(), a.mirrors),
        Command::Events(a) => audit::events(&ctx, a.run.as_deref(), a.since),
        Command::Diff(a) => audit::diff(&ctx, &a.a, &a.b),
        Command::Backup(a) => audit::backup(&ctx, &a.out),
        Command::Restore(a) => audit::restore(&ctx, &a.file, a.head.as_deref()),
        Command::Server(c) => server::server(&ctx, c),
        Command::FakeGraph(a) => dev::fake_graph(&a),
        Command::Fixture(crate::cli::FixtureCommand::Generate(a)) => dev::generate(&a),
        Command::Completions { shell } => dev::completions(shell),
        Command::Manpage { dir } => dev::manpage(dir.as_deref()),
        Command::Store => org::store(&ctx),
    }
}
