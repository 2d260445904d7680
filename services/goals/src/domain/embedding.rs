//! Embeddings: vectors the caller computed (no model runs inside Phoenix), each of a
//! registered model whose dimension it must have, searched by cosine distance.
//!
//! Every vector is checked before it is stored or searched with: exactly the model's
//! dimension (`DIMENSION_MISMATCH`), every component finite (`NOT_FINITE`), not all zero
//! (`ZERO_VECTOR`: its cosine distance to anything is undefined), a length pgvector's
//! single-precision sums can hold (`NORM_OUT_OF_RANGE`, [`MIN_NORM`] to [`MAX_NORM`]). A search asks for 1 to
//! [`MAX_K`] neighbours; its HNSW candidate list (`hnsw.ef_search`) is the caller's choice up to
//! [`MAX_EF_SEARCH`], never below k (a list shorter than k cannot hold k answers).

use chrono::{DateTime, Utc};
use phoenix_runtime::{Refusal, Violations, quote};
use serde_json::{Map, Value};
use uuid::Uuid;

/// pgvector's HNSW index takes vectors of up to 2,000 dimensions.
pub const MAX_DIMENSIONS: i32 = 2000;
/// Most embeddings one upsert writes.
pub const MAX_BATCH: usize = 1000;
pub const MAX_K: i32 = 1000;
pub const MAX_EF_SEARCH: i32 = 1000;
/// pgvector's own default candidate list.
pub const DEFAULT_EF_SEARCH: i32 = 40;
pub const MAX_CONTENT_CHARS: usize = 100_000;
pub const MAX_CHUNK: i32 = 100_000;
pub const MAX_ENTITY_ID_CHARS: usize = 100;
/// Bounds of a vector's Euclidean length. pgvector (0.6) sums the squares of a cosine
/// distance in `float4`: a length past ~1.8e19 overflows it, one below ~1e-19 vanishes, and
/// the distance becomes NaN (ranked before every real answer). These bounds keep a margin.
pub const MIN_NORM: f64 = 1e-15;
pub const MAX_NORM: f64 = 1e15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub id: i32,
    pub name: String,
    pub dimensions: i32,
    pub created_at: DateTime<Utc>,
}

/// A model name: 1 to 100 of a-z, 0-9, '.', '_', '-', starting with a letter or digit.
pub fn model_name(v: &mut Violations, field: &str, name: &str) -> String {
    let valid = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if name.is_empty() {
        v.add(field, "REQUIRED", "is required: a registered model's name");
    } else if !valid {
        v.add(
            field,
            "INVALID_MODEL_NAME",
            format!(
                "must be 1 to 100 of a-z, 0-9, '.', '_', '-', got {}",
                quote(name)
            ),
        );
    }
    name.to_owned()
}

/// An entity type: 1 to 50 of a-z, 0-9, '_'.
pub fn entity_type(v: &mut Violations, field: &str, value: &str, required: bool) -> String {
    if value.is_empty() {
        if required {
            v.add(field, "REQUIRED", "is required, e.g. task");
        }
    } else if value.len() > 50
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        v.add(
            field,
            "INVALID_ENTITY_TYPE",
            format!("must be 1 to 50 of a-z, 0-9, '_', got {}", quote(value)),
        );
    }
    value.to_owned()
}

/// An entity id: 1 to 100 printable characters.
pub fn entity_id(v: &mut Violations, field: &str, value: &str) -> String {
    if value.is_empty() {
        v.add(field, "REQUIRED", "is required, e.g. a task's id");
    } else if value.chars().count() > MAX_ENTITY_ID_CHARS || value.chars().any(char::is_control) {
        v.add(
            field,
            "INVALID_ENTITY_ID",
            format!("must be 1 to {MAX_ENTITY_ID_CHARS} printable characters"),
        );
    }
    value.to_owned()
}

/// The shape of a vector before its model is known: not empty, at most [`MAX_DIMENSIONS`],
/// every component finite (the first bad one is named), not all zero.
pub fn vector_shape(v: &mut Violations, field: &str, vector: &[f32]) {
    if vector.is_empty() {
        v.add(
            field,
            "REQUIRED",
            "is required: the model's dimensions of floats",
        );
    } else if vector.len() > MAX_DIMENSIONS as usize {
        v.add(
            field,
            "DIMENSION_MISMATCH",
            format!(
                "must have at most {MAX_DIMENSIONS} components, got {}",
                vector.len()
            ),
        );
    } else if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        v.add(
            format!("{field}[{i}]"),
            "NOT_FINITE",
            format!("must be a finite number, got {}", vector[i]),
        );
    } else if vector.iter().all(|x| *x == 0.0) {
        v.add(
            field,
            "ZERO_VECTOR",
            "must not be all zeros: its cosine distance is undefined",
        );
    } else {
        let norm = vector
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        if !(MIN_NORM..=MAX_NORM).contains(&norm) {
            v.add(
                field,
                "NORM_OUT_OF_RANGE",
                format!(
                    "must have a length between {MIN_NORM:e} and {MAX_NORM:e}, got {norm:e}: \
                     pgvector sums squares in single precision, which overflow or vanish \
                     beyond that, and its cosine distance would be NaN"
                ),
            );
        }
    }
}

/// INVALID_ARGUMENT `DIMENSION_MISMATCH` unless `vector` has the model's dimension.
pub fn check_dimensions(model: &Model, field: &str, vector: &[f32]) -> Result<(), Refusal> {
    if vector.len() == model.dimensions as usize {
        return Ok(());
    }
    Err(Refusal::invalid(
        field,
        "DIMENSION_MISMATCH",
        format!(
            "model {} takes vectors of {} dimensions, got {}",
            quote(&model.name),
            model.dimensions,
            vector.len()
        ),
    )
    .with("model", &model.name)
    .with("dimensions", model.dimensions)
    .with("got", vector.len()))
}

/// The candidate list of a search for `k` neighbours: the caller's `requested` (0: the
/// default, max(40, 2k)), at least k; above [`MAX_EF_SEARCH`] is refused by the API before.
pub fn ef_search(requested: i32, k: i32) -> i32 {
    let wanted = if requested == 0 {
        DEFAULT_EF_SEARCH.max(k.saturating_mul(2))
    } else {
        requested
    };
    wanted.max(k).min(MAX_EF_SEARCH.max(k))
}

/// An embedding to write, validated except for its dimension (which needs its model).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmbedding {
    pub model: String,
    pub entity_type: String,
    pub entity_id: String,
    pub chunk: i32,
    pub user_id: Uuid,
    pub content: String,
    pub vector: Vec<f32>,
    pub metadata: Map<String, Value>,
}

/// A search, validated except for the vector's dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub model: String,
    pub vector: Vec<f32>,
    pub k: i32,
    pub user_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub ef_search: i32,
}

impl Search {
    pub fn is_filtered(&self) -> bool {
        self.user_id.is_some() || self.entity_type.is_some()
    }
}

/// One answer of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Similar {
    pub id: Uuid,
    pub entity_type: String,
    pub entity_id: String,
    pub chunk: i32,
    pub user_id: Uuid,
    pub content: String,
    pub distance: f64,
    pub metadata: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(check: impl FnOnce(&mut Violations)) -> Vec<(String, String)> {
        let mut v = Violations::new();
        check(&mut v);
        v.finish()
            .err()
            .map(|r| {
                r.violations
                    .into_iter()
                    .map(|v| (v.field, v.reason))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn vectors_must_be_finite_non_zero_and_bounded() {
        assert!(reasons(|v| vector_shape(v, "vector", &[0.1, -2.0])).is_empty());
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &[0.1, f32::NAN, f32::INFINITY])),
            [("vector[1]".to_owned(), "NOT_FINITE".to_owned())]
        );
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &[0.0, 0.0])),
            [("vector".to_owned(), "ZERO_VECTOR".to_owned())]
        );
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &[])),
            [("vector".to_owned(), "REQUIRED".to_owned())]
        );
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &[3e38, 3e38])),
            [("vector".to_owned(), "NORM_OUT_OF_RANGE".to_owned())]
        );
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &[1e-30, 1e-30])),
            [("vector".to_owned(), "NORM_OUT_OF_RANGE".to_owned())]
        );
        assert!(reasons(|v| vector_shape(v, "vector", &[1e-3, 1e5])).is_empty());
        assert_eq!(
            reasons(|v| vector_shape(v, "vector", &vec![1.0; 2001])),
            [("vector".to_owned(), "DIMENSION_MISMATCH".to_owned())]
        );
    }

    #[test]
    fn dimensions_must_match_the_model() {
        let model = Model {
            id: 1,
            name: "m".into(),
            dimensions: 3,
            created_at: DateTime::default(),
        };
        assert!(check_dimensions(&model, "vector", &[1.0, 2.0, 3.0]).is_ok());
        let refused = check_dimensions(&model, "vector", &[1.0]).expect_err("2 short");
        assert_eq!(refused.reason, "DIMENSION_MISMATCH");
        assert_eq!(refused.field(), Some("vector"));
    }

    #[test]
    fn ef_search_defaults_and_is_capped_but_never_below_k() {
        assert_eq!(ef_search(0, 10), 40);
        assert_eq!(ef_search(0, 100), 200);
        assert_eq!(ef_search(10, 20), 20);
        assert_eq!(ef_search(5000, 10), MAX_EF_SEARCH);
        assert_eq!(ef_search(0, 1000), 1000);
    }

    #[test]
    fn names_are_checked() {
        assert!(reasons(|v| drop(model_name(v, "model", "text-embedding-3-small"))).is_empty());
        assert_eq!(
            reasons(|v| drop(model_name(v, "model", "Bad Name"))),
            [("model".to_owned(), "INVALID_MODEL_NAME".to_owned())]
        );
        assert_eq!(
            reasons(|v| drop(entity_type(v, "entity_type", "Task", true))),
            [("entity_type".to_owned(), "INVALID_ENTITY_TYPE".to_owned())]
        );
    }
}
