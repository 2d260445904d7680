//! The ledger's auditor: every invariant checked against a live database, across all tenants.
//! An operator runs it as the nightly reconciliation (`phoenix audit ledger`); the load test runs
//! it after its storm. It only reads.

use futures_util::StreamExt;
use sqlx::PgPool;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub violations: Vec<String>,
}

/// Every check, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.violations.len()).sum()
    }

    /// One line per check, then one per violation.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            let status = if check.violations.is_empty() {
                "ok".to_owned()
            } else {
                format!("{} VIOLATION(S)", check.violations.len())
            };
            out.push_str(&format!("{:<width$} {status}\n", check.name));
            for violation in &check.violations {
                out.push_str(&format!("  - {violation}\n"));
            }
        }
        out
    }
}

/// Most violations listed per check; the count says if there were more.
const LIST_LIMIT: i64 = 50;

/// SQL checks: each query returns one text line per violation.
const SQL_CHECKS: &[(&str, &str)] = &[
    (
        "entries sum to zero per asset",
        "SELECT format('tenant %s asset %s: entries sum to %s', tenant_id, asset_code, sum(amount))
         FROM entries GROUP BY tenant_id, asset_code HAVING sum(amount) <> 0",
    ),
    (
        "balance limits hold, pending debits included",
        "SELECT format('account %s (%s): debits %s + pending %s vs credits %s + pending %s',
                       id, balance_limit, debits_posted, debits_pending, credits_posted, credits_pending)
         FROM accounts
         WHERE (balance_limit = 'DEBITS_MUST_NOT_EXCEED_CREDITS'
                AND debits_posted + debits_pending > credits_posted)
            OR (balance_limit = 'CREDITS_MUST_NOT_EXCEED_DEBITS'
                AND credits_posted + credits_pending > debits_posted)",
    ),
    (
        "transfers and entries name accounts of their tenant and asset",
        "SELECT format('transfer %s: %s account %s is no %s account of tenant %s',
                       t.id, s.side, s.account_id, t.asset_code, t.tenant_id)
         FROM transfers t
         CROSS JOIN LATERAL (VALUES ('debit', t.debit_account_id),
                                    ('credit', t.credit_account_id)) AS s(side, account_id)
         WHERE NOT EXISTS (SELECT FROM accounts a WHERE a.tenant_id = t.tenant_id
                           AND a.id = s.account_id AND a.asset_code = t.asset_code)
         UNION ALL
         SELECT format('entry %s/%s: account %s is no %s account of tenant %s',
                       e.account_id, e.version, e.account_id, e.asset_code, e.tenant_id)
         FROM entries e
         WHERE NOT EXISTS (SELECT FROM accounts a WHERE a.tenant_id = e.tenant_id
                           AND a.id = e.account_id AND a.asset_code = e.asset_code)",
    ),
    (
        "balances equal their entries",
        "SELECT format('account %s: debits %s credits %s version %s, entries say debits %s credits %s count %s last version %s last balance %s',
                       a.id, a.debits_posted, a.credits_posted, a.entry_version,
                       coalesce(e.debits, 0), coalesce(e.credits, 0), coalesce(e.n, 0),
                       coalesce(e.last_version, 0), coalesce(l.balance, 0))
         FROM accounts a
         LEFT JOIN (SELECT tenant_id, account_id, count(*) AS n, max(version) AS last_version,
                           -sum(amount) FILTER (WHERE amount < 0) AS debits,
                           sum(amount) FILTER (WHERE amount > 0) AS credits
                    FROM entries GROUP BY tenant_id, account_id) e
                ON e.tenant_id = a.tenant_id AND e.account_id = a.id
         LEFT JOIN LATERAL (SELECT balance FROM entries x
                            WHERE x.tenant_id = a.tenant_id AND x.account_id = a.id
                            ORDER BY version DESC LIMIT 1) l ON true
         WHERE a.debits_posted <> coalesce(e.debits, 0)
            OR a.credits_posted <> coalesce(e.credits, 0)
            OR a.entry_version <> coalesce(e.n, 0)
            OR coalesce(e.n, 0) <> coalesce(e.last_version, 0)
            OR a.credits_posted - a.debits_posted <> coalesce(l.balance, 0)",
    ),
    (
        "running balances add up",
        "SELECT format('account %s version %s: balance %s, entries up to it sum to %s',
                       account_id, version, balance, running)
         FROM (SELECT account_id, version, balance,
                      sum(amount) OVER (PARTITION BY tenant_id, account_id ORDER BY version) AS running
               FROM entries) e
         WHERE balance <> running",
    ),
    (
        "pending balances equal open pendings",
        "SELECT format('account %s: pending debits %s credits %s, open pendings %s and %s',
                       a.id, a.debits_pending, a.credits_pending, coalesce(d.sum, 0), coalesce(c.sum, 0))
         FROM accounts a
         LEFT JOIN (SELECT tenant_id, debit_account_id AS id, sum(amount) AS sum FROM open_pendings
                    GROUP BY 1, 2) d ON d.tenant_id = a.tenant_id AND d.id = a.id
         LEFT JOIN (SELECT tenant_id, credit_account_id AS id, sum(amount) AS sum FROM open_pendings
                    GROUP BY 1, 2) c ON c.tenant_id = a.tenant_id AND c.id = a.id
         WHERE a.debits_pending <> coalesce(d.sum, 0) OR a.credits_pending <> coalesce(c.sum, 0)",
    ),
    (
        "a pending is open until resolved, once",
        "SELECT format('pending %s: open=%s, resolutions=%s', t.id, o.transfer_id IS NOT NULL, r.n)
         FROM transfers t
         LEFT JOIN open_pendings o ON o.tenant_id = t.tenant_id AND o.transfer_id = t.id
         LEFT JOIN LATERAL (SELECT count(*) AS n FROM transfers r
                            WHERE r.tenant_id = t.tenant_id AND r.pending_id = t.id) r ON true
         WHERE t.kind = 'PENDING' AND ((o.transfer_id IS NULL) = (r.n = 0) OR r.n > 1)",
    ),
    (
        "reversals never exceed what they reverse",
        "SELECT format('transfer %s of %s reversed by %s', o.id, o.amount, r.total)
         FROM (SELECT tenant_id, reversal_of, sum(amount) AS total FROM transfers
               WHERE reversal_of IS NOT NULL GROUP BY 1, 2) r
         JOIN transfers o ON o.tenant_id = r.tenant_id AND o.id = r.reversal_of
         WHERE r.total > o.amount",
    ),
    (
        "each idempotency key had one effect",
        "SELECT format('tenant %s key %s: %s calls made transfers', tenant_id, idempotency_key,
                       count(DISTINCT batch_id))
         FROM transfers WHERE idempotency_key IS NOT NULL
         GROUP BY tenant_id, idempotency_key HAVING count(DISTINCT batch_id) > 1",
    ),
    (
        "no transfer passed the per-transfer limit",
        "SELECT format('transfer %s of %s %s above limit %s of policy %s', t.id, t.amount,
                       t.asset_code, p.limit_amount, p.id)
         FROM transfers t JOIN policies p
           ON p.tenant_id = t.tenant_id AND p.kind = 'MAX_TRANSFER_AMOUNT'
          AND (p.asset_code = '' OR p.asset_code = t.asset_code)
          AND t.created_at >= p.effective_from
          AND (p.effective_to IS NULL OR t.created_at < p.effective_to)
         WHERE t.kind IN ('POSTED', 'PENDING') AND t.amount > p.limit_amount",
    ),
    (
        "no account passed the daily debit limit",
        "SELECT format('account %s debited %s on %s by transfer %s, above limit %s of policy %s',
                       d.debit_account_id, d.running, d.day, d.id, p.limit_amount, p.id)
         FROM (SELECT t.*, (t.created_at AT TIME ZONE 'UTC')::date AS day,
                      sum(amount) OVER (PARTITION BY tenant_id, debit_account_id,
                                                     (created_at AT TIME ZONE 'UTC')::date
                                        ORDER BY created_at, id) AS running
               FROM transfers t WHERE kind IN ('POSTED', 'PENDING')) d
         JOIN policies p
           ON p.tenant_id = d.tenant_id AND p.kind = 'MAX_DAILY_DEBITS'
          AND (p.asset_code = '' OR p.asset_code = d.asset_code)
          AND d.created_at >= p.effective_from
          AND (p.effective_to IS NULL OR d.created_at < p.effective_to)
         WHERE d.running > p.limit_amount",
    ),
    (
        "no debit under a kill switch",
        "SELECT format('transfer %s (%s) made under kill switch %s', t.id, t.kind, p.id)
         FROM transfers t JOIN policies p
           ON p.tenant_id = t.tenant_id AND p.kind = 'KILL_SWITCH'
          AND (p.asset_code = '' OR p.asset_code = t.asset_code)
          AND t.created_at >= p.effective_from
          AND (p.effective_to IS NULL OR t.created_at < p.effective_to)
         WHERE t.kind IN ('POSTED', 'PENDING', 'POST_PENDING')",
    ),
    (
        "account streams have no gaps",
        "SELECT format('account %s: stream has %s events up to version %s, account says %s',
                       a.id, coalesce(s.n, 0), coalesce(s.last, 0), a.event_version)
         FROM accounts a
         LEFT JOIN (SELECT tenant_id, aggregate_id, count(*) AS n, max(aggregate_version) AS last
                    FROM events WHERE aggregate_type = 'account' GROUP BY 1, 2) s
                ON s.tenant_id = a.tenant_id AND s.aggregate_id = a.id::text
         WHERE coalesce(s.n, 0) <> a.event_version OR coalesce(s.last, 0) <> a.event_version",
    ),
    (
        "snapshots keep at most three per stream",
        "SELECT format('%s %s has %s snapshots', aggregate_type, aggregate_id, count(*))
         FROM snapshots GROUP BY tenant_id, aggregate_type, aggregate_id HAVING count(*) > 3",
    ),
];

/// Runs every check.
pub async fn run(pool: &PgPool) -> anyhow::Result<Report> {
    let mut checks = Vec::new();
    for (name, query) in SQL_CHECKS {
        let violations: Vec<String> = sqlx::query_scalar(&format!("{query} LIMIT {LIST_LIMIT}"))
            .fetch_all(pool)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        checks.push(Check { name, violations });
    }
    checks.push(Check {
        name: "stock: reservations, holdings and streams agree",
        violations: crate::store::stock::audit(pool).await?,
    });
    checks.push(Check {
        name: "rehydration equals the balances",
        violations: rehydration(pool).await?,
    });
    Ok(Report { checks })
}

/// Every account rebuilt from its latest snapshot and later events, compared with its row.
async fn rehydration(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let accounts = crate::store::accounts::all_accounts(pool).await?;
    let results: Vec<anyhow::Result<Option<String>>> = futures_util::stream::iter(accounts)
        .map(|(tenant_id, id)| async move {
            let account = crate::app::accounts::existing_account(pool, tenant_id, id).await?;
            let rebuilt = crate::app::events::rehydrate_account(pool, tenant_id, id)
                .await?
                .balances;
            Ok((rebuilt != account.balances).then(|| {
                format!(
                    "account {id}: rows say {:?}, snapshot + events say {rebuilt:?}",
                    account.balances
                )
            }))
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut violations = Vec::new();
    for result in results {
        if let Some(violation) = result? {
            violations.push(violation);
        }
    }
    violations.sort();
    violations.truncate(usize::try_from(LIST_LIMIT).unwrap_or(usize::MAX));
    Ok(violations)
}
