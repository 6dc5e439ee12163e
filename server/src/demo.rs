//! The demo realm `make run` starts with: a few thousand realistic sessions.

use chrono::{TimeDelta, Utc};
use sessions::store::SessionStore;
use sessions::{ClientRegistration, GrantKind, NewGrant, NewSession, RealmSettingsUpdate, Result};

const FIRST: &[&str] = &[
    "Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kavya",
    "Luca", "Maya", "Nils", "Olga", "Pedro", "Rania", "Sofia", "Tomás", "Uma", "Viktor", "Wen",
    "Yara", "Zanele",
];
const LAST: &[&str] = &[
    "Smith",
    "Okonkwo",
    "García",
    "Müller",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Nakamura",
    "Silva",
    "Novak",
    "Haddad",
    "Kim",
    "Nguyen",
    "Olsen",
    "Petrov",
    "Schmidt",
    "Tanaka",
    "Weber",
    "Lindqvist",
    "O'Brien",
];
const CLIENTS: &[&str] = &["portal", "mail", "crm", "mobile-app", "billing", "wiki"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
];

/// Creates realm `demo` with `sessions` sessions, unless a realm other than the server's reserved
/// ones (named `_...`) exists already.
pub fn seed(store: &dyn SessionStore, sessions: usize) -> Result<bool> {
    if !store.list_user_realms()?.is_empty() {
        return Ok(false);
    }
    let settings = RealmSettingsUpdate {
        idle_timeout_secs: Some(7 * 24 * 3600),
        absolute_lifetime_secs: Some(30 * 24 * 3600),
        ..Default::default()
    };
    store.put_realm("demo", &settings, "demo-seed", Utc::now())?;
    // The demo's applications have names but no back-channel URI: nothing is sent anywhere.
    for client in CLIENTS {
        let registration = ClientRegistration {
            name: Some(client_name(client)),
            ..Default::default()
        };
        store.put_client("demo", client, &registration, "demo-seed", Utc::now())?;
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
        let first = FIRST[person % FIRST.len()];
        let last = LAST[(person / FIRST.len()) % LAST.len()];
        let mut client_ids = vec![CLIENTS[next() as usize % CLIENTS.len()].to_owned()];
        if next() % 3 == 0 {
            client_ids.push(CLIENTS[next() as usize % CLIENTS.len()].to_owned());
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
            user_agent: Some(AGENTS[next() as usize % AGENTS.len()].to_owned()),
            ..Default::default()
        };
        let age = TimeDelta::seconds((next() % (6 * 24 * 3600)) as i64);
        let created = store.create_session("demo", &new, now - age)?.session;
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
            store.create_grant("demo", &grant, now - age)?;
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
