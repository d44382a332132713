//! Organizations: a named tenant and how to read it. Kept in the store, never in the log,
//! and never holding a secret.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use engine::{SledStore, TenantId};

use crate::error::{Error, Result};
use crate::source::{FixtureSource, TenantSource};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgConfig {
    pub name: String,
    pub tenant_id: TenantId,
    pub source: OrgSource,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum OrgSource {
    /// A tenant fixture file, read afresh by every run.
    Fixture { path: PathBuf },
}

impl OrgConfig {
    pub fn source(&self) -> Box<dyn TenantSource> {
        match &self.source {
            OrgSource::Fixture { path } => Box::new(FixtureSource::new(path)),
        }
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

pub fn add_org(store: &SledStore, org: &OrgConfig) -> Result<()> {
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

pub fn get_org(store: &SledStore, name: &str) -> Result<OrgConfig> {
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

pub fn list_orgs(store: &SledStore) -> Result<Vec<OrgConfig>> {
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

pub fn remove_org(store: &SledStore, name: &str) -> Result<()> {
    if store.remove_org(name)? {
        Ok(())
    } else {
        Err(unknown_org(name))
    }
}
