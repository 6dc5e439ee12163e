//! The change feed: every way sessions come or go tells the feed which realm changed, and a
//! change that removes nothing tells nothing about other realms.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{fresh, Backend};
use crate::store::{ChangeSubscription, SessionStore, SessionsChanged};
use crate::{EndAllSessions, EndSessions, NewSession, RealmSettingsUpdate};

/// How long a change may take to arrive (a backend may hear of it through its database).
const ARRIVES_WITHIN: Duration = Duration::from_secs(15);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn new(subject: &str) -> NewSession {
    NewSession {
        subject_id: subject.into(),
        ..Default::default()
    }
}

/// Waits for the feed to name `realm`; answers the changes seen before it. Fails after
/// [`ARRIVES_WITHIN`], or when the feed says everything changed (which would hide a missing
/// change).
fn wait_for(changes: &mut ChangeSubscription, realm: &str, after: &str) -> Vec<SessionsChanged> {
    let started = Instant::now();
    let mut before = Vec::new();
    loop {
        match changes.try_next() {
            Some(SessionsChanged::Realm(r)) if r == realm => return before,
            Some(SessionsChanged::Everything) => {
                panic!("after {after}: the feed said everything changed instead of naming {realm}")
            }
            Some(other) => before.push(other),
            None if started.elapsed() > ARRIVES_WITHIN => {
                panic!("after {after}: no change of {realm} within {ARRIVES_WITHIN:?}")
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

pub async fn creates_and_every_kind_of_removal_name_their_realm_in_the_change_feed<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    let short = RealmSettingsUpdate {
        idle_timeout_secs: Some(60),
        ..Default::default()
    };
    store.put_realm("left", &short, "test", t0()).await.unwrap();
    store
        .put_realm("right", &RealmSettingsUpdate::default(), "test", t0())
        .await
        .unwrap();
    let mut changes = store.changes().subscribe();

    let a = store
        .create_session("left", &new("alice"), t0())
        .await
        .unwrap();
    let seen = wait_for(&mut changes, "left", "a create");
    assert!(seen.is_empty(), "{seen:?}");
    let b = store
        .create_session("right", &new("bob"), t0())
        .await
        .unwrap();
    wait_for(&mut changes, "right", "a create");

    assert!(store.logout("right", &b.token, t0()).await.unwrap());
    wait_for(&mut changes, "right", "a logout");

    let removed = store
        .end_sessions(
            "left",
            &EndSessions {
                sids: vec![a.session.sid.clone()],
                ..Default::default()
            },
            "test",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(removed.records_deleted, 1);
    wait_for(&mut changes, "left", "a removal");

    for subject in ["carol", "dave"] {
        store
            .create_session("right", &new(subject), t0())
            .await
            .unwrap();
        wait_for(&mut changes, "right", "a create");
    }
    let all = store
        .end_all_sessions(
            "right",
            &EndAllSessions {
                reason: Some("test".into()),
                ..Default::default()
            },
            "test",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(all.records_deleted, 2);
    wait_for(&mut changes, "right", "a realm sign-out");

    store
        .create_session("left", &new("erin"), t0())
        .await
        .unwrap();
    wait_for(&mut changes, "left", "a create");
    let reaped = store
        .reap_expired(t0() + TimeDelta::seconds(61), 100)
        .await
        .unwrap();
    assert_eq!(reaped, 1);
    let seen = wait_for(&mut changes, "left", "the reaper");
    assert!(
        !seen.contains(&SessionsChanged::Realm("right".into())),
        "the reaper removed nothing in realm right: {seen:?}"
    );
}
