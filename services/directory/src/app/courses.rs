//! Courses.

use std::collections::HashMap;

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Error;
use phoenix_runtime::stream::NewEvent;
use uuid::Uuid;

use super::{COURSE_AGGREGATE, Directory, publish};
use crate::domain::course::CourseFields;
use crate::domain::{Course, CourseInput};
use crate::store::{courses as store, users};
use crate::{error, proto};

fn course_event(
    course: &Course,
    event_type: &'static str,
    payload: &impl prost::Message,
) -> NewEvent {
    NewEvent::new(
        COURSE_AGGREGATE,
        course.id,
        course.version,
        event_type,
        payload,
        course.updated_at,
    )
}

impl Directory {
    /// Creates a course owned by an existing user (FAILED_PRECONDITION USER_NOT_FOUND else).
    pub async fn create_course(
        &self,
        owner_id: Uuid,
        fields: &CourseFields,
    ) -> Result<Course, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        users::get(&mut *transaction, owner_id, false)
            .await?
            .ok_or_else(|| error::owner_not_found(owner_id))?;
        let course = store::insert(&mut transaction, Uuid::now_v7(), owner_id, fields, now).await?;
        let payload = pb::CourseCreated {
            course: Some(proto::course(&course)),
        };
        publish(
            &mut transaction,
            &[course_event(
                &course,
                "phoenix.directory.v1.CourseCreated",
                &payload,
            )],
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(course)
    }

    pub async fn course(&self, id: Uuid) -> Result<Course, Error> {
        Ok(store::get(&self.pool, id, false)
            .await?
            .ok_or_else(|| error::course_not_found(id))?)
    }

    /// The courses with these ids, in the order asked (each once), and the ids that name none.
    pub async fn courses(&self, ids: &[Uuid]) -> Result<(Vec<Course>, Vec<Uuid>), Error> {
        let mut found: HashMap<Uuid, Course> = store::batch_get(&self.pool, ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut courses = Vec::with_capacity(found.len());
        let mut missing: Vec<Uuid> = Vec::new();
        for id in ids {
            if let Some(course) = found.remove(id) {
                courses.push(course);
            } else if !courses.iter().any(|c: &Course| c.id == *id) && !missing.contains(id) {
                missing.push(*id);
            }
        }
        Ok((courses, missing))
    }

    /// A page of at most `limit` of the owner's courses after `after`, and whether more
    /// follow (the last id then). NOT_FOUND for an unknown owner.
    pub async fn courses_of(
        &self,
        owner_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Vec<Course>, Option<Uuid>), Error> {
        users::get(&self.pool, owner_id, false)
            .await?
            .ok_or_else(|| error::user_not_found(owner_id))?;
        let size = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut courses = store::by_owner(&self.pool, owner_id, after, limit + 1).await?;
        let more = courses.len() > size;
        courses.truncate(size);
        let next = if more {
            courses.last().map(|c| c.id)
        } else {
            None
        };
        Ok((courses, next))
    }

    /// Changes the fields named by `paths`; a status change must be an allowed transition.
    pub async fn update_course(
        &self,
        id: Uuid,
        input: &CourseInput,
        paths: &[String],
    ) -> Result<Course, Error> {
        let now = self.now();
        let mut transaction = self.pool.begin().await?;
        let current = store::get(&mut *transaction, id, true)
            .await?
            .ok_or_else(|| error::course_not_found(id))?;
        let next = current.fields.with(input, paths, "course.")?;
        let completed_at = current.transition(next.status, now)?;
        if next == current.fields {
            return Ok(current);
        }
        let course = store::update(&mut transaction, id, &next, completed_at, now).await?;
        let payload = pb::CourseUpdated {
            course: Some(proto::course(&course)),
            paths: paths.to_vec(),
        };
        publish(
            &mut transaction,
            &[course_event(
                &course,
                "phoenix.directory.v1.CourseUpdated",
                &payload,
            )],
        )
        .await?;
        transaction.commit().await?;
        self.events.appended();
        Ok(course)
    }
}
