//! Listing a realm's sessions: keyset paging over the sort indexes, filters as index lookups
//! (subject in `sessions_by_subject`, client in `session_clients`, display-name word prefixes
//! as ranges of `session_words`), exact counts from the counters where one counter answers the
//! query, else counted over the filtered set.

use sessions::anomaly::{Anomaly, NEW_DEVICE_LOOKBACK_MS};
use sessions::device::BROWSER_AND_OS;
use sessions::model::{QueryResult, SessionQuery, SortKey};
use sessions::store::shared::{
    from_ms, AnomalyFilter, Filters, From, KeysetPage, Position, MAX_PREFIX_CHARS,
};
use sessions::validate;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::counters::{self, Kind};
use super::db::{db_run, Tx, R};
use super::rows::{self, RealmRow, SESSION};
use super::PostgresStore;

/// The column a listing in `sort` order is keyed on.
fn sort_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Created => "s.created_at",
        SortKey::LastAccess => "s.last_access_at",
        SortKey::Expires => "s.ends_at",
    }
}

/// The exclusive upper bound of the words starting with `prefix` (its last character's
/// successor), for a range over the byte-ordered ("C") word index.
fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return chars.into_iter().collect();
        }
    }
    // Only characters at the very top of Unicode: no bound needed below them.
    char::MAX.to_string().repeat(prefix.chars().count() + 1)
}

/// A query's filters as SQL conditions on `s` and their parameters (after the realm, `$1`).
struct Conditions {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    fn of(realm: &str, filters: &Filters) -> Conditions {
        Conditions::except_client(realm, filters, false, &[])
    }

    /// The conditions, without the client filter's when `client_joined` (the query walks that
    /// client's `session_clients` rows itself). Name words in `in_row` are tested against each
    /// session's own words (for a walk that finds matches often); the others through the word
    /// index (whose entries for a rare prefix are few).
    fn except_client(
        realm: &str,
        filters: &Filters,
        client_joined: bool,
        in_row: &[String],
    ) -> Conditions {
        let mut c = Conditions {
            sql: String::new(),
            params: vec![Box::new(realm.to_owned())],
        };
        if let Some(subject) = &filters.subject {
            let n = c.param(subject.clone());
            c.sql.push_str(&format!(" AND s.subject_id = ${n}"));
        }
        if let Some(sid) = &filters.sid {
            let n = c.param(Uuid::from_bytes(*sid));
            c.sql.push_str(&format!(" AND s.sid = ${n}"));
        }
        if let Some(client) = filters.client.as_ref().filter(|_| !client_joined) {
            let n = c.param(client.clone());
            c.sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM session_clients c WHERE c.realm = s.realm
                     AND c.client_id = ${n} AND c.created_at = s.created_at AND c.sid = s.sid)"
            ));
        }
        if let Some(range) = &filters.address {
            let lo = c.param(range.first.to_vec());
            let hi = c.param(range.last.to_vec());
            c.sql
                .push_str(&format!(" AND s.address BETWEEN ${lo} AND ${hi}"));
        }
        if let Some(created) = &filters.created {
            if created.from != i64::MIN {
                let n = c.param(from_ms(created.from));
                c.sql.push_str(&format!(" AND s.created_at >= ${n}"));
            }
            if created.until != i64::MAX {
                let n = c.param(from_ms(created.until));
                c.sql.push_str(&format!(" AND s.created_at < ${n}"));
            }
        }
        if !filters.device.is_empty() {
            let (mask, value) = filters.device.mask();
            let mask = c.param(mask as i32);
            let value = c.param(value as i32);
            c.sql
                .push_str(&format!(" AND s.device & ${mask} = ${value}"));
        }
        if let Some(country) = &filters.country {
            let n = c.param(country.clone());
            c.sql.push_str(&format!(
                " AND (s.network->>'country' = ${n} OR s.last_network->>'country' = ${n})"
            ));
        }
        if let Some(asn) = filters.asn {
            let n = c.param(serde_json::Value::from(asn));
            c.sql.push_str(&format!(
                " AND (s.network->'asn' = ${n}::jsonb OR s.last_network->'asn' = ${n}::jsonb)"
            ));
        }
        if let Some(a) = &filters.anomaly {
            c.anomaly(a);
        }
        for word in &filters.name_words {
            let lo = c.param(word.clone());
            let hi = c.param(prefix_end(word));
            if in_row.contains(word) {
                c.sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM unnest(s.name_words) AS w (word)
                                   WHERE w.word >= ${lo} AND w.word < ${hi})"
                ));
            } else {
                c.sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM session_words w WHERE w.realm = s.realm
                         AND w.word >= ${lo} AND w.word < ${hi}
                         AND w.created_at = s.created_at AND w.sid = s.sid)"
                ));
            }
        }
        c
    }

    /// The anomaly's test: in the row, or over the subject's other sessions and history.
    fn anomaly(&mut self, a: &AnomalyFilter) {
        match a.anomaly {
            Anomaly::CountryChanged => self
                .sql
                .push_str(" AND s.network->>'country' <> s.last_network->>'country'"),
            Anomaly::CountrySpread => {
                let since = self.param(from_ms(a.since_ms));
                self.sql.push_str(&format!(
                    " AND s.last_access_at >= ${since}
                      AND (s.network ? 'country' OR s.last_network ? 'country')
                      AND s.subject_id IN (
                          SELECT o.subject_id FROM sessions o
                           CROSS JOIN LATERAL (VALUES (o.network->>'country'),
                                                      (o.last_network->>'country')) AS c (country)
                           WHERE o.realm = $1 AND o.last_access_at >= ${since}
                             AND c.country IS NOT NULL
                           GROUP BY o.subject_id HAVING count(DISTINCT c.country) >= 2)"
                ));
            }
            Anomaly::NewDevice => {
                let mask = self.param(BROWSER_AND_OS as i32);
                let lookback = self.param(NEW_DEVICE_LOOKBACK_MS as f64 / 1000.0);
                // The subject's other sessions, live and ended, that started in the lookback
                // before this one; `{same}` adds "with this browser and OS".
                let prior = |same: &str| {
                    format!(
                        "SELECT 1 FROM sessions o WHERE o.realm = s.realm
                            AND o.subject_id = s.subject_id AND o.device IS NOT NULL
                            AND o.created_at < s.created_at
                            AND o.created_at >= s.created_at - make_interval(secs => ${lookback}){same}
                         UNION ALL
                         SELECT 1 FROM ended_sessions e WHERE e.realm = s.realm
                            AND e.subject_id = s.subject_id AND e.device IS NOT NULL
                            AND e.created_at < s.created_at
                            AND e.created_at >= s.created_at - make_interval(secs => ${lookback}){}",
                        same.replace("o.", "e.")
                    )
                };
                let same = format!(" AND o.device & ${mask} = s.device & ${mask}");
                self.sql.push_str(&format!(
                    " AND s.device IS NOT NULL AND EXISTS ({}) AND NOT EXISTS ({})",
                    prior(""),
                    prior(&same)
                ));
            }
        }
    }

    fn param<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> usize {
        self.params.push(Box::new(v));
        self.params.len()
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The name words of `filters` common enough that walking the listing and testing each session's
/// own words finds `want` matches sooner than reading every word index entry of the prefix:
/// about `want × realm / matches` sessions walked against `matches` entries read, both counted.
/// (A word longer than the counted prefixes is judged by its counted prefix.)
async fn common_words(tx: &Tx<'_>, realm: &str, filters: &Filters, want: usize) -> R<Vec<String>> {
    if filters.name_words.is_empty() {
        return Ok(Vec::new());
    }
    let counted = |w: &String| w.chars().take(MAX_PREFIX_CHARS).collect::<String>();
    let keys: Vec<String> = filters.name_words.iter().map(counted).collect();
    let (realm_total, words) = futures::try_join!(
        counters::count(tx, realm, Kind::Realm, ""),
        counters::counts(tx, realm, Kind::NamePrefix, &keys),
    )?;
    Ok(filters
        .name_words
        .iter()
        .filter(|w| {
            let matches = words.get(&counted(w)).copied().unwrap_or(0) as u128;
            matches * matches >= want as u128 * realm_total as u128
        })
        .cloned()
        .collect())
}

/// Walks the listing from `from` in listing order (`forward`) or against it, answering up to
/// `want` matching sessions; name words in `in_row` are tested in each session's row.
#[allow(clippy::too_many_arguments)]
async fn scan(
    tx: &Tx<'_>,
    realm: &RealmRow,
    filters: &Filters,
    in_row: &[String],
    sort: SortKey,
    from: From,
    forward: bool,
    want: usize,
) -> R<Vec<(Position, sessions::Session)>> {
    let descending = sort != SortKey::Expires;
    // Newest-first listings walk the index backwards.
    let backwards = forward == descending;
    // In creation order, a client's sessions are walked from its `session_clients` rows, in
    // their key order: probing each session for the client instead read most of the realm
    // before finding a page of a rare client's sessions (1.2 s at a million sessions).
    let walked_client = filters.client.as_ref().filter(|_| sort == SortKey::Created);
    let mut c = Conditions::except_client(&realm.name, filters, walked_client.is_some(), in_row);
    let (column, sid_column) = match walked_client {
        Some(_) => ("c.created_at", "c.sid"),
        None => (sort_column(sort), "s.sid"),
    };
    if let Some(((ms, sid), inclusive)) = from {
        let t = c.param(sessions::store::shared::from_ms(ms));
        let s = c.param(Uuid::from_bytes(sid));
        let op = match (backwards, inclusive) {
            (true, false) => "<",
            (true, true) => "<=",
            (false, false) => ">",
            (false, true) => ">=",
        };
        c.sql
            .push_str(&format!(" AND ({column}, {sid_column}) {op} (${t}, ${s})"));
    }
    let limit = c.param(i64::try_from(want).unwrap_or(i64::MAX));
    let direction = if backwards { "DESC" } else { "ASC" };
    let from = match walked_client {
        Some(client) => {
            let n = c.param(client.clone());
            format!(
                "session_clients c JOIN sessions s ON s.realm = c.realm AND s.sid = c.sid
                 WHERE c.realm = $1 AND c.client_id = ${n} AND s.realm = $1"
            )
        }
        None => "sessions s WHERE s.realm = $1".to_owned(),
    };
    let sql = format!(
        "SELECT {SESSION} FROM {from}{}
          ORDER BY {column} {direction}, {sid_column} {direction} LIMIT ${limit}",
        c.sql
    );
    let found = tx.query(&sql, &c.refs()).await?;
    found
        .iter()
        .map(|row| {
            let s = rows::session(row, 0, &realm.name)?;
            Ok((s.position(sort), s.session))
        })
        .collect()
}

/// Every session of the realm the filters match, newest first, as rows of `columns` (of `s`).
pub(crate) async fn matching(
    tx: &Tx<'_>,
    realm: &str,
    filters: &Filters,
    columns: &str,
) -> R<Vec<tokio_postgres::Row>> {
    let c = Conditions::of(realm, filters);
    let sql = format!(
        "SELECT {columns} FROM sessions s WHERE s.realm = $1{}
          ORDER BY s.created_at DESC, s.sid DESC",
        c.sql
    );
    tx.query(&sql, &c.refs()).await
}

/// The exact number of sessions the filters match: from a counter when one answers it, else
/// counted over the filtered set.
async fn total(tx: &Tx<'_>, realm: &str, filters: &Filters) -> R<u64> {
    // Each filter's counter, if one counts exactly its matches (a longer name word is counted
    // under its indexed prefix only, which may count more).
    let mut counted: Vec<Option<(Kind, &str)>> = Vec::new();
    if let Some(s) = &filters.subject {
        counted.push(Some((Kind::Subject, s)));
    }
    if let Some(c) = &filters.client {
        counted.push(Some((Kind::Client, c)));
    }
    for w in &filters.name_words {
        let exact = w.chars().count() <= MAX_PREFIX_CHARS;
        counted.push(exact.then_some((Kind::NamePrefix, w.as_str())));
    }
    // Counters count every address and creation time: with those filters, count the rows; a
    // device alone is the sum of its kinds', browsers' and systems' counters.
    let ranged = filters.address.is_some() || filters.created.is_some();
    let device = filters.tested_in_row();
    match (filters.sid, counted.as_slice()) {
        _ if ranged => {}
        (None, []) if filters.only_device_in_row() => {
            let keys: Vec<String> = filters
                .device
                .counted_codes()
                .into_iter()
                .map(counters::device_key)
                .collect();
            let counts = counters::counts(tx, realm, Kind::Device, &keys).await?;
            return Ok(counts.values().sum());
        }
        _ if device => {}
        (None, []) => return counters::count(tx, realm, Kind::Realm, "").await,
        (None, [Some((kind, key))]) => return counters::count(tx, realm, *kind, key).await,
        _ => {}
    }
    let c = Conditions::of(realm, filters);
    let sql = format!(
        "SELECT count(*) FROM sessions s WHERE s.realm = $1{}",
        c.sql
    );
    let n: i64 = tx.query_one(&sql, &c.refs()).await?.try_get(0)?;
    Ok(n as u64)
}

impl PostgresStore {
    pub(crate) async fn query_impl(
        &self,
        realm: &str,
        query: &SessionQuery,
    ) -> sessions::Result<QueryResult> {
        db_run!(self.db, async |tx| {
            let realm = self.realms.get(tx, realm).await?;
            validate::query_filters(query)?;
            let count = validate::page_size(query)?;
            let filters = Filters::from_query(query)?;
            let fingerprint = filters.fingerprint(realm.id as u32, query.sort, count);
            let page = KeysetPage::start(&self.results_tokens, fingerprint, query, count)?;
            let (from, forward, want) = page.walk();
            let in_row = common_words(tx, &realm.name, &filters, want).await?;
            // The page's rows and the count in one round trip.
            let (rows, total_count) = futures::try_join!(
                scan(tx, &realm, &filters, &in_row, query.sort, from, forward, want),
                total(tx, &realm.name, &filters)
            )?;
            let beyond_edge = match page.probe(&rows) {
                Some((from, forward, want)) => {
                    let probed = scan(
                        tx, &realm, &filters, &in_row, query.sort, from, forward, want,
                    );
                    !probed.await?.is_empty()
                }
                None => false,
            };
            Ok(page.finish(rows, beyond_edge, total_count))
        })
        .await
    }
}
