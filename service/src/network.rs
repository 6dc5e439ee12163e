//! Where an address is, from MaxMind-format databases the operator supplies (`--geoip-db`: a
//! GeoLite2 or DB-IP Lite City or Country database; `--asn-db`: an ASN database). Both are
//! optional: without them sessions carry no network, and the dashboard shows no such column.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{geoip2, Mmap, Reader};
use sessions::Network;

/// The operator's GeoIP databases, opened (memory-mapped) once.
#[derive(Default)]
pub struct GeoIp {
    city: Option<Reader<Mmap>>,
    asn: Option<Reader<Mmap>>,
}

/// A database that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {what} database {path}: {source}")]
pub struct GeoIpError {
    what: &'static str,
    path: PathBuf,
    source: maxminddb::MaxMindDbError,
}

impl GeoIp {
    /// Opens the databases given; refuses a file that is not a MaxMind DB.
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<Self, GeoIpError> {
        let open = |what, path: Option<&Path>| {
            path.map(|p| {
                // SAFETY (of the map): the operator replaces a database by renaming a new file
                // over it, as MaxMind's updater does; the mapped old file stays intact.
                unsafe { Reader::open_mmap(p) }.map_err(|source| GeoIpError {
                    what,
                    path: p.to_owned(),
                    source,
                })
            })
            .transpose()
        };
        Ok(GeoIp {
            city: open("GeoIP", city)?,
            asn: open("ASN", asn)?,
        })
    }

    /// Whether any database is open.
    pub fn is_on(&self) -> bool {
        self.city.is_some() || self.asn.is_some()
    }

    /// Where the address is; `None` when it is not an IP address or no database knows it.
    pub fn lookup(&self, ip: &str) -> Option<Network> {
        if !self.is_on() {
            return None;
        }
        let addr: IpAddr = ip.parse().ok()?;
        let mut n = Network::default();
        if let Some(city) = self
            .city
            .as_ref()
            .and_then(|r| found::<geoip2::City>(r, addr))
        {
            n.country = city
                .country
                .iso_code
                .and_then(sessions::network::country_code);
            n.city = city.city.names.english.map(str::to_owned);
        }
        if let Some(asn) = self
            .asn
            .as_ref()
            .and_then(|r| found::<geoip2::Asn>(r, addr))
        {
            n.asn = asn.autonomous_system_number;
            n.asn_org = asn.autonomous_system_organization.map(str::to_owned);
        }
        (!n.is_empty()).then_some(n)
    }
}

/// The record of an address in a database, if it has one that reads as `T`.
fn found<'a, T: serde::Deserialize<'a>>(r: &'a Reader<Mmap>, addr: IpAddr) -> Option<T> {
    r.lookup(addr).ok()?.decode::<T>().ok().flatten()
}

/// Small GeoIP databases for tests, written with `maxminddb-writer` (feature `geoip-fixture`):
/// documentation address ranges placed in four countries.
#[cfg(feature = "geoip-fixture")]
pub mod fixture {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use maxminddb_writer::metadata::IpVersion;
    use maxminddb_writer::paths::IpAddrWithMask;
    use maxminddb_writer::Database;
    use serde::Serialize;

    /// Each network: range, country, city, autonomous system and its organisation.
    pub const NETWORKS: &[(&str, &str, &str, u32, &str)] = &[
        (
            "203.0.113.0/24",
            "DE",
            "Berlin",
            3320,
            "Deutsche Telekom AG",
        ),
        ("198.51.100.0/24", "FR", "Paris", 3215, "Orange S.A."),
        (
            "192.0.2.0/24",
            "US",
            "New York",
            7922,
            "Comcast Cable Communications",
        ),
        ("2001:db8::/32", "JP", "Tokyo", 2516, "KDDI Corporation"),
    ];

    #[derive(Serialize)]
    struct Names {
        en: String,
    }

    #[derive(Serialize)]
    struct Place {
        names: Names,
    }

    #[derive(Serialize)]
    struct Country {
        iso_code: String,
        names: Names,
    }

    #[derive(Serialize)]
    struct City {
        city: Place,
        country: Country,
    }

    #[derive(Serialize)]
    struct Asn {
        autonomous_system_number: u32,
        autonomous_system_organization: String,
    }

    /// One network of a test database: range, country, city, autonomous system, organisation.
    type Row = (String, String, String, u32, String);

    /// Writes `GeoLite2-City.mmdb` and `GeoLite2-ASN.mmdb` into `dir` with [`NETWORKS`];
    /// answers their paths.
    pub fn write(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let rows = NETWORKS
            .iter()
            .map(|&(range, country, city, asn, org)| {
                (range.into(), country.into(), city.into(), asn, org.into())
            })
            .collect();
        write_rows(dir, rows)
    }

    /// Writes databases of `networks` /24 networks (at most 2^24) from 1.0.0.0 up, in 40
    /// countries, 5,000 cities and 1,000 autonomous systems, every 198.51.0.0/16 network (the
    /// benchmark's addresses) among them: a lookup walks as deep a tree as in a real City
    /// database, with smaller records.
    pub fn write_synthetic(dir: &Path, networks: u32) -> std::io::Result<(PathBuf, PathBuf)> {
        const COUNTRIES: [&str; 40] = [
            "US", "DE", "FR", "GB", "JP", "CN", "IN", "BR", "RU", "CA", "AU", "IT", "ES", "NL",
            "SE", "PL", "KR", "MX", "AR", "ZA", "NG", "EG", "TR", "ID", "VN", "TH", "PH", "UA",
            "RO", "CZ", "PT", "GR", "HU", "AT", "CH", "BE", "DK", "FI", "NO", "IE",
        ];
        let benched = 198 << 16 | 51 << 8;
        let prefixes = (1u32 << 16..)
            .take(networks.min(1 << 24) as usize)
            .filter(|p| p >> 8 != benched >> 8)
            .chain((0..256).map(|i| benched | i));
        let rows = prefixes
            .enumerate()
            .map(|(i, p)| {
                let asn = 64_512 + (i % 1000) as u32;
                (
                    format!("{}/24", std::net::Ipv4Addr::from(p << 8)),
                    COUNTRIES[i % COUNTRIES.len()].to_owned(),
                    format!("City {}", i % 5000),
                    asn,
                    format!("Network {asn}"),
                )
            })
            .collect();
        write_rows(dir, rows)
    }

    fn write_rows(dir: &Path, rows: Vec<Row>) -> std::io::Result<(PathBuf, PathBuf)> {
        let city = dir.join("GeoLite2-City.mmdb");
        let asn = dir.join("GeoLite2-ASN.mmdb");
        write_one(
            &city,
            "GeoLite2-City",
            &rows,
            |(_, country, city, _, _)| (country.clone(), city.clone()),
            |(country, city)| City {
                city: Place {
                    names: Names { en: city.clone() },
                },
                country: Country {
                    iso_code: country.clone(),
                    names: Names {
                        en: country.clone(),
                    },
                },
            },
        )?;
        write_one(
            &asn,
            "GeoLite2-ASN",
            &rows,
            |(_, _, _, number, org)| (number.to_string(), org.clone()),
            |(number, org)| Asn {
                autonomous_system_number: number.parse().expect("written as a number"),
                autonomous_system_organization: org.clone(),
            },
        )?;
        Ok((city, asn))
    }

    /// Writes one database: each row's record (`key` names the record, stored once).
    fn write_one<T: Serialize>(
        path: &Path,
        kind: &str,
        rows: &[Row],
        key: impl Fn(&Row) -> (String, String),
        record: impl Fn(&(String, String)) -> T,
    ) -> std::io::Result<()> {
        let bad = |e: maxminddb_writer::Error| std::io::Error::other(e.to_string());
        let mut db = Database::default();
        db.metadata.ip_version = IpVersion::V6;
        db.metadata.database_type = kind.into();
        db.metadata.binary_format_major_version = 2;
        db.metadata.languages = vec!["en".into()];
        db.metadata.description = HashMap::from([("en".to_owned(), format!("{kind} test data"))]);
        let mut stored = HashMap::new();
        for row in rows {
            let k = key(row);
            let data = match stored.get(&k) {
                Some(d) => *d,
                None => {
                    let d = db.insert_value(record(&k)).map_err(bad)?;
                    stored.insert(k, d);
                    d
                }
            };
            // An IPv6 database holds IPv4 networks under ::/96, where readers look for them.
            let range = match row.0.split_once('/') {
                Some((addr, bits)) if !addr.contains(':') => {
                    format!(
                        "::{addr}/{}",
                        96 + bits.parse::<u8>().expect("a prefix length")
                    )
                }
                _ => row.0.clone(),
            };
            let range: IpAddrWithMask = range
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad test network {range}")))?;
            db.insert_node(range, data);
        }
        let file = std::fs::File::create(path)?;
        db.write_to(std::io::BufWriter::new(file)).map_err(bad)?;
        Ok(())
    }
}

#[cfg(all(test, feature = "geoip-fixture"))]
mod tests {
    use super::*;

    #[test]
    fn fixture_databases_place_documentation_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let (city, asn) = fixture::write(dir.path()).unwrap();
        let geo = GeoIp::open(Some(&city), Some(&asn)).unwrap();
        let berlin = geo.lookup("203.0.113.9").unwrap();
        assert_eq!(berlin.country.as_deref(), Some("DE"));
        assert_eq!(berlin.city.as_deref(), Some("Berlin"));
        assert_eq!(berlin.asn, Some(3320));
        assert_eq!(berlin.asn_org.as_deref(), Some("Deutsche Telekom AG"));
        assert_eq!(
            geo.lookup("2001:db8::1").unwrap().country.as_deref(),
            Some("JP")
        );
        assert_eq!(geo.lookup("10.0.0.1"), None);
        assert_eq!(geo.lookup("not an address"), None);
        let big = tempfile::tempdir().unwrap();
        let (big_city, big_asn) = fixture::write_synthetic(big.path(), 10_000).unwrap();
        let big = GeoIp::open(Some(&big_city), Some(&big_asn)).unwrap();
        let benched = big.lookup("198.51.7.9").unwrap();
        assert!(
            benched.country.is_some() && benched.asn.is_some(),
            "{benched:?}"
        );
        assert!(big.lookup("1.0.3.4").is_some());
        assert_eq!(big.lookup("223.1.1.1"), None);
        let country_only = GeoIp::open(Some(&city), None).unwrap();
        assert_eq!(country_only.lookup("198.51.100.1").unwrap().asn, None);
        assert!(!GeoIp::default().is_on());
        let junk = dir.path().join("junk.mmdb");
        std::fs::write(&junk, b"not a database").unwrap();
        let err = GeoIp::open(Some(&junk), None).err().unwrap().to_string();
        assert!(err.contains("junk.mmdb"), "{err}");
    }
}
