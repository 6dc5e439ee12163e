//! Writes test GeoIP databases (`service::network::fixture`) into a directory and prints their
//! paths (City, then ASN): `geoip-fixture DIR` the browser tests' four documentation ranges;
//! `geoip-fixture DIR --synthetic N` N /24 networks, for benchmarks.

use std::path::Path;
use std::process::ExitCode;

use service::network::fixture;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let written = match args.as_slice() {
        [dir] => fixture::write(Path::new(dir)),
        [dir, flag, n] if flag == "--synthetic" => match n.parse() {
            Ok(n) => fixture::write_synthetic(Path::new(dir), n),
            Err(_) => {
                eprintln!("geoip-fixture: --synthetic takes a number of networks");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: geoip-fixture DIR [--synthetic NETWORKS]");
            return ExitCode::from(2);
        }
    };
    match written {
        Ok((city, asn)) => {
            println!("{}\n{}", city.display(), asn.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("geoip-fixture: {e}");
            ExitCode::FAILURE
        }
    }
}
