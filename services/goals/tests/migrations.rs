//! The goals schema's migrations at Alembic's parity (seed 002's command list): upgrade to
//! head or to a version, downgrade one or to a version, current, history, new, reset and
//! print-only SQL, through the migrator `phoenix migrate` runs.

use phoenix_runtime::migrate::{Direction, Migrator, new_migration};
use phoenix_testkit::TestDatabase;

async fn tables(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'goals'
           AND tablename <> 'schema_history' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("tables")
}

#[tokio::test]
async fn the_schema_moves_to_any_version_in_either_direction() {
    let spec = phoenix_goals::spec();
    let set = spec.migration_set().expect("migrations");
    let database = TestDatabase::create().await;
    let pool = database.pool("goals").await;
    let migrator = Migrator::new(&set, &pool);

    // upgrade head --sql: the SQL, nothing applied.
    let planned = migrator.up(None, true).await.expect("dry run");
    assert_eq!(planned.len(), 2);
    assert!(planned[1].sql.contains("CREATE TABLE goals"));
    assert_eq!(migrator.status().await.expect("status").current, None);

    // upgrade 1, then upgrade head.
    migrator.to(1, false).await.expect("to 1");
    assert_eq!(migrator.status().await.expect("status").current, Some(1));
    assert!(tables(&pool).await.is_empty());
    migrator.up(None, false).await.expect("head");
    let head = tables(&pool).await;
    assert!(head.contains(&"embeddings".to_owned()) && head.contains(&"event_exports".to_owned()));

    // downgrade to a named version, with the SQL printed first.
    let back = migrator.to(1, true).await.expect("dry run down");
    assert_eq!(
        back.iter()
            .map(|s| (s.version, s.direction))
            .collect::<Vec<_>>(),
        [(2, Direction::Down)]
    );
    assert_eq!(tables(&pool).await, head, "a dry run changes nothing");
    migrator.to(1, false).await.expect("down to 1");
    assert!(tables(&pool).await.is_empty());
    migrator.to(2, false).await.expect("up to 2");
    assert_eq!(tables(&pool).await, head, "up, down, up: the same schema");
    assert!(migrator.to(2, false).await.expect("there").is_empty());

    // downgrade -1, history, current.
    migrator.down(1, false).await.expect("down one");
    let history = migrator.history().await.expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| (h.version, h.applied_at.is_some()))
            .collect::<Vec<_>>(),
        [(1, true), (2, false)]
    );
    let status = migrator.status().await.expect("status");
    assert_eq!(
        (status.current, status.head, status.pending),
        (Some(1), Some(2), 1)
    );

    // An unknown version is refused, nothing moves.
    let error = migrator.to(7, false).await.expect_err("no such version");
    assert!(error.to_string().contains("has no migration 7"), "{error}");

    // reset: drop the schema and migrate to head again (the CLI asks for --confirm goals).
    migrator.to(0, false).await.expect("all the way down");
    assert_eq!(migrator.status().await.expect("status").current, None);
    migrator.up(None, false).await.expect("head");
    migrator.reset().await.expect("reset");
    assert_eq!(tables(&pool).await, head);

    // revision -m: a numbered pair of files.
    let folder = std::env::temp_dir().join(format!("goals-new-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("0002_goals.up.sql"), "").expect("file");
    std::fs::write(folder.join("0002_goals.down.sql"), "").expect("file");
    let (up, down) = new_migration(&folder, "add_streaks").expect("created");
    assert!(up.ends_with("0003_add_streaks.up.sql"), "{}", up.display());
    assert!(down.ends_with("0003_add_streaks.down.sql"));
    let _ = std::fs::remove_dir_all(&folder);
}
