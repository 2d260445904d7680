//! RegisterEmbeddingModel, ListEmbeddingModels, UpsertEmbeddings, DeleteEmbeddings,
//! SearchSimilar.

use std::collections::HashSet;

use phoenix_proto::goals::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{Access, Answer};
use crate::app::Goals;
use crate::domain::embedding::{
    self, MAX_BATCH, MAX_CHUNK, MAX_CONTENT_CHARS, MAX_DIMENSIONS, MAX_EF_SEARCH, MAX_K,
    NewEmbedding, Search,
};
use crate::domain::json_object;
use crate::proto;

pub async fn register(
    g: &Goals,
    body: &pb::RegisterEmbeddingModelRequest,
    access: &Access,
) -> Answer<pb::RegisterEmbeddingModelResponse> {
    let mut v = Violations::new();
    let model = super::required(
        &mut v,
        "model",
        body.model.as_ref(),
        "the model's name and dimensions",
    );
    let name = embedding::model_name(&mut v, "model.name", &model.name);
    let dimensions = v.range(
        "model.dimensions",
        model.dimensions,
        1..=MAX_DIMENSIONS,
        Some("INVALID_DIMENSIONS"),
    );
    v.finish()?;
    access.admin()?;
    let (model, created) = g.register_model(name, dimensions).await?;
    Ok(Response::new(pb::RegisterEmbeddingModelResponse {
        model: Some(proto::model(&model)),
        created,
    }))
}

pub async fn models(
    g: &Goals,
    _body: &pb::ListEmbeddingModelsRequest,
    _open: &Access,
) -> Answer<pb::ListEmbeddingModelsResponse> {
    let models = g.models().await?;
    Ok(Response::new(pb::ListEmbeddingModelsResponse {
        models: models.iter().map(proto::model).collect(),
    }))
}

fn decode(v: &mut Violations, i: usize, e: &pb::Embedding) -> NewEmbedding {
    let at = |field: &str| format!("embeddings[{i}].{field}");
    let chunk = v.range(&at("chunk"), e.chunk, 0..=MAX_CHUNK, None);
    let content = v.free_text(&at("content"), &e.content, MAX_CONTENT_CHARS, true);
    if content.contains('\0') {
        v.add(
            at("content"),
            "CONTROL_CHARACTER",
            "must not contain NUL characters",
        );
    }
    embedding::vector_shape(v, &at("vector"), &e.vector);
    NewEmbedding {
        model: embedding::model_name(v, &at("model"), &e.model),
        entity_type: embedding::entity_type(v, &at("entity_type"), &e.entity_type, true),
        entity_id: embedding::entity_id(v, &at("entity_id"), &e.entity_id),
        chunk,
        user_id: v.uuid(&at("user_id"), &e.user_id),
        content,
        vector: e.vector.clone(),
        metadata: json_object(v, &at("metadata"), &json_from_struct(e.metadata.as_ref())),
    }
}

pub async fn upsert(
    g: &Goals,
    body: &pb::UpsertEmbeddingsRequest,
    access: &Access,
) -> Answer<pb::UpsertEmbeddingsResponse> {
    let mut v = Violations::new();
    if body.embeddings.is_empty() {
        v.add(
            "embeddings",
            "REQUIRED",
            "is required: 1 to 1000 embeddings",
        );
    } else if body.embeddings.len() > MAX_BATCH {
        return Err(phoenix_runtime::Refusal::invalid(
            "embeddings",
            "TOO_MANY_EMBEDDINGS",
            format!(
                "must hold at most {MAX_BATCH} embeddings, got {}",
                body.embeddings.len()
            ),
        )
        .into());
    }
    let rows: Vec<NewEmbedding> = body
        .embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| decode(&mut v, i, e))
        .collect();
    let mut keys = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        if !keys.insert((&row.model, &row.entity_type, &row.entity_id, row.chunk)) {
            v.add(
                format!("embeddings[{i}]"),
                "DUPLICATE_EMBEDDING",
                "repeats the model, entity and chunk of an earlier embedding of the batch",
            );
        }
    }
    v.finish()?;
    for row in &rows {
        access.owner(row.user_id)?;
    }
    let (ids, created) = g.upsert_embeddings(rows).await?;
    Ok(Response::new(pb::UpsertEmbeddingsResponse {
        ids: ids.iter().map(ToString::to_string).collect(),
        created: i32::try_from(created).unwrap_or(i32::MAX),
    }))
}

pub async fn delete(
    g: &Goals,
    body: &pb::DeleteEmbeddingsRequest,
    access: &Access,
) -> Answer<pb::DeleteEmbeddingsResponse> {
    let mut v = Violations::new();
    let entity_type = embedding::entity_type(&mut v, "entity_type", &body.entity_type, true);
    let entity_id = embedding::entity_id(&mut v, "entity_id", &body.entity_id);
    let model =
        (!body.model.is_empty()).then(|| embedding::model_name(&mut v, "model", &body.model));
    v.finish()?;
    // Embeddings of an entity may belong to several users: deleting them is an admin's call.
    access.admin()?;
    let deleted = g
        .delete_embeddings(&entity_type, &entity_id, model.as_deref())
        .await?;
    Ok(Response::new(pb::DeleteEmbeddingsResponse {
        deleted: i32::try_from(deleted).unwrap_or(i32::MAX),
    }))
}

pub async fn search(
    g: &Goals,
    body: &pb::SearchSimilarRequest,
    access: &Access,
) -> Answer<pb::SearchSimilarResponse> {
    let mut v = Violations::new();
    let model = embedding::model_name(&mut v, "model", &body.model);
    embedding::vector_shape(&mut v, "vector", &body.vector);
    let k = v.range("k", body.k, 1..=MAX_K, Some("INVALID_K"));
    let ef = v.range(
        "ef_search",
        body.ef_search,
        0..=MAX_EF_SEARCH,
        Some("INVALID_EF_SEARCH"),
    );
    let user_id = v.optional_uuid("user_id", &body.user_id);
    let entity_type = embedding::entity_type(&mut v, "entity_type", &body.entity_type, false);
    v.finish()?;
    match user_id {
        Some(user) => access.owner(user)?,
        None => access.admin()?,
    }
    let outcome = g
        .search_similar(Search {
            model,
            vector: body.vector.clone(),
            k,
            user_id,
            entity_type: Some(entity_type).filter(|t| !t.is_empty()),
            ef_search: embedding::ef_search(ef, k),
        })
        .await?;
    Ok(Response::new(pb::SearchSimilarResponse {
        results: outcome.results.iter().map(proto::similar).collect(),
        approximate: outcome.approximate,
    }))
}
