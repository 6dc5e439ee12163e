//! Listings by display-name word prefix: a common prefix is found by walking the listing and
//! testing each session's own words, a rare one through the word index; both give the same
//! pages, and sessions stored before the words were kept in their rows get them by migration.

use std::collections::BTreeSet;

use chrono::Utc;
use sessions::store::SessionStore;
use sessions::{NewSession, SessionFilters, SessionQuery};
use store_postgres::migrations::MIGRATIONS;
use store_postgres::PostgresStore;

mod common;

/// Every sid a name-prefix listing of realm `r` answers, page by page, newest first; and its
/// count.
async fn listed(store: &PostgresStore, prefix: &str) -> (Vec<String>, u64) {
    let mut query = SessionQuery {
        filters: SessionFilters {
            display_name: Some(prefix.into()),
            ..Default::default()
        },
        count: Some(10),
        ..Default::default()
    };
    let mut sids = Vec::new();
    loop {
        let page = store.query("r", &query).await.unwrap();
        sids.extend(page.results.iter().map(|s| s.sid.clone()));
        match page.results_token {
            Some(token) if page.current_page < page.total_pages => {
                query.results_token = Some(token)
            }
            _ => return (sids, page.total_count),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn common_and_rare_prefixes_list_the_same_sessions_as_a_recount() {
    let (url, store) = common::store_with_realm("name_search").await;
    let mut named = Vec::new();
    for i in 0..200 {
        let name = format!("Alice Smith{i}");
        let new = NewSession {
            subject_id: format!("user{i}"),
            display_name: Some(name.clone()),
            ..Default::default()
        };
        let sid = store.create_session("r", &new, Utc::now()).await.unwrap();
        named.push((sid.session.sid, name.to_lowercase()));
    }
    // The sessions with a word starting with the prefix, recounted from the names.
    let recount = |prefix: &str| -> BTreeSet<String> {
        named
            .iter()
            .filter(|(_, name)| name.split(' ').any(|w| w.starts_with(prefix)))
            .map(|(sid, _)| sid.clone())
            .collect()
    };
    // 'smi' matches all 200 (walked), 'smith19' 11 (the word index), 'nobody' none.
    for prefix in ["smi", "smith1", "smith19", "alice", "nobody"] {
        let (sids, total) = listed(&store, prefix).await;
        let expected = recount(prefix);
        assert_eq!(sids.len() as u64, total, "{prefix}");
        assert_eq!(
            sids.iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{prefix}"
        );
        assert_eq!(sids.len(), expected.len(), "{prefix}: no session twice");
    }

    // Sessions written before migration 6 had no words in their rows: it fills them in.
    let client = common::connect(&url).await;
    let (_, _, fill) = MIGRATIONS.iter().find(|m| m.0 == 6).unwrap();
    let name_words = async || -> Vec<Option<Vec<String>>> {
        let rows = client
            .query("SELECT name_words FROM sessions ORDER BY sid", &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    let before = name_words().await;
    client
        .batch_execute(&format!(
            "ALTER TABLE sessions DROP COLUMN name_words; {fill}"
        ))
        .await
        .unwrap();
    let after = name_words().await;
    assert_eq!(before.len(), 200);
    assert_eq!(after, before);
    assert_eq!(before[0].as_ref().map(Vec::len), Some(2));
}
