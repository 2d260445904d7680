//! CreateUser, GetUser, LookupUser, BatchGetUsers, ListUsers, UpdateUser, DeactivateUser.

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::Violations;
use phoenix_runtime::convert::json_from_struct;
use tonic::Response;

use super::{
    Access, Answer, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, batch_ids, decoded, optional_time,
    page_after, page_token,
};
use crate::app::Directory;
use crate::domain::user::{MAX_ARCHETYPE_CHARS, READ_ONLY, WRITABLE};
use crate::domain::{NewUser, Profile, ProfileInput};
use crate::proto;
use crate::store::users::{Filter, Key};

pub async fn create(
    d: &Directory,
    body: &pb::CreateUserRequest,
    access: &Access,
) -> Answer<pb::CreateUserResponse> {
    let mut v = Violations::new();
    let input = ProfileInput {
        email: body.email.clone(),
        display_name: body.display_name.clone(),
        time_zone: body.time_zone.clone(),
        username: body.username.clone(),
        telegram_id: body.telegram_id,
        superuser: body.superuser,
        metadata: json_from_struct(body.metadata.as_ref()),
        last_login_at: optional_time(&mut v, "last_login_time", body.last_login_time.as_ref()),
        archetype_primary: body.archetype_primary.clone(),
        archetype_secondary: body.archetype_secondary.clone(),
        archetype_confidence: body.archetype_confidence,
        conversion_score: body.conversion_score,
        churn_risk_score: body.churn_risk_score,
        lifetime_value_minor: body.lifetime_value_minor,
        last_engagement_at: optional_time(
            &mut v,
            "last_engagement_time",
            body.last_engagement_time.as_ref(),
        ),
        engagement_streak: body.engagement_streak,
    };
    let new = v.take(NewUser::parse(&input));
    let new = decoded(v, new)?;
    access.admin()?;
    let user = d.register(&new).await?;
    Ok(Response::new(pb::CreateUserResponse {
        user: Some(proto::user(&user)),
    }))
}

pub async fn get(
    d: &Directory,
    body: &pb::GetUserRequest,
    _open: &Access,
) -> Answer<pb::GetUserResponse> {
    let mut v = Violations::new();
    let id = v.uuid("id", &body.id);
    v.finish()?;
    let user = d.user(id).await?;
    Ok(Response::new(pb::GetUserResponse {
        user: Some(proto::user(&user)),
    }))
}

pub async fn lookup(
    d: &Directory,
    body: &pb::LookupUserRequest,
    _open: &Access,
) -> Answer<pb::LookupUserResponse> {
    use pb::lookup_user_request::Key as K;
    let mut v = Violations::new();
    let key = match &body.key {
        None => {
            v.add(
                "key",
                "REQUIRED",
                "is required: email, username or telegram_id",
            );
            None
        }
        Some(K::Email(email)) => Some(Key::Email(v.text("email", email, 320))),
        Some(K::Username(name)) => Some(Key::Username(v.text("username", name, 32))),
        Some(K::TelegramId(id)) => {
            v.check(
                *id > 0,
                "telegram_id",
                "INVALID_TELEGRAM_ID",
                "must be a positive Telegram user id",
            );
            Some(Key::Telegram(*id))
        }
    };
    let key = decoded(v, key)?;
    let user = d.lookup(&key).await?;
    Ok(Response::new(pb::LookupUserResponse {
        user: Some(proto::user(&user)),
    }))
}

pub async fn batch_get(
    d: &Directory,
    body: &pb::BatchGetUsersRequest,
    _open: &Access,
) -> Answer<pb::BatchGetUsersResponse> {
    let mut v = Violations::new();
    let ids = batch_ids(&mut v, &body.ids);
    v.finish()?;
    let (users, missing) = d.users(&ids).await?;
    Ok(Response::new(pb::BatchGetUsersResponse {
        users: users.iter().map(proto::user).collect(),
        missing_ids: missing.iter().map(ToString::to_string).collect(),
    }))
}

pub async fn list(
    d: &Directory,
    body: &pb::ListUsersRequest,
    access: &Access,
) -> Answer<pb::ListUsersResponse> {
    let mut v = Violations::new();
    let limit = v.page_size(body.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    let after = page_after(&mut v, &body.page_token);
    let archetype = v.optional_text(
        "archetype_primary",
        &body.archetype_primary,
        MAX_ARCHETYPE_CHARS,
    );
    let vip_status = match pb::VipStatus::try_from(body.vip_status) {
        Ok(status) => proto::vip_status_from(status),
        Err(_) => {
            v.add(
                "vip_status",
                "INVALID_ENUM",
                format!("{} is not a known VIP status", body.vip_status),
            );
            None
        }
    };
    v.finish()?;
    access.admin()?;
    let filter = Filter {
        active: body.active,
        archetype_primary: (!archetype.is_empty()).then_some(archetype),
        vip_status,
    };
    let page = d.list_users(&filter, after, limit).await?;
    Ok(Response::new(pb::ListUsersResponse {
        users: page.users.iter().map(proto::user).collect(),
        next_page_token: page_token(page.next_after),
    }))
}

pub async fn update(
    d: &Directory,
    body: &pb::UpdateUserRequest,
    access: &Access,
) -> Answer<pb::UpdateUserResponse> {
    let mut v = Violations::new();
    let user = body.user.clone().unwrap_or_default();
    if body.user.is_none() {
        v.add(
            "user",
            "REQUIRED",
            "is required: the user's id and new values",
        );
    }
    let id = v.uuid("user.id", &user.id);
    let paths = v.field_mask(
        "update_mask",
        body.update_mask.as_ref(),
        WRITABLE,
        READ_ONLY,
    );
    let input = ProfileInput {
        email: user.email,
        display_name: user.display_name,
        time_zone: user.time_zone,
        username: user.username,
        telegram_id: user.telegram_id,
        superuser: user.superuser,
        metadata: json_from_struct(user.metadata.as_ref()),
        last_login_at: optional_time(
            &mut v,
            "user.last_login_time",
            user.last_login_time.as_ref(),
        ),
        archetype_primary: user.archetype_primary,
        archetype_secondary: user.archetype_secondary,
        archetype_confidence: user.archetype_confidence,
        conversion_score: user.conversion_score,
        churn_risk_score: user.churn_risk_score,
        lifetime_value_minor: user.lifetime_value_minor,
        last_engagement_at: optional_time(
            &mut v,
            "user.last_engagement_time",
            user.last_engagement_time.as_ref(),
        ),
        engagement_streak: user.engagement_streak,
    };
    v.take(Profile::check_paths(&input, &paths, "user."));
    v.finish()?;
    super::access::update(access, id, &paths)?;
    let user = d.update_user(id, &input, &paths).await?;
    Ok(Response::new(pb::UpdateUserResponse {
        user: Some(proto::user(&user)),
    }))
}

pub async fn deactivate(
    d: &Directory,
    body: &pb::DeactivateUserRequest,
    access: &Access,
) -> Answer<pb::DeactivateUserResponse> {
    let mut v = Violations::new();
    let id = v.uuid("id", &body.id);
    v.finish()?;
    access.owner(id)?;
    let user = d.deactivate(id).await?;
    Ok(Response::new(pb::DeactivateUserResponse {
        user: Some(proto::user(&user)),
    }))
}
