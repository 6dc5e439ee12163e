//! Administrator records of a backend that also keeps the server's accounts ([`AccountStore`]).
//! Not in [`conformance_suite!`](crate::conformance_suite), whose backends need only
//! [`SessionStore`](crate::store::SessionStore): a backend with accounts calls it itself.

use chrono::{DateTime, Utc};

use super::{fresh, Backend};
use crate::store::{AccountStore, AdminRecord, AdminRole};

fn record(username: &str, role: AdminRole, disabled: bool) -> AdminRecord {
    AdminRecord {
        username: username.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$hash-of-{username}"),
        created_at: DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap(),
        disabled,
        role,
    }
}

/// Every role is stored and read back as written, by one name and in the listing, also after
/// reopening; replacing a record changes its role.
pub async fn admin_records_keep_their_role<B>(backend: &B)
where
    B: Backend,
    B::Store: AccountStore,
{
    let (store, location) = fresh(backend).await;
    let written = [
        record("ada", AdminRole::Admin, false),
        record("olga", AdminRole::Operator, false),
        record("vic", AdminRole::Viewer, true),
    ];
    for r in &written {
        store.put_admin(r).await.unwrap();
    }
    for r in &written {
        assert_eq!(store.admin(&r.username).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.admins().await.unwrap(), written);
    assert_eq!(store.admin("nobody").await.unwrap(), None);

    let promoted = AdminRecord {
        role: AdminRole::Admin,
        ..written[2].clone()
    };
    store.put_admin(&promoted).await.unwrap();
    backend.close(store).await;
    let store = backend.open(&location).await;
    assert_eq!(store.admin("vic").await.unwrap(), Some(promoted));
    assert_eq!(
        store.admin("olga").await.unwrap().unwrap().role,
        AdminRole::Operator
    );
}
