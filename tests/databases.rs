//! A database per context: each service on its `PHOENIX_<SERVICE>_DATABASE_URL`, the others on
//! `DATABASE_URL`, as `phoenix up` and `phoenix serve` start them.

use std::net::SocketAddr;
use std::sync::Arc;

use phoenix_platform_tests::{all_services, assert_serving};
use phoenix_runtime::{Database, ServiceSpec};
use phoenix_testkit::{TestDatabase, test_config};
use tokio_util::sync::CancellationToken;

fn on_port_zero(specs: Vec<ServiceSpec>) -> Vec<(ServiceSpec, SocketAddr)> {
    specs
        .into_iter()
        .map(|spec| (spec, SocketAddr::from(([127, 0, 0, 1], 0))))
        .collect()
}

#[tokio::test]
async fn services_with_their_own_url_migrate_and_serve_there_the_others_on_database_url() {
    let shared = TestDatabase::create().await;
    let own = TestDatabase::create().await;
    let mut config = test_config();
    config.database_url = Some(shared.url.clone());
    config.databases = Default::default();
    for service in ["ledger", "narrative"] {
        config
            .databases
            .set_url(service, own.url.clone())
            .expect("a known service");
    }
    let specs = on_port_zero(all_services().into_iter().map(|(spec, _)| spec).collect());
    let names: Vec<&str> = specs.iter().map(|(spec, _)| spec.name).collect();

    let database = Database::open_for(&config, &names)
        .await
        .expect("both databases open");
    assert_eq!(database.shared_url(), Some(shared.url.as_str()));
    assert_eq!(database.url_for("ledger").expect("ledger"), own.url);
    assert_eq!(
        database.url_for("directory").expect("directory"),
        shared.url
    );
    let shutdown = CancellationToken::new();
    let running = phoenix_runtime::start_all(&specs, &Arc::new(config), &database, &shutdown)
        .await
        .expect("every service starts");
    for service in &running {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", service.addr))
            .expect("a URL")
            .connect()
            .await
            .expect("connect");
        assert_serving(&channel).await;
    }

    let mut elsewhere: Vec<String> = names
        .iter()
        .filter(|name| !["ledger", "narrative"].contains(name))
        .map(|name| (*name).to_owned())
        .collect();
    elsewhere.sort();
    assert_eq!(
        own.schemas(&names).await,
        ["ledger", "narrative"],
        "the services with their own URL migrated there, and only they"
    );
    assert_eq!(
        shared.schemas(&names).await,
        elsewhere,
        "every other service fell back to DATABASE_URL, and the two did not"
    );

    shutdown.cancel();
    for service in running {
        service.wait().await.expect("clean shutdown");
    }
    database.close().await;
}

#[tokio::test]
async fn with_a_url_for_every_service_nothing_else_is_opened() {
    let own = TestDatabase::create().await;
    let mut config = test_config();
    config.database_url = None;
    config.databases = Default::default();
    // A data folder where no server runs: starting the embedded one would be a mistake.
    config.embedded.data_dir = std::env::temp_dir().join(format!(
        "phoenix-no-embedded-{}",
        uuid::Uuid::new_v4().simple()
    ));
    config
        .databases
        .set_url("goals", own.url.clone())
        .expect("a known service");
    let database = Database::open_for(&config, &["goals"])
        .await
        .expect("the goals' own database is enough");
    assert!(database.embedded.is_none(), "no embedded server started");
    assert_eq!(database.shared_url(), None);
    assert!(!config.embedded.data_dir.exists(), "no data folder created");
    let pool = database
        .connect("goals", &config)
        .await
        .expect("a pool on the goals' database");
    let current: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&pool)
        .await
        .expect("query");
    assert_eq!(current, own.name);
    pool.close().await;

    let error = database
        .url_for("directory")
        .expect_err("the directory was not opened for")
        .to_string();
    assert!(error.starts_with("no database for directory"), "{error}");
}

#[tokio::test]
async fn a_bad_url_stops_the_start_naming_its_variable() {
    let shared = TestDatabase::create().await;
    let mut config = test_config();
    config.database_url = Some(shared.url.clone());
    config.databases = Default::default();
    config
        .databases
        .set_url(
            "coordinator",
            "postgres://phoenix:hunter2@db:port/x".to_owned(),
        )
        .expect("a known service");
    let error = Database::open_for(&config, &["directory", "coordinator"])
        .await
        .expect_err("the coordinator's URL has no valid port")
        .to_string();
    assert!(
        error.starts_with(
            "PHOENIX_COORDINATOR_DATABASE_URL (database of coordinator): not a valid PostgreSQL URL"
        ),
        "{error}"
    );
    assert!(
        !error.contains("hunter2"),
        "the password is not echoed: {error}"
    );

    // A server that does not answer: the connection error names the variable too.
    config
        .databases
        .set_url("coordinator", "postgres://phoenix@127.0.0.1:1/x".to_owned())
        .expect("a known service");
    config.db_acquire_timeout = std::time::Duration::from_millis(500);
    let database = Database::open_for(&config, &["coordinator"])
        .await
        .expect("the URL is well-formed");
    let error = database
        .connect("coordinator", &config)
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(
        error.starts_with("cannot connect to the database for coordinator")
            && error.ends_with("(from PHOENIX_COORDINATOR_DATABASE_URL)"),
        "{error}"
    );
}
