//! Organizations (the wizard's first step): add one from a fixture or a live tenant (signing
//! in), list, remove, sign in again or out — and search an org's tenant (its second step).

use std::path::{Path, PathBuf};

use adapters::auth::{
    read_secret_file, AuthMode, Authenticator, Cloud, SecretSource, DEFAULT_PUBLIC_CLIENT_ID,
};
use adapters::fixture::{read_tenant, Loaded};
use adapters::org::{self, parse_root, GraphOrg, OrgConfig, OrgSource};
use engine::search::{SearchRow, SearchView, TypeFilter};
use engine::{Store, TenantId};

use crate::context::Context;
use crate::error::{Error, Result};

/// An org read from its fixture, ready to add: the tenant as the fixture holds it.
pub struct FixtureOrg {
    pub org: OrgConfig,
    pub loaded: Loaded,
}

/// Reads and checks the fixture for org `name` — before any store is opened, so that bad
/// input writes nothing.
pub fn read_fixture(ctx: &Context, name: &str, fixture: &Path) -> Result<FixtureOrg> {
    org::check_org_name(name)?;
    let loaded = read_tenant(fixture)?;
    let path = std::fs::canonicalize(fixture).map_err(|e| {
        Error::bad_input(format!(
            "{}: cannot resolve the path: {}",
            fixture.display(),
            adapters::bounded::io_reason(&e)
        ))
    })?;
    Ok(FixtureOrg {
        org: OrgConfig {
            name: name.to_owned(),
            tenant_id: loaded.snapshot.tenant_id.clone(),
            source: OrgSource::Fixture { path },
            added_at: ctx.clock.now(),
            left_out: Vec::new(),
            sync: None,
        },
        loaded,
    })
}

/// Adds an org read from its fixture.
pub fn add_fixture(store: &dyn Store, fixture: &FixtureOrg) -> Result<()> {
    org::add_org(store, &fixture.org)?;
    store.flush()?;
    Ok(())
}

/// Points a fixture org at another fixture file of the same tenant (a newer recording, a
/// moved file), keeping its name and its runs. The file is read and checked first; a live
/// org, or a fixture of another tenant, is refused and nothing changes.
pub fn set_fixture(
    ctx: &Context,
    store: &dyn Store,
    name: &str,
    fixture: &Path,
) -> Result<FixtureOrg> {
    let current = org::get_org(store, name)?;
    if !matches!(current.source, OrgSource::Fixture { .. }) {
        return Err(Error::bad_input(format!(
            "org {name:?} reads a live tenant, not a fixture; `roster org remove {name}` and `roster org add` change its settings"
        )));
    }
    let mut set = read_fixture(ctx, name, fixture)?;
    if set.org.tenant_id != current.tenant_id {
        return Err(Error::bad_input(format!(
            "{}: tenant {} is not org {name}'s tenant {}; an org keeps its tenant (add another org for this one)",
            fixture.display(),
            set.org.tenant_id,
            current.tenant_id
        )));
    }
    set.org.added_at = current.added_at;
    set.org.left_out = current.left_out;
    set.org.sync = current.sync;
    org::replace_org(store, &set.org)?;
    store.flush()?;
    Ok(set)
}

/// A live org to add: its tenant and app registration, and how to sign in.
#[derive(Debug, Clone)]
pub struct AddGraphOrg {
    pub name: String,
    pub tenant: TenantId,
    /// The app's client id (a GUID); device code defaults to Microsoft's public client.
    pub client_id: Option<TenantId>,
    pub auth: AuthMode,
    /// For client-secret sign-in: a file holding the secret (else `ROSTER_CLIENT_SECRET`).
    pub client_secret_file: Option<PathBuf>,
    /// For certificate sign-in: the PEM file holding the private key and its certificate.
    pub certificate: Option<PathBuf>,
    /// For federated sign-in: the file the platform writes its token to.
    pub assertion_file: Option<PathBuf>,
    pub cloud: Cloud,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
}

/// Checks the settings, signs in (device code shows its prompt through the context), checks
/// the tenant is readable, then saves the org. Nothing is saved if any of it fails.
pub fn add_graph(ctx: &Context, store: &dyn Store, a: &AddGraphOrg) -> Result<AddedGraphOrg> {
    org::check_org_name(&a.name)?;
    let client_id = match (&a.client_id, a.auth) {
        (Some(id), _) => id.to_string(),
        (None, AuthMode::DeviceCode) => DEFAULT_PUBLIC_CLIENT_ID.to_owned(),
        (None, mode) => {
            return Err(Error::bad_input(format!(
                "--auth {} needs --client-id: the Application (client) ID of your app registration",
                auth_flag(mode)
            )))
        }
    };
    let Credentials {
        certificate,
        assertion_file,
        checked,
    } = credential_files(a)?;
    let secret = match (a.auth, &a.client_secret_file) {
        (AuthMode::ClientSecret, Some(f)) => {
            read_secret_file(f).map_err(|e| Error::bad_input(e.to_string()))?;
            Some(SecretSource::File { path: absolute(f)? })
        }
        (AuthMode::ClientSecret, None) => {
            SecretSource::Env
                .load()
                .map_err(|e| Error::bad_input(e.to_string()))?;
            Some(SecretSource::Env)
        }
        (_, Some(_)) => {
            return Err(Error::bad_input(
                "--client-secret-file is for --auth client-secret",
            ))
        }
        (_, None) => None,
    };
    if let Some(u) = &a.graph_url {
        parse_root(u, "--graph-url")?;
    }
    if let Some(u) = &a.login_url {
        parse_root(u, "--login-url")?;
    }
    if store.org(&a.name)?.is_some() {
        return Err(Error::bad_input(format!(
            "org {:?} already exists; remove it first with `roster org remove {}`",
            a.name, a.name
        )));
    }
    let config = OrgConfig {
        name: a.name.clone(),
        tenant_id: a.tenant.clone(),
        source: OrgSource::Graph(GraphOrg {
            client_id,
            auth: a.auth,
            cloud: a.cloud,
            graph_url: a.graph_url.clone(),
            login_url: a.login_url.clone(),
            secret,
            certificate,
            assertion_file,
        }),
        added_at: ctx.clock.now(),
        left_out: Vec::new(),
        sync: None,
    };
    config.sign_in(&ctx.source_env())?;
    org::add_org(store, &config)?;
    store.flush()?;
    Ok(AddedGraphOrg {
        org: config,
        certificate: checked,
    })
}

/// A live org just added, and the certificate it signs in with as it was checked then (for
/// the admin to read: which one, and until when).
pub struct AddedGraphOrg {
    pub org: OrgConfig,
    pub certificate: Option<CertificateChecked>,
}

/// What the admin is told of a certificate credential: its SHA-1 thumbprint (as the Entra
/// admin center shows it) and its end.
#[derive(Debug, Clone)]
pub struct CertificateChecked {
    pub thumbprint: String,
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// The credential files of an org being added, as it keeps them.
struct Credentials {
    certificate: Option<PathBuf>,
    assertion_file: Option<PathBuf>,
    checked: Option<CertificateChecked>,
}

/// How `mode` is spelled on the command line.
fn auth_flag(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::DeviceCode => "device-code",
        AuthMode::ClientSecret => "client-secret",
        AuthMode::Certificate => "certificate",
        AuthMode::Federated => "federated",
    }
}

/// The certificate or federated token file `a` names, checked now (a certificate: only its
/// owner may read it, it holds a matching RSA key and certificate valid today; a token file:
/// a JWT not expired) and kept as an absolute path. Each belongs to its own `--auth`.
fn credential_files(a: &AddGraphOrg) -> Result<Credentials> {
    let bad = |e: adapters::auth::AuthError| Error::bad_input(e.to_string());
    let none = Credentials {
        certificate: None,
        assertion_file: None,
        checked: None,
    };
    match (a.auth, &a.certificate, &a.assertion_file) {
        (AuthMode::Certificate, Some(c), None) => {
            let cert = adapters::auth::certificate_now(c).map_err(bad)?;
            Ok(Credentials {
                certificate: Some(absolute(c)?),
                checked: Some(CertificateChecked {
                    thumbprint: cert.thumbprints().sha1_hex(),
                    not_after: cert.not_after,
                }),
                ..none
            })
        }
        (AuthMode::Certificate, None, _) => Err(Error::bad_input(
            "--auth certificate needs --certificate FILE: a PEM file holding the private key and the certificate uploaded to the app registration",
        )),
        (AuthMode::Federated, None, Some(f)) => {
            adapters::auth::federated_token_now(f).map_err(bad)?;
            Ok(Credentials {
                assertion_file: Some(absolute(f)?),
                ..none
            })
        }
        (AuthMode::Federated, _, None) => Err(Error::bad_input(
            "--auth federated needs --assertion-file FILE: the file the platform writes its token to (as AZURE_FEDERATED_TOKEN_FILE names)",
        )),
        (_, Some(_), _) => Err(Error::bad_input("--certificate is for --auth certificate")),
        (_, _, Some(_)) => Err(Error::bad_input("--assertion-file is for --auth federated")),
        (_, None, None) => Ok(none),
    }
}

/// `f` made absolute without resolving symbolic links: platforms renew a credential by
/// pointing a link at a new file (Kubernetes swaps `..data` to a new directory and removes the
/// old), and the org must keep reading through the link.
fn absolute(f: &Path) -> Result<PathBuf> {
    std::path::absolute(f).map_err(|e| {
        Error::bad_input(format!(
            "{}: cannot resolve the path: {}",
            f.display(),
            adapters::bounded::io_reason(&e)
        ))
    })
}

pub fn list(store: &dyn Store) -> Result<Vec<OrgConfig>> {
    Ok(org::list_orgs(store)?)
}

/// Removes org `name` and forgets its sign-in; its runs stay in the log.
pub fn remove(ctx: &Context, store: &dyn Store, name: &str) -> Result<()> {
    let config = org::get_org(store, name)?;
    forget_tokens(ctx, &config)?;
    org::remove_org(store, name)?;
    store.flush()?;
    Ok(())
}

/// The live org named `name` (an org reading a fixture has nothing to sign in to).
pub fn live(store: &dyn Store, name: &str) -> Result<OrgConfig> {
    let config = org::get_org(store, name)?;
    match &config.source {
        OrgSource::Graph(_) => Ok(config),
        OrgSource::Fixture { .. } => Err(Error::bad_input(format!(
            "org {name} reads a fixture file; there is nothing to sign in to"
        ))),
    }
}

/// Signs in to a live org again (a device code, or the client secret checked); the store
/// need not be held meanwhile.
pub fn login(ctx: &Context, org: &OrgConfig) -> Result<()> {
    org.sign_in(&ctx.source_env())?;
    Ok(())
}

/// Forgets a live org's tokens; says whether there were any.
pub fn logout(ctx: &Context, store: &dyn Store, name: &str) -> Result<bool> {
    let config = live(store, name)?;
    Ok(
        Authenticator::sign_out(&config.token_cache(&ctx.source_env()))
            .map_err(adapters::Error::from)?,
    )
}

fn forget_tokens(ctx: &Context, config: &OrgConfig) -> Result<()> {
    if matches!(config.source, OrgSource::Graph(_)) {
        Authenticator::sign_out(&config.token_cache(&ctx.source_env()))
            .map_err(adapters::Error::from)?;
    }
    Ok(())
}

/// Whether `org` reads a live tenant.
pub fn is_live(org: &OrgConfig) -> bool {
    matches!(org.source, OrgSource::Graph(_))
}

/// The search page: the org's tenant read, and the rows that match `term` (empty: every row).
pub struct Found {
    pub rows: Vec<SearchRow>,
    /// Non-fatal oddities met while reading the tenant.
    pub problems: Vec<String>,
}

/// Searches `org`'s tenant; the store need not stay open (a live tenant can take a while).
pub fn search(ctx: &Context, org: &OrgConfig, term: &str, filter: TypeFilter) -> Result<Found> {
    let loaded = org.source(&ctx.source_env())?.read()?;
    let mut view = SearchView::from_snapshot(&loaded.snapshot);
    let rows = view.search(term, filter).into_iter().cloned().collect();
    Ok(Found {
        rows,
        problems: loaded.problems,
    })
}

/// The org named `name`.
pub fn get(store: &dyn Store, name: &str) -> Result<OrgConfig> {
    Ok(org::get_org(store, name)?)
}

/// The org's tenant as read now (`roster record`).
pub fn read(ctx: &Context, org: &OrgConfig) -> Result<Loaded> {
    Ok(org.source(&ctx.source_env())?.read()?)
}
