//! Administrator accounts over a real store: disabling one signs it out and keeps it out; a new
//! password ends the other dashboard sessions; sign-in answers what happened.

use std::sync::Arc;

use chrono::Utc;
use service::admins::sign_in::{SignInError, SignIns};
use service::admins::{AdminAccounts, Verified, ADMIN_REALM};
use sessions::store::{SessionStore, SledStore};
use sessions::{AdminRole, SessionError, SessionQuery};

const PASSWORD: &str = "correct-horse-battery";

async fn setup() -> (tempfile::TempDir, Arc<SledStore>, SignIns) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let accounts = Arc::new(AdminAccounts::open(store.clone()).await.unwrap());
    accounts
        .set_password("ada", PASSWORD, None, "test", Utc::now())
        .await
        .unwrap();
    // Another admin, so that disabling ada leaves one.
    accounts
        .set_password("root", PASSWORD, None, "test", Utc::now())
        .await
        .unwrap();
    let sign_ins = SignIns::new(accounts, store.clone());
    (dir, store, sign_ins)
}

async fn sessions_of(store: &SledStore, username: &str) -> u64 {
    let q = SessionQuery {
        filters: sessions::SessionFilters {
            subject_id: Some(username.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    store.query(ADMIN_REALM, &q).await.unwrap().total_count
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_administrator_is_signed_out_and_kept_out_until_enabled() {
    let (_dir, store, sign_ins) = setup().await;
    let a = sign_ins.sign_in("ada", PASSWORD, None, None).await.unwrap();
    sign_ins.sign_in("ada", PASSWORD, None, None).await.unwrap();
    assert_eq!(sessions_of(&store, "ada").await, 2);
    let accounts = sign_ins.accounts().clone();
    accounts
        .set_disabled("ada", true, "test", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        sessions_of(&store, "ada").await,
        0,
        "every dashboard session ended"
    );
    assert!(store
        .validate(ADMIN_REALM, &a.token, false, Utc::now())
        .await
        .unwrap()
        .is_none());
    assert!(accounts.enabled_role("ada").await.unwrap().is_none());
    assert_eq!(
        accounts.verify("ada", PASSWORD).await.unwrap(),
        Verified::Disabled
    );
    assert!(matches!(
        sign_ins.sign_in("ada", PASSWORD, None, None).await,
        Err(SignInError::Disabled)
    ));
    accounts
        .set_disabled("ada", false, "test", Utc::now())
        .await
        .unwrap();
    sign_ins.sign_in("ada", PASSWORD, None, None).await.unwrap();
    let audit = store.audit_log(None, 50).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|(_, e)| e.action.as_str()).collect();
    for wanted in ["disable_admin", "enable_admin", "sign_in", "sign_in_failed"] {
        assert!(actions.contains(&wanted), "{wanted} in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_password_ends_the_other_dashboard_sessions_but_the_one_that_set_it() {
    let (_dir, store, sign_ins) = setup().await;
    let mine = sign_ins.sign_in("ada", PASSWORD, None, None).await.unwrap();
    let other = sign_ins.sign_in("ada", PASSWORD, None, None).await.unwrap();
    let accounts = sign_ins.accounts().clone();
    accounts
        .set_password(
            "ada",
            "a-brand-new-password",
            Some(&mine.session.sid.to_uppercase()),
            "admin:ada",
            Utc::now(),
        )
        .await
        .unwrap();
    let live = async |token: &str| {
        store
            .validate(ADMIN_REALM, token, false, Utc::now())
            .await
            .unwrap()
            .is_some()
    };
    assert!(live(&mine.token).await, "the session that changed it stays");
    assert!(!live(&other.token).await, "the other one ended");
    assert!(matches!(
        sign_ins.sign_in("ada", PASSWORD, None, None).await,
        Err(SignInError::Wrong)
    ));
    sign_ins
        .sign_in("ada", "a-brand-new-password", None, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_from_one_address_are_throttled_across_user_names() {
    let (_dir, _store, sign_ins) = setup().await;
    let attacker = Some("203.0.113.9".parse().unwrap());
    let mut throttled = false;
    for i in 0..25 {
        match sign_ins
            .sign_in(&format!("guess{i}"), "wrong-password", attacker, None)
            .await
        {
            Err(SignInError::Wrong) => {}
            Err(SignInError::Throttled { .. }) => {
                throttled = true;
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(throttled, "many names from one address are slowed down too");
    // Another address is not held up.
    sign_ins
        .sign_in("ada", PASSWORD, Some("198.51.100.7".parse().unwrap()), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_padded_with_whitespace_is_refused_so_no_account_passes_for_another() {
    let (_dir, _store, sign_ins) = setup().await;
    let accounts = sign_ins.accounts();
    for name in ["ada ", " ada", "\tada", "ada\n", " "] {
        let created = accounts
            .create(name, PASSWORD, AdminRole::Viewer, "test", Utc::now())
            .await;
        assert!(
            matches!(created, Err(SessionError::InvalidRequest(_))),
            "{name:?}: {created:?}"
        );
        let set = accounts
            .set_password(name, PASSWORD, None, "test", Utc::now())
            .await;
        assert!(
            matches!(set, Err(SessionError::InvalidRequest(_))),
            "{name:?}: {set:?}"
        );
    }
    let names: Vec<String> = accounts
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["ada", "root"]);
    accounts
        .create(
            "grace hopper",
            PASSWORD,
            AdminRole::Viewer,
            "test",
            Utc::now(),
        )
        .await
        .unwrap();
}
