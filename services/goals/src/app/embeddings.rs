//! Embedding models, upserts, deletes and similarity search.

use phoenix_runtime::Error;
use uuid::Uuid;

use super::{Goals, now};
use crate::domain::embedding::{self, Model, NewEmbedding, Search, Similar};
use crate::error;
use crate::store::embeddings::{self as store, Plan};

/// What a search found, and whether it used the approximate index.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub results: Vec<Similar>,
    pub approximate: bool,
}

impl Goals {
    /// Registers a model with its dimension and builds its index; the same registration again
    /// answers the model (`false`), another dimension is MODEL_DIMENSION_MISMATCH.
    pub async fn register_model(
        &self,
        name: String,
        dimensions: i32,
    ) -> Result<(Model, bool), Error> {
        let mut transaction = self.pool.begin().await?;
        let (model, created) =
            store::register_model(&mut transaction, &name, dimensions, now()).await?;
        if model.dimensions != dimensions {
            return Err(
                error::model_dimension_mismatch(&name, model.dimensions, dimensions).into(),
            );
        }
        transaction.commit().await?;
        Ok((model, created))
    }

    pub async fn models(&self) -> Result<Vec<Model>, Error> {
        store::models(&self.pool).await
    }

    /// The registered model named `name`; FAILED_PRECONDITION MODEL_NOT_FOUND (naming `field`)
    /// else. A model never changes once registered, so a found one is cached.
    pub async fn model(&self, name: &str, field: &str) -> Result<Model, Error> {
        if let Some(model) = self.cached_model(name) {
            return Ok(model);
        }
        let model = store::model_named(&self.pool, name)
            .await?
            .ok_or_else(|| error::model_not_found(name, field))?;
        if let Ok(mut models) = self.models.write() {
            models.insert(name.to_owned(), model.clone());
        }
        Ok(model)
    }

    fn cached_model(&self, name: &str) -> Option<Model> {
        self.models.read().ok().and_then(|m| m.get(name).cloned())
    }

    /// Writes the embeddings (1 to 1,000, each key once), all or nothing: each vector must
    /// have its model's dimension. Answers their ids in the order given and how many were new.
    pub async fn upsert_embeddings(
        &self,
        rows: Vec<NewEmbedding>,
    ) -> Result<(Vec<Uuid>, usize), Error> {
        let mut models: Vec<Model> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let model = match models.iter().find(|m| m.name == row.model) {
                Some(model) => model.clone(),
                None => {
                    let model = self
                        .model(&row.model, &format!("embeddings[{i}].model"))
                        .await?;
                    models.push(model.clone());
                    model
                }
            };
            embedding::check_dimensions(&model, &format!("embeddings[{i}].vector"), &row.vector)?;
        }
        // Models in one order too, so that batches of several never lock in opposite orders.
        models.sort_by_key(|m| m.id);
        let now = now();
        let mut transaction = self.pool.begin().await?;
        let mut answers = vec![(Uuid::nil(), false); rows.len()];
        for model in &models {
            let (positions, of_model): (Vec<usize>, Vec<NewEmbedding>) = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.model == model.name)
                .map(|(i, r)| (i, r.clone()))
                .unzip();
            let written = store::upsert(&mut transaction, model, &of_model, now).await?;
            for (position, answer) in positions.into_iter().zip(written) {
                answers[position] = answer;
            }
        }
        transaction.commit().await?;
        let created = answers.iter().filter(|(_, new)| *new).count();
        Ok((answers.into_iter().map(|(id, _)| id).collect(), created))
    }

    /// Deletes an entity's embeddings (of one model when named); answers how many.
    pub async fn delete_embeddings(
        &self,
        entity_type: &str,
        entity_id: &str,
        model: Option<&str>,
    ) -> Result<u64, Error> {
        let model_id = match model {
            Some(name) => Some(self.model(name, "model").await?.id),
            None => None,
        };
        store::delete_entity(&self.pool, entity_type, entity_id, model_id).await
    }

    /// The k nearest embeddings of the model by cosine distance, nearest first. A filtered
    /// search scans the index iteratively where pgvector has it (0.8+); on an older pgvector a
    /// search of one user reads that user's rows exactly, and one of an entity type alone
    /// widens the candidate list to its cap and filters it.
    ///
    /// A filtered search always answers min(k, matching rows): when the index pass found
    /// fewer than k (the filter left too few of its candidates, or an iterative scan stopped
    /// at `hnsw.max_scan_tuples`), the search is run again exactly over the filtered rows.
    pub async fn search_similar(&self, mut search: Search) -> Result<SearchOutcome, Error> {
        let model = self.model(&search.model, "model").await?;
        embedding::check_dimensions(&model, "vector", &search.vector)?;
        let iterative = self.vector_support().await?.iterative_scan;
        let plan = plan(&mut search, iterative);
        let results = store::search(&self.pool, &model, &search, plan).await?;
        if needs_exact_rerun(&search, plan, results.len()) {
            let results = store::search(&self.pool, &model, &search, Plan::Exact).await?;
            return Ok(SearchOutcome {
                results,
                approximate: false,
            });
        }
        Ok(SearchOutcome {
            results,
            approximate: plan != Plan::Exact,
        })
    }
}

/// How `search` runs where pgvector has (or lacks) iterative scans; it may widen the
/// candidate list.
pub fn plan(search: &mut Search, iterative_scan: bool) -> Plan {
    if !search.is_filtered() || iterative_scan {
        return Plan::Index {
            iterative: search.is_filtered(),
        };
    }
    if search.user_id.is_some() {
        return Plan::Exact;
    }
    search.ef_search = embedding::MAX_EF_SEARCH.max(search.k);
    Plan::Index { iterative: false }
}

/// Whether an index pass of a filtered search came back short of k, so that only an exact
/// pass over the filtered rows can tell whether more of them match.
pub fn needs_exact_rerun(search: &Search, plan: Plan, found: usize) -> bool {
    search.is_filtered()
        && matches!(plan, Plan::Index { .. })
        && found < usize::try_from(search.k).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(user: bool, entity_type: bool) -> Search {
        Search {
            model: "m".into(),
            vector: vec![1.0],
            k: 10,
            user_id: user.then(Uuid::nil),
            entity_type: entity_type.then(|| "task".to_owned()),
            ef_search: 40,
        }
    }

    #[test]
    fn filtered_searches_scan_iteratively_where_pgvector_can() {
        let mut s = search(true, true);
        assert_eq!(plan(&mut s, true), Plan::Index { iterative: true });
        assert_eq!(s.ef_search, 40);
        let mut s = search(false, false);
        assert_eq!(plan(&mut s, true), Plan::Index { iterative: false });
        assert_eq!(plan(&mut s, false), Plan::Index { iterative: false });
    }

    #[test]
    fn without_iterative_scans_a_users_search_is_exact_and_a_types_search_widens() {
        let mut s = search(true, false);
        assert_eq!(plan(&mut s, false), Plan::Exact);
        let mut s = search(false, true);
        assert_eq!(plan(&mut s, false), Plan::Index { iterative: false });
        assert_eq!(s.ef_search, embedding::MAX_EF_SEARCH);
    }

    #[test]
    fn a_short_filtered_index_pass_is_rerun_exactly() {
        let index = Plan::Index { iterative: false };
        assert!(needs_exact_rerun(&search(false, true), index, 3));
        assert!(needs_exact_rerun(
            &search(true, true),
            Plan::Index { iterative: true },
            9
        ));
        assert!(!needs_exact_rerun(&search(false, true), index, 10));
        assert!(!needs_exact_rerun(&search(false, false), index, 3));
        assert!(!needs_exact_rerun(&search(true, false), Plan::Exact, 3));
    }
}
