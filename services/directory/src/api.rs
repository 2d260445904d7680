//! The gRPC face of the directory: decode and validate, call one use case, encode.

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_server::DirectoryService;
use phoenix_runtime::{Violations, convert};
use tonic::{Request, Response, Status};

use crate::app::Directory;
use crate::domain::{NewUser, User};

#[tonic::async_trait]
impl DirectoryService for Directory {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let body = request.get_ref();
        let new = NewUser::parse(&body.email, &body.display_name, &body.time_zone)?;
        let user = self.register(&new).await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(user_to_proto(user)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let mut violations = Violations::new();
        let id = violations.uuid("id", &request.get_ref().id);
        violations.finish()?;
        let user = self.user(id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_to_proto(user)),
        }))
    }
}

fn user_to_proto(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        display_name: user.display_name,
        time_zone: user.time_zone,
        create_time: Some(convert::timestamp(user.created_at)),
    }
}
