//! The level curve in SQL (`missions_v2_levels`, see migration 0008): read whole, replaced whole.

use phoenix_runtime::Error;
use sqlx::PgPool;

use crate::domain::levels::Level;

/// Every level, level 1 first.
pub async fn load(pool: &PgPool) -> Result<Vec<Level>, Error> {
    let rows: Vec<(i32, i64, String)> =
        sqlx::query_as("SELECT level, min_xp, name FROM missions_v2_levels ORDER BY level")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(level, min_xp, name)| Level {
            level,
            min_xp,
            name,
        })
        .collect())
}

/// Replaces the curve with `levels` in one transaction (the table's deferred trigger checks the
/// whole curve at commit); returns it as stored.
pub async fn replace(pool: &PgPool, levels: &[Level]) -> Result<Vec<Level>, Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM missions_v2_levels")
        .execute(&mut *transaction)
        .await?;
    let numbers: Vec<i32> = levels.iter().map(|l| l.level).collect();
    let xps: Vec<i64> = levels.iter().map(|l| l.min_xp).collect();
    let names: Vec<String> = levels.iter().map(|l| l.name.clone()).collect();
    sqlx::query(
        "INSERT INTO missions_v2_levels (level, min_xp, name)
         SELECT * FROM unnest($1::integer[], $2::bigint[], $3::text[])",
    )
    .bind(&numbers)
    .bind(&xps)
    .bind(&names)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    load(pool).await
}
