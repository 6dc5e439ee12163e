//! How the dashboard shows numbers and times.

use chrono::{DateTime, Utc};

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A time relative to `now`: "3 min ago", "in 2 h".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let (n, unit) = match secs.abs() {
        s if s < 60 => {
            return if secs.abs() < 5 {
                "just now".into()
            } else if secs < 0 {
                format!("{s} s ago")
            } else {
                format!("in {s} s")
            }
        }
        s if s < 3600 => (s / 60, "min"),
        s if s < 86_400 => (s / 3600, "h"),
        s => (s / 86_400, "d"),
    };
    if secs < 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

/// The exact time, for tooltips.
pub fn exact(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Characters of an id [`short_id`] keeps.
const SHORT_ID_CHARS: usize = 8;

/// A long id cut to the part that tells it apart: `…` and its last 8 characters. Session ids are
/// time-ordered (UUIDv7), so their first characters are the same for every session created
/// within a minute or so; their last ones are random. A short id is shown whole.
pub fn short_id(id: &str) -> String {
    let len = id.chars().count();
    if len <= SHORT_ID_CHARS + 1 {
        return id.to_owned();
    }
    let tail: String = id.chars().skip(len - SHORT_ID_CHARS).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn short_ids_keep_the_part_that_differs() {
        // Two UUIDv7 session ids of the same second: their ends differ, their starts do not.
        let a = "019a4f2e-7c1d-7b3e-9f4a-1c2d3e4f5a6b";
        let b = "019a4f2e-7c1d-7e01-8a9b-0f1e2d3c4b5a";
        assert_eq!(short_id(a), "…3e4f5a6b");
        assert_eq!(short_id(b), "…2d3c4b5a");
        assert_ne!(short_id(a), short_id(b));
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("123456789"), "123456789");
        assert_eq!(short_id("0123456789"), "…23456789");
    }

    #[test]
    fn relative_times() {
        let now = Utc::now();
        assert_eq!(relative(now - TimeDelta::minutes(3), now), "3 min ago");
        assert_eq!(relative(now + TimeDelta::hours(2), now), "in 2 h");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - TimeDelta::days(3), now), "3 d ago");
    }
}
