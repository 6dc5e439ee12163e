//! `with-scratch-postgres PROGRAM [ARG...]`: starts a scratch PostgreSQL (see
//! [`store_postgres::scratch`]) with a fresh database, then becomes PROGRAM with every `{store}` in
//! its arguments replaced by that database's URL. The server is stopped and its directory deleted
//! when PROGRAM ends, however it ends (it keeps this process's id, which a watchdog waits on).
//! The browser tests run the server on PostgreSQL this way.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use store_postgres::scratch::ScratchPostgres;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: with-scratch-postgres PROGRAM [ARG...]   ({{store}} in an ARG: the URL)");
        return ExitCode::from(2);
    };
    let pg = ScratchPostgres::shared();
    if let Err(e) = pg.create_database("scratch") {
        eprintln!("with-scratch-postgres: {e}");
        return ExitCode::FAILURE;
    }
    let url = pg.url_for("scratch");
    let error = Command::new(&program)
        .args(args.map(|a| a.replace("{store}", &url)))
        .exec();
    eprintln!("with-scratch-postgres: cannot run {program}: {error}");
    ExitCode::FAILURE
}
