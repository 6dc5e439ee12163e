//! The accounts of the embedded store: one companion tree each (`companion_api_keys`,
//! `companion_admins`, `companion_signing_keys`, `companion_signal_streams`), keyed by name or id, each value the record as JSON
//! (the layout the service wrote before these went through [`AccountStore`]).

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::Tree;

use super::SledStoreV2;
use crate::error::{Result, SessionError};
use crate::signal::StreamRecord;
use crate::store::accounts::{AccountStore, AdminRecord, ApiKeyRecord, SigningKeyRecord};

fn storage(e: impl std::fmt::Display) -> SessionError {
    SessionError::Storage(e.to_string())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(storage)
}

fn all<T: DeserializeOwned>(tree: &Tree) -> Result<Vec<T>> {
    tree.iter()
        .map(|item| {
            let (_, v) = item?;
            serde_json::from_slice(&v).map_err(storage)
        })
        .collect()
}

impl SledStoreV2 {
    fn accounts(&self, name: &str) -> Result<Tree> {
        self.companion_tree(name)
    }

    /// Every Shared Signals stream (the session endings read them).
    pub(super) fn streams(&self) -> Result<Vec<StreamRecord>> {
        all(&self.accounts("signal_streams")?)
    }
}

#[async_trait::async_trait]
impl AccountStore for SledStoreV2 {
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        all(&self.accounts("api_keys")?)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<bool> {
        let swapped = self.accounts("api_keys")?.compare_and_swap(
            key.name.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(key)?),
        )?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.wait_durable()?;
        Ok(true)
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.accounts("api_keys")?
            .insert(key.name.as_bytes(), encode(key)?)?;
        self.wait_durable()
    }

    async fn delete_api_key(&self, name: &str) -> Result<bool> {
        let existed = self
            .accounts("api_keys")?
            .remove(name.as_bytes())?
            .is_some();
        self.wait_durable()?;
        Ok(existed)
    }

    async fn admin(&self, username: &str) -> Result<Option<AdminRecord>> {
        match self.accounts("admins")?.get(username.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(storage)?)),
            None => Ok(None),
        }
    }

    async fn admins(&self) -> Result<Vec<AdminRecord>> {
        all(&self.accounts("admins")?)
    }

    async fn put_admin(&self, admin: &AdminRecord) -> Result<()> {
        self.accounts("admins")?
            .insert(admin.username.as_bytes(), encode(admin)?)?;
        self.wait_durable()
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        all(&self.accounts("signing_keys")?)
    }

    async fn update_signing_keys(&self, put: &[SigningKeyRecord], delete: &[String]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for kid in delete {
            batch.remove(kid.as_bytes());
        }
        for key in put {
            batch.insert(key.kid.as_bytes(), encode(key)?);
        }
        self.accounts("signing_keys")?.apply_batch(batch)?;
        self.wait_durable()
    }

    async fn signal_streams(&self) -> Result<Vec<StreamRecord>> {
        self.streams()
    }

    async fn put_signal_stream(&self, stream: &StreamRecord) -> Result<()> {
        let taken = self
            .streams()?
            .iter()
            .any(|s| s.key_name == stream.key_name && s.id != stream.id);
        if taken {
            return Err(SessionError::Conflict(format!(
                "API key '{}' has a stream already",
                stream.key_name
            )));
        }
        self.accounts("signal_streams")?
            .insert(stream.id.as_bytes(), encode(stream)?)?;
        self.wait_durable()
    }

    async fn delete_signal_stream(&self, id: &str) -> Result<bool> {
        let existed = self
            .accounts("signal_streams")?
            .remove(id.as_bytes())?
            .is_some();
        self.wait_durable()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::accounts::{AccountStore, AdminRole};
    use crate::store::SledStoreV2;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_administrator_stored_before_roles_existed_reads_as_admin() {
        let store = SledStoreV2::temporary().unwrap();
        // The record exactly as servers without roles wrote it.
        let old = br#"{"username":"root","password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$h","created_at":"2026-01-02T03:04:05Z","disabled":false}"#;
        store
            .companion_tree("admins")
            .unwrap()
            .insert("root", &old[..])
            .unwrap();
        let root = store.admin("root").await.unwrap().unwrap();
        assert_eq!(
            (root.username.as_str(), root.role),
            ("root", AdminRole::Admin)
        );
        assert!(!root.disabled);
        assert_eq!(store.admins().await.unwrap(), [root]);
    }
}
