//! CreateCourse, GetCourse, BatchGetCourses, ListCourses, UpdateCourse.

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{
    Access, Answer, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, batch_ids, decoded, page_after, page_token,
};
use crate::app::Directory;
use crate::domain::CourseInput;
use crate::domain::course::{CourseFields, READ_ONLY, WRITABLE};
use crate::proto;

/// A status as the caller sent it: unspecified is `None`, an unknown number a violation.
fn status(v: &mut Violations, field: &str, value: i32) -> Option<crate::domain::CourseStatus> {
    match pb::CourseStatus::try_from(value) {
        Ok(status) => proto::course_status_from(status),
        Err(_) => {
            v.add(
                field,
                "INVALID_ENUM",
                format!("{value} is not a known course status"),
            );
            None
        }
    }
}

pub async fn create(
    d: &Directory,
    body: &pb::CreateCourseRequest,
    access: &Access,
) -> Answer<pb::CreateCourseResponse> {
    let mut v = Violations::new();
    let owner = v.uuid("owner_user_id", &body.owner_user_id);
    let input = CourseInput {
        title: body.title.clone(),
        description: body.description.clone(),
        status: status(&mut v, "status", body.status),
        progress_percentage: body.progress_percentage,
        metadata: json_from_struct(body.metadata.as_ref()),
    };
    let fields = v.take(CourseFields::new(&input));
    let fields = decoded(v, fields)?;
    access.owner(owner)?;
    let course = d.create_course(owner, &fields).await?;
    Ok(Response::new(pb::CreateCourseResponse {
        course: Some(proto::course(&course)),
    }))
}

pub async fn get(
    d: &Directory,
    body: &pb::GetCourseRequest,
    _open: &Access,
) -> Answer<pb::GetCourseResponse> {
    let mut v = Violations::new();
    let id = v.uuid("id", &body.id);
    v.finish()?;
    let course = d.course(id).await?;
    Ok(Response::new(pb::GetCourseResponse {
        course: Some(proto::course(&course)),
    }))
}

pub async fn batch_get(
    d: &Directory,
    body: &pb::BatchGetCoursesRequest,
    _open: &Access,
) -> Answer<pb::BatchGetCoursesResponse> {
    let mut v = Violations::new();
    let ids = batch_ids(&mut v, &body.ids);
    v.finish()?;
    let (courses, missing) = d.courses(&ids).await?;
    Ok(Response::new(pb::BatchGetCoursesResponse {
        courses: courses.iter().map(proto::course).collect(),
        missing_ids: missing.iter().map(ToString::to_string).collect(),
    }))
}

pub async fn list(
    d: &Directory,
    body: &pb::ListCoursesRequest,
    _open: &Access,
) -> Answer<pb::ListCoursesResponse> {
    let mut v = Violations::new();
    let owner = v.uuid("owner_user_id", &body.owner_user_id);
    let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = page_after(&mut v, &body.page_token);
    v.finish()?;
    let (courses, next) = d.courses_of(owner, after, limit).await?;
    Ok(Response::new(pb::ListCoursesResponse {
        courses: courses.iter().map(proto::course).collect(),
        next_page_token: page_token(next),
    }))
}

pub async fn update(
    d: &Directory,
    body: &pb::UpdateCourseRequest,
    access: &Access,
) -> Answer<pb::UpdateCourseResponse> {
    let mut v = Violations::new();
    let course = body.course.clone().unwrap_or_default();
    if body.course.is_none() {
        v.add(
            "course",
            "REQUIRED",
            "is required: the course's id and new values",
        );
    }
    let id = v.uuid("course.id", &course.id);
    let paths = v.field_mask(
        "update_mask",
        body.update_mask.as_ref(),
        WRITABLE,
        READ_ONLY,
    );
    let input = CourseInput {
        title: course.title,
        description: course.description,
        status: status(&mut v, "course.status", course.status),
        progress_percentage: course.progress_percentage,
        metadata: json_from_struct(course.metadata.as_ref()),
    };
    v.take(CourseFields::check_paths(&input, &paths, "course."));
    v.finish()?;
    if access.is_on() {
        access.owner(d.course(id).await?.owner_id)?;
    }
    let course = d.update_course(id, &input, &paths).await?;
    Ok(Response::new(pb::UpdateCourseResponse {
        course: Some(proto::course(&course)),
    }))
}
