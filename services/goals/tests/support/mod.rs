//! What the goals integration tests share: a directory and a goals service that resolves its
//! users and courses there, a client, and shortcuts for the steps every story starts with.
#![allow(dead_code)]

use phoenix_proto::directory::v1 as directory_pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_proto::goals::v1 as pb;
use phoenix_proto::goals::v1::goals_service_client::GoalsServiceClient;
use phoenix_testkit::{TestService, directory_user, spawn, spawn_with};
use tonic::transport::Channel;

pub type Client = GoalsServiceClient<Channel>;

pub struct Harness {
    pub directory: TestService,
    pub goals: TestService,
    pub client: Client,
    /// A user the directory knows, and a course of theirs.
    pub user: String,
    pub course: String,
}

impl Harness {
    /// A directory with one user and one course, and a goals service resolving there.
    pub async fn start() -> Self {
        let directory = spawn(phoenix_directory::spec()).await;
        let url = directory.url();
        let goals = spawn_with(phoenix_goals::spec(), move |config| {
            config.peers.directory_url = Some(url);
        })
        .await;
        let user = directory_user(&directory.channel, "learner@example.com", "Europe/Madrid").await;
        let course = DirectoryServiceClient::new(directory.channel.clone())
            .create_course(directory_pb::CreateCourseRequest {
                owner_user_id: user.clone(),
                title: "Rust".into(),
                ..Default::default()
            })
            .await
            .expect("course created")
            .into_inner()
            .course
            .expect("course")
            .id;
        let client = GoalsServiceClient::new(goals.channel.clone());
        Self {
            directory,
            goals,
            client,
            user,
            course,
        }
    }

    /// A PENDING goal of the user with this title.
    pub async fn goal(&mut self, title: &str) -> pb::Goal {
        self.client
            .create_goal(pb::CreateGoalRequest {
                user_id: self.user.clone(),
                title: title.into(),
                ..Default::default()
            })
            .await
            .expect("goal created")
            .into_inner()
            .goal
            .expect("goal")
    }

    /// A TODO task of `goal`.
    pub async fn task(&mut self, goal: &pb::Goal, title: &str) -> pb::Task {
        self.client
            .create_task(pb::CreateTaskRequest {
                goal_id: goal.id.clone(),
                title: title.into(),
                ..Default::default()
            })
            .await
            .expect("task created")
            .into_inner()
            .task
            .expect("task")
    }

    /// Moves a task to `status` through UpdateTask.
    pub async fn move_task(
        &mut self,
        task: &pb::Task,
        status: pb::TaskStatus,
    ) -> Result<pb::UpdateTaskResponse, tonic::Status> {
        let mut changed = task.clone();
        changed.status = status.into();
        Ok(self
            .client
            .update_task(pb::UpdateTaskRequest {
                task: Some(changed),
                update_mask: mask(&["status"]),
            })
            .await?
            .into_inner())
    }

    /// Rows of a table of the goals schema.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.goals.pool)
            .await
            .expect("count")
    }
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// The field of the first BadRequest violation (FAILED_PRECONDITION refusals name theirs too).
pub fn field(status: &tonic::Status) -> String {
    phoenix_testkit::fields(status)
        .into_iter()
        .next()
        .unwrap_or_default()
}
