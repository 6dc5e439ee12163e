//! What placing an address costs a create or a refresh: lookups per second in a synthetic
//! GeoIP database of a real one's depth (a /24 per network), City and ASN together, and the
//! device read of a user agent seen before, as a table.
//!
//! `cargo run --release -p service --features geoip-fixture --example geoip_lookup [NETWORKS]`

use std::time::Instant;

use service::network::{fixture, GeoIp};

fn main() {
    let networks: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of networks"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let started = Instant::now();
    let (city, asn) = fixture::write_synthetic(dir.path(), networks).expect("databases written");
    let written = started.elapsed();
    let geo = GeoIp::open(Some(&city), Some(&asn)).expect("databases open");
    // Addresses spread over the networks (and past them: a miss costs a walk too).
    let addresses: Vec<String> = (0..100_000u32)
        .map(|i| {
            let p = (1 << 16) + (i.wrapping_mul(2_654_435_761) % networks.max(1));
            std::net::Ipv4Addr::from(p << 8 | (i % 254 + 1)).to_string()
        })
        .collect();
    let started = Instant::now();
    let mut found = 0;
    for round in 0..5 {
        for a in &addresses {
            found += usize::from(geo.lookup(a).is_some());
        }
        if round == 0 {
            assert!(found > 0, "the synthetic database places its own addresses");
        }
    }
    let lookups = 5 * addresses.len();
    let per_lookup = started.elapsed().as_secs_f64() / lookups as f64;
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let started = Instant::now();
    for _ in 0..lookups {
        std::hint::black_box(sessions::Device::of_user_agent(std::hint::black_box(ua)));
    }
    let per_device = started.elapsed().as_secs_f64() / lookups as f64;
    let size = std::fs::metadata(&city).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(&asn).map(|m| m.len()).unwrap_or(0);
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| networks (/24) | {networks} |");
    println!(
        "| databases on disk | {:.1} MiB (written in {:.1} s) |",
        size as f64 / 1048576.0,
        written.as_secs_f64()
    );
    println!(
        "| lookup, City + ASN | {:.2} µs ({:.0}/s) |",
        per_lookup * 1e6,
        1.0 / per_lookup
    );
    println!(
        "| device of a known user agent | {:.2} µs |",
        per_device * 1e6
    );
    println!("| addresses placed | {} of {lookups} |", found);
}
