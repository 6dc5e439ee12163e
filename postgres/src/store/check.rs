//! The store's consistency check: every counter against a recount of what it counts, and the
//! client and word index rows against the sessions they belong to.

use super::db::{db_write, Tx, R};
use super::PostgresStore;

/// For each counter kind, what a recount answers: (realm, key, count).
pub(crate) const RECOUNTS: [(i16, &str, &str); 6] = [
    (
        0,
        "sessions",
        "SELECT realm, '', count(*) FROM sessions GROUP BY realm",
    ),
    (
        1,
        "subject",
        "SELECT realm, subject_id, count(*) FROM sessions GROUP BY realm, subject_id",
    ),
    (
        2,
        "client",
        "SELECT realm, client_id, count(*) FROM session_clients GROUP BY realm, client_id",
    ),
    (
        3,
        "name prefix",
        "SELECT realm, left(word, n), count(DISTINCT sid) FROM session_words
           CROSS JOIN generate_series(1, 12) AS n WHERE char_length(word) >= n
          GROUP BY realm, left(word, n)",
    ),
    (
        4,
        "deliveries",
        "SELECT realm, CASE status WHEN 0 THEN 'pending' WHEN 1 THEN 'delivered' ELSE 'failed' END,
                count(*)
           FROM deliveries GROUP BY 1, 2",
    ),
    (
        5,
        "device",
        "SELECT realm, (device & -65536)::text, count(*) FROM sessions
          WHERE device IS NOT NULL GROUP BY 1, 2",
    ),
];

/// Index rows that name no session, or sessions without theirs.
const INDEX_CHECKS: [(&str, &str); 3] = [
    (
        "client index rows that do not match a session's clients",
        "SELECT count(*) FROM (SELECT realm, unnest(client_ids) AS client_id, created_at, sid
                                 FROM sessions) x
           FULL JOIN session_clients c ON c.realm = x.realm AND c.client_id = x.client_id
                                      AND c.created_at = x.created_at AND c.sid = x.sid
          WHERE c.sid IS NULL OR x.sid IS NULL",
    ),
    (
        "word index rows of no session",
        "SELECT count(*) FROM session_words w WHERE NOT EXISTS (
            SELECT 1 FROM sessions s WHERE s.realm = w.realm AND s.sid = w.sid
                                       AND s.created_at = w.created_at)",
    ),
    (
        "named sessions without word index rows",
        "SELECT count(*) FROM sessions s WHERE s.display_name ~ '[[:alnum:]]' AND NOT EXISTS (
            SELECT 1 FROM session_words w WHERE w.realm = s.realm AND w.sid = s.sid
                                            AND w.created_at = s.created_at)",
    ),
];

async fn problems(tx: &Tx<'_>) -> R<Vec<String>> {
    let mut out = Vec::new();
    for (kind, what, recount) in RECOUNTS {
        let sql = format!(
            "WITH actual (realm, key, n) AS ({recount}),
                  counted AS (SELECT realm, key, sum(count) AS n FROM counter_totals
                               WHERE kind = $1 GROUP BY realm, key)
             SELECT coalesce(a.realm, c.realm)::text, coalesce(a.key, c.key)::text,
                    coalesce(a.n, 0)::int8, coalesce(c.n, 0)::int8
               FROM actual a FULL JOIN counted c
                 ON a.realm::text COLLATE \"C\" = c.realm::text COLLATE \"C\"
                AND a.key::text COLLATE \"C\" = c.key::text COLLATE \"C\"
              WHERE coalesce(a.n, 0) <> coalesce(c.n, 0)"
        );
        for row in tx.query(&sql, &[&kind]).await? {
            out.push(format!(
                "{what} count of '{}' in realm '{}': counted {}, recounted {}",
                row.try_get::<_, String>(1)?,
                row.try_get::<_, String>(0)?,
                row.try_get::<_, i64>(3)?,
                row.try_get::<_, i64>(2)?,
            ));
        }
    }
    for (what, sql) in INDEX_CHECKS {
        let n: i64 = tx.query_one(sql, &[]).await?.try_get(0)?;
        if n != 0 {
            out.push(format!("{what}: {n}"));
        }
    }
    Ok(out)
}

impl PostgresStore {
    /// The inconsistencies found: every count against a recount of the rows it counts, and the
    /// index rows against their sessions. Empty when the store is consistent. Reads every row:
    /// an operator's tool, not for a busy hour.
    pub async fn check(&self) -> sessions::Result<Vec<String>> {
        db_write!(self.db, async |tx| {
            // One snapshot for all the comparisons; reading every row takes what it takes.
            tx.batch(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;
                 SET LOCAL statement_timeout = 0",
            )
            .await?;
            problems(tx).await
        })
        .await
    }
}
