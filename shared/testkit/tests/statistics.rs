//! The runtime's statistics job for new tables (`jobs::analyze_growing_tables`). A binary of
//! its own: its database work would otherwise run beside the timing-bound job tests.

use phoenix_testkit::TestDatabase;

/// Runs `statement` on one connection, then flushes that session's statistics, as a backend
/// does once idle (at most every second): `pg_stat_force_next_flush` acts on its own session.
async fn run_and_flush(pool: &sqlx::PgPool, statement: &str) {
    let mut connection = pool.acquire().await.expect("a connection");
    sqlx::query(statement)
        .execute(&mut *connection)
        .await
        .expect(statement);
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *connection)
        .await
        .expect("flush");
    connection.close().await.expect("close");
}

/// Inserts `rows` rows into `table`, its statistics flushed.
async fn insert(pool: &sqlx::PgPool, table: &str, rows: i64) {
    run_and_flush(
        pool,
        &format!("INSERT INTO {table} (n, v) SELECT g, 0 FROM generate_series(1, {rows}) g"),
    )
    .await;
}

/// One pass of the job: the tables it analyzed.
async fn pass(pool: &sqlx::PgPool) -> Vec<String> {
    phoenix_runtime::jobs::analyze_growing_tables(pool)
        .await
        .expect("a pass")
}

/// The first pass that analyzes anything, within 5 s: a backend's statistics reach the
/// others' view only once flushed, so a pass may run before they have.
async fn first_analyses(pool: &sqlx::PgPool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let analyzed = pass(pool).await;
        if !analyzed.is_empty() || tokio::time::Instant::now() > deadline {
            return analyzed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A new table is analyzed once it holds 500 rows and again each time it has doubled; a table
/// whose rows only change, or that has not doubled, is left alone, and so are other schemas'.
#[tokio::test]
async fn growing_tables_are_analyzed_each_time_they_double() {
    let database = TestDatabase::create().await;
    let setup = database.pool("public").await;
    for statement in [
        "CREATE SCHEMA growth",
        // Autovacuum off: an analysis of its own between two passes would move `reltuples`.
        "CREATE TABLE growth.grows (n int, v int) WITH (autovacuum_enabled = false)",
        "CREATE TABLE growth.changes (n int, v int) WITH (autovacuum_enabled = false)",
        "CREATE TABLE growth.small (n int, v int) WITH (autovacuum_enabled = false)",
        "CREATE TABLE public.elsewhere (n int, v int) WITH (autovacuum_enabled = false)",
    ] {
        sqlx::query(statement)
            .execute(&setup)
            .await
            .expect(statement);
    }
    let pool = database.pool("growth").await;
    insert(&pool, "grows", 600).await;
    insert(&pool, "changes", 600).await;
    insert(&pool, "small", 499).await;
    insert(&setup, "elsewhere", 600).await;
    let analyzed = |tables: &[&str]| {
        tables
            .iter()
            .map(|t| format!("growth.{t}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        first_analyses(&pool).await,
        analyzed(&["changes", "grows"]),
        "never analyzed and 500 rows or more: analyzed; 499 rows and the other schema: not"
    );
    assert_eq!(pass(&pool).await, analyzed(&[]), "nothing grew");

    insert(&pool, "grows", 599).await;
    run_and_flush(&pool, "UPDATE growth.changes SET v = v + 1").await;
    assert_eq!(
        pass(&pool).await,
        analyzed(&[]),
        "1,199 rows is not twice 600, and changed rows are not new ones"
    );
    insert(&pool, "grows", 1).await;
    assert_eq!(
        first_analyses(&pool).await,
        analyzed(&["grows"]),
        "1,200 rows: doubled"
    );
    let reltuples: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'growth.grows'::regclass")
            .fetch_one(&pool)
            .await
            .expect("reltuples");
    assert_eq!(reltuples, 1200.0, "the analysis saw the table as it is");
    database.drop_database().await;
}
