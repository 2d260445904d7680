//! The ledger's own metrics, as an operator's scrape reads them. Alone in its test binary: the
//! counters are the process's, and no other test may post while this one counts.

mod support;

use std::time::{Duration, Instant};

use phoenix_ledger::metrics::{self, PostingPhase};
use phoenix_proto::ledger::v1 as pb;
use support::{Harness, key};

/// The posting counters as they stand: transactions begun, and seconds by phase.
fn posting_counters() -> (u64, Vec<f64>) {
    let seconds = PostingPhase::ALL.map(metrics::posting_seconds).to_vec();
    (metrics::get().posting_transactions.get(), seconds)
}

/// A posting transaction is counted once, and its time goes to the phase it was spent in: a
/// transfer kept waiting on an account lock spends that wait deciding (its lock statement), not
/// beginning, writing or committing. So an operator reading where postings spend their time is
/// told the truth about lock contention.
#[tokio::test]
async fn a_posting_transaction_counts_the_time_of_each_phase_where_it_was_spent() {
    const HELD: Duration = Duration::from_millis(300);
    let mut h = Harness::start().await;
    let (issuer, wallet) = h.funded_wallet("ana", 100).await;

    let holder = support::lock_account(&h.service.pool, &wallet).await;
    let (transactions_before, seconds_before) = posting_counters();
    let started = Instant::now();
    let mut ledger = h.ledger.clone();
    let request = pb::CreateTransferRequest {
        tenant_id: h.tenant.clone(),
        transfer: Some(support::spec(&wallet, &issuer, 40)),
        idempotency_key: key(),
    };
    let transfer = tokio::spawn(async move { ledger.create_transfer(request).await });
    // Held for HELD once the transfer waits on it.
    support::until_a_lock_is_waited_for(&h.service.pool).await;
    tokio::time::sleep(HELD).await;
    holder.commit().await.expect("commit");
    transfer
        .await
        .expect("the call's task")
        .expect("the transfer, once the lock is free");
    let elapsed = started.elapsed();

    let (transactions_after, seconds_after) = posting_counters();
    assert_eq!(
        transactions_after - transactions_before,
        1,
        "one posting transaction for one transfer"
    );
    let spent: Vec<(&str, f64)> = PostingPhase::ALL
        .iter()
        .zip(seconds_after.iter().zip(&seconds_before))
        .map(|(phase, (after, before))| (phase.as_str(), after - before))
        .collect();
    for (phase, seconds) in &spent {
        assert!(*seconds > 0.0, "{phase} counted no time: {spent:?}");
    }
    let decide = spent[1].1;
    assert!(
        decide >= HELD.as_secs_f64() * 0.9,
        "the lock wait counts as deciding: {spent:?}"
    );
    let others: f64 = spent.iter().map(|(_, s)| s).sum::<f64>() - decide;
    assert!(
        others < HELD.as_secs_f64() / 2.0,
        "the lock wait counts in no other phase: {spent:?}"
    );
    assert!(
        spent.iter().map(|(_, s)| s).sum::<f64>() <= elapsed.as_secs_f64(),
        "the phases fit in the call: {spent:?} in {elapsed:?}"
    );

    let scraped = phoenix_runtime::metrics::global().render();
    for phase in PostingPhase::ALL {
        let line = format!(
            "phoenix_ledger_posting_seconds_total{{phase=\"{}\"}}",
            phase.as_str()
        );
        assert!(scraped.contains(&line), "{line} is exported:\n{scraped}");
    }
    assert!(
        scraped.contains("phoenix_ledger_posting_transactions_total"),
        "the transactions are exported:\n{scraped}"
    );
}
