//! The demo realm `make run` starts with: a few thousand realistic sessions.

use chrono::{TimeDelta, Utc};
use sessions::sample::{CLIENT_IDS, FAMILY_NAMES, FIRST_NAMES, USER_AGENTS};
use sessions::store::SessionStore;
use sessions::{ClientRegistration, GrantKind, NewGrant, NewSession, RealmSettingsUpdate, Result};

/// Creates realm `demo` with `sessions` sessions, unless a realm other than the server's reserved
/// ones (named `_...`) exists already.
pub async fn seed(store: &dyn SessionStore, sessions: usize) -> Result<bool> {
    if !store.list_user_realms().await?.is_empty() {
        return Ok(false);
    }
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(7 * 24 * 3600),
        absolute_lifetime_secs: Some(30 * 24 * 3600),
        ..Default::default()
    };
    store
        .put_realm("demo", &settings, "demo-seed", Utc::now())
        .await?;
    // The demo's applications have names but no back-channel URI: nothing is sent anywhere.
    for client in CLIENT_IDS {
        let registration = ClientRegistration {
            name: Some(client_name(client)),
            ..Default::default()
        };
        store
            .put_client("demo", client, &registration, "demo-seed", Utc::now())
            .await?;
    }
    let mut x: u64 = 0x853c49e6748fea9b;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let now = Utc::now();
    let people = sessions / 2;
    for _ in 0..sessions {
        let person = next() as usize % people.max(1);
        let first = FIRST_NAMES[person % FIRST_NAMES.len()];
        let last = FAMILY_NAMES[(person / FIRST_NAMES.len()) % FAMILY_NAMES.len()];
        let mut client_ids = vec![CLIENT_IDS[next() as usize % CLIENT_IDS.len()].to_owned()];
        if next() % 3 == 0 {
            client_ids.push(CLIENT_IDS[next() as usize % CLIENT_IDS.len()].to_owned());
        }
        let new = NewSession {
            subject_id: format!(
                "{}.{}{}",
                first.to_lowercase(),
                last.to_lowercase().replace('\'', ""),
                person
            ),
            display_name: Some(format!("{first} {last}")),
            client_ids,
            ip: Some(format!("203.0.113.{}", next() % 254 + 1)),
            user_agent: Some(USER_AGENTS[next() as usize % USER_AGENTS.len()].to_owned()),
            ..Default::default()
        };
        let age = TimeDelta::seconds((next() % (6 * 24 * 3600)) as i64);
        let created = store.create_session("demo", &new, now - age).await?.session;
        // Every third session holds a refresh token for the first application it joined.
        if next() % 3 == 0 {
            let mut token = [0u8; 16];
            for b in &mut token {
                *b = next() as u8;
            }
            let grant = NewGrant {
                kind: GrantKind::RefreshToken,
                subject_id: created.subject_id.clone(),
                sid: Some(created.sid.clone()),
                client_id: created.client_ids[0].clone(),
                expires_at: now + TimeDelta::days(30),
                token: Some(format!("demo-refresh-{}", hex(&token))),
                scopes: vec!["openid".into(), "profile".into(), "offline_access".into()],
            };
            store.create_grant("demo", &grant, now - age).await?;
        }
    }
    Ok(true)
}

/// The display name of a demo application.
fn client_name(id: &str) -> String {
    match id {
        "portal" => "Customer portal",
        "mail" => "Webmail",
        "crm" => "CRM",
        "mobile-app" => "Mobile app",
        "billing" => "Billing",
        "wiki" => "Team wiki",
        other => other,
    }
    .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
