//! The permission matrix through the service itself: every method that changes something (or
//! shows what only admins may see) refuses, with `SessionError::Forbidden`, a role that does not
//! permit it, and lets the roles that do through to its own rules. The API and the dashboard
//! both call these methods, so this is where a forged call is refused.

use std::sync::Arc;

use chrono::Utc;
use service::admins::AdminAccounts;
use service::api_keys::{ApiKeys, Scope};
use service::backchannel::{Backchannel, SigningKeys};
use service::roles::{Permission, Role};
use service::signals::SignalStreams;
use service::{Actor, ExportFormat, SessionService};
use sessions::store::SledStore;
use sessions::StreamStatus;
use sessions::{
    ClientRegistration, EndAllSessions, EndSessions, NewSession, RealmSettingsUpdate, SessionError,
    SessionQuery,
};

const PASSWORD: &str = "correct-horse-battery";

async fn service() -> (tempfile::TempDir, SessionService) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let keys = Arc::new(ApiKeys::open(store.clone()).await.unwrap());
    let signing = Arc::new(SigningKeys::open(store.clone(), Utc::now()).await.unwrap());
    let streams = Arc::new(SignalStreams::open(store.clone()).await.unwrap());
    let backchannel = Arc::new(Backchannel::new(signing, streams, "http://127.0.0.1"));
    let admins = Arc::new(AdminAccounts::open(store.clone()).await.unwrap());
    (dir, SessionService::new(store, keys, admins, backchannel))
}

fn admin(role: Role) -> Actor {
    Actor::Admin {
        username: format!("{role}-1"),
        sid: "00000000-0000-4000-8000-000000000000".into(),
        role,
    }
}

/// Whether the outcome is the role refusal (any other answer, success or another rule's error,
/// means the role check let it through).
fn forbidden<T>(outcome: Result<T, SessionError>) -> bool {
    match outcome {
        Err(SessionError::Forbidden(message)) => {
            assert!(
                message.contains("only role") || message.contains("needs scope sessions:admin"),
                "{message}"
            );
            true
        }
        _ => false,
    }
}

/// Runs every guarded operation as `actor`; answers, per operation, whether it was refused.
async fn refusals(
    s: &SessionService,
    actor: &Actor,
    tag: &str,
) -> Vec<(&'static str, Permission, bool)> {
    let realm = "r";
    let mut out = Vec::new();
    let mut note = |name, p, refused| out.push((name, p, refused));
    let dry = EndSessions {
        subject_id: Some("alice".into()),
        dry_run: true,
        ..Default::default()
    };
    note(
        "remove",
        Permission::Operate,
        forbidden(s.end_sessions(realm, dry, actor).await),
    );
    let dry_all = EndAllSessions {
        dry_run: true,
        ..Default::default()
    };
    note(
        "remove_all",
        Permission::Operate,
        forbidden(s.end_all_sessions(realm, dry_all, actor).await),
    );
    note(
        "revoke_subject_grants",
        Permission::Operate,
        forbidden(
            s.revoke_subject_grants(realm, "nobody", None, None, actor)
                .await,
        ),
    );
    note(
        "retry_delivery",
        Permission::Operate,
        forbidden(s.retry_delivery(realm, 999, actor).await),
    );
    note(
        "export",
        Permission::Read,
        forbidden(
            s.export(realm, SessionQuery::default(), ExportFormat::Csv, actor)
                .await,
        ),
    );
    note(
        "put_realm",
        Permission::Administer,
        forbidden(
            s.put_realm(realm, RealmSettingsUpdate::default(), actor)
                .await,
        ),
    );
    note(
        "put_client",
        Permission::Administer,
        forbidden(
            s.put_client(realm, "portal", ClientRegistration::default(), actor)
                .await,
        ),
    );
    note(
        "delete_client",
        Permission::Administer,
        forbidden(s.delete_client(realm, "gone", actor).await),
    );
    note(
        "list_api_keys",
        Permission::Administer,
        forbidden(s.list_api_keys(actor).await),
    );
    note(
        "create_api_key",
        Permission::Administer,
        forbidden(
            s.create_api_key(&format!("key-{tag}"), vec![Scope::Read], None, actor)
                .await,
        ),
    );
    note(
        "revoke_api_key",
        Permission::Administer,
        forbidden(s.revoke_api_key("none", actor).await),
    );
    note(
        "rotate_signing_key",
        Permission::Administer,
        forbidden(s.rotate_signing_key(actor).await),
    );
    note(
        "list_admins",
        Permission::Administer,
        forbidden(s.list_admins(actor).await),
    );
    note(
        "create_admin",
        Permission::Administer,
        forbidden(
            s.create_admin(&format!("new-{tag}"), PASSWORD, Role::Viewer, actor)
                .await,
        ),
    );
    note(
        "set_admin_password",
        Permission::Administer,
        forbidden(s.set_admin_password("other", PASSWORD, actor).await),
    );
    note(
        "set_admin_disabled",
        Permission::Administer,
        forbidden(s.set_admin_disabled("other", false, actor).await),
    );
    note(
        "set_admin_role",
        Permission::Administer,
        forbidden(s.set_admin_role("other", Role::Operator, actor).await),
    );
    note(
        "list_signal_streams",
        Permission::Read,
        forbidden(s.list_signal_streams(actor).await),
    );
    note(
        "set_signal_stream_status",
        Permission::Administer,
        forbidden(
            s.set_signal_stream_status(actor, "none", StreamStatus::Disabled, None)
                .await,
        ),
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_is_refused_exactly_what_it_does_not_permit() {
    let (_dir, s) = service().await;
    s.put_realm("r", RealmSettingsUpdate::default(), &Actor::Server)
        .await
        .unwrap();
    s.create_session(
        "r",
        NewSession {
            subject_id: "alice".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.create_admin("other", PASSWORD, Role::Admin, &Actor::Cli)
        .await
        .unwrap();
    let key = |role| Actor::ApiKey {
        name: "k".into(),
        role,
    };
    let actors = [
        ("viewer", admin(Role::Viewer), Some(Role::Viewer)),
        ("operator", admin(Role::Operator), Some(Role::Operator)),
        ("admin", admin(Role::Admin), Some(Role::Admin)),
        ("read-key", key(Some(Role::Viewer)), Some(Role::Viewer)),
        ("issue-key", key(None), None),
        ("admin-key", key(Some(Role::Admin)), Some(Role::Admin)),
    ];
    for (tag, actor, role) in actors {
        for (operation, permission, refused) in refusals(&s, &actor, tag).await {
            let permitted = role.is_some_and(|r| r.may(permission));
            assert_eq!(refused, !permitted, "{tag} {operation}");
        }
    }
    // What was refused left no trace; what was let through did its work.
    let names: Vec<String> = s
        .list_admins(&Actor::Cli)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["new-admin", "new-admin-key", "other"]);
    assert_eq!(
        s.get_session("r", &first_sid(&s).await)
            .await
            .unwrap()
            .subject_id,
        "alice"
    );
}

async fn first_sid(s: &SessionService) -> String {
    s.query("r", SessionQuery::default()).await.unwrap().results[0]
        .sid
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_enabled_admin_can_be_neither_disabled_nor_demoted() {
    let (_dir, s) = service().await;
    let cli = Actor::Cli;
    s.create_admin("vic", PASSWORD, Role::Viewer, &cli)
        .await
        .unwrap();
    s.create_admin("ada", PASSWORD, Role::Admin, &cli)
        .await
        .unwrap();
    let last = |e: SessionError| {
        assert_eq!(e.status(), 409, "{e}");
        assert!(e.to_string().contains("last enabled administrator"), "{e}");
    };
    last(s.set_admin_disabled("ada", true, &cli).await.unwrap_err());
    last(
        s.set_admin_role("ada", Role::Operator, &cli)
            .await
            .unwrap_err(),
    );
    // Another admin, then either change is fine; but not both admins gone.
    s.set_admin_role("vic", Role::Admin, &cli).await.unwrap();
    s.set_admin_disabled("ada", true, &cli).await.unwrap();
    last(
        s.set_admin_role("vic", Role::Viewer, &cli)
            .await
            .unwrap_err(),
    );
    // A disabled admin does not count; enabling one makes room again.
    s.set_admin_disabled("ada", false, &cli).await.unwrap();
    s.set_admin_role("vic", Role::Viewer, &cli).await.unwrap();
    let roles: Vec<(String, Role, bool)> = s
        .list_admins(&cli)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.username, a.role, a.disabled))
        .collect();
    assert_eq!(
        roles,
        [
            ("ada".into(), Role::Admin, false),
            ("vic".into(), Role::Viewer, false)
        ]
    );
    assert!(matches!(
        s.create_admin("vic", PASSWORD, Role::Admin, &cli).await,
        Err(SessionError::Conflict(_))
    ));
    let actions: Vec<(String, String)> = s
        .audit_log(None, 20)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|(_, e)| (e.action, e.outcome))
        .filter(|(a, _)| a.contains("admin"))
        .collect();
    assert_eq!(
        actions[0],
        ("set_admin_role".into(), "ok; admin -> viewer".into())
    );
    assert_eq!(
        actions.last().unwrap(),
        &("create_admin".into(), "ok; role viewer".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_session_acts_with_the_accounts_current_role() {
    let (_dir, s) = service().await;
    s.create_admin("olga", PASSWORD, Role::Operator, &Actor::Cli)
        .await
        .unwrap();
    let created = s
        .sign_ins()
        .sign_in("olga", PASSWORD, None, None)
        .await
        .unwrap();
    let actor = s
        .dashboard_admin(&created.token, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actor.role(), Some(Role::Operator));
    s.set_admin_role("olga", Role::Viewer, &Actor::Cli)
        .await
        .unwrap();
    let actor = s
        .dashboard_admin(&created.token, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actor.role(), Some(Role::Viewer), "from the next request on");
    assert!(!actor.may(Permission::Operate));
}
