//! Where back-channel logout notifications may go. A URI registered by anyone with an admin key
//! must not turn the delivery worker into a probe of the server's own network, so by default:
//! https only (plain http where the realm allows it), and never to loopback, private, link-local,
//! metadata or otherwise non-public addresses, nor to `localhost` and metadata host names. Hosts
//! the operator puts on the allow-list (`--backchannel-allow-hosts`) are exempt from both rules.
//!
//! The rules apply twice: when a client is registered (an IP literal is checked directly, a name
//! by what it resolves to right now) and when a notification is sent (the worker's resolver drops
//! forbidden addresses; see [`super::resolve`]).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use url::{Host, Url};

/// The command-line flag that sets the allow-list, named in refusals.
pub const ALLOW_HOSTS_FLAG: &str = "--backchannel-allow-hosts";

/// How long a registration waits for a host name to resolve before accepting it unchecked (the
/// connection is checked again).
const REGISTRATION_LOOKUP_LIMIT: Duration = Duration::from_secs(3);

/// Hosts exempt from the target rules: http is allowed and any address is. Names compare
/// case-insensitively and without a trailing dot; IP addresses compare as addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowHosts {
    names: BTreeSet<String>,
    addrs: BTreeSet<IpAddr>,
}

/// An allow-list entry that is not a host name or IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ALLOW_HOSTS_FLAG}: '{entry}' is not a host: {why} (expected a comma-separated list of host \
     names and IP addresses, e.g. 127.0.0.1,[::1],rp.internal)"
)]
pub struct InvalidAllowHost {
    pub entry: String,
    pub why: String,
}

impl AllowHosts {
    /// Parses a comma-separated list of host names and IP addresses (IPv6 with or without
    /// brackets), e.g. `127.0.0.1,localhost`. Empty entries are skipped; an empty list allows
    /// nothing.
    pub fn parse(list: &str) -> Result<Self, InvalidAllowHost> {
        let mut hosts = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| InvalidAllowHost {
                entry: entry.to_owned(),
                why: why.to_owned(),
            };
            if let Ok(ip) = entry.parse::<IpAddr>() {
                hosts.addrs.insert(ip);
                continue;
            }
            if entry.contains("://") || entry.contains('/') {
                return Err(bad("give the host alone, without scheme or path"));
            }
            if entry.contains('*') {
                return Err(bad("wildcards are not supported; list each host"));
            }
            match Host::parse(entry) {
                Ok(Host::Ipv4(ip)) => {
                    hosts.addrs.insert(ip.into());
                }
                Ok(Host::Ipv6(ip)) => {
                    hosts.addrs.insert(ip.into());
                }
                Ok(Host::Domain(name)) => {
                    let name = normalize_name(&name);
                    let ok_char =
                        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
                    if name.is_empty() || !name.chars().all(ok_char) {
                        return Err(bad(
                            "a host name has letters, digits, '-', '_' and '.' only",
                        ));
                    }
                    hosts.names.insert(name.to_owned());
                }
                Err(_) if entry.contains(':') && !entry.starts_with('[') => {
                    return Err(bad("give the host alone, without a port"));
                }
                Err(e) => return Err(bad(&e.to_string())),
            }
        }
        Ok(hosts)
    }

    /// Whether nothing is allow-listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.addrs.is_empty()
    }

    /// Whether a URI's host is on the list.
    pub fn allows(&self, host: &Host<&str>) -> bool {
        match host {
            Host::Domain(name) => self.allows_name(name),
            Host::Ipv4(ip) => self.addrs.contains(&IpAddr::V4(*ip)),
            Host::Ipv6(ip) => self.addrs.contains(&IpAddr::V6(*ip)),
        }
    }

    /// Whether a host name (as the resolver is asked for it) is on the list.
    pub fn allows_name(&self, name: &str) -> bool {
        self.names
            .contains(normalize_name(&name.to_ascii_lowercase()))
    }

    /// Checks a URI's scheme and host without resolving it: https, or http where the realm
    /// allows it; and an IP literal or host name that the rules do not forbid. Allow-listed hosts
    /// pass both.
    pub fn check(&self, url: &Url, realm_allows_http: bool) -> Result<(), Refusal> {
        let host = url
            .host()
            .ok_or_else(|| Refusal::InvalidUri("it names no host".into()))?;
        let allowed = self.allows(&host);
        match url.scheme() {
            "https" => {}
            "http" if realm_allows_http || allowed => {}
            "http" => return Err(Refusal::HttpNotAllowed),
            other => {
                return Err(Refusal::InvalidUri(format!(
                    "scheme '{other}' is not http(s)"
                )))
            }
        }
        if allowed {
            return Ok(());
        }
        match host {
            Host::Domain(name) => match forbidden_name(name) {
                Some(kind) => Err(Refusal::NameNotAllowed {
                    host: name.to_owned(),
                    kind,
                }),
                None => Ok(()),
            },
            Host::Ipv4(ip) => self.check_address(&ip.to_string(), ip.into()),
            Host::Ipv6(ip) => self.check_address(&format!("[{ip}]"), ip.into()),
        }
    }

    /// Checks one address that `host` is or resolves to; allowed if it is public, or if the host
    /// or the address itself is allow-listed.
    pub fn check_address(&self, host: &str, addr: IpAddr) -> Result<(), Refusal> {
        match classify(addr) {
            Some(kind) if !self.allows_name(host) && !self.addrs.contains(&addr) => {
                Err(Refusal::AddressNotAllowed {
                    host: host.to_owned(),
                    addr,
                    kind,
                })
            }
            _ => Ok(()),
        }
    }

    /// Checks a back-channel logout URI being registered: [`Self::check`], then every address a
    /// host name resolves to right now. A name that does not resolve (or not within a few
    /// seconds) is accepted: the worker checks the addresses again when it connects.
    pub async fn check_registration(
        &self,
        uri: &str,
        realm_allows_http: bool,
    ) -> Result<(), Refusal> {
        let url = Url::parse(uri).map_err(|e| Refusal::InvalidUri(e.to_string()))?;
        self.check(&url, realm_allows_http)?;
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        if self.allows_name(name) {
            return Ok(());
        }
        let addrs = match tokio::time::timeout(REGISTRATION_LOOKUP_LIMIT, lookup(name)).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                tracing::info!(host = name, error = %e, "back-channel host does not resolve; accepted, checked again on delivery");
                return Ok(());
            }
            Err(_) => {
                tracing::info!(host = name, "back-channel host did not resolve in time; accepted, checked again on delivery");
                return Ok(());
            }
        };
        addrs
            .into_iter()
            .try_for_each(|addr| self.check_address(name, addr))
    }
}

impl FromStr for AllowHosts {
    type Err = InvalidAllowHost;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::parse(list)
    }
}

impl fmt::Display for AllowHosts {
    /// The list in the form [`AllowHosts::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs = self.addrs.iter().map(|a| match a {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
        let all: Vec<String> = addrs.chain(self.names.iter().cloned()).collect();
        f.write_str(&all.join(","))
    }
}

/// Resolves a host name to its addresses.
pub(crate) async fn lookup(name: &str) -> std::io::Result<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
        .await?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Why a back-channel logout target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an absolute http(s) URI with a host.
    #[error("backchannel_logout_uri is not a usable http(s) URI: {0}")]
    InvalidUri(String),
    /// Plain http where the realm does not allow it and the host is not allow-listed.
    #[error(
        "backchannel_logout_uri must use https: this realm does not allow http:// back-channel \
         URIs (set backchannel_allow_http on the realm, or start the server with \
         {ALLOW_HOSTS_FLAG} naming the host)"
    )]
    HttpNotAllowed,
    /// A host name that names the server itself or a cloud metadata service.
    #[error(
        "backchannel_logout_uri host '{host}' is not allowed: it names {kind}; to send \
         notifications there, start the server with {ALLOW_HOSTS_FLAG} naming the host"
    )]
    NameNotAllowed { host: String, kind: &'static str },
    /// The host is, or resolves to, an address that is not public.
    #[error(
        "backchannel_logout_uri host '{host}' is not allowed: {addr} is {kind}; to send \
         notifications there, start the server with {ALLOW_HOSTS_FLAG} naming the host"
    )]
    AddressNotAllowed {
        host: String,
        addr: IpAddr,
        kind: AddressKind,
    },
}

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    Unspecified,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Reserved,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressKind::Loopback => "a loopback address",
            AddressKind::Unspecified => "an unspecified address",
            AddressKind::Private => "a private address",
            AddressKind::LinkLocal => {
                "a link-local address (this includes cloud metadata services)"
            }
            AddressKind::SharedCgnat => "a carrier-grade NAT address",
            AddressKind::Multicast => "a multicast address",
            AddressKind::Broadcast => "the broadcast address",
            AddressKind::Reserved => "a reserved address",
        })
    }
}

/// What kind of non-public address `addr` is; `None` for a public one. IPv6 forms that embed an
/// IPv4 address (IPv4-mapped, IPv4-compatible, NAT64) are judged by the embedded address.
pub fn classify(addr: IpAddr) -> Option<AddressKind> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => AddressKind::Unspecified,
        (127, _) => AddressKind::Loopback,
        (10, _) | (172, 16..=31) | (192, 168) => AddressKind::Private,
        (169, 254) => AddressKind::LinkLocal,
        (100, 64..=127) => AddressKind::SharedCgnat,
        (224..=239, _) => AddressKind::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => AddressKind::Broadcast,
        (240..=255, _) => AddressKind::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => AddressKind::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => AddressKind::Loopback,
        // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), NAT64
        // (64:ff9b::/96) and local-use NAT64 (64:ff9b:1::/48).
        [0, 0, 0, 0, 0, 0xffff, ..]
        | [0, 0, 0, 0, 0, 0, ..]
        | [0x64, 0xff9b, 0, 0, 0, 0, ..]
        | [0x64, 0xff9b, 1, ..] => return classify_v4(embedded_v4()),
        [first, ..] if first & 0xfe00 == 0xfc00 => AddressKind::Private,
        // Deprecated site-local fec0::/10 is as private as unique local addresses.
        [first, ..] if first & 0xffc0 == 0xfec0 => AddressKind::Private,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressKind::LinkLocal,
        [first, ..] if first & 0xff00 == 0xff00 => AddressKind::Multicast,
        _ => return None,
    })
}

/// A host name without the trailing dot of a fully qualified name.
fn normalize_name(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// What a host name refused by name names: the local machine, or a cloud metadata service.
fn forbidden_name(name: &str) -> Option<&'static str> {
    let name = normalize_name(name).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        Some("the local machine")
    } else if matches!(name.as_str(), "metadata" | "metadata.google.internal") {
        Some("a cloud metadata service")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        use AddressKind::*;
        let table: &[(&str, Option<AddressKind>)] = &[
            ("127.0.0.1", Some(Loopback)),
            ("127.255.3.4", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.0.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b:1::192.168.0.1", Some(Private)),
            // Public.
            ("93.184.216.34", None),
            ("8.8.8.8", None),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("169.253.0.1", None),
            ("223.255.255.255", None),
            ("2606:2800:220:1:248:1893:25c8:1946", None),
            ("::ffff:93.184.216.34", None),
            ("64:ff9b::8.8.8.8", None),
            ("fbff::1", None),
        ];
        for (addr, want) in table {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(classify(ip), *want, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_parses_hosts_and_addresses() {
        let list =
            AllowHosts::parse(" 127.0.0.1, LocalHost. ,[::1],fd00::7,,rp.Internal ").unwrap();
        assert!(list.allows(&Host::Ipv4(Ipv4Addr::LOCALHOST)));
        assert!(list.allows(&Host::Ipv6(Ipv6Addr::LOCALHOST)));
        assert!(list.allows(&Host::Ipv6("fd00::7".parse().unwrap())));
        assert!(list.allows_name("localhost"));
        assert!(list.allows_name("LOCALHOST."));
        assert!(list.allows_name("rp.internal"));
        assert!(!list.allows_name("rp.internal.example"));
        assert!(!list.allows(&Host::Ipv4(Ipv4Addr::new(127, 0, 0, 2))));
        assert_eq!(
            list.to_string(),
            "127.0.0.1,[::1],[fd00::7],localhost,rp.internal"
        );
        assert_eq!(list, list.to_string().parse().unwrap());
        assert!(AllowHosts::parse("").unwrap().is_empty());
        assert!(AllowHosts::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn bad_allow_list_entries_say_what_is_wrong() {
        for (list, why) in [
            ("127.0.0.1:8080", "without a port"),
            ("rp.example:443", "without a port"),
            ("https://rp.example", "without scheme"),
            ("rp.example/logout", "without scheme or path"),
            ("*.example.com", "wildcards"),
            ("[::1", "not a host"),
            ("a b", "not a host"),
        ] {
            let e = AllowHosts::parse(list).unwrap_err().to_string();
            assert!(e.contains(why), "{list}: {e}");
            assert!(e.contains(ALLOW_HOSTS_FLAG), "{list}: {e}");
        }
    }

    fn check(allow: &str, uri: &str, realm_allows_http: bool) -> Result<(), Refusal> {
        let allow = AllowHosts::parse(allow).unwrap();
        allow.check(&Url::parse(uri).unwrap(), realm_allows_http)
    }

    #[test]
    fn the_rules_refuse_non_public_targets_unless_allow_listed() {
        let refused = |uri: &str| check("", uri, true).unwrap_err();
        for uri in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(
                matches!(refused(uri), Refusal::AddressNotAllowed { .. }),
                "{uri}"
            );
        }
        for uri in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost:8443/",
            "https://metadata/",
            "https://metadata.google.internal/computeMetadata/v1/",
        ] {
            assert!(
                matches!(refused(uri), Refusal::NameNotAllowed { .. }),
                "{uri}"
            );
        }
        assert_eq!(
            check("", "http://rp.example/", false),
            Err(Refusal::HttpNotAllowed)
        );
        assert_eq!(check("", "http://rp.example/", true), Ok(()));
        assert_eq!(check("", "https://rp.example/", false), Ok(()));
        assert_eq!(check("", "https://93.184.216.34/", false), Ok(()));
        assert_eq!(check("127.0.0.1", "http://127.0.0.1:9/x", false), Ok(()));
        assert_eq!(check("[::1]", "http://[::1]/", false), Ok(()));
        assert_eq!(
            check("::ffff:127.0.0.1", "https://[::ffff:127.0.0.1]/", false),
            Ok(())
        );
        assert_eq!(check("localhost", "http://localhost:8080/", false), Ok(()));
        assert_eq!(check("metadata", "https://metadata/", false), Ok(()));
        assert!(check("127.0.0.1", "https://127.0.0.2/", false).is_err());
    }

    #[test]
    fn a_refusal_says_why_and_how_to_allow_the_host() {
        let e = check("", "https://10.0.0.1/", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.0.0.1 is a private address"), "{e}");
        assert!(e.contains(ALLOW_HOSTS_FLAG), "{e}");
        let e = check("", "http://rp.example/", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("https") && e.contains(ALLOW_HOSTS_FLAG), "{e}");
    }

    #[test]
    fn a_resolved_address_is_checked_unless_the_name_is_allow_listed() {
        let allow = AllowHosts::parse("rp.internal").unwrap();
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(allow.check_address("rp.internal", private), Ok(()));
        assert!(matches!(
            allow.check_address("evil.example", private),
            Err(Refusal::AddressNotAllowed { .. })
        ));
        assert_eq!(
            allow.check_address("evil.example", "93.184.216.34".parse().unwrap()),
            Ok(())
        );
    }
}
