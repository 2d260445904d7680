//! How database errors map onto the error vocabulary, against a real PostgreSQL.

use phoenix_runtime::{Error, RefusalKind};
use phoenix_testkit::TestDatabase;

#[tokio::test]
async fn values_the_database_cannot_store_are_the_callers_error() {
    let database = TestDatabase::create().await;
    let pool = database.pool("public").await;
    let nul = sqlx::query("SELECT $1::text")
        .bind("before\u{0}after")
        .execute(&pool)
        .await
        .expect_err("a NUL is not text to PostgreSQL");
    let date = sqlx::query("SELECT make_date($1, 1, 1)")
        .bind(-5000_i32)
        .execute(&pool)
        .await
        .expect_err("not a date PostgreSQL holds");
    let number = sqlx::query("SELECT $1::int::smallint")
        .bind(70_000_i32)
        .execute(&pool)
        .await
        .expect_err("out of range for smallint");
    for error in [nul, date, number] {
        let mapped = Error::from(error);
        let refusal = mapped.refusal().expect("a refusal, not INTERNAL");
        assert_eq!(
            (refusal.kind, refusal.reason.as_str()),
            (RefusalKind::Invalid, "VALUE_NOT_STORABLE"),
            "{mapped}"
        );
        assert!(
            refusal
                .fact("sqlstate")
                .is_some_and(|s| s.starts_with("22"))
        );
    }
}

#[tokio::test]
async fn a_broken_rule_the_database_enforces_stays_internal() {
    let database = TestDatabase::create().await;
    let pool = database.pool("public").await;
    sqlx::raw_sql("CREATE TABLE positive (n int CHECK (n > 0))")
        .execute(&pool)
        .await
        .expect("table");
    let error = sqlx::query("INSERT INTO positive VALUES (-1)")
        .execute(&pool)
        .await
        .expect_err("refused by the CHECK");
    // A CHECK guards an invariant the service itself must keep: breaking it is our bug.
    assert_eq!(Error::from(error).code(), tonic::Code::Internal);
}
