//! The device a session's user agent names: read at create, the same on every read, and a filter
//! (browser, OS, device type) of listings, counts and removals, alone and with the indexed
//! filters, checked against a brute-force answer.

use chrono::TimeDelta;

use super::address_and_time::{in_listing_order, page_both_ways, realm, t0};
use super::{check_property, fresh, Backend};
use crate::device::{Browser, Device, DeviceKind, Os};
use crate::store::SessionStore;
use crate::{
    EndSessions, NewSession, Session, SessionError, SessionFilters, SessionQuery, SortKey,
};

/// User agents of every kind of device, and none.
const AGENTS: &[Option<&str>] = &[
    Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
    Some("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    Some("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
    Some("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
    Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    Some("curl/8.5.0"),
    None,
];
const SUBJECTS: &[&str] = &["alice", "bob"];
const CLIENTS: &[&str] = &["portal", "mail"];

/// A filter value a query may give: absent, or a value of the choice (some never matching here).
fn pick<T: Copy>(all: &[T], i: Option<usize>) -> Option<T> {
    i.map(|i| all[i % all.len()])
}

/// Whether a session passes a query's filters, worked out without the store.
fn passes(s: &Session, f: &SessionFilters) -> bool {
    let device = s.user_agent.as_deref().map(Device::of_user_agent);
    let part =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    f.subject_id.as_ref().is_none_or(|x| *x == s.subject_id)
        && f.client_id
            .as_ref()
            .is_none_or(|c| s.client_ids.contains(c))
        && f.created_after.is_none_or(|t| s.created_at >= t)
        && part(&f.browser, device.map(|d| d.browser.as_str()))
        && part(&f.os, device.map(|d| d.os.as_str()))
        && part(&f.device_type, device.map(|d| d.kind.as_str()))
}

fn expected(all: &[Session], q: &SessionQuery) -> Vec<String> {
    in_listing_order(
        all.iter().filter(|s| passes(s, &q.filters)).collect(),
        q.sort,
    )
}

/// A generated session: user agent, subject, client, creation offset in seconds.
type Spec = (usize, usize, usize, i64);
/// A generated query: browser, OS, device type, subject, client, created-after, sort, page size.
type QuerySpec = (
    Option<usize>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
    Option<i64>,
    usize,
    u32,
);

/// Every session carries the device its user agent names (none without one), on create, get,
/// validation and listing; filtered by browser, OS and device type, alone and with a subject, a
/// client or a creation time, every order and page size visits exactly the matches, each page
/// counted exactly.
pub async fn devices_are_read_at_create_and_filter_listings_exactly<B: Backend>(backend: &B) {
    let specs = proptest::collection::vec(
        (
            0..AGENTS.len(),
            0..SUBJECTS.len(),
            0..CLIENTS.len(),
            0..20i64,
        ),
        0..30,
    );
    let queries = proptest::collection::vec(
        (
            proptest::option::weighted(0.5, 0..Browser::ALL.len()),
            proptest::option::weighted(0.4, 0..Os::ALL.len()),
            proptest::option::weighted(0.4, 0..DeviceKind::ALL.len()),
            proptest::option::weighted(0.3, 0..SUBJECTS.len()),
            proptest::option::weighted(0.2, 0..CLIENTS.len()),
            proptest::option::weighted(0.2, 0..20i64),
            0..3usize,
            1..6u32,
        ),
        1..6,
    );
    check_property(
        30,
        file!(),
        (specs, queries),
        |(specs, queries): (Vec<Spec>, Vec<QuerySpec>)| async move {
            let (store, _at) = fresh(backend).await;
            realm(&store).await;
            let mut all = Vec::new();
            for (agent, subject, client, created) in &specs {
                let new = NewSession {
                    subject_id: SUBJECTS[*subject].into(),
                    client_ids: vec![CLIENTS[*client].into()],
                    user_agent: AGENTS[*agent].map(str::to_owned),
                    ..Default::default()
                };
                let at = t0() + TimeDelta::seconds(*created);
                let created = store.create_session("r", &new, at).await.unwrap();
                let want = AGENTS[*agent].map(Device::of_user_agent);
                assert_eq!(created.session.device, want, "device at create");
                let got = store.get_session("r", &created.session.sid).await.unwrap();
                assert_eq!(got.device, want, "device read back");
                let held = store
                    .validate("r", &created.token, false, at)
                    .await
                    .unwrap();
                assert_eq!(held.map(|s| s.device), Some(want), "device on validation");
                all.push(created.session);
            }
            for (browser, os, kind, subject, client, after, sort, count) in queries {
                let q = SessionQuery {
                    filters: SessionFilters {
                        browser: pick(Browser::ALL, browser).map(|b| b.as_str().into()),
                        os: pick(Os::ALL, os).map(|o| o.as_str().into()),
                        device_type: pick(DeviceKind::ALL, kind).map(|k| k.as_str().into()),
                        subject_id: subject.map(|s| SUBJECTS[s].to_owned()),
                        client_id: client.map(|c| CLIENTS[c].to_owned()),
                        created_after: after.map(|s| t0() + TimeDelta::seconds(s)),
                        ..Default::default()
                    },
                    sort: SortKey::ALL[sort],
                    count: Some(count),
                    ..Default::default()
                };
                page_both_ways(&store, &q, &expected(&all, &q)).await;
            }
            Ok(())
        },
    );
}

/// A removal by device ends exactly the sessions of that device (the preview names the same
/// ones first); an unknown browser, OS or device type is refused, in a listing and a removal.
pub async fn removal_by_device_ends_exactly_the_matches_and_unknown_values_are_refused<
    B: Backend,
>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let mut all = Vec::new();
    for (i, agent) in AGENTS.iter().enumerate() {
        let new = NewSession {
            subject_id: SUBJECTS[i % 2].into(),
            user_agent: agent.map(str::to_owned),
            ..Default::default()
        };
        let at = t0() + TimeDelta::seconds(i as i64);
        all.push(store.create_session("r", &new, at).await.unwrap().session);
    }
    let phones = SessionFilters {
        device_type: Some("phone".into()),
        ..Default::default()
    };
    let mut want: Vec<String> = all
        .iter()
        .filter(|s| passes(s, &phones))
        .map(|s| s.sid.clone())
        .collect();
    want.sort();
    assert_eq!(
        want.len(),
        2,
        "the fixture has an iPhone and an Android phone"
    );
    let request = EndSessions {
        device_type: Some("phone".into()),
        dry_run: true,
        ..Default::default()
    };
    let mut preview = store
        .end_sessions("r", &request, "ops", t0())
        .await
        .unwrap()
        .ended;
    preview.sort();
    assert_eq!(preview, want);
    let done = EndSessions {
        dry_run: false,
        ..request
    };
    let mut ended = store
        .end_sessions("r", &done, "ops", t0())
        .await
        .unwrap()
        .ended;
    ended.sort();
    assert_eq!(ended, want);
    let left = store.query("r", &SessionQuery::from(phones)).await.unwrap();
    assert_eq!(left.total_count, 0);
    assert_eq!(
        store.get_realm("r").await.unwrap().session_count,
        AGENTS.len() as u64 - 2
    );

    let unknown = SessionQuery::from(SessionFilters {
        browser: Some("netscape".into()),
        ..Default::default()
    });
    let refused = store.query("r", &unknown).await.unwrap_err();
    assert!(
        matches!(&refused, SessionError::InvalidRequest(m) if m.contains("browser")),
        "{refused:?}"
    );
    let removal = EndSessions {
        os: Some("beos".into()),
        ..Default::default()
    };
    let refused = store
        .end_sessions("r", &removal, "ops", t0())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, SessionError::InvalidRequest(m) if m.contains("os")),
        "{refused:?}"
    );
}
