//! Organizations and their tenants: `org add|list|remove|login|logout`, `search`, `record`.

use anyhow::{Context, Result};

use adapters::auth::{AuthMode, Cloud};
use adapters::record::write_recording;
use app::orgs::{self, AddGraphOrg};
use engine::search::TypeFilter;
use engine::TenantId;

use super::usage;
use crate::cli::{AuthArg, CloudArg, OrgAddArgs, RecordArgs, SearchArgs, TypeArg};
use crate::context::{Ctx, StoreFrom};
use crate::render::{self, out, out_json, say};
use crate::Exit;

pub fn add(ctx: &Ctx, a: &OrgAddArgs) -> Result<Exit> {
    match (&a.fixture, &a.tenant) {
        (Some(fixture), _) => {
            // The fixture is read before a store is started for it: bad input writes nothing.
            let added = orgs::read_fixture(&ctx.app, &a.name, fixture)?;
            orgs::add_fixture(&*ctx.create_store()?, &added)?;
            say(&render::warnings(&added.loaded.problems));
            if ctx.json {
                out_json(&added.org)?;
            } else {
                out(&render::org_added_from_fixture(&added, fixture))?;
            }
            Ok(Exit::Ok)
        }
        (None, Some(tenant)) => add_live(ctx, a, tenant),
        (None, None) => Err(usage(
            "org add needs --fixture TENANT.json or --tenant TENANT_ID",
        )),
    }
}

/// `roster org add NAME --tenant ...`: checks the settings, signs in, then saves the org.
fn add_live(ctx: &Ctx, a: &OrgAddArgs, tenant: &str) -> Result<Exit> {
    adapters::org::check_org_name(&a.name)?;
    let tenant = TenantId::parse(tenant).map_err(|_| {
        usage(format!(
            "--tenant {tenant:?} is not a tenant id: use the Directory (tenant) ID, a GUID shown on the app registration's overview page"
        ))
    })?;
    let client_id = match &a.client_id {
        Some(id) => Some(TenantId::parse(id).map_err(|_| {
            usage(format!(
                "--client-id {id:?} is not an application (client) id: expected a GUID"
            ))
        })?),
        None => None,
    };
    let request = AddGraphOrg {
        name: a.name.clone(),
        tenant,
        client_id,
        auth: match a.auth {
            AuthArg::DeviceCode => AuthMode::DeviceCode,
            AuthArg::ClientSecret => AuthMode::ClientSecret,
            AuthArg::Certificate => AuthMode::Certificate,
            AuthArg::Federated => AuthMode::Federated,
        },
        client_secret_file: a.client_secret_file.clone(),
        certificate: a.certificate.clone(),
        assertion_file: a.assertion_file.clone(),
        cloud: match a.cloud {
            CloudArg::Global => Cloud::Global,
            CloudArg::Usgov => Cloud::Usgov,
            CloudArg::China => Cloud::China,
        },
        graph_url: a.graph_url.clone(),
        login_url: a.login_url.clone(),
    };
    let store = ctx.create_store()?;
    let added = orgs::add_graph(&ctx.app, &*store, &request)?;
    if ctx.json {
        out_json(&added.org)?;
    } else {
        out(&render::org_added_live(&added))?;
    }
    Ok(Exit::Ok)
}

pub fn list(ctx: &Ctx) -> Result<Exit> {
    let store = ctx.read_store()?;
    let orgs = orgs::list(&*store)?;
    if ctx.json {
        out_json(&orgs)?;
    } else {
        out(&render::orgs_table(&orgs))?;
    }
    Ok(Exit::Ok)
}

/// `roster store`: where the commands of this shell read and write — the store (and why that
/// one: `--store`, `$ROSTER_STORE` or the default) and the server target — and what the store
/// holds. Never creates a store.
pub fn store(ctx: &Ctx) -> Result<Exit> {
    let dir = ctx.app.store_shown();
    let from = ctx.store_from.describe(&ctx.config);
    let why = match ctx.store_from {
        StoreFrom::Default => {
            "the default; --store DIR, $ROSTER_STORE or the config file name another".to_owned()
        }
        _ => format!("named by {}", render::cell(&from)),
    };
    let config = match &ctx.config.path {
        Some(p) => render::cell(&p.display().to_string()),
        None => "none (settings can be kept in $XDG_CONFIG_HOME/roster/config.toml)".to_owned(),
    };
    let target = match &ctx.app.server {
        app::Server::File(f) => {
            format!("the server file {}", render::cell(&f.display().to_string()))
        }
        app::Server::Scim(url) => format!("the SCIM service at {}", adapters::address::shown(url)),
        app::Server::Embedded => "the embedded server in the store".to_owned(),
    };
    let held = match ctx.app.open_to_read(engine::store::Opening::Existing) {
        Ok(opened) => {
            let store = opened.store;
            let orgs = orgs::list(&*store)?;
            let runs = app::runs::runs(&*store, &Default::default())?;
            let head = engine::EventStore::head(&*store);
            Some(serde_json::json!({
                "orgs": orgs.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
                "runs": runs.len(),
                "events": head.seq.0,
                "head": head.hash.to_string(),
            }))
        }
        Err(app::Error::Store(engine::StoreError::NoStore { .. })) => None,
        Err(e) => return Err(e.into()),
    };
    if ctx.json {
        out_json(&serde_json::json!({
            "store": dir,
            "named": ctx.store_from.on_the_command(),
            "storeFrom": from,
            "config": ctx.config.path.as_ref().map(|p| p.display().to_string()),
            "exists": held.is_some(),
            "target": target,
            "contents": held,
        }))?;
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "Store: {} ({why})\nServer: {target}\nConfig: {config}\n",
        render::cell(&dir)
    );
    match held {
        Some(h) => text.push_str(&format!(
            "Holds: {} ({}), {}, {}; chain head {}\n",
            render::count(h["orgs"].as_array().map_or(0, Vec::len), "org", "orgs"),
            h["orgs"]
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter_map(|n| n.as_str())
                        .map(render::cell)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            render::count(h["runs"].as_u64().unwrap_or(0) as usize, "run", "runs"),
            render::count(
                h["events"].as_u64().unwrap_or(0) as usize,
                "event",
                "events"
            ),
            h["head"].as_str().unwrap_or_default()
        )),
        None => text.push_str("Holds: nothing yet — no store there (adding an org starts one)\n"),
    }
    out(&text)?;
    Ok(Exit::Ok)
}

pub fn set(ctx: &Ctx, name: &str, fixture: &std::path::Path) -> Result<Exit> {
    let store = ctx.open_store()?;
    let set = orgs::set_fixture(&ctx.app, &*store, name, fixture)?;
    say(&render::org_set(&set, fixture));
    Ok(Exit::Ok)
}

pub fn remove(ctx: &Ctx, name: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    orgs::remove(&ctx.app, &*store, name)?;
    say(&render::org_removed(name));
    Ok(Exit::Ok)
}

pub fn login(ctx: &Ctx, name: &str) -> Result<Exit> {
    // The store is not held while the admin signs in.
    let org = orgs::live(&*ctx.open_store()?, name)?;
    orgs::login(&ctx.app, &org)?;
    say(&render::signed_in(&org));
    Ok(Exit::Ok)
}

pub fn logout(ctx: &Ctx, name: &str) -> Result<Exit> {
    let store = ctx.open_store()?;
    let had = orgs::logout(&ctx.app, &*store, name)?;
    say(&render::signed_out(name, had));
    Ok(Exit::Ok)
}

/// `org leave-out NAME [OBJECT…]`: leaves objects out of the org's runs for good, or lists
/// what it leaves out.
pub fn leave_out(ctx: &Ctx, name: &str, objects: &[String]) -> Result<Exit> {
    if objects.is_empty() {
        let org = orgs::get(&*ctx.read_store()?, name)?;
        out(&render::attention::left_out_list(&org.name, &org.left_out))?;
        return Ok(Exit::Ok);
    }
    let store = ctx.open_store()?;
    let change = render::with_progress(&ctx.app.stats, || {
        app::attention::leave_out(&ctx.app, &*store, name, objects)
    })?;
    say(&render::attention::left_out_changed(name, &change, true));
    Ok(Exit::Ok)
}

/// `org take-back NAME OBJECT…`.
pub fn take_back(ctx: &Ctx, name: &str, objects: &[String]) -> Result<Exit> {
    let store = ctx.open_store()?;
    let change = app::attention::take_back(&*store, name, objects)?;
    say(&render::attention::left_out_changed(name, &change, false));
    Ok(Exit::Ok)
}

pub fn search(ctx: &Ctx, a: &SearchArgs) -> Result<Exit> {
    // The store is let go before the tenant is read: a live read can take a while.
    let org = orgs::get(&*ctx.open_store()?, &a.org)?;
    let filter = match a.kind {
        TypeArg::Users => TypeFilter::Users,
        TypeArg::Groups => TypeFilter::Groups,
        TypeArg::All => TypeFilter::All,
    };
    let term = a.term.as_deref().unwrap_or("");
    let found = render::with_progress(&ctx.app.stats, || {
        orgs::search(&ctx.app, &org, term, filter)
    })?;
    say(&render::warnings(&found.problems));
    let rows: Vec<&engine::search::SearchRow> = found.rows.iter().collect();
    if ctx.json {
        out_json(&rows)?;
    } else {
        out(&render::search_table(&rows, render::show_ids(ctx.wide)))?;
    }
    Ok(Exit::Ok)
}

pub fn record(ctx: &Ctx, a: &RecordArgs) -> Result<Exit> {
    let org = orgs::get(&*ctx.open_store()?, &a.org)?;
    let loaded = render::with_progress(&ctx.app.stats, || orgs::read(&ctx.app, &org))?;
    say(&render::warnings(&loaded.problems));
    render::progress::working("writing the recording", || {
        write_recording(&a.out, &loaded.snapshot, a.anonymize)
    })
    .with_context(|| format!("cannot write {}", a.out.display()))?;
    say(&render::recorded(
        &a.org,
        &loaded.snapshot,
        a.anonymize,
        &a.out,
    ));
    Ok(Exit::Ok)
}
