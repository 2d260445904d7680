//! The weekly audit (seed 000 §4): the snapshot table against the relational tables, and the
//! rule invariants, over every board. `phoenix audit missions` prints its violations and fails
//! when there is one.
//!
//! Every check is one set-based query, all of them in one statement over one read-only
//! snapshot, so a board written during the audit is judged whole or not at all. The invariants
//! are checked on the snapshots (what GetBoard serves); the relational rows get them from their
//! constraints and from the first check, which demands that each snapshot equals the board
//! rebuilt from its rows.

use phoenix_runtime::Error;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::sql::maintenance_transaction;

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Boards checked (snapshot rows).
    pub boards: i64,
    /// Empty when all is well.
    pub violations: Vec<Violation>,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The check that failed, e.g. `snapshot_matches_relational`.
    pub check: String,
    /// The board's user and season, when the violation is about one board.
    pub user_id: Option<Uuid>,
    pub season_id: Option<String>,
    /// What is wrong, for a human.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.check)?;
        if let Some(user) = self.user_id {
            write!(f, " user={user}")?;
        }
        if let Some(season) = &self.season_id {
            write!(f, " season={season}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Every check, as rows of (check, user_id, season_id, detail).
const CHECKS: &str = "
SELECT 'snapshot_has_relational_board', s.user_id, s.season_id,
       'the snapshot has no relational board'
FROM missions_v2_state s
WHERE NOT EXISTS (SELECT 1 FROM missions_v2_boards b
                  WHERE b.user_id = s.user_id AND b.season_id = s.season_id)
UNION ALL
SELECT 'relational_board_has_snapshot', b.user_id, b.season_id,
       format('relational board %s has no snapshot', b.board_id)
FROM missions_v2_boards b
WHERE NOT EXISTS (SELECT 1 FROM missions_v2_state s
                  WHERE s.user_id = b.user_id AND s.season_id = b.season_id)
UNION ALL
SELECT 'snapshot_matches_relational', s.user_id, s.season_id,
       'the snapshot differs from the relational rows in: ' || (
           SELECT string_agg(field, ', ' ORDER BY field)
           FROM (SELECT jsonb_object_keys(s.state) UNION SELECT jsonb_object_keys(d.document))
                AS fields(field)
           WHERE s.state -> field IS DISTINCT FROM d.document -> field)
FROM missions_v2_state s
JOIN missions_v2_board_documents d ON d.user_id = s.user_id AND d.season_id = s.season_id
WHERE s.state <> d.document
UNION ALL
SELECT 'petals_within_total', s.user_id, s.season_id,
       format('slot %s has %s petals of %s', slot->>'slotKey', slot->>'petalsRemaining',
              slot->>'petalsTotal')
FROM missions_v2_state s, jsonb_array_elements(s.state->'slots') slot
WHERE (slot->>'petalsRemaining')::int NOT BETWEEN 0 AND (slot->>'petalsTotal')::int
UNION ALL
SELECT 'one_heartbeat_per_run_and_day', s.user_id, s.season_id,
       format('run %s has %s heartbeats on %s', run->>'runId', count(*), heartbeat->>'date')
FROM missions_v2_state s, jsonb_array_elements(s.state->'runs') run,
     jsonb_array_elements(run->'heartbeats') heartbeat
GROUP BY s.user_id, s.season_id, run->>'runId', heartbeat->>'date'
HAVING count(*) > 1
UNION ALL
SELECT 'one_close_per_run_and_day', s.user_id, s.season_id,
       format('run %s closed %s %s times', run->>'runId', day->>'date', count(*))
FROM missions_v2_state s, jsonb_array_elements(s.state->'runs') run,
     jsonb_array_elements(run->'days') day
GROUP BY s.user_id, s.season_id, run->>'runId', day->>'date'
HAVING count(*) > 1
UNION ALL
SELECT 'one_claim_per_run', s.user_id, s.season_id,
       format('run %s was claimed %s times', claim->>'runId', count(*))
FROM missions_v2_state s, jsonb_array_elements(s.state->'claims') claim
GROUP BY s.user_id, s.season_id, claim->>'runId'
HAVING count(*) > 1
UNION ALL
SELECT 'no_active_run_in_cooldown', s.user_id, s.season_id,
       format('slot %s cools down while run %s is active', slot->>'slotKey', run->>'runId')
FROM missions_v2_state s, jsonb_array_elements(s.state->'slots') slot,
     jsonb_array_elements(s.state->'runs') run
WHERE slot->>'state' = 'cooldown' AND run->>'status' = 'active'
  AND run->>'slotKey' = slot->>'slotKey'
ORDER BY 1, 2, 3, 4";

/// Runs every check over every board.
pub async fn run(pool: &PgPool) -> Result<AuditReport, Error> {
    let mut transaction = maintenance_transaction(pool).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let boards: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_state")
        .fetch_one(&mut *transaction)
        .await?;
    let rows: Vec<(String, Uuid, String, String)> =
        sqlx::query_as(CHECKS).fetch_all(&mut *transaction).await?;
    transaction.commit().await?;
    Ok(AuditReport {
        boards,
        violations: rows
            .into_iter()
            .map(|(check, user_id, season_id, detail)| Violation {
                check,
                user_id: Some(user_id),
                season_id: Some(season_id),
                detail,
            })
            .collect(),
    })
}
