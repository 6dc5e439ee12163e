//! API keys, administrators and signing keys on PostgreSQL, through the service that keeps them,
//! with two stores on one database standing for two servers.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use service::admins::{AdminAccounts, Verified};
use service::api_keys::{ApiKeys, Scope};
use service::backchannel::SigningKeys;
use sessions::store::{AccountStore, SessionStore};
use sessions::AdminRole;
use sessions::SessionError;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

/// Two stores (two servers) on a new database.
async fn two_servers() -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = ScratchPostgres::shared().new_database("accounts").unwrap();
    (
        Arc::new(PostgresStore::open(&url).await.unwrap()),
        Arc::new(PostgresStore::open(&url).await.unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_stored_hashed_seen_by_every_server_and_revoked_for_all() {
    let (a, b) = two_servers().await;
    let keys_a = ApiKeys::open(a.clone()).await.unwrap();
    let now = Utc::now();
    let (key, secret) = keys_a
        .create("ci", &[Scope::Admin], "admin", now)
        .await
        .unwrap();
    assert_eq!(keys_a.authenticate(&secret).unwrap().name, "ci");
    assert!(matches!(
        keys_a.create("ci", &[Scope::Issue], "admin", now).await,
        Err(SessionError::Conflict(_))
    ));
    let stored = a.api_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].hash.to_vec(), secret.as_bytes().to_vec());
    assert_eq!(stored[0].scopes, ["sessions:admin"]);

    let keys_b = ApiKeys::open(b.clone()).await.unwrap();
    let seen = keys_b.authenticate(&secret).unwrap();
    assert_eq!((&seen.name, &seen.scopes), (&key.name, &key.scopes));
    assert!(keys_a.revoke("ci", "admin", now).await.unwrap());
    assert!(!keys_a.revoke("ci", "admin", now).await.unwrap(), "once");
    assert!(
        keys_a.authenticate(&secret).is_none(),
        "at once where revoked"
    );
    keys_b.reload().await.unwrap();
    assert!(
        keys_b.authenticate(&secret).is_none(),
        "revoked through A, refused by B once B reads the keys again"
    );
    let actions: Vec<String> = b
        .audit_log(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.action)
        .collect();
    assert_eq!(actions, ["revoke_api_key", "create_api_key"]);

    keys_b
        .register("bootstrap", "a-secret-of-sixteen+", &Scope::ALL, now)
        .await
        .unwrap();
    keys_b
        .register("bootstrap", "another-secret-sixteen", &Scope::ALL, now)
        .await
        .unwrap();
    keys_a.reload().await.unwrap();
    assert!(
        keys_a.authenticate("a-secret-of-sixteen+").is_none(),
        "replaced"
    );
    assert!(keys_a.authenticate("another-secret-sixteen").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_sign_in_on_any_server_and_a_disabled_one_cannot() {
    let (a, b) = two_servers().await;
    let admins_a = AdminAccounts::open(a.clone()).await.unwrap();
    let admins_b = AdminAccounts::open(b.clone()).await.unwrap();
    let now = Utc::now();
    admins_a
        .create(
            "alice",
            "correct horse battery",
            AdminRole::Operator,
            "server",
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        admins_b
            .verify("alice", "correct horse battery")
            .await
            .unwrap(),
        Verified::Yes
    );
    assert_eq!(
        admins_b.enabled_role("alice").await.unwrap(),
        Some(AdminRole::Operator),
        "the role is seen by every server"
    );
    assert_eq!(
        admins_b.verify("alice", "wrong password!").await.unwrap(),
        Verified::Wrong
    );
    assert_eq!(
        admins_b
            .verify("bob", "correct horse battery")
            .await
            .unwrap(),
        Verified::Wrong
    );
    let stored = b.admin("alice").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2"), "hashed");
    admins_b
        .set_disabled("alice", true, "admin", now)
        .await
        .unwrap();
    assert_eq!(
        admins_a
            .verify("alice", "correct horse battery")
            .await
            .unwrap(),
        Verified::Disabled
    );
    assert!(admins_a.enabled_role("alice").await.unwrap().is_none());
    let listed = admins_a.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].username.as_str(),
            listed[0].disabled,
            listed[0].role
        ),
        ("alice", true, AdminRole::Operator)
    );
    assert!(
        a.get_realm(service::admins::ADMIN_REALM).await.is_ok(),
        "the realm of dashboard sessions exists"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_keys_are_shared_and_rotation_retires_then_deletes() {
    let (a, b) = two_servers().await;
    let t0 = Utc::now();
    let keys_a = SigningKeys::open(a.clone(), t0).await.unwrap();
    let first = keys_a.current_kid();
    let keys_b = SigningKeys::open(b.clone(), t0).await.unwrap();
    assert_eq!(
        keys_b.current_kid(),
        first,
        "the second server uses the first's key"
    );

    let second = keys_a.rotate(t0).await.unwrap();
    keys_b.reload().await.unwrap();
    assert_eq!(keys_b.current_kid(), second, "rotated through A, used by B");
    let published: Vec<_> = keys_b
        .jwks(t0)
        .keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect();
    assert_eq!(published, [second.clone(), first.clone()]);
    let later = t0 + TimeDelta::days(1);
    let third = keys_a.rotate(later).await.unwrap();
    let kept: Vec<String> = a
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(kept.contains(&second) && kept.contains(&third));
    assert!(!kept.contains(&first), "retired long ago: deleted");
    let reopened = SigningKeys::open(b.clone(), later).await.unwrap();
    assert_eq!(reopened.current_kid(), third);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_limited_to_realms_keeps_them_on_every_server() {
    let (a, b) = two_servers().await;
    let keys_a = ApiKeys::open(a.clone()).await.unwrap();
    let now = Utc::now();
    let (_, limited) = keys_a
        .create_in_realms(
            "idp-a",
            &[Scope::Issue],
            Some(vec!["a".into()]),
            "admin",
            now,
        )
        .await
        .unwrap();
    let (_, every) = keys_a
        .create("idp", &[Scope::Issue], "admin", now)
        .await
        .unwrap();
    let keys_b = ApiKeys::open(b.clone()).await.unwrap();
    let limited = keys_b.authenticate(&limited).unwrap();
    assert_eq!(limited.realms, Some(vec!["a".to_owned()]));
    assert!(limited.reaches("a") && !limited.reaches("b"));
    let every = keys_b.authenticate(&every).unwrap();
    assert_eq!(every.realms, None);
    assert!(every.reaches("a") && every.reaches("b"));
    // Replacing a key keeps what the new one says.
    let record = b
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "idp-a")
        .unwrap();
    b.put_api_key(&sessions::store::ApiKeyRecord {
        realms: None,
        ..record
    })
    .await
    .unwrap();
    assert!(a
        .api_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.realms.is_none()));
}
