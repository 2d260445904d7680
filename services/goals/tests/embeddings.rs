//! Embeddings through gRPC: models with their dimension and HNSW index, batch upserts,
//! deletes by entity, and SearchSimilar with filters, k and ef_search bounds.

mod support;

use phoenix_proto::goals::v1 as pb;
use phoenix_testkit::{assert_refused, field_reasons};
use support::{Client, Harness, field};
use tonic::Code;
use uuid::Uuid;

async fn register(
    client: &mut Client,
    name: &str,
    dimensions: i32,
) -> Result<pb::RegisterEmbeddingModelResponse, tonic::Status> {
    Ok(client
        .register_embedding_model(pb::RegisterEmbeddingModelRequest {
            model: Some(pb::EmbeddingModel {
                name: name.into(),
                dimensions,
                create_time: None,
            }),
        })
        .await?
        .into_inner())
}

fn embedding(model: &str, entity: &str, user: &str, vector: Vec<f32>) -> pb::Embedding {
    pb::Embedding {
        model: model.into(),
        entity_type: "task".into(),
        entity_id: entity.into(),
        user_id: user.into(),
        content: format!("content of {entity}"),
        vector,
        ..Default::default()
    }
}

fn search(model: &str, vector: Vec<f32>, k: i32) -> pb::SearchSimilarRequest {
    pb::SearchSimilarRequest {
        model: model.into(),
        vector,
        k,
        ..Default::default()
    }
}

#[tokio::test]
async fn models_are_registered_once_with_their_dimension_and_index() {
    let mut h = Harness::start().await;
    let first = register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    assert!(first.created);
    let again = register(&mut h.client, "mini-3", 3).await.expect("again");
    assert!(!again.created);
    assert_eq!(again.model, first.model);
    let status = register(&mut h.client, "mini-3", 4)
        .await
        .expect_err("other dimension");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "MODEL_DIMENSION_MISMATCH",
    );
    assert_eq!(field(&status), "model.dimensions");
    let status = register(&mut h.client, "Bad Name", 0)
        .await
        .expect_err("invalid");
    assert_eq!(
        field_reasons(&status),
        [
            ("model.name".to_owned(), "INVALID_MODEL_NAME".to_owned()),
            (
                "model.dimensions".to_owned(),
                "INVALID_DIMENSIONS".to_owned()
            ),
        ]
    );
    register(&mut h.client, "wide", 8)
        .await
        .expect("a second model");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'goals' AND indexname LIKE 'embeddings_hnsw_%'
         ORDER BY indexname",
    )
    .fetch_all(&h.goals.pool)
    .await
    .expect("indexes");
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert!(
        indexes[0].contains("hnsw")
            && indexes[0].contains("vector(3)")
            && indexes[0].contains("vector_cosine_ops"),
        "{}",
        indexes[0]
    );
    assert!(
        indexes[0].contains("m='16'") && indexes[0].contains("ef_construction='64'"),
        "{}",
        indexes[0]
    );
    let models = h
        .client
        .list_embedding_models(pb::ListEmbeddingModelsRequest {})
        .await
        .expect("models")
        .into_inner()
        .models;
    assert_eq!(
        models.iter().map(|m| m.dimensions).collect::<Vec<_>>(),
        [3, 8]
    );
}

#[tokio::test]
async fn upserts_replace_by_entity_and_search_finds_the_nearest() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    let other = Uuid::new_v4().to_string();
    let batch = vec![
        embedding("mini-3", "a", &h.user, vec![1.0, 0.0, 0.0]),
        embedding("mini-3", "b", &h.user, vec![0.9, 0.1, 0.0]),
        embedding("mini-3", "c", &other, vec![0.0, 1.0, 0.0]),
        embedding("mini-3", "d", &other, vec![1.0, 0.05, 0.0]),
    ];
    let written = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest { embeddings: batch })
        .await
        .expect("upserted")
        .into_inner();
    assert_eq!((written.ids.len(), written.created), (4, 4));

    let found = h
        .client
        .search_similar(search("mini-3", vec![1.0, 0.0, 0.0], 3))
        .await
        .expect("found")
        .into_inner();
    let entities: Vec<&str> = found.results.iter().map(|r| r.entity_id.as_str()).collect();
    assert_eq!(entities, ["a", "d", "b"]);
    assert!(found.results[0].distance.abs() < 1e-6);
    assert_eq!(found.results[0].content, "content of a");
    assert!(found.approximate);

    // Filtered by user: only theirs, still k of them when they exist.
    let mut mine = search("mini-3", vec![1.0, 0.0, 0.0], 2);
    mine.user_id = h.user.clone();
    let found = h
        .client
        .search_similar(mine)
        .await
        .expect("found")
        .into_inner();
    let entities: Vec<&str> = found.results.iter().map(|r| r.entity_id.as_str()).collect();
    assert_eq!(entities, ["a", "b"]);
    let mut of_type = search("mini-3", vec![0.0, 1.0, 0.0], 1);
    of_type.entity_type = "snapshot".into();
    let found = h
        .client
        .search_similar(of_type)
        .await
        .expect("found")
        .into_inner();
    assert!(found.results.is_empty());

    // The same key again replaces: same id, new vector, nothing created.
    let replaced = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: vec![embedding("mini-3", "a", &h.user, vec![0.0, 0.0, 1.0])],
        })
        .await
        .expect("replaced")
        .into_inner();
    assert_eq!(replaced.ids, written.ids[..1]);
    assert_eq!(replaced.created, 0);
    let nearest = h
        .client
        .search_similar(search("mini-3", vec![0.0, 0.0, 1.0], 1))
        .await
        .expect("found")
        .into_inner();
    assert_eq!(nearest.results[0].entity_id, "a");

    let deleted = h
        .client
        .delete_embeddings(pb::DeleteEmbeddingsRequest {
            entity_type: "task".into(),
            entity_id: "a".into(),
            model: String::new(),
        })
        .await
        .expect("deleted")
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    assert_eq!(h.count("embeddings").await, 3);
}

#[tokio::test]
async fn bad_vectors_models_and_bounds_are_refused_and_nothing_is_written() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    let user = h.user.clone();

    let status = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: vec![
                embedding("mini-3", "ok", &user, vec![1.0, 0.0, 0.0]),
                embedding("mini-3", "short", &user, vec![1.0, 0.0]),
            ],
        })
        .await
        .expect_err("wrong dimension");
    assert_refused(&status, Code::InvalidArgument, "DIMENSION_MISMATCH");
    assert_eq!(field(&status), "embeddings[1].vector");

    let status = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: vec![
                embedding("mini-3", "nan", &user, vec![1.0, f32::NAN, 0.0]),
                embedding("mini-3", "inf", &user, vec![f32::INFINITY, 0.0, 0.0]),
                embedding("mini-3", "zero", &user, vec![0.0, 0.0, 0.0]),
                embedding("mini-3", "nan", &user, vec![1.0, 1.0, 1.0]),
            ],
        })
        .await
        .expect_err("bad components");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "embeddings[0].vector[1]".to_owned(),
                "NOT_FINITE".to_owned()
            ),
            (
                "embeddings[1].vector[0]".to_owned(),
                "NOT_FINITE".to_owned()
            ),
            ("embeddings[2].vector".to_owned(), "ZERO_VECTOR".to_owned()),
            ("embeddings[3]".to_owned(), "DUPLICATE_EMBEDDING".to_owned()),
        ]
    );

    let status = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: vec![embedding("nope", "x", &user, vec![1.0])],
        })
        .await
        .expect_err("unknown model");
    assert_refused(&status, Code::FailedPrecondition, "MODEL_NOT_FOUND");
    assert_eq!(field(&status), "embeddings[0].model");

    let status = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: (0..1001)
                .map(|i| embedding("mini-3", &i.to_string(), &user, vec![1.0, 0.0, 0.0]))
                .collect(),
        })
        .await
        .expect_err("too many");
    assert_refused(&status, Code::InvalidArgument, "TOO_MANY_EMBEDDINGS");
    assert_eq!(field(&status), "embeddings");
    assert_eq!(h.count("embeddings").await, 0);

    for (k, ef) in [(0, 0), (1001, 0)] {
        let mut request = search("mini-3", vec![1.0, 0.0, 0.0], k);
        request.ef_search = ef;
        let status = h.client.search_similar(request).await.expect_err("bad k");
        assert_refused(&status, Code::InvalidArgument, "INVALID_K");
        assert_eq!(field(&status), "k");
    }
    let mut request = search("mini-3", vec![1.0, 0.0, 0.0], 10);
    request.ef_search = 1001;
    let status = h
        .client
        .search_similar(request)
        .await
        .expect_err("ef over the cap");
    assert_refused(&status, Code::InvalidArgument, "INVALID_EF_SEARCH");
    assert_eq!(field(&status), "ef_search");
    let status = h
        .client
        .search_similar(search("mini-3", vec![1.0, 0.0], 1))
        .await
        .expect_err("short query");
    assert_refused(&status, Code::InvalidArgument, "DIMENSION_MISMATCH");
    assert_eq!(field(&status), "vector");
    let status = h
        .client
        .search_similar(search("mini-3", vec![f32::NAN, 0.0, 0.0], 1))
        .await
        .expect_err("NaN query");
    assert_refused(&status, Code::InvalidArgument, "NOT_FINITE");
    assert_eq!(field(&status), "vector[0]");
    let status = h
        .client
        .search_similar(search("other", vec![1.0, 0.0, 0.0], 1))
        .await
        .expect_err("unknown model");
    assert_refused(&status, Code::FailedPrecondition, "MODEL_NOT_FOUND");
    assert_eq!(field(&status), "model");
}

#[tokio::test]
async fn the_database_refuses_a_vector_of_another_dimension() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    let error = sqlx::query(
        "INSERT INTO embeddings (id, model_id, entity_type, entity_id, user_id, content, embedding,
                                 created_at, updated_at)
         SELECT $1, id, 'task', 'x', $1, 'c', '[1,2]'::vector, now(), now()
         FROM embedding_models WHERE name = 'mini-3'",
    )
    .bind(Uuid::new_v4())
    .execute(&h.goals.pool)
    .await
    .expect_err("2 dimensions for a model of 3");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23514")
    );
}

#[tokio::test]
async fn a_filtered_search_returns_k_of_the_users_and_unfiltered_ones_can_use_the_index() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    let users: Vec<String> = (0..20).map(|_| Uuid::new_v4().to_string()).collect();
    // Each user's vectors point their own way; the query points at user 0's opposite.
    let batch: Vec<pb::Embedding> = (0..400)
        .map(|i| {
            let user = i % 20;
            let angle = user as f32 * 0.3 + (i / 20) as f32 * 0.001;
            embedding(
                "mini-3",
                &format!("e{i}"),
                &users[user],
                vec![angle.cos(), angle.sin(), 0.1],
            )
        })
        .collect();
    h.client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest { embeddings: batch })
        .await
        .expect("upserted");
    let mut request = search("mini-3", vec![-1.0, 0.0, 0.1], 10);
    request.user_id = users[0].clone();
    request.ef_search = 10;
    let found = h
        .client
        .search_similar(request)
        .await
        .expect("found")
        .into_inner();
    assert_eq!(found.results.len(), 10, "k results of that user");
    assert!(found.results.iter().all(|r| r.user_id == users[0]));
    assert!(
        found
            .results
            .windows(2)
            .all(|w| w[0].distance <= w[1].distance)
    );

    let plan: Vec<String> = {
        let mut transaction = h.goals.pool.begin().await.expect("begin");
        sqlx::raw_sql(
            "ANALYZE embeddings; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
        )
        .execute(&mut *transaction)
        .await
        .expect("set");
        let model_id: i32 = sqlx::query_scalar("SELECT id FROM embedding_models")
            .fetch_one(&mut *transaction)
            .await
            .expect("model");
        sqlx::query_scalar(&format!(
            "EXPLAIN SELECT id FROM embeddings WHERE model_id = {model_id}
             ORDER BY embedding::vector(3) <=> '[1,0,0]'::vector(3) LIMIT 5"
        ))
        .fetch_all(&mut *transaction)
        .await
        .expect("explain")
    };
    assert!(
        plan.iter().any(|line| line.contains("embeddings_hnsw_")),
        "{plan:#?}"
    );
}

/// A deterministic pseudo-random component in [-0.5, 0.5).
fn noise(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    1.0 - dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn a_search_by_a_rare_entity_type_returns_k_in_the_exact_order() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-8", 8)
        .await
        .expect("registered");
    let user = Uuid::new_v4().to_string();
    let mut seed = 7;
    // 4,000 tasks around the query's direction and 2,000 notes around its opposite: a third
    // of the rows are notes (so PostgreSQL prefers the HNSW index), yet the index's widest
    // candidate list (1,000) near the query holds no note at all.
    let mut notes = Vec::new();
    for chunk in 0..6 {
        let batch: Vec<pb::Embedding> = (0..1000)
            .map(|i| {
                let id = format!("e{chunk}-{i}");
                if chunk < 4 {
                    let mut vector: Vec<f32> = (0..8).map(|_| noise(&mut seed) * 0.4).collect();
                    vector[0] += 1.0;
                    embedding("mini-8", &id, &user, vector)
                } else {
                    let mut vector: Vec<f32> = (0..8).map(|_| noise(&mut seed) * 0.8).collect();
                    vector[0] -= 1.0;
                    notes.push((id.clone(), vector.clone()));
                    let mut note = embedding("mini-8", &id, &user, vector);
                    note.entity_type = "note".into();
                    note
                }
            })
            .collect();
        h.client
            .upsert_embeddings(pb::UpsertEmbeddingsRequest { embeddings: batch })
            .await
            .expect("upserted");
    }
    sqlx::query("ANALYZE embeddings")
        .execute(&h.goals.pool)
        .await
        .expect("analyzed");

    let query = vec![1.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mut exact: Vec<(String, f64)> = notes
        .iter()
        .map(|(id, v)| (id.clone(), cosine_distance(&query, v)))
        .collect();
    exact.sort_by(|a, b| a.1.total_cmp(&b.1));
    for k in [10, 100] {
        let mut request = search("mini-8", query.clone(), k);
        request.entity_type = "note".into();
        let found = h
            .client
            .search_similar(request)
            .await
            .expect("found")
            .into_inner();
        let expected = &exact[..exact.len().min(k as usize)];
        assert_eq!(found.results.len(), expected.len(), "k = {k}");
        for (result, (id, distance)) in found.results.iter().zip(expected) {
            assert_eq!(&result.entity_id, id, "k = {k}");
            assert_eq!(result.entity_type, "note");
            assert!((result.distance - distance).abs() < 1e-4, "k = {k}");
        }
    }
}

#[tokio::test]
async fn vectors_whose_length_pgvector_cannot_sum_are_refused() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-2", 2)
        .await
        .expect("registered");
    let user = h.user.clone();
    // Finite, but their squares overflow (or vanish in) pgvector's float4 sums: the distance
    // of such a row was NaN, and it was ranked first in every search of the model.
    let status = h
        .client
        .upsert_embeddings(pb::UpsertEmbeddingsRequest {
            embeddings: vec![
                embedding("mini-2", "huge", &user, vec![3e38, 3e38]),
                embedding("mini-2", "tiny", &user, vec![1e-30, 1e-30]),
                embedding("mini-2", "fine", &user, vec![1.0, 2.0]),
            ],
        })
        .await
        .expect_err("lengths out of range");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "embeddings[0].vector".to_owned(),
                "NORM_OUT_OF_RANGE".to_owned()
            ),
            (
                "embeddings[1].vector".to_owned(),
                "NORM_OUT_OF_RANGE".to_owned()
            ),
        ]
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(h.count("embeddings").await, 0, "nothing written");

    let status = h
        .client
        .search_similar(search("mini-2", vec![3e38, 1.0], 5))
        .await
        .expect_err("query too long");
    assert_refused(&status, Code::InvalidArgument, "NORM_OUT_OF_RANGE");
    assert_eq!(field(&status), "vector");
}

#[tokio::test]
async fn concurrent_upserts_of_the_same_entities_in_any_order_all_succeed() {
    let mut h = Harness::start().await;
    register(&mut h.client, "mini-3", 3)
        .await
        .expect("registered");
    let user = h.user.clone();
    let batch: Vec<pb::Embedding> = (0..1000)
        .map(|i| embedding("mini-3", &format!("e{i}"), &user, vec![1.0, i as f32, 0.5]))
        .collect();
    let reversed: Vec<pb::Embedding> = batch.iter().rev().cloned().collect();
    for round in 0..4 {
        let calls = (0..4).map(|i| {
            let mut client = h.client.clone();
            let embeddings = if i % 2 == 0 {
                batch.clone()
            } else {
                reversed.clone()
            };
            tokio::spawn(async move {
                client
                    .upsert_embeddings(pb::UpsertEmbeddingsRequest { embeddings })
                    .await
            })
        });
        for outcome in futures_util::future::join_all(calls).await {
            let outcome = outcome.expect("joined");
            assert!(outcome.is_ok(), "round {round}: {outcome:?}");
        }
    }
    assert_eq!(h.count("embeddings").await, 1000);
}

#[tokio::test]
async fn concurrent_registrations_agree_on_one_dimension_per_name() {
    let h = Harness::start().await;
    let calls = (0..8).map(|i| {
        let mut client = h.client.clone();
        tokio::spawn(async move {
            // Four names, each registered twice at once: with 3 and with 4 dimensions.
            let name = format!("model-{}", i % 4);
            let dimensions = 3 + i / 4;
            (
                name.clone(),
                dimensions,
                register(&mut client, &name, dimensions).await,
            )
        })
    });
    let mut won = std::collections::BTreeMap::new();
    for outcome in futures_util::future::join_all(calls).await {
        let (name, dimensions, outcome) = outcome.expect("joined");
        match outcome {
            Ok(answer) => {
                assert!(answer.created, "{name}: the first registration creates it");
                assert_eq!(won.insert(name, dimensions), None, "one winner per name");
            }
            Err(status) => {
                assert_refused(
                    &status,
                    Code::FailedPrecondition,
                    "MODEL_DIMENSION_MISMATCH",
                );
                assert_eq!(field(&status), "model.dimensions");
            }
        }
    }
    assert_eq!(won.len(), 4);
    let models = h.count("embedding_models").await;
    assert_eq!(models, 4);
    let indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw_%'",
    )
    .fetch_one(&h.goals.pool)
    .await
    .expect("indexes");
    assert_eq!(indexes, 4);
}
