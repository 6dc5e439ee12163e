//! Client addresses as filters: an IP address or a CIDR range, and the one rule by which a
//! session's address is compared with it.
//!
//! Every address is handled as 16 bytes: an IPv6 address as itself, an IPv4 address as its
//! IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so `203.0.113.7` and `::ffff:203.0.113.7` are the same
//! address and an IPv4 range `a.b.c.d/n` is the mapped range of prefix `96 + n`. A range is then
//! one interval of 16-byte values: one key range of an index keyed by those bytes.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::{Result, SessionError};

/// Longest address filter accepted (an IPv6 address with a zone-free prefix length fits).
pub const MAX_ADDRESS_FILTER_LEN: usize = 64;

/// What an address filter looks like, as a regular expression (for the API's description; the
/// rule is [`AddressRange::parse`]): empty (no filter), an IPv4 address with an optional prefix
/// length 0 to 32, or an IPv6 address (also with an embedded IPv4 address) with an optional prefix
/// length 0 to 128. Every string it matches parses.
pub const ADDRESS_FILTER_PATTERN: &str = r"^$|^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(/(3[0-2]|[12]?[0-9]))?$|^(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}|:((:[0-9A-Fa-f]{1,4}){1,7}|:)|([0-9A-Fa-f]{1,4}:){6}((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|::([0-9A-Fa-f]{1,4}:){0,5}((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$";

/// The 16 bytes a session's address is indexed and compared by; `None` for text that is not an
/// IP address (such sessions match no address filter).
pub fn address_bytes(ip: &str) -> Option<[u8; 16]> {
    Some(mapped(ip.parse().ok()?).octets())
}

fn mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// An address filter: every address from `first` to `last` (inclusive) in 16-byte form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    pub first: [u8; 16],
    pub last: [u8; 16],
    /// Prefix length in the 16-byte form (128 for a single address).
    prefix_len: u8,
}

impl AddressRange {
    /// Parses an address (`203.0.113.7`, `2001:db8::1`) or a CIDR range (`203.0.113.0/24`,
    /// `2001:db8::/32`). Bits past the prefix are ignored: `203.0.113.7/24` is `203.0.113.0/24`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            SessionError::invalid(format!(
                "ip '{text}' {why} (expected an IP address such as 203.0.113.7 or a CIDR range such as 203.0.113.0/24 or 2001:db8::/32)"
            ))
        };
        if text.len() > MAX_ADDRESS_FILTER_LEN {
            return Err(bad(&format!(
                "is longer than {MAX_ADDRESS_FILTER_LEN} bytes"
            )));
        }
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad("is not an IP address"))?;
        let (max, offset) = match ip {
            IpAddr::V4(_) => (32u8, 96u8),
            IpAddr::V6(_) => (128, 0),
        };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') && (l == "0" || !l.starts_with('0')) => n,
                _ => return Err(bad(&format!("has a prefix length that is not 0 to {max}"))),
            },
        };
        let prefix_len = offset + len;
        let value = u128::from_be_bytes(mapped(ip).octets());
        let host_mask = u128::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
        Ok(AddressRange {
            first: (value & !host_mask).to_be_bytes(),
            last: (value | host_mask).to_be_bytes(),
            prefix_len,
        })
    }

    /// True when the session address `ip` is in the range.
    pub fn contains_text(&self, ip: &str) -> bool {
        address_bytes(ip).is_some_and(|b| self.contains(&b))
    }

    /// True when the 16-byte address is in the range.
    pub fn contains(&self, bytes: &[u8; 16]) -> bool {
        self.first <= *bytes && *bytes <= self.last
    }

    /// Whether the range is one address.
    pub fn is_single(&self) -> bool {
        self.first == self.last
    }
}

/// The range in its usual spelling: IPv4 for mapped ranges, `/n` only when it is not one address.
impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = Ipv6Addr::from(self.first);
        let (ip, len, max) = match v6.to_ipv4_mapped() {
            Some(v4) if self.prefix_len >= 96 => (IpAddr::V4(v4), self.prefix_len - 96, 32),
            _ => (IpAddr::V6(v6), self.prefix_len, 128),
        };
        if len == max {
            write!(f, "{ip}")
        } else {
            write!(f, "{ip}/{len}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_ranges_are_mapped_ranges() {
        let r = AddressRange::parse("203.0.113.0/24").unwrap();
        assert!(r.contains_text("203.0.113.0"));
        assert!(r.contains_text("203.0.113.255"));
        assert!(r.contains_text("::ffff:203.0.113.9"));
        assert!(!r.contains_text("203.0.114.0"));
        assert!(!r.contains_text("203.0.112.255"));
        assert!(!r.contains_text("2001:db8::1"));
        assert!(!r.contains_text("not an address"));
        assert_eq!(r.to_string(), "203.0.113.0/24");
        assert_eq!(
            AddressRange::parse("203.0.113.77/24").unwrap(),
            r,
            "host bits are ignored"
        );
    }

    #[test]
    fn single_addresses_and_ipv6() {
        let one = AddressRange::parse("198.51.100.7").unwrap();
        assert!(one.is_single());
        assert!(one.contains_text("198.51.100.7"));
        assert!(!one.contains_text("198.51.100.8"));
        assert_eq!(one.to_string(), "198.51.100.7");
        let v6 = AddressRange::parse("2001:DB8::/32").unwrap();
        assert!(v6.contains_text("2001:db8:ffff::1"));
        assert!(!v6.contains_text("2001:db9::1"));
        assert!(!v6.contains_text("203.0.113.1"));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        let all = AddressRange::parse("::/0").unwrap();
        assert!(all.contains_text("10.1.2.3") && all.contains_text("fe80::1"));
        let all_v4 = AddressRange::parse("0.0.0.0/0").unwrap();
        assert!(all_v4.contains_text("10.1.2.3") && !all_v4.contains_text("fe80::1"));
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        for bad in [
            "",
            "203.0.113.0/33",
            "2001:db8::/129",
            "203.0.113.0/",
            "203.0.113.0/+8",
            "203.0.113.0/08",
            "203.0.113/24",
            "example.com",
            "10.0.0.0/8/8",
            "fe80::1%eth0",
        ] {
            let e = AddressRange::parse(bad).unwrap_err();
            assert!(matches!(e, SessionError::InvalidRequest(_)), "{bad}");
            assert!(e.to_string().contains("CIDR"), "{bad}: {e}");
        }
        assert!(AddressRange::parse(&"1".repeat(65)).is_err());
    }
}
