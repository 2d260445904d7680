//! Missions consuming goals' `TaskCompleted` through the coordinator's bus: a real directory,
//! goals, coordinator (following goals' stream) and missions (subscribed to the bus).

use std::time::{Duration, Instant};

use phoenix_missions::app::Missions;
use phoenix_missions::app::tasks::TaskOutcome;
use phoenix_missions::config::MissionsSettings;
use phoenix_proto::coordinator::v1 as bus_pb;
use phoenix_proto::coordinator::v1::event_bus_service_client::EventBusServiceClient;
use phoenix_proto::events::v1 as events;
use phoenix_proto::goals::v1 as goals_pb;
use phoenix_proto::goals::v1::goals_service_client::GoalsServiceClient;
use phoenix_proto::missions::v1 as missions_pb;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_testkit::{TestService, directory_user, spawn, spawn_with};

use prost::Message;
use tonic::transport::Channel;
use uuid::Uuid;

const SEASON: &str = "2026-S4";
const WAIT: Duration = Duration::from_secs(30);

struct World {
    _directory: TestService,
    _goals: TestService,
    coordinator: TestService,
    missions: TestService,
    goals_client: GoalsServiceClient<Channel>,
    board_client: MissionsServiceClient<Channel>,
    user: String,
}

impl World {
    async fn start() -> Self {
        Self::start_replicas(1).await.0
    }

    /// The world with `count` missions replicas on one database: the world's `missions` is the
    /// first, the others are answered beside it.
    async fn start_replicas(count: usize) -> (Self, Vec<TestService>) {
        let directory = spawn(phoenix_directory::spec()).await;
        let directory_url = directory.url();
        let goals = spawn_with(phoenix_goals::spec(), move |config| {
            config.peers.set_url("directory", directory_url);
        })
        .await;
        let goals_url = goals.url();
        let coordinator = spawn_with(phoenix_coordinator::spec(), move |config| {
            config.peers.set_url("goals", goals_url);
        })
        .await;
        let coordinator_url = coordinator.url();
        let mut others =
            phoenix_testkit::spawn_replicas(phoenix_missions::spec(), count, |config| {
                config.peers.set_url("coordinator", coordinator_url.clone());
            })
            .await
            .replicas;
        let missions = others.remove(0);
        let user = directory_user(&directory.channel, "boss@example.com", "UTC").await;
        let world = Self {
            goals_client: GoalsServiceClient::new(goals.channel.clone()),
            board_client: MissionsServiceClient::new(missions.channel.clone()),
            _directory: directory,
            _goals: goals,
            coordinator,
            missions,
            user,
        };
        (world, others)
    }

    /// A TODO task of a new goal of the user.
    async fn task(&mut self) -> goals_pb::Task {
        let goal = self
            .goals_client
            .create_goal(goals_pb::CreateGoalRequest {
                user_id: self.user.clone(),
                title: "Beat the boss".into(),
                ..Default::default()
            })
            .await
            .expect("goal created")
            .into_inner()
            .goal
            .expect("goal");
        self.goals_client
            .create_task(goals_pb::CreateTaskRequest {
                goal_id: goal.id,
                title: "The linked task".into(),
                ..Default::default()
            })
            .await
            .expect("task created")
            .into_inner()
            .task
            .expect("task")
    }

    async fn move_task(
        &mut self,
        task: &goals_pb::Task,
        status: goals_pb::TaskStatus,
    ) -> goals_pb::Task {
        let mut changed = task.clone();
        changed.status = status.into();
        self.goals_client
            .update_task(goals_pb::UpdateTaskRequest {
                task: Some(changed),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            })
            .await
            .expect("task moved")
            .into_inner()
            .task
            .expect("task")
    }

    /// The user's board, its boss linked to `task`.
    async fn linked_board(&mut self, task: &str) -> missions_pb::Board {
        self.board_client
            .create_board(missions_pb::CreateBoardRequest {
                user_id: self.user.clone(),
                season_id: SEASON.into(),
                time_zone: "UTC".into(),
            })
            .await
            .expect("board created");
        self.board_client
            .link_boss_task(missions_pb::LinkBossTaskRequest {
                user_id: self.user.clone(),
                season_id: SEASON.into(),
                task_id: task.to_owned(),
            })
            .await
            .expect("boss linked");
        self.board().await
    }

    async fn board(&mut self) -> missions_pb::Board {
        self.board_client
            .get_board(missions_pb::GetBoardRequest {
                user_id: self.user.clone(),
                season_id: SEASON.into(),
            })
            .await
            .expect("board")
            .into_inner()
            .board
            .expect("board")
    }

    /// The boards missions recorded for the event, once it did (within `WAIT`).
    async fn processed(&self, event_id: Uuid) -> i32 {
        let started = Instant::now();
        loop {
            let boards: Option<i32> = sqlx::query_scalar(
                "SELECT boards FROM missions_v2_task_events WHERE event_id = $1",
            )
            .bind(event_id)
            .fetch_optional(&self.missions.pool)
            .await
            .expect("task events");
            if let Some(boards) = boards {
                return boards;
            }
            assert!(
                started.elapsed() < WAIT,
                "missions never processed {event_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The id of the bus's `TaskCompleted` of `task` (within `WAIT`).
    async fn bus_event_of(&self, task: &str) -> Uuid {
        let started = Instant::now();
        loop {
            let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
                "SELECT event_id, envelope FROM bus_events WHERE event_type = 'phoenix.goals.v1.TaskCompleted'",
            )
            .fetch_all(&self.coordinator.pool)
            .await
            .expect("bus events");
            for (id, envelope) in rows {
                let event = events::Event::decode(envelope.as_slice()).expect("envelope");
                let completed = goals_pb::TaskCompleted::decode(
                    event.payload.expect("payload").value.as_slice(),
                )
                .expect("payload");
                if completed.task.is_some_and(|t| t.id == task) {
                    return id;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "the bus never got the TaskCompleted of {task}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deliveries of the `missions` group not acknowledged yet (leased, ready or dead).
    async fn outstanding(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bus_deliveries WHERE group_name = 'missions'")
            .fetch_one(&self.coordinator.pool)
            .await
            .expect("deliveries")
    }

    async fn wait_acked(&self) {
        let started = Instant::now();
        while self.outstanding().await > 0 {
            assert!(
                started.elapsed() < WAIT,
                "missions never acknowledged its deliveries"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The missions use cases on the missions database, as a second replica would run them.
    fn replica(&self) -> Missions {
        let settings = MissionsSettings::parse(&[]).expect("settings");
        Missions::open(&settings, self.missions.pool.clone()).expect("missions")
    }
}

/// Missions' `missions_task_events_total{kind}` in this process (shared by the tests here).
fn task_events(kind: &str) -> u64 {
    phoenix_missions::metrics::get()
        .task_events
        .get_or_create(&phoenix_runtime::metrics::KindLabels {
            kind: kind.to_owned(),
        })
        .get()
}

fn boss(board: &missions_pb::Board) -> &missions_pb::BossRun {
    board.boss.as_ref().expect("a boss")
}

#[tokio::test]
async fn a_completed_task_takes_the_linked_bosss_shield_down_through_the_bus() {
    let mut w = World::start().await;
    let task = w.task().await;
    let before = w.linked_board(&task.id).await;
    assert_eq!(boss(&before).phase, 1);
    assert!(boss(&before).shield_current > 0, "the shield starts up");

    let task = w.move_task(&task, goals_pb::TaskStatus::InProgress).await;
    w.move_task(&task, goals_pb::TaskStatus::Done).await;
    let event = w.bus_event_of(&task.id).await;
    assert_eq!(w.processed(event).await, 1, "one board moved");
    w.wait_acked().await;

    assert!(task_events("applied") >= 1, "counted as applied");
    let after = w.board().await;
    assert_eq!(boss(&after).shield_current, 0, "the shield is down");
    assert_eq!(boss(&after).phase, 2, "phase 2 begins");
}

#[tokio::test]
async fn the_same_event_delivered_twice_changes_nothing() {
    let mut w = World::start().await;
    let task = w.task().await;
    w.linked_board(&task.id).await;
    let task = w.move_task(&task, goals_pb::TaskStatus::InProgress).await;
    w.move_task(&task, goals_pb::TaskStatus::Done).await;
    let event = w.bus_event_of(&task.id).await;
    assert_eq!(w.processed(event).await, 1);
    w.wait_acked().await;
    let once = w.board().await;

    // The bus delivers at least once: the same event again (a lost ack, another replica).
    let user = Uuid::parse_str(&w.user).expect("user");
    let task_id = Uuid::parse_str(&task.id).expect("task");
    let duplicates = task_events("duplicate");
    let outcome = w
        .replica()
        .apply_task_completed(event, user, task_id)
        .await
        .expect("applied");
    assert_eq!(outcome, TaskOutcome::Duplicate);
    assert!(
        task_events("duplicate") > duplicates,
        "counted as a duplicate"
    );
    assert_eq!(w.board().await, once, "the board did not change");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM missions_v2_task_events")
        .fetch_one(&w.missions.pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "one event processed");
}

#[tokio::test]
async fn an_event_for_a_task_no_boss_links_is_acked_and_changes_nothing() {
    let mut w = World::start().await;
    let linked = w.task().await;
    let before = w.linked_board(&linked.id).await;

    // A TaskCompleted of another task of the user, published on the bus.
    let other = Uuid::new_v4();
    let event_id = Uuid::now_v7();
    let payload = goals_pb::TaskCompleted {
        task: Some(goals_pb::Task {
            id: other.to_string(),
            user_id: w.user.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let published = EventBusServiceClient::new(w.coordinator.channel.clone())
        .publish(bus_pb::PublishRequest {
            events: vec![events::Event {
                id: event_id.to_string(),
                r#type: "phoenix.goals.v1.TaskCompleted".into(),
                aggregate_type: "task".into(),
                aggregate_id: other.to_string(),
                aggregate_version: 1,
                payload: Some(prost_types::Any {
                    type_url: "type.googleapis.com/phoenix.goals.v1.TaskCompleted".into(),
                    value: payload.encode_to_vec(),
                }),
                ..Default::default()
            }],
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(published.accepted, 1);

    assert_eq!(w.processed(event_id).await, 0, "no board moved");
    assert!(task_events("unlinked") >= 1, "counted as unlinked");
    w.wait_acked().await;
    let after = w.board().await;
    assert_eq!(boss(&after), boss(&before), "the boss did not change");
    assert_eq!(boss(&after).phase, 1);

    // Delivered again, it is a duplicate.
    let user = Uuid::parse_str(&w.user).expect("user");
    let outcome = w
        .replica()
        .apply_task_completed(event_id, user, other)
        .await
        .expect("applied");
    assert_eq!(outcome, TaskOutcome::Duplicate);
}

#[tokio::test]
async fn two_missions_replicas_credit_each_task_completed_once() {
    let (mut w, _second) = World::start_replicas(2).await;
    let mut done = Vec::new();
    for n in 0..6 {
        w.user = directory_user(
            &w._directory.channel,
            &format!("boss{n}@example.com"),
            "UTC",
        )
        .await;
        let task = w.task().await;
        w.linked_board(&task.id).await;
        let task = w.move_task(&task, goals_pb::TaskStatus::InProgress).await;
        w.move_task(&task, goals_pb::TaskStatus::Done).await;
        done.push((w.user.clone(), task.id));
    }
    for (user, task) in &done {
        let event = w.bus_event_of(task).await;
        assert_eq!(w.processed(event).await, 1, "{user}: one board moved");
    }
    w.wait_acked().await;
    // Each event credited once by one of the two replicas, whichever the bus leased it to.
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM missions_v2_task_events")
            .fetch_all(&w.missions.pool)
            .await
            .expect("task events");
    assert_eq!(rows, [(6, 6)]);
    for (user, _) in done {
        w.user = user;
        let board = w.board().await;
        assert_eq!(
            (boss(&board).shield_current, boss(&board).phase),
            (0, 2),
            "{}: the shield went down once",
            w.user
        );
    }
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bus_deliveries WHERE group_name = 'missions' AND state = 'dead'",
    )
    .fetch_one(&w.coordinator.pool)
    .await
    .expect("dead letters");
    assert_eq!(dead, 0);
}
