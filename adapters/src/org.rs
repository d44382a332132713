//! Organizations: a named tenant and how to read it. Kept in the store, never in the log,
//! and never holding a secret: a client secret is read from the environment or a file each
//! time, tokens live in the token cache beside the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use engine::{Store, TenantId};

use crate::auth::{AuthMode, AuthSettings, Authenticator, Cloud, Prompt, SecretSource};
use crate::error::{Error, Result};
use crate::graph::{GraphClient, GraphSource, GraphStats, LiveSource, Query, RetryPolicy};
use crate::interrupt::Interrupt;
use crate::source::{FixtureSource, TenantSource};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgConfig {
    pub name: String,
    pub tenant_id: TenantId,
    pub source: OrgSource,
    pub added_at: DateTime<Utc>,
    /// Objects the admin left out of this org's selection for good (`roster org leave-out`):
    /// every run of the org copies them into its options ([`engine::event::RunOptions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
    /// What `roster sync` repeats, once the admin set it (`roster sync NAME --set-from RUN`);
    /// without one, sync repeats the org's last import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncDefinition>,
}

/// What `roster sync` repeats: an import's selection (as typed, resolved again each time), its
/// options and guards, and the server it imported into — taken from the import `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncDefinition {
    pub selection: engine::event::SelectionSpec,
    pub options: engine::event::RunOptions,
    pub target: engine::event::TargetInfo,
    pub from: engine::RunId,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// An object left out of an org's selection: its Entra object id, and what it was called
/// when it was left out (for the admin to read; the id is what counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftOut {
    pub id: engine::ObjectId,
    pub kind: engine::model::Kind,
    pub name: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum OrgSource {
    /// A tenant fixture file, read afresh by every run.
    Fixture { path: PathBuf },
    /// A live tenant through Microsoft Graph.
    Graph(GraphOrg),
}

/// How to reach and sign in to a live tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphOrg {
    pub client_id: String,
    pub auth: AuthMode,
    pub cloud: Cloud,
    /// Overrides the cloud's Graph root (e.g. `roster fake-graph`'s URL).
    pub graph_url: Option<String>,
    /// Overrides the cloud's login root.
    pub login_url: Option<String>,
    /// Client-secret orgs: where the secret comes from (never the secret itself).
    pub secret: Option<SecretSource>,
    /// Certificate orgs: the PEM file holding the private key and its certificate (the path;
    /// the key is read from it when a token is needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// Federated orgs: the file the platform writes its token to, read at every sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_file: Option<PathBuf>,
}

impl GraphOrg {
    pub fn graph_root(&self) -> Result<Url> {
        parse_root(
            self.graph_url.as_deref().unwrap_or(self.cloud.graph_root()),
            "--graph-url",
        )
    }

    pub fn login_root(&self) -> Result<Url> {
        parse_root(
            self.login_url.as_deref().unwrap_or(self.cloud.login_root()),
            "--login-url",
        )
    }
}

/// An http(s) URL with nothing after the path.
pub fn parse_root(s: &str, flag: &str) -> Result<Url> {
    let shown = crate::address::shown(s);
    let url = Url::parse(s)
        .map_err(|e| Error::bad_input(format!("{flag} {shown:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.cannot_be_a_base()
    {
        return Err(Error::bad_input(format!(
            "{flag} {shown:?}: expected an http(s) URL such as https://graph.microsoft.com"
        )));
    }
    if crate::address::has_credentials(&url) {
        return Err(Error::bad_input(format!(
            "{flag} {shown:?}: credentials do not belong in the URL (roster signs in with the org's --auth)"
        )));
    }
    Ok(url)
}

/// What reading an org's tenant needs from the caller.
#[derive(Clone)]
pub struct SourceEnv {
    /// Where token caches live (`<store>/tokens`).
    pub token_dir: PathBuf,
    /// Shows the admin a device-code sign-in prompt.
    pub prompt: Prompt,
    /// Counters the caller can watch (progress, benchmarks).
    pub stats: Arc<GraphStats>,
    pub policy: RetryPolicy,
    /// Ctrl-C: a live read under way is given up.
    pub stop: Interrupt,
}

impl SourceEnv {
    pub fn new(store_dir: &Path, prompt: Prompt) -> Self {
        SourceEnv {
            token_dir: store_dir.join("tokens"),
            prompt,
            stats: Arc::default(),
            policy: RetryPolicy::from_env(),
            stop: Interrupt::default(),
        }
    }
}

impl OrgConfig {
    /// The ids of what the org leaves out: what every run of it copies into
    /// `RunOptions::leave_out`.
    pub fn leave_out(&self) -> Vec<engine::ObjectId> {
        self.left_out.iter().map(|l| l.id.clone()).collect()
    }

    pub fn source(&self, env: &SourceEnv) -> Result<Box<dyn TenantSource>> {
        match &self.source {
            OrgSource::Fixture { path } => Ok(Box::new(FixtureSource::new(path))),
            OrgSource::Graph(g) => {
                let auth = Arc::new(self.authenticator(g, env)?);
                let client =
                    GraphClient::new(&g.graph_root()?, auth, env.policy, env.stats.clone());
                Ok(Box::new(LiveSource {
                    source: GraphSource::new(client, self.tenant_id.clone()),
                    stop: env.stop.clone(),
                }))
            }
        }
    }

    /// The org's token cache file.
    pub fn token_cache(&self, env: &SourceEnv) -> PathBuf {
        env.token_dir.join(format!("{}.json", self.name))
    }

    pub fn authenticator(&self, g: &GraphOrg, env: &SourceEnv) -> Result<Authenticator> {
        Ok(Authenticator::new(
            AuthSettings {
                tenant: self.tenant_id.clone(),
                client_id: g.client_id.clone(),
                mode: g.auth,
                login_root: g.login_root()?,
                graph_root: g.graph_root()?,
                cache_file: self.token_cache(env),
                secret: g.secret.clone(),
                certificate: g.certificate.clone(),
                assertion_file: g.assertion_file.clone(),
            },
            env.prompt.clone(),
        ))
    }

    /// Signs in afresh and checks that the tenant can be read (a first page of users and of
    /// groups), so that a missing permission shows now rather than during an import.
    pub fn sign_in(&self, env: &SourceEnv) -> Result<()> {
        let OrgSource::Graph(g) = &self.source else {
            return Ok(());
        };
        let auth = Arc::new(self.authenticator(g, env)?);
        let client = GraphClient::new(
            &g.graph_root()?,
            auth.clone(),
            env.policy,
            env.stats.clone(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the HTTP runtime", e))?;
        runtime.block_on(async {
            auth.sign_in().await?;
            for probe in ["users?$select=id&$top=1", "groups?$select=id&$top=1"] {
                client
                    .get_json::<serde_json::Value>(
                        &client.url(probe),
                        Query::Plain,
                        &format!("reading {}", probe.split('?').next().unwrap_or(probe)),
                    )
                    .await?;
            }
            Ok::<(), crate::graph::GraphError>(())
        })?;
        Ok(())
    }
}

/// Org names are short and safe to use in file names: letters, digits, `.`, `-`, `_`.
pub fn check_org_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "org name {name:?} is not valid: use 1 to 64 letters, digits, '.', '-' or '_', not starting with '.'"
        )))
    }
}

pub fn add_org(store: &dyn Store, org: &OrgConfig) -> Result<()> {
    check_org_name(&org.name)?;
    if store.org(&org.name)?.is_some() {
        return Err(Error::bad_input(format!(
            "org {:?} already exists; remove it first with `roster org remove {}`",
            org.name, org.name
        )));
    }
    let bytes = serde_json::to_vec(org).expect("org configs serialize");
    store.put_org(&org.name, &bytes)?;
    Ok(())
}

/// Saves `org` over the org of the same name, which must exist.
pub fn replace_org(store: &dyn Store, org: &OrgConfig) -> Result<()> {
    get_org(store, &org.name)?;
    let bytes = serde_json::to_vec(org).expect("org configs serialize");
    store.put_org(&org.name, &bytes)?;
    Ok(())
}

pub fn get_org(store: &dyn Store, name: &str) -> Result<OrgConfig> {
    match store.org(name)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::Store(engine::StoreError::Corrupt {
                at: format!("org {name}"),
                reason: e.to_string(),
            })
        }),
        None => Err(unknown_org(name)),
    }
}

pub fn unknown_org(name: &str) -> Error {
    Error::bad_input(format!(
        "unknown org {name:?}; `roster org list` shows the orgs, `roster org add {name} --fixture TENANT.json` adds one"
    ))
}

pub fn list_orgs(store: &dyn Store) -> Result<Vec<OrgConfig>> {
    store
        .orgs()?
        .into_iter()
        .map(|(name, bytes)| {
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::Store(engine::StoreError::Corrupt {
                    at: format!("org {name}"),
                    reason: e.to_string(),
                })
            })
        })
        .collect()
}

pub fn remove_org(store: &dyn Store, name: &str) -> Result<()> {
    if store.remove_org(name)? {
        Ok(())
    } else {
        Err(unknown_org(name))
    }
}
