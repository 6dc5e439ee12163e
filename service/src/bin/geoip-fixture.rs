//! Writes the test GeoIP databases (`service::network::fixture`) into a directory, for the
//! browser tests' server: `geoip-fixture DIR` prints the City and ASN databases' paths.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: geoip-fixture DIR");
        return ExitCode::from(2);
    };
    match service::network::fixture::write(Path::new(&dir)) {
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
