//! Two replicas of the directory on one database: its background job (the idempotency-key sweep)
//! runs on one replica at a time and does its work once.

#[tokio::test]
async fn two_replicas_sweep_expired_keys_once_without_failures() {
    phoenix_testkit::sweeps_expired_keys_once(
        phoenix_directory::spec(),
        "directory-remove-expired-keys",
    )
    .await;
}
