//! Ids mean exactly what they say: a blank subject, sid or client id in a removal is refused
//! before anything happens, a padded one matches nothing, listing filters are not trimmed, and
//! session ids compare as parsed values.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::{check_property, fresh, Backend};
use crate::store::{parse_sid, SessionStore};
use crate::{EndSessions, NewSession, RealmSettingsUpdate, SessionError, SessionQuery};

const SUBJECTS: &[&str] = &["alice", "bob", "carol"];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A realm with two sessions of each subject; answers every (subject, sid).
async fn realm_with_sessions(store: &dyn SessionStore) -> Vec<(String, String)> {
    store
        .put_realm("r", &RealmSettingsUpdate::default(), "test", t0())
        .await
        .unwrap();
    let mut out = Vec::new();
    for subject in SUBJECTS.iter().chain(SUBJECTS) {
        let new = NewSession {
            subject_id: (*subject).into(),
            client_ids: vec!["crm".into()],
            ..Default::default()
        };
        let sid = store
            .create_session("r", &new, t0())
            .await
            .unwrap()
            .session
            .sid;
        out.push(((*subject).to_owned(), sid));
    }
    out
}

async fn count(store: &dyn SessionStore) -> u64 {
    store.get_realm("r").await.unwrap().session_count
}

fn invalid_naming(result: Result<impl std::fmt::Debug, SessionError>, field: &str) {
    match result {
        Err(SessionError::InvalidRequest(m)) => assert!(m.contains(field), "{m:?} names {field}"),
        other => panic!("expected a refusal naming {field}, got {other:?}"),
    }
}

pub async fn blank_ids_in_a_removal_are_refused_before_anything_happens<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let sessions = realm_with_sessions(&store).await;
    let any_sid = sessions[0].1.clone();
    for dry_run in [true, false] {
        for blank in ["", " ", "   ", "\t", " \n "] {
            let base = EndSessions {
                dry_run,
                ..Default::default()
            };
            let requests = [
                (
                    "subject_id",
                    EndSessions {
                        subject_id: Some(blank.into()),
                        ..base.clone()
                    },
                ),
                (
                    "sid",
                    EndSessions {
                        sid: Some(blank.into()),
                        ..base.clone()
                    },
                ),
                (
                    "sids",
                    EndSessions {
                        sids: vec![any_sid.clone(), blank.into()],
                        ..base.clone()
                    },
                ),
                (
                    "client_ids",
                    EndSessions {
                        subject_id: Some("alice".into()),
                        client_ids: Some(vec!["crm".into(), blank.into()]),
                        ..base.clone()
                    },
                ),
            ];
            for (field, request) in requests {
                invalid_naming(
                    store.end_sessions("r", &request, "admin", t0()).await,
                    field,
                );
            }
        }
    }
    assert_eq!(
        count(&store).await,
        sessions.len() as u64,
        "nothing was removed"
    );
    let audit = store.audit_log(None, 100).await.unwrap();
    assert!(
        audit.iter().all(|(_, e)| e.action != "end_sessions"),
        "a refused removal was recorded"
    );
}

pub async fn padded_ids_match_nothing_in_removal_and_listing<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let sessions = realm_with_sessions(&store).await;
    let total = sessions.len() as u64;
    for padded in [" alice", "alice ", "\talice", " alice "] {
        let request = EndSessions {
            subject_id: Some(padded.into()),
            ..Default::default()
        };
        match store.end_sessions("r", &request, "admin", t0()).await {
            Ok(out) => assert_eq!((out.records_deleted, out.ended.len()), (0, 0)),
            // A tab is a control character, refused as such.
            Err(e) => assert!(matches!(e, SessionError::InvalidRequest(_)), "{e:?}"),
        }
        let q = SessionQuery {
            filters: crate::SessionFilters {
                subject_id: Some(padded.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match store.query("r", &q).await {
            Ok(page) => assert_eq!((page.total_count, page.results.len()), (0, 0)),
            Err(e) => assert!(matches!(e, SessionError::InvalidRequest(_)), "{e:?}"),
        }
    }
    assert_eq!(count(&store).await, total);

    // An empty listing filter is no filter (`?subject_id=`); a blank one is a value like any.
    let all = SessionQuery {
        filters: crate::SessionFilters {
            subject_id: Some(String::new()),
            sid: Some(String::new()),
            client_id: Some(String::new()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &all).await.unwrap().total_count, total);
    let blank_subject = SessionQuery {
        filters: crate::SessionFilters {
            subject_id: Some("  ".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        store.query("r", &blank_subject).await.unwrap().total_count,
        0
    );
    let exact = SessionQuery {
        filters: crate::SessionFilters {
            subject_id: Some("alice".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &exact).await.unwrap().total_count, 2);
    let padded_sid = SessionQuery {
        filters: crate::SessionFilters {
            sid: Some(format!(" {}", sessions[0].1)),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        store.query("r", &padded_sid).await,
        Err(SessionError::InvalidRequest(_))
    ));
    let removal = EndSessions {
        sid: Some(format!("{} ", sessions[0].1)),
        ..Default::default()
    };
    assert!(matches!(
        store.end_sessions("r", &removal, "admin", t0()).await,
        Err(SessionError::InvalidRequest(_))
    ));
    let selected = EndSessions {
        sids: vec![format!(" {}", sessions[0].1)],
        ..Default::default()
    };
    let out = store
        .end_sessions("r", &selected, "admin", t0())
        .await
        .unwrap();
    assert_eq!(out.records_deleted, 0);
    assert_eq!(out.not_found, vec![format!(" {}", sessions[0].1)]);
    assert_eq!(count(&store).await, total);
}

pub async fn session_ids_compare_as_parsed_values<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    let sessions = realm_with_sessions(&store).await;
    let (subject, sid) = sessions[0].clone();
    let upper = sid.to_uppercase();
    assert_eq!(parse_sid(&upper), parse_sid(&sid));
    assert_eq!(store.get_session("r", &upper).await.unwrap().sid, sid);
    let q = SessionQuery {
        filters: crate::SessionFilters {
            sid: Some(upper.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &q).await.unwrap().total_count, 1);
    for other_form in [
        format!("{{{sid}}}"),
        format!("urn:uuid:{sid}"),
        sid.replace('-', ""),
    ] {
        assert!(matches!(
            store.get_session("r", &other_form).await,
            Err(SessionError::SessionNotFound(_))
        ));
    }

    let twice = EndSessions {
        sids: vec![
            sid.clone(),
            upper.clone(),
            "junk".into(),
            "junk".into(),
            sid.replace('-', ""),
        ],
        dry_run: true,
        ..Default::default()
    };
    let dry = store
        .end_sessions("r", &twice, "admin", t0())
        .await
        .unwrap();
    assert_eq!(dry.ended, vec![sid.clone()]);
    assert_eq!(dry.records_deleted, 1, "the same session counts once");
    assert_eq!(
        dry.not_found,
        vec!["junk".to_string(), sid.replace('-', "")]
    );
    let done = store
        .end_sessions(
            "r",
            &EndSessions {
                dry_run: false,
                ..twice
            },
            "admin",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!((done.ended, done.records_deleted), (vec![sid], 1));
    let left = SessionQuery {
        filters: crate::SessionFilters {
            subject_id: Some(subject),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(store.query("r", &left).await.unwrap().total_count, 1);
}

/// A blank, padded or exact variant of an id: what goes before and after it.
fn padding() -> impl Strategy<Value = (&'static str, &'static str)> {
    let pad = prop::sample::select(vec!["", " ", "  ", "\t", " \t"]);
    (pad.clone(), pad)
}

/// Removing by a blank or padded variant of a subject id or sid, as a filter or a selection,
/// dry run or not, is refused or removes only the sessions the string names exactly
/// (48 generated cases).
pub async fn a_blank_or_padded_id_removes_nothing_it_was_not_asked_for<B: Backend>(backend: &B) {
    let strategy = (0..6usize, padding(), any::<bool>(), 0..3u8, any::<bool>());
    check_property(
        48,
        file!(),
        strategy,
        |(target, (before, after), blank, how, dry_run)| async move {
            let (store, _at) = fresh(backend).await;
            let sessions = realm_with_sessions(&store).await;
            let total = count(&store).await;
            let (subject, sid) = &sessions[target];
            let core = |id: &str| if blank { String::new() } else { id.to_owned() };
            let exact = before.is_empty() && after.is_empty() && !blank;
            let mut request = EndSessions {
                dry_run,
                ..Default::default()
            };
            // The sessions the given string names exactly: all it may remove.
            let named: Vec<&String> = if how == 0 {
                let given = format!("{before}{}{after}", core(subject));
                request.subject_id = Some(given.clone());
                sessions
                    .iter()
                    .filter(|(s, _)| *s == given)
                    .map(|(_, x)| x)
                    .collect()
            } else {
                let given = format!("{before}{}{after}", core(sid));
                if how == 1 {
                    request.sid = Some(given.clone());
                } else {
                    request.sids = vec![given.clone()];
                }
                sessions
                    .iter()
                    .filter(|(_, x)| *x == given)
                    .map(|(_, x)| x)
                    .collect()
            };
            match store.end_sessions("r", &request, "admin", t0()).await {
                Ok(out) => {
                    prop_assert_eq!(out.records_deleted, named.len() as u64, "{:?}", request);
                    prop_assert!(out.ended.iter().all(|x| named.contains(&x)), "{:?}", out);
                    let removed = if dry_run { 0 } else { named.len() as u64 };
                    prop_assert_eq!(count(&store).await, total - removed);
                }
                Err(e) => {
                    prop_assert!(!exact, "the exact id was refused: {:?}", e);
                    prop_assert!(matches!(e, SessionError::InvalidRequest(_)), "{:?}", e);
                    prop_assert_eq!(count(&store).await, total);
                }
            }
            Ok(())
        },
    );
}
