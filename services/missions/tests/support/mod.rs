//! What the missions integration tests share: a running service on a manual clock, clients,
//! and shortcuts for the steps every story starts with.
#![allow(dead_code)]

use phoenix_proto::missions::v1 as pb;
use phoenix_proto::missions::v1::catalog_service_client::CatalogServiceClient;
use phoenix_proto::missions::v1::clock_service_client::ClockServiceClient;
use phoenix_proto::missions::v1::missions_service_client::MissionsServiceClient;
use phoenix_testkit::TestService;
use tonic::transport::Channel;
use uuid::Uuid;

pub const SEASON: &str = "2026-S4";

pub struct Harness {
    pub service: TestService,
    pub missions: MissionsServiceClient<Channel>,
    pub catalog: CatalogServiceClient<Channel>,
    pub clock: ClockServiceClient<Channel>,
    /// Keeps the FILE store's folder alive for the test.
    pub store_dir: tempdir::Dir,
}

/// A folder removed when dropped, for FILE stores.
pub mod tempdir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("phoenix-missions-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create a temporary folder");
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Harness {
    /// The service on SQL with a manual clock at `now` (RFC 3339).
    pub async fn start(now: &str) -> Self {
        Self::with_repo("SQL", now).await
    }

    /// The service with `MISSIONS_REPO=repo` (FILE, SQL or DUAL) and a manual clock at `now`.
    pub async fn with_repo(repo: &str, now: &str) -> Self {
        let store_dir = tempdir::Dir::new();
        let store = store_dir.0.join("missions_v2_store.json");
        let args = vec![
            "--clock=manual".to_owned(),
            format!("--repository={repo}"),
            format!("--store-path={}", store.display()),
            // Days close when a test says so, not when the schedule does.
            "--day-close-interval=1h".to_owned(),
        ];
        let service = phoenix_testkit::spawn_with(phoenix_missions::spec(), move |config| {
            config.service_args = args;
        })
        .await;
        let mut harness = Self::on(service, store_dir).await;
        harness.set_time(now).await;
        harness
    }

    /// Clients of a running service (e.g. after a restart).
    pub async fn on(service: TestService, store_dir: tempdir::Dir) -> Self {
        Self {
            missions: MissionsServiceClient::new(service.channel.clone()),
            catalog: CatalogServiceClient::new(service.channel.clone()),
            clock: ClockServiceClient::new(service.channel.clone()),
            service,
            store_dir,
        }
    }

    pub async fn set_time(&mut self, now: &str) {
        let now = chrono::DateTime::parse_from_rfc3339(now).expect("an RFC 3339 time");
        self.clock
            .set_time(pb::SetTimeRequest {
                now: Some(prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: 0,
                }),
            })
            .await
            .expect("set the clock");
    }

    pub async fn advance_hours(&mut self, hours: i64) {
        self.clock
            .advance_time(pb::AdvanceTimeRequest {
                by: Some(prost_types::Duration {
                    seconds: hours * 3600,
                    nanos: 0,
                }),
            })
            .await
            .expect("advance the clock");
    }

    /// Makes `mission` the only active mission of its slot, so boards offer it.
    pub async fn only_mission(&mut self, mut mission: pb::Mission) -> String {
        let catalog = self
            .catalog
            .get_catalog(pb::GetCatalogRequest {})
            .await
            .expect("catalog")
            .into_inner();
        for mut other in catalog.missions {
            if other.slot_key == mission.slot_key && other.active {
                other.active = false;
                self.catalog
                    .upsert_mission(pb::UpsertMissionRequest {
                        mission: Some(other),
                    })
                    .await
                    .expect("retire a default mission");
            }
        }
        mission.active = true;
        self.upsert_mission(mission).await.mission_id
    }

    /// Upserts `mission`; answers it as stored.
    pub async fn upsert_mission(&mut self, mission: pb::Mission) -> pb::Mission {
        self.catalog
            .upsert_mission(pb::UpsertMissionRequest {
                mission: Some(mission),
            })
            .await
            .expect("upsert the mission")
            .into_inner()
            .mission
            .expect("mission")
    }

    pub async fn create_board(&mut self, user: Uuid, time_zone: &str) -> pb::Board {
        self.missions
            .create_board(pb::CreateBoardRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                time_zone: time_zone.into(),
            })
            .await
            .expect("create the board")
            .into_inner()
            .board
            .expect("board")
    }

    pub async fn board(&mut self, user: Uuid) -> pb::Board {
        self.missions
            .get_board(pb::GetBoardRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
            })
            .await
            .expect("get the board")
            .into_inner()
            .board
            .expect("board")
    }

    /// Starts the main slot's run; returns its id.
    pub async fn activate_main(&mut self, user: Uuid) -> String {
        self.missions
            .activate_slot(pb::ActivateSlotRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                slot_key: pb::SlotKey::Main.into(),
            })
            .await
            .expect("activate the main slot")
            .into_inner()
            .slot
            .and_then(|s| s.run)
            .expect("the slot's new run")
            .run_id
    }

    pub async fn heartbeat(&mut self, user: Uuid, run_id: &str) -> pb::HeartbeatResponse {
        self.missions
            .heartbeat(pb::HeartbeatRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                run_id: run_id.into(),
            })
            .await
            .expect("heartbeat")
            .into_inner()
    }

    pub async fn close_days(&mut self, user: Uuid) -> Vec<pb::ClosedDay> {
        self.missions
            .close_days(pb::CloseDaysRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
            })
            .await
            .expect("close days")
            .into_inner()
            .closed
    }

    /// Adds a seven-day amulet that keeps one missed day instead of a petal; returns its id.
    pub async fn streak_freeze(&mut self) -> String {
        self.catalog
            .upsert_effect(pb::UpsertEffectRequest {
                effect: Some(pb::EffectDefinition {
                    kind: pb::EffectKind::Amulet.into(),
                    name: "Streak freeze".into(),
                    description: "Keeps a missed day".into(),
                    payload_json: r#"{"protectsDay": true}"#.into(),
                    duration_days: 7,
                    ..Default::default()
                }),
            })
            .await
            .expect("upsert the effect")
            .into_inner()
            .effect
            .expect("effect")
            .effect_id
    }

    pub async fn grant_effect(&mut self, user: Uuid, effect_id: &str) {
        self.missions
            .grant_effect(pb::GrantEffectRequest {
                user_id: user.to_string(),
                season_id: SEASON.into(),
                effect_id: effect_id.into(),
            })
            .await
            .expect("grant the effect");
    }

    /// Writes a close of `run_id`'s local `date` into the relational rows only, as a bad restore
    /// could leave it: the snapshot does not know the day is closed, so the board's own close
    /// of that day breaks the database's once-a-day constraint.
    pub async fn stray_day_close(&self, run_id: &str, date: &str) {
        sqlx::query(
            "INSERT INTO missions_v2_day_closes (run_id, local_date, outcome, petals_after, closed_at)
             VALUES ($1::uuid, $2::date, 'kept', 1, now())",
        )
        .bind(run_id)
        .bind(date)
        .execute(&self.service.pool)
        .await
        .expect("write a stray day close");
    }

    /// The users whose boards have a day close due at `now` (RFC 3339), as saved.
    pub async fn due_users(&self, now: &str) -> Vec<Uuid> {
        sqlx::query_scalar(
            "SELECT user_id FROM missions_v2_state WHERE due_at <= $1::timestamptz ORDER BY user_id",
        )
        .bind(now)
        .fetch_all(&self.service.pool)
        .await
        .expect("the due boards")
    }

    pub async fn main_slot(&mut self, user: Uuid) -> pb::Slot {
        self.board(user)
            .await
            .slots
            .into_iter()
            .find(|s| s.slot_key == pb::SlotKey::Main as i32)
            .expect("the main slot")
    }
}

/// A main-slot mission of `days` days that succeeds at `target` tasks.
pub fn main_mission(days: i32, target: i32) -> pb::Mission {
    pb::Mission {
        slot_key: pb::SlotKey::Main.into(),
        name: format!("Test mission {days}d/{target}"),
        summary: "A mission for tests".into(),
        requirements: "none".into(),
        objective: "finish".into(),
        difficulty: pb::Difficulty::Medium.into(),
        duration_days: days,
        progress_target: target,
        progress_unit: pb::ProgressUnit::Tasks.into(),
        reward: Some(pb::Reward {
            xp: 120,
            currency: 50,
            ..Default::default()
        }),
        active: true,
        ..Default::default()
    }
}
