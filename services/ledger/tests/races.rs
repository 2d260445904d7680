//! Concurrent callers: each gets the answer it would get alone.

mod support;

use phoenix_proto::ledger::v1 as pb;
use support::{Harness, key};

#[tokio::test]
async fn concurrent_first_accounts_of_a_new_asset_all_open() {
    let h = Harness::start().await;
    for round in 0..3 {
        let asset = format!("GEMS{round}");
        let calls = (0..10).map(|owner| {
            let mut ledger = h.ledger.clone();
            let request = pb::CreateAccountRequest {
                tenant_id: h.tenant.clone(),
                asset_code: asset.clone(),
                asset_scale: 2,
                owner_ref: format!("owner-{owner}"),
                kind: "wallet".into(),
                balance_limit: pb::BalanceLimit::DebitsMustNotExceedCredits.into(),
                metadata: Default::default(),
                idempotency_key: key(),
            };
            tokio::spawn(async move { ledger.create_account(request).await })
        });
        let answers = futures_util::future::join_all(calls).await;
        let mut owners = Vec::new();
        for answer in answers {
            let account = answer
                .expect("the call's task")
                .unwrap_or_else(|status| panic!("round {round}: {status:?}"))
                .into_inner()
                .account
                .expect("account");
            assert_eq!(
                (account.asset_code.as_str(), account.asset_scale),
                (asset.as_str(), 2)
            );
            owners.push(account.owner_ref);
        }
        owners.sort();
        owners.dedup();
        assert_eq!(owners.len(), 10, "one account per owner");
    }
}
