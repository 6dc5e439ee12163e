//! The scratch server keeps its data across a restart.

use store_postgres::scratch::ScratchPostgres;

mod common;
use common::connect;

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_the_data_and_the_port() {
    let pg = ScratchPostgres::start().unwrap();
    let client = connect(&pg.url()).await;
    client
        .batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7);")
        .await
        .unwrap();
    drop(client);
    let mut ran_between = false;
    pg.restart_with(|| ran_between = true).unwrap();
    assert!(ran_between);
    let client = connect(&pg.url()).await;
    let n: i32 = client
        .query_one("SELECT n FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 7);
}
