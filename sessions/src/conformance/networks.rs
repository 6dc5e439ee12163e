//! Where sessions are: the sign-in's network kept at create, the last address and its network
//! kept when a refresh comes from elsewhere, country and autonomous system filters over both,
//! and the anomaly filters (a subject spread over countries, a new device, a changed country),
//! each for listings, counts and removals with their previews.

use chrono::{DateTime, TimeDelta, Utc};

use super::address_and_time::{in_listing_order, page_both_ways, realm, t0};
use super::fresh;
use super::Backend;
use crate::store::SessionStore;
use crate::{
    EndSessions, EndedQuery, LastAddress, Network, NewSession, Session, SessionError,
    SessionFilters, SessionQuery, SortKey,
};

fn place(country: &str, asn: u32) -> Network {
    Network {
        country: Some(country.into()),
        city: Some(format!("{country} city")),
        asn: Some(asn),
        asn_org: Some(format!("AS of {country}")),
    }
}

fn moved(ip: &str, network: Option<Network>) -> LastAddress {
    LastAddress {
        ip: ip.into(),
        network,
    }
}

async fn start(
    store: &dyn SessionStore,
    subject: &str,
    ip: &str,
    network: Option<Network>,
    agent: Option<&str>,
    at: DateTime<Utc>,
) -> (Session, String) {
    let new = NewSession {
        subject_id: subject.into(),
        ip: Some(ip.into()),
        user_agent: agent.map(str::to_owned),
        ..Default::default()
    };
    let c = store
        .create_located_session("r", &new, network, at)
        .await
        .unwrap();
    (c.session, c.token)
}

/// The sessions a listing finds, in creation order, every page counted exactly.
async fn found(store: &dyn SessionStore, filters: SessionFilters, all: &[&Session]) -> Vec<String> {
    let q = SessionQuery {
        filters,
        count: Some(2),
        ..Default::default()
    };
    let page = store
        .query(
            "r",
            &SessionQuery {
                count: Some(1000),
                ..q.clone()
            },
        )
        .await
        .unwrap();
    let mut sids: Vec<String> = page.results.iter().map(|s| s.sid.clone()).collect();
    let listed: Vec<&Session> = all
        .iter()
        .copied()
        .filter(|s| sids.contains(&s.sid))
        .collect();
    for sort in SortKey::ALL {
        let q = SessionQuery { sort, ..q.clone() };
        page_both_ways(store, &q, &in_listing_order(listed.clone(), sort)).await;
    }
    sids.sort();
    sids
}

fn sorted(sessions: &[&Session]) -> Vec<String> {
    let mut sids: Vec<String> = sessions.iter().map(|s| s.sid.clone()).collect();
    sids.sort();
    sids
}

/// A session keeps the network of its sign-in address; a refresh from another address keeps
/// that address and its network beside it (on every read, the validation included), back at
/// the sign-in's address the last is the sign-in's again, and a session without a network has
/// none.
pub async fn networks_are_kept_at_create_and_follow_a_refresh_from_elsewhere<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let de = place("DE", 3320);
    let fr = place("FR", 3215);
    let (s, token) = start(&store, "alice", "203.0.113.9", Some(de.clone()), None, t0()).await;
    assert_eq!(s.network.as_ref(), Some(&de));
    assert_eq!(s.last_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(s.last_network.as_ref(), Some(&de));

    let now = store
        .note_address("r", &s.sid, &moved("198.51.100.7", Some(fr.clone())))
        .await
        .unwrap()
        .expect("the session is there");
    assert_eq!(now.last_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(now.last_network.as_ref(), Some(&fr));
    assert_eq!(now.network.as_ref(), Some(&de), "the sign-in's stays");
    let read = store.get_session("r", &s.sid).await.unwrap();
    assert_eq!(read, now);
    let held = store
        .validate("r", &token, false, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.last_ip, held.last_network),
        (now.last_ip.clone(), now.last_network.clone())
    );
    let again = store
        .note_address("r", &s.sid, &moved("198.51.100.7", Some(fr.clone())))
        .await
        .unwrap();
    assert_eq!(
        again.as_ref(),
        Some(&now),
        "the same address again changes nothing"
    );

    let unplaced = store
        .note_address("r", &s.sid, &moved("10.0.0.1", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (unplaced.last_ip.as_deref(), &unplaced.last_network),
        (Some("10.0.0.1"), &None)
    );
    let home = store
        .note_address("r", &s.sid, &moved("203.0.113.9", Some(de.clone())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(home.last_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(home.last_network.as_ref(), Some(&de));

    let (plain, _) = start(&store, "bob", "10.1.1.1", None, None, t0()).await;
    assert_eq!((plain.network, plain.last_network), (None, None));
    let gone = store
        .note_address(
            "r",
            "0b7c3f1e-0000-4000-8000-000000000000",
            &moved("10.0.0.2", None),
        )
        .await
        .unwrap();
    assert_eq!(gone, None);
}

/// Country and autonomous system filters match a session by its sign-in's or its last
/// address's network, alone and with a subject, in every order, counted exactly; a removal by
/// country ends exactly those (its preview names them first); malformed values are refused.
pub async fn country_and_network_filters_match_either_address<B: Backend>(backend: &B) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    let at = |i: i64| t0() + TimeDelta::seconds(i);
    let (de, _) = start(
        &store,
        "alice",
        "203.0.113.1",
        Some(place("DE", 3320)),
        None,
        at(0),
    )
    .await;
    let (fr, _) = start(
        &store,
        "alice",
        "198.51.100.1",
        Some(place("FR", 3215)),
        None,
        at(1),
    )
    .await;
    let (us, _) = start(
        &store,
        "bob",
        "192.0.2.1",
        Some(place("US", 7922)),
        None,
        at(2),
    )
    .await;
    let (none, _) = start(&store, "bob", "10.0.0.1", None, None, at(3)).await;
    // Signed in in the US, last seen in Germany.
    let (travel, _) = start(
        &store,
        "carol",
        "192.0.2.2",
        Some(place("US", 7922)),
        None,
        at(4),
    )
    .await;
    let travel = store
        .note_address(
            "r",
            &travel.sid,
            &moved("203.0.113.2", Some(place("DE", 3320))),
        )
        .await
        .unwrap()
        .unwrap();
    let all = [&de, &fr, &us, &none, &travel];
    let by = |country: Option<&str>, asn: Option<&str>, subject: Option<&str>| SessionFilters {
        country: country.map(str::to_owned),
        asn: asn.map(str::to_owned),
        subject_id: subject.map(str::to_owned),
        ..Default::default()
    };
    assert_eq!(
        found(&store, by(Some("DE"), None, None), &all).await,
        sorted(&[&de, &travel])
    );
    assert_eq!(
        found(&store, by(Some("de"), None, None), &all).await,
        sorted(&[&de, &travel]),
        "any case"
    );
    assert_eq!(
        found(&store, by(Some("US"), None, None), &all).await,
        sorted(&[&us, &travel])
    );
    assert_eq!(
        found(&store, by(Some("JP"), None, None), &all).await,
        sorted(&[])
    );
    assert_eq!(
        found(&store, by(None, Some("AS3215"), None), &all).await,
        sorted(&[&fr])
    );
    assert_eq!(
        found(&store, by(None, Some("6483000109"), None), &all).await,
        sorted(&[]),
        "past 32 bits: no autonomous system"
    );
    assert_eq!(
        found(&store, by(None, Some("7922"), Some("bob")), &all).await,
        sorted(&[&us])
    );
    assert_eq!(
        found(&store, by(Some("DE"), Some("as3320"), Some("alice")), &all).await,
        sorted(&[&de])
    );

    let removal = EndSessions {
        country: Some("US".into()),
        dry_run: true,
        ..Default::default()
    };
    let mut preview = store
        .end_sessions("r", &removal, "ops", at(9))
        .await
        .unwrap()
        .ended;
    preview.sort();
    assert_eq!(preview, sorted(&[&us, &travel]));
    let done = EndSessions {
        dry_run: false,
        ..removal
    };
    let mut ended = store
        .end_sessions("r", &done, "ops", at(9))
        .await
        .unwrap()
        .ended;
    ended.sort();
    assert_eq!(ended, preview);
    assert_eq!(store.get_realm("r").await.unwrap().session_count, 3);
    // The history keeps where the ended session signed in and where it was last.
    let history = store
        .ended_sessions(
            "r",
            &EndedQuery {
                sid: Some(travel.sid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gone = &history.results[0];
    assert_eq!(gone.ip.as_deref(), Some("192.0.2.2"));
    assert_eq!(gone.network, Some(place("US", 7922)));
    assert_eq!(gone.last_ip.as_deref(), Some("203.0.113.2"));
    assert_eq!(gone.last_network, Some(place("DE", 3320)));
    let history = store
        .ended_sessions(
            "r",
            &EndedQuery {
                sid: Some(us.sid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gone = &history.results[0];
    assert_eq!(gone.last_ip.as_deref(), Some("192.0.2.1"), "never moved");
    assert_eq!(gone.last_network, gone.network);

    for (filters, field) in [
        (by(Some("DEU"), None, None), "country"),
        (by(Some("1x"), None, None), "country"),
        (by(None, Some("ASX"), None), "asn"),
        (by(None, Some("99999999999"), None), "asn"),
    ] {
        let refused = store
            .query("r", &SessionQuery::from(filters))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, SessionError::InvalidRequest(m) if m.contains(field)),
            "{refused:?}"
        );
    }
    // A window alone qualifies nothing: the listing is every session; a removal names none.
    let window = SessionFilters {
        window_hours: Some("24".into()),
        ..Default::default()
    };
    let live = store.get_realm("r").await.unwrap().session_count;
    let listed = store.query("r", &SessionQuery::from(window)).await.unwrap();
    assert_eq!(listed.total_count, live);
    let removal = EndSessions {
        window_hours: Some("24".into()),
        ..Default::default()
    };
    let refused = store
        .end_sessions("r", &removal, "ops", at(9))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SessionError::InvalidRequest(_)),
        "{refused:?}"
    );
    assert_eq!(store.get_realm("r").await.unwrap().session_count, live);
}

const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const FIREFOX_WINDOWS_NEWER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:134.0) Gecko/20100101 Firefox/134.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// Each anomaly filter finds exactly its sessions, alone and with another filter, counted
/// exactly; a removal by one ends exactly what its preview named; a window outside 1 to 720
/// hours, or without `country_spread`, is refused.
pub async fn anomaly_filters_find_spread_new_devices_and_changed_countries<B: Backend>(
    backend: &B,
) {
    let (store, _at) = fresh(backend).await;
    realm(&store).await;
    // The spread window counts back from the present.
    let now = Utc::now();
    let ago = |hours: i64| now - TimeDelta::hours(hours);
    let (de, fr) = (place("DE", 3320), place("FR", 3215));
    // alice: Germany and France within the day; her iPhone is new to her.
    // bob: Germany twice; then his second session moves to France (a changed country, a spread).
    // carol: a Firefox session that ends (history) and another, then an iPhone: new; her only
    // other country was used 50 hours ago (outside a day, inside three).
    // dave: one session only: nothing to compare with.
    let specs = [
        ("alice", "203.0.113.1", &de, FIREFOX_WINDOWS, 30),
        ("alice", "203.0.113.1", &de, FIREFOX_WINDOWS_NEWER, 5),
        ("alice", "198.51.100.1", &fr, SAFARI_IPHONE, 2),
        ("bob", "203.0.113.5", &de, FIREFOX_WINDOWS, 3),
        ("bob", "203.0.113.6", &de, FIREFOX_WINDOWS, 2),
        ("carol", "198.51.100.9", &fr, FIREFOX_WINDOWS, 50),
        ("carol", "198.51.100.9", &fr, FIREFOX_WINDOWS, 49),
        ("carol", "203.0.113.9", &de, SAFARI_IPHONE, 1),
        ("dave", "203.0.113.7", &de, SAFARI_IPHONE, 1),
    ];
    let mut made = Vec::new();
    for (subject, ip, network, agent, hours) in specs {
        let at = ago(hours);
        made.push(start(&store, subject, ip, Some(network.clone()), Some(agent), at).await);
    }
    let [(a1, _), (a2, _), (a3, _), (b1, _), (b2, _), (_, c0_token), (c1, _), (c2, _), (d1, _)] =
        <[_; 9]>::try_from(made).expect("nine sessions");
    let b2 = store
        .note_address("r", &b2.sid, &moved("198.51.100.6", Some(fr.clone())))
        .await
        .unwrap()
        .unwrap();
    assert!(store.logout("r", &c0_token, ago(48)).await.unwrap());
    let all = [&a1, &a2, &a3, &b1, &b2, &c1, &c2, &d1];
    let anomaly = |a: &str, window: Option<&str>| SessionFilters {
        anomaly: Some(a.into()),
        window_hours: window.map(str::to_owned),
        ..Default::default()
    };
    assert_eq!(
        found(&store, anomaly("country_spread", None), &all).await,
        // alice's first session was last used 30 hours ago: outside the window.
        sorted(&[&a2, &a3, &b1, &b2])
    );
    assert_eq!(
        found(&store, anomaly("country_spread", Some("72")), &all).await,
        sorted(&[&a1, &a2, &a3, &b1, &b2, &c1, &c2])
    );
    assert_eq!(
        found(&store, anomaly("new_device", None), &all).await,
        sorted(&[&a3, &c2])
    );
    assert_eq!(
        found(&store, anomaly("country_changed", None), &all).await,
        sorted(&[&b2])
    );
    let alices = SessionFilters {
        subject_id: Some("alice".into()),
        ..anomaly("new_device", None)
    };
    assert_eq!(found(&store, alices, &all).await, sorted(&[&a3]));

    let removal = EndSessions {
        anomaly: Some("new_device".into()),
        dry_run: true,
        ..Default::default()
    };
    let mut preview = store
        .end_sessions("r", &removal, "ops", now)
        .await
        .unwrap()
        .ended;
    preview.sort();
    assert_eq!(preview, sorted(&[&a3, &c2]));
    let done = EndSessions {
        dry_run: false,
        ..removal
    };
    let mut ended = store
        .end_sessions("r", &done, "ops", now)
        .await
        .unwrap()
        .ended;
    ended.sort();
    assert_eq!(ended, preview);
    assert_eq!(
        found(&store, anomaly("new_device", None), &all).await,
        sorted(&[]),
        "ended sessions show no more"
    );

    for (filters, field) in [
        (anomaly("country_spread", Some("0")), "window_hours"),
        (anomaly("country_spread", Some("721")), "window_hours"),
        (anomaly("odd", None), "anomaly"),
    ] {
        let refused = store
            .query("r", &SessionQuery::from(filters))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, SessionError::InvalidRequest(m) if m.contains(field)),
            "{refused:?}"
        );
    }
}
