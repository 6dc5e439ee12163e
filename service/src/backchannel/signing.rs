//! The keys that sign logout tokens: ES256 (P-256), generated on first start and kept in the
//! store's database. Rotation makes a new key current and keeps publishing the old one until every
//! token it signed has expired.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use sessions::store::{AccountStore, SigningKeyRecord};
use sessions::{Result, SessionError};

use super::logout_token::{LogoutClaims, LIFETIME_SECS, TOKEN_TYPE};

/// How long after its retirement a key stays published: the token lifetime plus clock skew.
const PUBLISHED_AFTER_RETIREMENT_SECS: i64 = LIFETIME_SECS + 60;

/// A signing key as stored.
type StoredKey = SigningKeyRecord;

/// A loaded key: what signs with it and what publishes it.
struct LoadedKey {
    stored: StoredKey,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// The signing keys of a server.
pub struct SigningKeys {
    store: Arc<dyn AccountStore>,
    /// Every kept key, the current (unretired) one last.
    keys: ArcSwap<Vec<Arc<LoadedKey>>>,
    /// Serialises rotations.
    rotating: tokio::sync::Mutex<()>,
}

fn storage(e: impl std::fmt::Display) -> SessionError {
    SessionError::Storage(e.to_string())
}

impl LoadedKey {
    fn load(stored: StoredKey) -> Result<Self> {
        let der = URL_SAFE_NO_PAD.decode(&stored.pkcs8).map_err(storage)?;
        let encoding = EncodingKey::from_ec_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(storage)?;
        jwk.common.key_id = Some(stored.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self {
            stored,
            encoding,
            jwk,
        })
    }

    fn generate(now: DateTime<Utc>) -> Result<StoredKey> {
        let secret = loop {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes).map_err(storage)?;
            // Almost every 32-byte string is a valid scalar; draw again in the rare other case.
            if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
                break k;
            }
        };
        let der = secret.to_pkcs8_der().map_err(storage)?;
        let mut kid = [0u8; 12];
        getrandom::getrandom(&mut kid).map_err(storage)?;
        Ok(StoredKey {
            kid: URL_SAFE_NO_PAD.encode(kid),
            pkcs8: URL_SAFE_NO_PAD.encode(der.as_bytes()),
            created_at: now,
            retired_at: None,
        })
    }
}

impl SigningKeys {
    /// Loads the keys kept in the store, generating the first one if there is none.
    pub async fn open(store: Arc<dyn AccountStore>, now: DateTime<Utc>) -> Result<Self> {
        let keys = Self {
            store,
            keys: ArcSwap::from_pointee(Vec::new()),
            rotating: tokio::sync::Mutex::new(()),
        };
        keys.reload().await?;
        if keys.keys.load().is_empty() {
            keys.rotate(now).await?;
        }
        Ok(keys)
    }

    pub async fn reload(&self) -> Result<()> {
        let mut loaded = Vec::new();
        for stored in self.store.signing_keys().await? {
            loaded.push(Arc::new(LoadedKey::load(stored)?));
        }
        loaded.sort_by_key(|k| (k.stored.retired_at.is_none(), k.stored.created_at));
        self.keys.store(Arc::new(loaded));
        Ok(())
    }

    /// Makes a new key current and retires the previous one; answers the new key id. Keys retired
    /// long enough ago that no token they signed is still valid are deleted. One atomic batch, so
    /// a crash leaves either the old keys or the new ones; durable when it returns.
    pub async fn rotate(&self, now: DateTime<Utc>) -> Result<String> {
        let _guard = self.rotating.lock().await;
        let fresh = LoadedKey::generate(now)?;
        let keep_after = now - TimeDelta::seconds(PUBLISHED_AFTER_RETIREMENT_SECS);
        let mut put = Vec::new();
        let mut delete = Vec::new();
        for key in self.keys.load().iter() {
            match key.stored.retired_at {
                None => put.push(StoredKey {
                    retired_at: Some(now),
                    ..key.stored.clone()
                }),
                Some(at) if at < keep_after => delete.push(key.stored.kid.clone()),
                Some(_) => {}
            }
        }
        let kid = fresh.kid.clone();
        put.push(fresh);
        self.store.update_signing_keys(&put, &delete).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Id of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.current().stored.kid.clone()
    }

    fn current(&self) -> Arc<LoadedKey> {
        self.keys
            .load()
            .last()
            .cloned()
            .expect("a signing key exists from open on")
    }

    /// Signs logout-token claims with the current key.
    pub fn sign(&self, claims: &LogoutClaims) -> Result<String> {
        self.sign_typed(TOKEN_TYPE, claims)
    }

    /// Signs claims with the current key as a JWT of type `typ` (a logout token, a Security
    /// Event Token).
    pub fn sign_typed(&self, typ: &str, claims: &impl serde::Serialize) -> Result<String> {
        let key = self.current();
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.stored.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(storage)
    }

    /// The public keys to publish at `now`: the current one and those retired too recently for
    /// their tokens to have expired.
    pub fn jwks(&self, now: DateTime<Utc>) -> JwkSet {
        let cutoff = now - TimeDelta::seconds(PUBLISHED_AFTER_RETIREMENT_SECS);
        JwkSet {
            keys: self
                .keys
                .load()
                .iter()
                .rev()
                .filter(|k| k.stored.retired_at.is_none_or(|at| at >= cutoff))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kids(set: &JwkSet) -> Vec<String> {
        set.keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retired_key_is_published_until_its_tokens_expire_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now();
        let store = Arc::new(sessions::store::SledStore::open(dir.path()).unwrap());
        let keys = SigningKeys::open(store.clone(), t0).await.unwrap();
        let first = keys.current_kid();
        let second = keys.rotate(t0).await.unwrap();
        assert_eq!(keys.current_kid(), second);
        assert_eq!(kids(&keys.jwks(t0)), [second.clone(), first.clone()]);
        let expired = t0 + TimeDelta::seconds(PUBLISHED_AFTER_RETIREMENT_SECS + 1);
        assert_eq!(kids(&keys.jwks(expired)), std::slice::from_ref(&second));

        let third = keys.rotate(expired).await.unwrap();
        assert_eq!(
            keys.store.signing_keys().await.unwrap().len(),
            2,
            "the first key is deleted, the second kept"
        );
        assert_eq!(kids(&keys.jwks(expired)), [third.clone(), second]);
        drop(keys);
        let reopened = SigningKeys::open(store, expired).await.unwrap();
        assert_eq!(
            reopened.current_kid(),
            third,
            "the current key survives reopening"
        );
    }
}
