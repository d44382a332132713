//! Live tenants from the command line: adding a Graph org (and signing in), login/logout,
//! progress while a tenant is read, `roster fake-graph` and `roster record`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use adapters::auth::{
    read_secret_file, AuthMode, Authenticator, Cloud, DevicePrompt, Prompt, SecretSource,
    DEFAULT_PUBLIC_CLIENT_ID,
};
use adapters::clock::{Clock, SystemClock};
use adapters::graph::GraphStats;
use adapters::org::{self, parse_root, GraphOrg, OrgConfig, OrgSource, SourceEnv};
use adapters::record::write_recording;
use devtools::fake::{DeviceOutcome, FakeConfig, FakeGraph};
use engine::{EventStore, TenantId};

use crate::cli::{AuthArg, CloudArg, DeviceArg, FakeGraphArgs, OrgAddArgs, RecordArgs};
use crate::commands::{out, out_json, Ctx};
use crate::{Exit, UsageError};

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Shows the device-code sign-in on stderr: stdout stays data.
pub fn prompt() -> Prompt {
    Arc::new(|p: &DevicePrompt| {
        eprintln!(
            "To sign in, open {} and enter the code {} (multi-factor authentication happens in the browser).",
            crate::render::cell(&p.verification_uri),
            crate::render::cell(&p.user_code)
        );
    })
}

impl Ctx {
    pub fn source_env(&self) -> SourceEnv {
        SourceEnv::new(&self.store_dir, prompt())
    }
}

/// `roster org add NAME --tenant ...`: checks the settings, signs in, then saves the org.
pub fn org_add_graph(ctx: &Ctx, a: &OrgAddArgs, tenant: &str) -> Result<Exit> {
    org::check_org_name(&a.name)?;
    let tenant_id = TenantId::parse(tenant).map_err(|_| {
        usage(format!(
            "--tenant {tenant:?} is not a tenant id: use the Directory (tenant) ID, a GUID shown on the app registration's overview page"
        ))
    })?;
    let auth = match a.auth {
        AuthArg::DeviceCode => AuthMode::DeviceCode,
        AuthArg::ClientSecret => AuthMode::ClientSecret,
    };
    let client_id = match (&a.client_id, auth) {
        (Some(id), _) => {
            TenantId::parse(id).map_err(|_| usage(format!("--client-id {id:?} is not an application (client) id: expected a GUID")))?;
            id.to_ascii_lowercase()
        }
        (None, AuthMode::DeviceCode) => DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
        (None, AuthMode::ClientSecret) => {
            return Err(usage("--auth client-secret needs --client-id: the Application (client) ID of your app registration"))
        }
    };
    let secret = match (auth, &a.client_secret_file) {
        (AuthMode::ClientSecret, Some(f)) => {
            read_secret_file(f).map_err(|e| usage(e.to_string()))?;
            Some(SecretSource::File {
                path: std::fs::canonicalize(f)
                    .with_context(|| format!("{}: cannot resolve the path", f.display()))?,
            })
        }
        (AuthMode::ClientSecret, None) => {
            SecretSource::Env.load().map_err(|e| usage(e.to_string()))?;
            Some(SecretSource::Env)
        }
        (AuthMode::DeviceCode, Some(_)) => {
            return Err(usage("--client-secret-file is for --auth client-secret"))
        }
        (AuthMode::DeviceCode, None) => None,
    };
    let cloud = match a.cloud {
        CloudArg::Global => Cloud::Global,
        CloudArg::Usgov => Cloud::Usgov,
        CloudArg::China => Cloud::China,
    };
    if let Some(u) = &a.graph_url {
        parse_root(u, "--graph-url")?;
    }
    if let Some(u) = &a.login_url {
        parse_root(u, "--login-url")?;
    }
    let store = ctx.create_store()?;
    if store.org(&a.name)?.is_some() {
        return Err(usage(format!(
            "org {:?} already exists; remove it first with `roster org remove {}`",
            a.name, a.name
        )));
    }
    let config = OrgConfig {
        name: a.name.clone(),
        tenant_id,
        source: OrgSource::Graph(GraphOrg {
            client_id,
            auth,
            cloud,
            graph_url: a.graph_url.clone(),
            login_url: a.login_url.clone(),
            secret,
        }),
        added_at: SystemClock.now(),
    };
    let env = ctx.source_env();
    config.sign_in(&env)?;
    org::add_org(&store, &config)?;
    store.flush()?;
    let how = match auth {
        AuthMode::DeviceCode => {
            "signed in (device code); the refresh token is cached so later commands do not prompt"
        }
        AuthMode::ClientSecret => "signed in with the client secret (app-only)",
    };
    if ctx.json {
        out_json(&config)?;
    } else {
        out(&format!(
            "Added org {}: tenant {}, {how}; users and groups are readable.\n",
            config.name, config.tenant_id
        ))?;
    }
    Ok(Exit::Ok)
}

fn graph_org(store: &engine::SledStore, name: &str) -> Result<(OrgConfig, GraphOrg)> {
    let config = org::get_org(store, name)?;
    match &config.source {
        OrgSource::Graph(g) => {
            let g = g.clone();
            Ok((config, g))
        }
        OrgSource::Fixture { .. } => Err(usage(format!(
            "org {name} reads a fixture file; there is nothing to sign in to"
        ))),
    }
}

pub fn org_login(ctx: &Ctx, name: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let (config, _) = graph_org(&store, name)?;
    drop(store);
    config.sign_in(&ctx.source_env())?;
    eprintln!("Signed in to org {name} (tenant {}).", config.tenant_id);
    Ok(Exit::Ok)
}

pub fn org_logout(ctx: &Ctx, name: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let (config, _) = graph_org(&store, name)?;
    let removed = Authenticator::sign_out(&config.token_cache(&ctx.source_env()))
        .map_err(adapters::Error::from)?;
    eprintln!(
        "{}",
        if removed {
            format!("Signed out of org {name}: its tokens are deleted.")
        } else {
            format!("Org {name} had no saved sign-in.")
        }
    );
    Ok(Exit::Ok)
}

/// Forgets an org's tokens when the org is removed.
pub fn forget_tokens(ctx: &Ctx, config: &OrgConfig) -> Result<()> {
    if matches!(config.source, OrgSource::Graph(_)) {
        Authenticator::sign_out(&config.token_cache(&ctx.source_env()))
            .map_err(adapters::Error::from)?;
    }
    Ok(())
}

/// Shows enumeration progress on stderr while `work` runs, if stderr is a terminal, and
/// what reading the tenant cost once it succeeded (a failure stays one line: its error).
pub fn with_progress<T, E>(
    stats: &Arc<GraphStats>,
    live: bool,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let result = show_progress(stats, live, work);
    if live && result.is_ok() {
        let s = stats.snapshot();
        if s.requests > 0 {
            eprintln!(
                "Read from Graph: {} objects in {} pages, {} requests, {} retries ({} throttled), held back {:.1} s by throttling",
                s.objects,
                s.pages,
                s.requests,
                s.retries,
                s.throttled,
                s.held_ms as f64 / 1000.0
            );
        }
    }
    result
}

fn show_progress<T>(stats: &Arc<GraphStats>, live: bool, work: impl FnOnce() -> T) -> T {
    if !live || !std::io::stderr().is_terminal() {
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
                bar.set_message(format!(
                    "reading the tenant: {} objects, {} pages, {} requests, {} retries, {:.1} s throttled",
                    s.objects,
                    s.pages,
                    s.requests,
                    s.retries,
                    s.held_ms as f64 / 1000.0
                ));
                bar.tick();
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

pub fn fake_graph(a: &FakeGraphArgs) -> Result<Exit> {
    let bytes = adapters::fixture::read_input(&a.tenant, "tenant fixture")?;
    let config = FakeConfig {
        page_size: a.page_size.max(1),
        throttle_every: a.throttle_every,
        fail_every: a.fail_every,
        fail_status: a.fail_status,
        fail_after: a.fail_after,
        drop_every: a.drop_every,
        truncate_every: a.truncate_every,
        missing_value_every: a.missing_value_every,
        slow_every: a.slow_every,
        slow: Duration::from_millis(a.slow_ms),
        loop_next_link: a.loop_next_link,
        latency: Duration::from_millis(a.latency_ms),
        ru_per_10s: a.ru_per_10s,
        retry_after: (!a.no_retry_after).then_some(a.retry_after),
        approve_after: a.approve_after,
        device_outcome: match a.device {
            DeviceArg::Approve => DeviceOutcome::Approve,
            DeviceArg::Decline => DeviceOutcome::Decline,
            DeviceArg::Expire => DeviceOutcome::Expire,
        },
        poll_interval: a.poll_interval,
        slow_down_once: false,
        token_ttl: Duration::from_secs(a.token_ttl_s.max(1)),
        expire_tokens_after: a.expire_tokens_after,
        client_secret: a.client_secret.clone(),
        public_client_disabled: a.public_client_disabled,
        deny_consent: a.deny_consent,
        forbid: a.forbid.clone(),
        not_found: a.not_found.clone(),
        oversize_every: a.oversize_every,
        expires_in: a
            .expires_in
            .as_deref()
            .map(|v| serde_json::from_str(v).unwrap_or_else(|_| v.into())),
    };
    let fake = FakeGraph::start(&bytes, &a.tenant.display().to_string(), config, a.addr)?;
    out(&format!("{}\n", fake.base_url))?;
    eprintln!(
        "fake-graph: serving {} on {} until killed",
        a.tenant.display(),
        fake.base_url
    );
    fake.wait();
    Ok(Exit::Ok)
}

pub fn record(ctx: &Ctx, a: &RecordArgs) -> Result<Exit> {
    let store = ctx.open_store()?;
    let config = org::get_org(&store, &a.org)?;
    drop(store);
    let env = ctx.source_env();
    let live = matches!(config.source, OrgSource::Graph(_));
    let source = config.source(&env)?;
    let loaded = with_progress(&env.stats, live, || source.read())?;
    eprint!("{}", crate::render::warnings(&loaded.problems));
    write_recording(&a.out, &loaded.snapshot, a.anonymize)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let s = &loaded.snapshot;
    eprintln!(
        "Recorded org {}: {} users, {} groups, {} deleted users, {} deleted groups{} → {}",
        a.org,
        s.users.len(),
        s.groups.len(),
        s.deleted_users.len(),
        s.deleted_groups.len(),
        if a.anonymize { " (anonymized)" } else { "" },
        a.out.display()
    );
    Ok(Exit::Ok)
}

/// Whether `org` reads a live tenant (for progress display).
pub fn is_live(org: &OrgConfig) -> bool {
    matches!(org.source, OrgSource::Graph(_))
}
