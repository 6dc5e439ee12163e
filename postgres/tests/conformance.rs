//! The store's conformance suite ([`sessions::conformance`]) on PostgreSQL: one scratch server for
//! the test binary (stopped and deleted when the binary exits), and a database of its own for
//! each test.
//!
//! Creating a database (`CREATE DATABASE ... TEMPLATE`, with the schema in place) takes 0.6 to
//! 1 s on these machines, and the property tests want a fresh store for each of their cases
//! (about 150 in all), so a test's database is emptied when the test is done and handed to the
//! next one: every table's rows deleted and every sequence restarted, which leaves it exactly
//! as a new one (the store's first open creates its results-token key again). As many databases
//! are created as tests run at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex};

use futures::StreamExt;
use sessions::conformance::Backend;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;

/// A database with the schema in place, copied for each test.
static TEMPLATE: LazyLock<String> = LazyLock::new(|| {
    let name = "conformance_template".to_owned();
    let pg = ScratchPostgres::shared();
    pg.create_database(&name).unwrap();
    drop(PostgresStore::open(&pg.url_for(&name)).unwrap());
    name
});

/// Emptied databases, ready for the next test.
static FREE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Deletes every row and restarts every sequence: what a new database holds. (Foreign keys are
/// not checked meanwhile: everything goes.)
const EMPTY: &str = "SET session_replication_role = replica; DO $$ DECLARE t text; BEGIN
    FOR t IN SELECT tablename FROM pg_tables
              WHERE schemaname = 'public' AND tablename <> 'schema_migrations' LOOP
        EXECUTE format('DELETE FROM %I', t);
    END LOOP;
    FOR t IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', t);
    END LOOP;
END $$";

/// Runs `f` with a connection to `url`, on a runtime of its own.
fn with_client<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        f(&client).await
    })
}

/// One test's database; emptied and handed back when dropped.
struct TestDatabase {
    name: String,
    url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        with_client(&self.url, async |c| c.batch_execute(EMPTY).await.unwrap());
        FREE.lock().unwrap().push(self.name.clone());
    }
}

/// The PostgreSQL store in a fresh database.
struct PgBackend;

impl Backend for PgBackend {
    type Location = TestDatabase;
    type Store = PostgresStore;

    fn create(&self) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pg = ScratchPostgres::shared();
        let free = FREE.lock().unwrap().pop();
        let name = free.unwrap_or_else(|| {
            let name = format!("t_{}", NEXT.fetch_add(1, Ordering::SeqCst));
            pg.create_database_from(&name, &TEMPLATE).unwrap();
            name
        });
        TestDatabase {
            url: pg.url_for(&name),
            name,
        }
    }

    fn open(&self, at: &TestDatabase) -> PostgresStore {
        PostgresStore::open_with(&at.url, 8).unwrap()
    }

    /// Every table's rows in PostgreSQL's binary copy format, where stored bytes appear as they
    /// are.
    fn stored_bytes(&self, at: &TestDatabase) -> Option<Vec<Vec<u8>>> {
        Some(with_client(&at.url, async |client| {
            let tables = client
                .query(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                    &[],
                )
                .await
                .unwrap();
            let mut chunks = Vec::new();
            for t in tables {
                let table: String = t.get(0);
                let copy = format!("COPY {table} TO STDOUT (FORMAT binary)");
                let stream = client.copy_out(copy.as_str()).await.unwrap();
                let mut stream = std::pin::pin!(stream);
                let mut bytes = Vec::new();
                while let Some(chunk) = stream.next().await {
                    bytes.extend_from_slice(&chunk.unwrap());
                }
                chunks.push(bytes);
            }
            chunks
        }))
    }

    fn check(&self, store: &PostgresStore) -> Vec<String> {
        store.check().unwrap()
    }
}

sessions::conformance_suite!(postgres, PgBackend);

#[test]
fn admin_records_keep_their_role() {
    sessions::conformance::admin_records_keep_their_role(&PgBackend);
}
