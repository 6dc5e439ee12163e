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
    fn relative_times() {
        let now = Utc::now();
        assert_eq!(relative(now - TimeDelta::minutes(3), now), "3 min ago");
        assert_eq!(relative(now + TimeDelta::hours(2), now), "in 2 h");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - TimeDelta::days(3), now), "3 d ago");
    }
}
