//! The store's conformance suite ([`sessions::conformance`]) on PostgreSQL: one scratch server for
//! the test binary (stopped and deleted when the binary exits), and a database of its own for
//! each test.
//!
//! Creating a database (`CREATE DATABASE ... TEMPLATE`, with the schema in place) takes 0.6 to
//! 1 s on these machines, and the property tests want a fresh store for each of their cases
//! (about 150 in all), so a test's database is handed to the next one when the test is done,
//! and emptied before that one uses it: every table's rows deleted and every sequence restarted,
//! which leaves it exactly as a new one (the store's first open creates its results-token key
//! again). As many databases are created as tests run at once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use futures::StreamExt;
use sessions::conformance::Backend;
use store_postgres::scratch::ScratchPostgres;
use store_postgres::PostgresStore;
use tokio::sync::OnceCell;

/// A database with the schema in place, copied for each test.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Databases of finished tests, to empty and use again.
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

/// The scratch server, started (a blocking wait of seconds) off the test's async threads.
async fn server() -> &'static ScratchPostgres {
    tokio::task::spawn_blocking(ScratchPostgres::shared)
        .await
        .unwrap()
}

/// A connection to `url` of the test's own.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// One test's database; handed to the next test when dropped.
struct TestDatabase {
    name: String,
    url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        FREE.lock().unwrap().push(self.name.clone());
    }
}

/// The PostgreSQL store in a fresh database.
struct PgBackend;

impl Backend for PgBackend {
    type Location = TestDatabase;
    type Store = PostgresStore;

    async fn create(&self) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pg = server().await;
        let free = FREE.lock().unwrap().pop();
        let name = match free {
            Some(name) => {
                connect(&pg.url_for(&name))
                    .await
                    .batch_execute(EMPTY)
                    .await
                    .unwrap();
                name
            }
            None => {
                let template = TEMPLATE
                    .get_or_init(|| async move {
                        let name = "conformance_template".to_owned();
                        let created = name.clone();
                        tokio::task::spawn_blocking(move || pg.create_database(&created))
                            .await
                            .unwrap()
                            .unwrap();
                        drop(PostgresStore::open(&pg.url_for(&name)).await.unwrap());
                        name
                    })
                    .await
                    .clone();
                let name = format!("t_{}", NEXT.fetch_add(1, Ordering::SeqCst));
                let created = name.clone();
                tokio::task::spawn_blocking(move || pg.create_database_from(&created, &template))
                    .await
                    .unwrap()
                    .unwrap();
                name
            }
        };
        TestDatabase {
            url: pg.url_for(&name),
            name,
        }
    }

    async fn open(&self, at: &TestDatabase) -> PostgresStore {
        PostgresStore::open_with(&at.url, 8).await.unwrap()
    }

    /// Every table's rows in PostgreSQL's binary copy format, where stored bytes appear as they
    /// are.
    async fn stored_bytes(&self, at: &TestDatabase) -> Option<Vec<Vec<u8>>> {
        let client = connect(&at.url).await;
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
        Some(chunks)
    }

    async fn check(&self, store: &PostgresStore) -> Vec<String> {
        store.check().await.unwrap()
    }
}

sessions::conformance_suite!(postgres, PgBackend);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_records_keep_their_role() {
    sessions::conformance::admin_records_keep_their_role(&PgBackend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_streams_are_stored_replaced_and_deleted() {
    sessions::conformance::signal_streams_are_stored_replaced_and_deleted(&PgBackend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_queues_one_session_revoked_per_stream() {
    sessions::conformance::every_ending_queues_one_session_revoked_per_stream(&PgBackend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_delivery_is_read_back_by_id_and_leaves_the_queue_once_delivered() {
    sessions::conformance::a_queued_delivery_is_read_back_by_id_and_leaves_the_queue_once_delivered(&PgBackend).await;
}
