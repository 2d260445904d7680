//! Writing one imported board (the legacy backfill): in a transaction of its own, only when its
//! key is new and none of its ids is another board's, and with the database's refusal answered
//! as a value, so the caller quarantines that board and goes on with the next.

use phoenix_runtime::Error;
use uuid::Uuid;

use super::SqlBoards;
use super::lock::lock;
use super::save::{SaveError, save};
use crate::domain::board::Board;
use crate::domain::storable::{OwnedId, owned_ids};

/// What importing one board did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Written.
    Inserted,
    /// SQL already has a board for its user and season (a rerun): left as it is.
    Present,
    /// Some of its ids are rows of other boards: nothing written.
    Owned(Vec<Owner>),
    /// The database refused it (a constraint, a trigger, a value it cannot hold): nothing
    /// written.
    Refused {
        /// The SQLSTATE.
        code: String,
        /// The constraint (or trigger rule) named by the database, when it named one.
        constraint: String,
        message: String,
    },
}

/// An id of the board that a row of another board holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: OwnedId,
    pub user_id: Uuid,
    pub season_id: String,
}

impl SqlBoards {
    /// Imports `board` (see the module doc). Everything it writes is in one transaction, so a
    /// refused board leaves nothing behind and the next board is not affected.
    pub async fn import(&self, board: &Board) -> Result<Imported, Error> {
        let mut transaction = self.pool.begin().await?;
        if lock(&mut transaction, &board.key()).await?.is_some() {
            transaction.commit().await?;
            return Ok(Imported::Present);
        }
        let owners = owners(&mut transaction, board).await?;
        if !owners.is_empty() {
            return Ok(Imported::Owned(owners));
        }
        match save(&mut transaction, &mut [(None, board.clone())]).await {
            Ok(()) => {
                transaction.commit().await?;
                Ok(Imported::Inserted)
            }
            Err(SaveError::Refused(error)) => {
                let database = error.as_database_error();
                Ok(Imported::Refused {
                    code: database
                        .and_then(|e| e.code())
                        .map(|code| code.into_owned())
                        .unwrap_or_default(),
                    constraint: database
                        .and_then(|e| e.constraint())
                        .unwrap_or_default()
                        .to_owned(),
                    message: database.map(|e| e.message().to_owned()).unwrap_or_default(),
                })
            }
            Err(SaveError::Failed(error)) => Err(error),
        }
    }
}

/// The board's ids that rows of other boards hold, with those boards' keys.
async fn owners(connection: &mut sqlx::PgConnection, board: &Board) -> Result<Vec<Owner>, Error> {
    let ids = owned_ids(board);
    let rows: Vec<(i32, Uuid, String)> = sqlx::query_as(
        "WITH wanted(n, kind, id) AS (
             SELECT n::int4, kind, id FROM UNNEST($1::text[], $2::uuid[]) WITH ORDINALITY AS w(kind, id, n)
         )
         SELECT w.n - 1, b.user_id, b.season_id
         FROM wanted w
         JOIN LATERAL (
             SELECT board_id FROM missions_v2_boards WHERE w.kind = 'board' AND board_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_slots WHERE w.kind = 'slot' AND slot_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_slot_runs WHERE w.kind = 'run' AND run_id = w.id
             UNION ALL
             SELECT r.board_id FROM missions_v2_heartbeat_log h
             JOIN missions_v2_slot_runs r ON r.run_id = h.run_id
             WHERE w.kind = 'heartbeat' AND h.heartbeat_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_boss_runs WHERE w.kind = 'boss_run' AND boss_run_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_effects
             WHERE w.kind = 'effect' AND effect_instance_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_claims WHERE w.kind = 'claim' AND claim_id = w.id
             UNION ALL
             SELECT board_id FROM missions_v2_communications
             WHERE w.kind = 'communication' AND communication_id = w.id
         ) o ON true
         JOIN missions_v2_boards b ON b.board_id = o.board_id
         ORDER BY 1",
    )
    .bind(ids.iter().map(|id| id.kind.as_str()).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| id.id).collect::<Vec<_>>())
    .fetch_all(&mut *connection)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(index, user_id, season_id)| {
            let id = ids.get(usize::try_from(index).ok()?)?.clone();
            Some(Owner {
                id,
                user_id,
                season_id,
            })
        })
        .collect())
}
