//! The config file: the store, the server target and run defaults set once, in
//! `$ROSTER_CONFIG`, else `$XDG_CONFIG_HOME/roster/config.toml` (`~/.config/roster/config.toml`).
//! A flag wins over the environment, which wins over the file; a file that is not there is no
//! file. Relative paths in it are relative to its directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use engine::event::DeletedAction;

use crate::UsageError;

/// The longest config file read: a config is a few lines.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// What the config file sets; everything optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The store: a directory, or a PostgreSQL URL (`--store`, `$ROSTER_STORE`).
    pub store: Option<PathBuf>,
    /// A server state file to target instead of the embedded server (`--server-file`).
    pub server_file: Option<PathBuf>,
    /// A SCIM service to target instead of the embedded server (`--scim`).
    pub scim: Option<String>,
    /// The file holding the SCIM service's token (`--scim-token-file`).
    pub scim_token_file: Option<PathBuf>,
    #[serde(default)]
    pub defaults: Defaults,
    /// The file it was read from, if any.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// Defaults of `plan`, `import` and the tables, when their flags are not given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    /// `--max-deletions`.
    pub max_deletions: Option<u32>,
    /// `--on-deleted`, for a run with `--check-deleted` that does not say.
    pub on_deleted: Option<DeletedAction>,
    /// `--wide`.
    pub wide: Option<bool>,
}

impl Config {
    /// The config in use: `$ROSTER_CONFIG` (which must exist), else the user's, if there is
    /// one. A file roster cannot use is an error naming it and the place in it.
    pub fn load() -> Result<Config, UsageError> {
        let (path, named) = match std::env::var_os("ROSTER_CONFIG").filter(|p| !p.is_empty()) {
            Some(p) => (PathBuf::from(p), true),
            None => match dirs::config_dir() {
                Some(dir) => (dir.join("roster").join("config.toml"), false),
                None => return Ok(Config::default()),
            },
        };
        if !named && !path.exists() {
            return Ok(Config::default());
        }
        Config::read(&path)
    }

    fn read(path: &Path) -> Result<Config, UsageError> {
        let shown = path.display();
        let bytes = adapters::bounded::read_regular_file(path, MAX_CONFIG_BYTES).map_err(|e| {
            UsageError(format!(
                "config {shown}: {}; fix it, or set ROSTER_CONFIG to another file",
                adapters::bounded::io_reason(&e)
            ))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| UsageError(format!("config {shown}: not UTF-8 text")))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
            UsageError(adapters::error::one_line(&format!(
                "config {shown}:{at} {}",
                e.message()
            )))
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.store,
            &mut config.server_file,
            &mut config.scim_token_file,
        ]
        .into_iter()
        .flatten()
        {
            // A relative path is the config file's neighbour; a PostgreSQL URL is not a path.
            let url = p.to_str().is_some_and(engine::store::is_postgres_url);
            if p.is_relative() && !url {
                *p = dir.join(&*p);
            }
        }
        if config.server_file.is_some() && config.scim.is_some() {
            return Err(UsageError(format!(
                "config {shown}: server-file and scim both name the server; keep one"
            )));
        }
        config.path = Some(path.to_owned());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_sets_paths_relative_to_itself_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "store = \"store\"\n[defaults]\nmax-deletions = 7\non-deleted = \"disable\"\n",
        )
        .unwrap();
        let c = Config::read(&path).unwrap();
        assert_eq!(c.store, Some(dir.path().join("store")));
        assert_eq!(c.defaults.max_deletions, Some(7));
        assert_eq!(c.defaults.on_deleted, Some(DeletedAction::Disable));

        std::fs::write(&path, "store = \"s\"\n\n[defaults]\nmax-deletion = 7\n").unwrap();
        let e = Config::read(&path).unwrap_err().0;
        assert!(e.contains("line 4:") && e.contains("max-deletion"), "{e}");
        std::fs::write(&path, "[defaults]\non-deleted = \"purge\"\n").unwrap();
        let e = Config::read(&path).unwrap_err().0;
        assert!(e.contains("line 2:"), "{e}");
    }
}
