//! What a pooled connection is when the pool hands it out again, against a real PostgreSQL.

use std::time::Duration;

use phoenix_runtime::metrics::{self, ServiceLabels};
use phoenix_runtime::server::connect_pool;
use phoenix_testkit::{TestDatabase, test_config};
use sqlx::{Connection, PgConnection, PgPool};

/// A new database with an empty table `kept`, and a pool of one connection to it, so the next
/// borrower gets the same session (or its replacement), its discards counted under `label`.
async fn single_connection_pool(label: &str) -> (TestDatabase, PgPool) {
    let database = TestDatabase::create().await;
    let mut config = test_config();
    config.db_max_connections = 1;
    let pool = connect_pool(&database.url, label, &config)
        .await
        .expect("pool");
    sqlx::raw_sql("CREATE TABLE kept (n int)")
        .execute(&pool)
        .await
        .expect("table");
    (database, pool)
}

fn discarded(label: &str) -> u64 {
    metrics::global()
        .connections_discarded
        .get_or_create(&ServiceLabels {
            service: label.to_owned(),
        })
        .get()
}

/// Rows of `kept` another session sees: what was committed.
async fn committed_rows(database: &TestDatabase) -> i64 {
    let mut other = PgConnection::connect(&database.url)
        .await
        .expect("another session");
    sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut other)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_call_cancelled_during_its_begin_leaves_no_transaction_to_the_next_borrower() {
    let label = "cancelled_begin";
    let (database, pool) = single_connection_pool(label).await;

    // The BEGIN answers only after the sleep: the call is cancelled while it is on the wire,
    // and the session ends up inside a block sqlx never counted.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        pool.begin_with("SELECT pg_sleep(0.3); BEGIN"),
    )
    .await;
    assert!(cancelled.is_err(), "the begin was cancelled mid-flight");

    // The next borrower's write is its own, committed at once: not held in the cancelled
    // call's transaction, where it would be lost when that connection closes.
    sqlx::query("INSERT INTO kept VALUES (1)")
        .execute(&pool)
        .await
        .expect("insert");
    assert_eq!(
        committed_rows(&database).await,
        1,
        "the insert ran inside the cancelled call's transaction"
    );
    assert_eq!(discarded(label), 1, "the stale session was closed, once");
}

#[tokio::test]
async fn connections_used_to_the_end_go_back_to_the_pool() {
    let label = "used_to_the_end";
    let (database, pool) = single_connection_pool(label).await;
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("pid");
    let mut committed = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO kept VALUES (1)")
        .execute(&mut *committed)
        .await
        .expect("insert");
    committed.commit().await.expect("commit");
    let mut rolled_back = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO kept VALUES (2)")
        .execute(&mut *rolled_back)
        .await
        .expect("insert");
    rolled_back.rollback().await.expect("rollback");
    // Dropped without commit: sqlx queues the rollback itself.
    let dropped = pool.begin().await.expect("begin");
    drop(dropped);
    sqlx::query("SELECT 1").execute(&pool).await.expect("query");

    let last: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("pid");
    assert_eq!(first, last, "the one connection was kept throughout");
    assert_eq!(discarded(label), 0);
    assert_eq!(committed_rows(&database).await, 1);
}
