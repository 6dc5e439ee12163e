//! Realistic sample data, for the demo realm (`server serve --demo`) and the benchmarks: the
//! names, applications and browsers generated sessions are made of.

/// Given names: ASCII and not, short and long.
pub const FIRST_NAMES: &[&str] = &[
    "Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kavya",
    "Luca", "Maya", "Nils", "Olga", "Pedro", "Rania", "Sofia", "Tomás", "Uma", "Viktor", "Wen",
    "Yara", "Zanele", "Amir", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Giulia", "Hannah",
];

/// Family names, with pairs that share a prefix ("Smith", "Smithers") so prefix searches match
/// several.
pub const FAMILY_NAMES: &[&str] = &[
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
    "Johnson",
    "Smithers",
    "Garrido",
    "Rosenberg",
    "Kimura",
    "Peterson",
    "Schneider",
    "Nakagawa",
    "Novakova",
    "Walsh",
];

/// Client ids of the applications sessions join.
pub const CLIENT_IDS: &[&str] = &["portal", "mail", "crm", "mobile-app", "billing", "wiki"];

/// Browsers' user agents.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
];
