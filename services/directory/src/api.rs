//! The gRPC face of the directory: proto ⇄ domain, nothing else.

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_server::DirectoryService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::{NewUser, User};
use crate::error::{DOMAIN, DirectoryError};
use crate::store;

#[derive(Debug, Clone)]
pub struct DirectoryApi {
    pool: PgPool,
}

impl DirectoryApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let request = request.into_inner();
        let new = NewUser::parse(&request.email, &request.display_name, &request.time_zone)?;
        if !store::is_time_zone(&self.pool, &new.time_zone).await? {
            return Err(DirectoryError::UnknownTimeZone(new.time_zone).into());
        }
        let user = store::insert_user(&self.pool, uuid::Uuid::now_v7(), &new).await?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(to_proto(user)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id =
            phoenix_runtime::error::parse_uuid(&request.get_ref().id).map_err(|description| {
                phoenix_runtime::ApiError::invalid_argument(
                    DOMAIN,
                    vec![phoenix_runtime::FieldViolation::new("id", description)],
                )
            })?;
        let user = store::get_user(&self.pool, id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(to_proto(user)),
        }))
    }
}

fn to_proto(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        display_name: user.display_name,
        time_zone: user.time_zone,
        create_time: Some(prost_types::Timestamp {
            seconds: user.created_at.timestamp(),
            nanos: i32::try_from(user.created_at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
    }
}
