//! The PostgreSQL backend of the session store, for deployments of several servers on one
//! database (PostgreSQL, or what speaks its protocol: Citus, CockroachDB, YugabyteDB).
//!
//! - [`store`]: [`PostgresStore`], the [`sessions::store::SessionStore`] on PostgreSQL;
//! - [`migrations`]: the schema, as an ordered list of SQL files applied at start-up, each once;
//! - [`scratch`]: a throwaway PostgreSQL server in a temporary directory on 127.0.0.1, for tests
//!   and benchmarks, so nothing needs to be running beforehand.

pub mod migrations;
pub mod scratch;
pub mod store;

pub use store::{PostgresStore, ROW_COUNTS};
