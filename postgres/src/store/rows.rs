//! How rows read back into the service's types, and the small conversions between them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sessions::store::shared::{from_ms, Position};
use sessions::{
    Delivery, DeliveryStatus, Grant, GrantKind, Network, RealmSettings, Session, SessionError,
    SortKey,
};
use tokio_postgres::Row;
use uuid::Uuid;

use super::db::R;

/// The columns of a session, in the order [`session`] reads them.
pub(crate) const SESSION: &str = "s.sid, s.subject_id, s.display_name, s.created_at, \
     s.last_access_at, s.idle_expires_at, s.expires_at, s.client_ids, s.properties, s.ip, \
     s.user_agent, s.token_hash, s.device, s.network, s.last_ip, s.last_network";

/// A session as read, with the hash of its token.
#[derive(Clone)]
pub(crate) struct StoredSession {
    pub session: Session,
    pub token_hash: Vec<u8>,
}

impl StoredSession {
    pub(crate) fn sid(&self) -> Uuid {
        Uuid::parse_str(&self.session.sid).expect("sids are read from uuid columns")
    }

    /// Whether it is still valid at `now`: before both its idle and absolute expiry.
    pub(crate) fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        now < self.session.effective_expiry()
    }

    /// Its position in a listing in `sort` order.
    pub(crate) fn position(&self, sort: SortKey) -> Position {
        let t = match sort {
            SortKey::Created => self.session.created_at,
            SortKey::LastAccess => self.session.last_access_at,
            SortKey::Expires => self.session.effective_expiry(),
        };
        (t.timestamp_millis(), *self.sid().as_bytes())
    }
}

/// Reads a session from the columns [`SESSION`] names, starting at column `at`.
pub(crate) fn session(row: &Row, at: usize, realm: &str) -> R<StoredSession> {
    let properties: serde_json::Value = row.try_get(at + 8)?;
    let properties: BTreeMap<String, String> = serde_json::from_value(properties)
        .map_err(|e| SessionError::Storage(format!("corrupt session properties: {e}")))?;
    let ip: Option<String> = row.try_get(at + 9)?;
    let network = network(row.try_get(at + 13)?)?;
    let last_ip: Option<String> = row.try_get(at + 14)?;
    let last_network = match &last_ip {
        Some(_) => self::network(row.try_get(at + 15)?)?,
        None => network.clone(),
    };
    Ok(StoredSession {
        session: Session {
            sid: row.try_get::<_, Uuid>(at)?.hyphenated().to_string(),
            realm: realm.to_owned(),
            subject_id: row.try_get(at + 1)?,
            display_name: row.try_get(at + 2)?,
            created_at: row.try_get(at + 3)?,
            last_access_at: row.try_get(at + 4)?,
            idle_expires_at: row.try_get(at + 5)?,
            expires_at: row.try_get(at + 6)?,
            client_ids: row.try_get(at + 7)?,
            properties,
            last_ip: last_ip.or_else(|| ip.clone()),
            ip,
            user_agent: row.try_get(at + 10)?,
            device: row
                .try_get::<_, Option<i32>>(at + 12)?
                .map(|code| sessions::Device::from_code(code as u32)),
            network,
            last_network,
        },
        token_hash: row.try_get(at + 11)?,
    })
}

/// A network as its JSON column holds it.
pub(crate) fn network(v: Option<serde_json::Value>) -> R<Option<Network>> {
    v.map(serde_json::from_value)
        .transpose()
        .map_err(|e| SessionError::Storage(format!("corrupt session network: {e}")).into())
}

/// A network as its JSON column takes it (NULL when it says nothing).
pub(crate) fn network_json(n: Option<&Network>) -> Option<serde_json::Value> {
    n.filter(|n| !n.is_empty())
        .map(|n| serde_json::to_value(n).expect("a network always serializes"))
}

/// A time cut to the millisecond, as every time is stored (listing positions are milliseconds).
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_ms(t.timestamp_millis())
}

/// A realm as the store reads it for an operation.
#[derive(Clone, Debug)]
pub(crate) struct RealmRow {
    pub name: String,
    /// Its number (results tokens are bound to it).
    pub id: i32,
    pub settings: RealmSettings,
    pub created_at: DateTime<Utc>,
}

/// The columns of a realm, in the order [`realm`] reads them.
pub(crate) const REALM: &str = "r.realm, r.id, r.settings, r.created_at";

pub(crate) fn realm(row: &Row, at: usize) -> R<RealmRow> {
    let settings: serde_json::Value = row.try_get(at + 2)?;
    Ok(RealmRow {
        name: row.try_get(at)?,
        id: row.try_get(at + 1)?,
        settings: serde_json::from_value(settings)
            .map_err(|e| SessionError::Storage(format!("corrupt realm settings: {e}")))?,
        created_at: row.try_get(at + 3)?,
    })
}

/// A grant kind's number in `grants.kind`.
pub(crate) fn kind_number(kind: GrantKind) -> i16 {
    match kind {
        GrantKind::RefreshToken => 0,
        GrantKind::AccessToken => 1,
        GrantKind::AuthorizationCode => 2,
        GrantKind::Consent => 3,
    }
}

/// `grants.kind` of consents.
pub(crate) const CONSENT: i16 = 3;

fn kind_of(n: i16) -> R<GrantKind> {
    GrantKind::ALL
        .into_iter()
        .find(|k| kind_number(*k) == n)
        .ok_or_else(|| SessionError::Storage(format!("unknown grant kind {n}")).into())
}

/// The columns of a grant, in the order [`grant`] reads them.
pub(crate) const GRANT: &str =
    "g.id, g.kind, g.subject_id, g.sid, g.client_id, g.scopes, g.created_at, g.expires_at";

pub(crate) fn grant(row: &Row, realm: &str) -> R<Grant> {
    Ok(Grant {
        grant_id: row.try_get::<_, Uuid>(0)?.hyphenated().to_string(),
        realm: realm.to_owned(),
        kind: kind_of(row.try_get(1)?)?,
        subject_id: row.try_get(2)?,
        sid: row
            .try_get::<_, Option<Uuid>>(3)?
            .map(|u| u.hyphenated().to_string()),
        client_id: row.try_get(4)?,
        scopes: row.try_get(5)?,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
    })
}

/// A delivery status's number in `deliveries.status`.
pub(crate) fn status_number(status: DeliveryStatus) -> i16 {
    match status {
        DeliveryStatus::Pending => 0,
        DeliveryStatus::Delivered => 1,
        DeliveryStatus::Failed => 2,
    }
}

pub(crate) fn status_of(n: i16) -> R<DeliveryStatus> {
    DeliveryStatus::ALL
        .into_iter()
        .find(|s| status_number(*s) == n)
        .ok_or_else(|| SessionError::Storage(format!("unknown delivery status {n}")).into())
}

/// The columns of a delivery, in the order [`delivery`] reads them.
pub(crate) const DELIVERY: &str = "d.id, d.realm, d.client_id, d.uri, d.subject_id, d.sid, \
     d.reason, d.status, d.attempts, d.window_attempts, d.created_at, d.retry_window_start, \
     d.next_attempt_at, d.last_attempt_at, d.delivered_at, d.last_error, d.last_jti";

pub(crate) fn delivery(row: &Row) -> R<Delivery> {
    Ok(Delivery {
        id: row.try_get::<_, i64>(0)? as u64,
        realm: row.try_get(1)?,
        client_id: row.try_get(2)?,
        uri: row.try_get(3)?,
        subject_id: row.try_get(4)?,
        sid: row.try_get::<_, Uuid>(5)?.hyphenated().to_string(),
        reason: row.try_get(6)?,
        status: status_of(row.try_get(7)?)?,
        attempts: row.try_get::<_, i32>(8)? as u32,
        window_attempts: row.try_get::<_, i32>(9)? as u32,
        created_at: row.try_get(10)?,
        retry_window_start: row.try_get(11)?,
        next_attempt_at: row.try_get(12)?,
        last_attempt_at: row.try_get(13)?,
        delivered_at: row.try_get(14)?,
        last_error: row.try_get(15)?,
        last_jti: row.try_get(16)?,
    })
}
