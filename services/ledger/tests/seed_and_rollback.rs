//! Demo data through the API, and the full rollback.

mod support;

use phoenix_ledger::seed::{self, Seeded};
use phoenix_runtime::migrate::Migrator;

#[tokio::test]
async fn the_seed_loads_once_and_the_full_rollback_removes_every_table() {
    let service = phoenix_testkit::spawn(phoenix_ledger::spec()).await;
    let first = seed::run(service.channel.clone()).await.expect("seeded");
    let Seeded::Created {
        tenant_id,
        accounts,
        ..
    } = first
    else {
        panic!("a fresh database is seeded: {first:?}");
    };
    assert_eq!(accounts, 9);
    assert_eq!(support::count(&service.pool, "accounts").await, 9);
    assert_eq!(support::count(&service.pool, "inventory_items").await, 3);
    assert!(support::count(&service.pool, "events").await > 20);
    let report = phoenix_ledger::audit::run(&service.pool)
        .await
        .expect("audit");
    assert_eq!(report.violations(), 0, "{}", report.render());

    let again = seed::run(service.channel.clone())
        .await
        .expect("second run");
    assert_eq!(again, Seeded::AlreadyThere { tenant_id });
    assert_eq!(
        support::count(&service.pool, "transfers").await,
        8,
        "nothing added"
    );

    let set = phoenix_ledger::spec().migration_set().expect("migrations");
    let steps = Migrator::new(&set, &service.pool)
        .down(usize::MAX, false)
        .await
        .expect("full rollback");
    assert_eq!(steps.len(), set.migrations().len());
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'ledger'
         ORDER BY 1",
    )
    .fetch_all(&service.pool)
    .await
    .expect("tables");
    assert_eq!(
        tables,
        ["schema_history"],
        "only the migration history is left"
    );
}
