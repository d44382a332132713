//! Org settings: kept in their own tree, never in the log, never a secret.

use super::{SledStore, StoreError};

impl SledStore {
    pub fn put_org(&self, name: &str, config: &[u8]) -> Result<(), StoreError> {
        self.check_space(config.len() as u64, "the org's settings")?;
        self.wrote(self.sled()?.orgs.insert(name.as_bytes(), config))?;
        Ok(())
    }

    pub fn org(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.sled()?.orgs.get(name.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn orgs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.sled()?
            .orgs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    pub fn remove_org(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .wrote(self.sled()?.orgs.remove(name.as_bytes()))?
            .is_some())
    }
}
