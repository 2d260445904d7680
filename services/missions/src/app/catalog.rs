//! The catalog use cases: the catalog the rules read (cached) and the admins' upserts.

use std::sync::{Arc, RwLock};

use phoenix_runtime::Error;
use sqlx::PgPool;

use super::Missions;
use crate::domain::catalog::{Badge, Boss, Catalog, EffectDefinition, Mission};
use crate::store::catalog as store;

/// The catalog as the rules read it: loaded on first use (after loading the default catalog
/// into an empty database), replaced after every upsert here, and reloaded on a schedule so
/// upserts made through another replica show up too.
#[derive(Debug, Clone)]
pub struct CatalogCache {
    pool: PgPool,
    current: Arc<RwLock<Option<Arc<Catalog>>>>,
    /// Set once the default catalog has been loaded into an empty database (or found not
    /// needed), before the first read of this process.
    defaults: Arc<tokio::sync::OnceCell<()>>,
}

impl CatalogCache {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            current: Arc::default(),
            defaults: Arc::default(),
        }
    }

    /// The cached catalog, loaded on first use.
    pub async fn get(&self) -> Result<Arc<Catalog>, Error> {
        if let Some(catalog) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(catalog);
        }
        self.reload().await
    }

    /// The catalog read again from the database (after the default catalog, the first time).
    pub async fn reload(&self) -> Result<Arc<Catalog>, Error> {
        self.defaults
            .get_or_try_init(|| async {
                store::ensure_default(&self.pool).await?;
                Ok::<_, Error>(())
            })
            .await?;
        let catalog = Arc::new(store::load(&self.pool).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(catalog.clone());
        Ok(catalog)
    }
}

impl Missions {
    /// The whole catalog as the database has it now (GetCatalog).
    pub async fn current_catalog(&self) -> Result<Arc<Catalog>, Error> {
        self.catalog.reload().await
    }

    /// Creates or replaces a mission; returns it as stored.
    pub async fn upsert_mission(&self, mission: &Mission) -> Result<Mission, Error> {
        self.upsert(store::upsert_mission(&self.pool, mission))
            .await
    }

    /// Creates or replaces a badge; returns it as stored.
    pub async fn upsert_badge(&self, badge: &Badge) -> Result<Badge, Error> {
        self.upsert(store::upsert_badge(&self.pool, badge)).await
    }

    /// Creates or replaces an effect definition; returns it as stored.
    pub async fn upsert_effect(
        &self,
        effect: &EffectDefinition,
    ) -> Result<EffectDefinition, Error> {
        self.upsert(store::upsert_effect(&self.pool, effect)).await
    }

    /// Creates or replaces a boss; returns it as stored.
    pub async fn upsert_boss(&self, boss: &Boss) -> Result<Boss, Error> {
        self.upsert(store::upsert_boss(&self.pool, boss)).await
    }

    /// Runs an upsert after the default catalog (an upsert into an empty database comes after
    /// it, not instead of it), then refreshes the cache.
    async fn upsert<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.catalog.get().await?;
        let stored = write.await?;
        self.catalog.reload().await?;
        Ok(stored)
    }
}
