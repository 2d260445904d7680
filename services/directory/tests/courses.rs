//! Courses through gRPC.

use phoenix_proto::directory::v1 as pb;
use phoenix_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use phoenix_testkit::{assert_refused, directory_user, field_reasons, metadata, spawn};
use tonic::Code;
use tonic::transport::Channel;

type Client = DirectoryServiceClient<Channel>;

async fn course(client: &mut Client, owner: &str, title: &str) -> pb::Course {
    client
        .create_course(pb::CreateCourseRequest {
            owner_user_id: owner.into(),
            title: title.into(),
            description: "Learn Rust".into(),
            progress_percentage: 12.5,
            ..Default::default()
        })
        .await
        .expect("course created")
        .into_inner()
        .course
        .expect("course")
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn move_to(
    client: &mut Client,
    course: &pb::Course,
    status: pb::CourseStatus,
) -> Result<pb::Course, tonic::Status> {
    let mut changed = course.clone();
    changed.status = status.into();
    Ok(client
        .update_course(pb::UpdateCourseRequest {
            course: Some(changed),
            update_mask: mask(&["status"]),
        })
        .await?
        .into_inner()
        .course
        .expect("course"))
}

#[tokio::test]
async fn a_course_moves_along_its_life_cycle_only() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let owner = directory_user(&service.channel, "o@example.com", "").await;
    let draft = course(&mut client, &owner, "Rust 101").await;
    assert_eq!(draft.status(), pb::CourseStatus::Draft);
    assert_eq!(draft.progress_percentage, 12.5);

    let status = move_to(&mut client, &draft, pb::CourseStatus::Completed)
        .await
        .expect_err("draft cannot complete");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "INVALID_COURSE_TRANSITION",
    );
    assert_eq!(metadata(&status, "from").as_deref(), Some("draft"));
    assert_eq!(metadata(&status, "to").as_deref(), Some("completed"));

    let active = move_to(&mut client, &draft, pb::CourseStatus::Active)
        .await
        .expect("active");
    assert!(active.complete_time.is_none());
    let done = move_to(&mut client, &active, pb::CourseStatus::Completed)
        .await
        .expect("done");
    assert!(done.complete_time.is_some());
    let archived = move_to(&mut client, &done, pb::CourseStatus::Archived)
        .await
        .expect("archived");
    assert_eq!(archived.complete_time, done.complete_time);
    let status = move_to(&mut client, &archived, pb::CourseStatus::Active)
        .await
        .expect_err("archived is final");
    assert_refused(
        &status,
        Code::FailedPrecondition,
        "INVALID_COURSE_TRANSITION",
    );
    let read = client
        .get_course(pb::GetCourseRequest {
            id: draft.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .course
        .expect("course");
    assert_eq!(read, archived);
}

#[tokio::test]
async fn an_update_changes_the_masked_fields_and_refuses_bad_ones() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let owner = directory_user(&service.channel, "o@example.com", "").await;
    let created = course(&mut client, &owner, "Rust 101").await;
    let mut changed = created.clone();
    changed.title = "Rust 102".into();
    changed.progress_percentage = 50.0;
    changed.description = "ignored".into();
    let updated = client
        .update_course(pb::UpdateCourseRequest {
            course: Some(changed.clone()),
            update_mask: mask(&["title", "progress_percentage"]),
        })
        .await
        .expect("updated")
        .into_inner()
        .course
        .expect("course");
    assert_eq!(
        (updated.title.as_str(), updated.progress_percentage),
        ("Rust 102", 50.0)
    );
    assert_eq!(updated.description, created.description);

    changed.progress_percentage = 100.5;
    let status = client
        .update_course(pb::UpdateCourseRequest {
            course: Some(changed.clone()),
            update_mask: mask(&["progress_percentage", "owner_user_id", "color"]),
        })
        .await
        .expect_err("bad paths");
    assert_eq!(
        field_reasons(&status),
        [
            (
                "update_mask.paths[1]".to_owned(),
                "READ_ONLY_FIELD".to_owned()
            ),
            (
                "update_mask.paths[2]".to_owned(),
                "UNKNOWN_FIELD".to_owned()
            ),
            (
                "course.progress_percentage".to_owned(),
                "OUT_OF_RANGE".to_owned()
            ),
        ]
    );
    let status = client
        .update_course(pb::UpdateCourseRequest {
            course: Some(changed),
            update_mask: mask(&["progress_percentage"]),
        })
        .await
        .expect_err("out of range");
    assert_eq!(
        field_reasons(&status),
        [(
            "course.progress_percentage".to_owned(),
            "OUT_OF_RANGE".to_owned()
        )]
    );
}

#[tokio::test]
async fn courses_are_batched_listed_by_owner_and_need_a_known_owner() {
    let service = spawn(phoenix_directory::spec()).await;
    let mut client = Client::new(service.channel.clone());
    let ada = directory_user(&service.channel, "ada@example.com", "").await;
    let bob = directory_user(&service.channel, "bob@example.com", "").await;
    let a1 = course(&mut client, &ada, "A1").await;
    let a2 = course(&mut client, &ada, "A2").await;
    let b1 = course(&mut client, &bob, "B1").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let batch = client
        .batch_get_courses(pb::BatchGetCoursesRequest {
            ids: vec![b1.id.clone(), unknown.clone(), a1.id.clone()],
        })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(batch.courses, [b1.clone(), a1.clone()]);
    assert_eq!(batch.missing_ids, std::slice::from_ref(&unknown));

    let first = client
        .list_courses(pb::ListCoursesRequest {
            owner_user_id: ada.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first.courses, std::slice::from_ref(&a1));
    let second = client
        .list_courses(pb::ListCoursesRequest {
            owner_user_id: ada.clone(),
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(second.courses, [a2]);
    assert!(second.next_page_token.is_empty());

    let status = client
        .create_course(pb::CreateCourseRequest {
            owner_user_id: unknown,
            title: "Orphan".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown owner");
    assert_refused(&status, Code::FailedPrecondition, "USER_NOT_FOUND");
    let status = client
        .create_course(pb::CreateCourseRequest {
            owner_user_id: "x".into(),
            title: String::new(),
            status: pb::CourseStatus::Archived.into(),
            progress_percentage: -1.0,
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        field_reasons(&status),
        [
            ("owner_user_id".to_owned(), "INVALID_ID".to_owned()),
            ("status".to_owned(), "INVALID_INITIAL_STATUS".to_owned()),
            ("title".to_owned(), "REQUIRED".to_owned()),
            ("progress_percentage".to_owned(), "OUT_OF_RANGE".to_owned()),
        ]
    );
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&service.pool)
        .await
        .expect("count");
    assert_eq!(courses, 3);
}
