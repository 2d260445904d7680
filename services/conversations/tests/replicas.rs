//! Two replicas of conversations on one database, their cleanups every 40 ms: every stale row
//! (expired cache entries and leases, idle empty buffers, old typing stamps, expired keys) is
//! removed once and counted once, nothing live is touched, and no cleanup of either replica
//! fails.

use std::time::Duration;

use phoenix_runtime::metrics::KindLabels;
use phoenix_testkit::{await_count, await_job_ticks, spawn_replicas};

/// Contacts with stale rows, and as many with live ones.
const CONTACTS: i64 = 200;
const KINDS: [&str; 6] = [
    "acknowledged_buffer",
    "chat_info_entry",
    "context_entry",
    "expired_lease",
    "idempotency_key",
    "typing_stamp",
];

fn cleaned(kind: &str) -> u64 {
    phoenix_conversations::metrics::get()
        .cleaned
        .get_or_create(&KindLabels { kind: kind.into() })
        .get()
}

/// Rows of the cleanup's tables, per table, in the order of the query.
async fn rows(pool: &sqlx::PgPool) -> Vec<i64> {
    let counts: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM buffers),
                (SELECT count(*) FROM cache_entries WHERE kind = 'chat_info'),
                (SELECT count(*) FROM cache_entries WHERE kind = 'context'),
                (SELECT count(*) FROM processing_leases),
                (SELECT count(*) FROM request_keys),
                (SELECT count(*) FROM typing_stamps)",
    )
    .fetch_one(pool)
    .await
    .expect("count rows");
    vec![counts.0, counts.1, counts.2, counts.3, counts.4, counts.5]
}

#[tokio::test]
async fn two_replicas_clean_each_stale_row_once() {
    let replicas = spawn_replicas(phoenix_conversations::spec(), 2, |config| {
        config.jobs.set("*", Duration::from_millis(40));
    })
    .await;
    let pool = replicas.pool.clone();
    let before: Vec<u64> = KINDS.iter().map(|kind| cleaned(kind)).collect();
    // Phones 1..=CONTACTS have stale rows of every kind, the next CONTACTS live ones, all
    // written in one transaction so no cleanup sees half of them.
    let mut transaction = pool.begin().await.expect("begin");
    for statement in [
        "INSERT INTO contacts (phone, chat_id, created_at, updated_at)
         SELECT (10000000 + n)::text, 'chat-' || n, now(), now() FROM generate_series(1, 2 * $1) n",
        "INSERT INTO cache_entries (phone, kind, value, ttl, written_at, expires_at)
         SELECT (10000000 + n)::text, kind, 'v', interval '1 hour',
                now() - interval '1 hour' + CASE WHEN n > $1 THEN interval '2 hours' ELSE '0' END
                      - interval '1 minute',
                now() + CASE WHEN n > $1 THEN interval '2 hours' ELSE '0' END - interval '1 minute'
         FROM generate_series(1, 2 * $1) n, unnest(ARRAY['context', 'chat_info']) kind",
        "INSERT INTO processing_leases (phone, owner, acquired_at, expires_at)
         SELECT (10000000 + n)::text, 'worker', now() - interval '1 hour',
                now() + CASE WHEN n > $1 THEN interval '1 hour' ELSE interval '-1 minute' END
         FROM generate_series(1, 2 * $1) n",
        "INSERT INTO typing_stamps (phone, last_logged_at)
         SELECT (10000000 + n)::text,
                now() - CASE WHEN n > $1 THEN interval '1 minute' ELSE interval '2 days' END
         FROM generate_series(1, 2 * $1) n",
        "INSERT INTO buffers (phone, last_message_at, debounce, max_wait, max_messages)
         SELECT (10000000 + n)::text,
                now() - CASE WHEN n > $1 THEN interval '1 minute' ELSE interval '2 hours' END,
                interval '1 second', interval '10 seconds', 10
         FROM generate_series(1, 2 * $1) n",
        "INSERT INTO request_keys
             (scope, idempotency_key, method, fingerprint, outcome, created_at, expires_at)
         SELECT '', 'key-' || n, 'Test', '\\x00', '{}', now() - interval '2 days',
                now() + CASE WHEN n > $1 THEN interval '1 day' ELSE interval '-1 day' END
         FROM generate_series(1, 2 * $1) n",
    ] {
        sqlx::query(statement)
            .bind(CONTACTS)
            .execute(&mut *transaction)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    transaction.commit().await.expect("commit");

    await_count(
        &pool,
        "SELECT (SELECT count(*) FROM buffers) + (SELECT count(*) FROM cache_entries)
              + (SELECT count(*) FROM processing_leases) + (SELECT count(*) FROM request_keys)
              + (SELECT count(*) FROM typing_stamps)",
        6 * CONTACTS,
        Duration::from_secs(15),
    )
    .await;
    await_job_ticks(&["conversations-cleanup"], 6, Duration::from_secs(15)).await;

    assert_eq!(rows(&pool).await, vec![CONTACTS; 6], "the live rows stay");
    let counted: Vec<u64> = KINDS
        .iter()
        .zip(&before)
        .map(|(kind, before)| cleaned(kind) - before)
        .collect();
    assert_eq!(
        counted,
        vec![CONTACTS as u64; 6],
        "each row removed and counted once"
    );
    replicas.shutdown().await;
}
