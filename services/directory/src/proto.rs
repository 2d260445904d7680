//! Domain ⇄ `phoenix.directory.v1` conversions, for the API's answers and the events' payloads.

use phoenix_proto::directory::v1 as pb;
use phoenix_runtime::convert::{optional_timestamp, struct_from_json, timestamp};

use crate::domain::channel::ChannelMembership;
use crate::domain::course::Course;
use crate::domain::vip::{MembershipView, Stored, VipChange, VipStatus};
use crate::domain::{Channel, CourseStatus, User, decimal};
use crate::store::vip::HistoryEntry;

pub fn user(user: &User) -> pb::User {
    let p = &user.profile;
    pb::User {
        id: user.id.to_string(),
        email: p.email.clone().unwrap_or_default(),
        display_name: p.display_name.clone(),
        time_zone: p.time_zone.clone(),
        create_time: Some(timestamp(user.created_at)),
        username: p.username.clone().unwrap_or_default(),
        active: user.active,
        superuser: p.superuser,
        metadata: Some(struct_from_json(&p.metadata)),
        last_login_time: optional_timestamp(p.last_login_at),
        telegram_id: p.telegram_id.unwrap_or_default(),
        archetype_primary: p.archetype_primary.clone().unwrap_or_default(),
        archetype_secondary: p.archetype_secondary.clone().unwrap_or_default(),
        archetype_confidence: p.archetype_confidence.map(|h| decimal(h.into())),
        archetype_update_time: optional_timestamp(user.archetype_updated_at),
        conversion_score: p.conversion_score.map(|h| decimal(h.into())),
        churn_risk_score: p.churn_risk_score.map(|h| decimal(h.into())),
        lifetime_value_minor: p.lifetime_value_minor,
        vip_trial_used: user.vip_trial_used,
        vip_trial_end_time: optional_timestamp(user.vip_trial_ends_at),
        last_engagement_time: optional_timestamp(p.last_engagement_at),
        engagement_streak: p.engagement_streak,
        update_time: Some(timestamp(user.updated_at)),
        deactivate_time: optional_timestamp(user.deactivated_at),
        vip_status: vip_status(user.vip_status).into(),
    }
}

pub fn vip_status(status: VipStatus) -> pb::VipStatus {
    match status {
        VipStatus::None => pb::VipStatus::None,
        VipStatus::Trial => pb::VipStatus::Trial,
        VipStatus::Active => pb::VipStatus::Active,
        VipStatus::Expired => pb::VipStatus::Expired,
        VipStatus::Cancelled => pb::VipStatus::Cancelled,
    }
}

pub fn vip_status_from(status: pb::VipStatus) -> Option<VipStatus> {
    match status {
        pb::VipStatus::Unspecified => None,
        pb::VipStatus::None => Some(VipStatus::None),
        pb::VipStatus::Trial => Some(VipStatus::Trial),
        pb::VipStatus::Active => Some(VipStatus::Active),
        pb::VipStatus::Expired => Some(VipStatus::Expired),
        pb::VipStatus::Cancelled => Some(VipStatus::Cancelled),
    }
}

pub fn membership(view: &MembershipView) -> pb::VipMembership {
    let m = view.membership.as_ref();
    pb::VipMembership {
        user_id: view.user_id.to_string(),
        status: vip_status(view.status).into(),
        period_start_time: m.map(|m| timestamp(m.period_start)),
        period_end_time: m.map(|m| timestamp(m.period_end)),
        vip: view.status.has_access(),
        check_time: Some(timestamp(view.checked_at)),
        version: m.map_or(0, |m| m.version),
    }
}

pub fn vip_change(change: VipChange) -> pb::VipChange {
    change_named(change.name())
}

fn change_named(name: &str) -> pb::VipChange {
    match name {
        "grant" => pb::VipChange::Grant,
        "extend" => pb::VipChange::Extend,
        "trial" => pb::VipChange::Trial,
        "cancel" => pb::VipChange::Cancel,
        "revoke" => pb::VipChange::Revoke,
        _ => pb::VipChange::Unspecified,
    }
}

pub fn history_entry(entry: &HistoryEntry) -> pb::VipHistoryEntry {
    let status = match entry.stored {
        Stored::Trial => pb::VipStatus::Trial,
        Stored::Active => pb::VipStatus::Active,
        Stored::Cancelled => pb::VipStatus::Cancelled,
    };
    pb::VipHistoryEntry {
        version: entry.version,
        change: change_named(&entry.change).into(),
        status: status.into(),
        period_start_time: Some(timestamp(entry.period_start)),
        period_end_time: Some(timestamp(entry.period_end)),
        change_time: Some(timestamp(entry.changed_at)),
        reason: entry.reason.clone(),
        idempotency_key: entry.idempotency_key.clone(),
    }
}

pub fn channel(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Free => pb::Channel::Free,
        Channel::Vip => pb::Channel::Vip,
    }
}

pub fn channel_from(channel: pb::Channel) -> Option<Channel> {
    match channel {
        pb::Channel::Unspecified => None,
        pb::Channel::Free => Some(Channel::Free),
        pb::Channel::Vip => Some(Channel::Vip),
    }
}

pub fn channel_membership(m: &ChannelMembership) -> pb::ChannelMembership {
    pb::ChannelMembership {
        user_id: m.user_id.to_string(),
        channel: channel(m.channel).into(),
        join_time: Some(timestamp(m.joined_at)),
    }
}

pub fn course_status(status: CourseStatus) -> pb::CourseStatus {
    match status {
        CourseStatus::Draft => pb::CourseStatus::Draft,
        CourseStatus::Active => pb::CourseStatus::Active,
        CourseStatus::Completed => pb::CourseStatus::Completed,
        CourseStatus::Archived => pb::CourseStatus::Archived,
    }
}

pub fn course_status_from(status: pb::CourseStatus) -> Option<CourseStatus> {
    match status {
        pb::CourseStatus::Unspecified => None,
        pb::CourseStatus::Draft => Some(CourseStatus::Draft),
        pb::CourseStatus::Active => Some(CourseStatus::Active),
        pb::CourseStatus::Completed => Some(CourseStatus::Completed),
        pb::CourseStatus::Archived => Some(CourseStatus::Archived),
    }
}

pub fn course(course: &Course) -> pb::Course {
    pb::Course {
        id: course.id.to_string(),
        owner_user_id: course.owner_id.to_string(),
        title: course.fields.title.clone(),
        description: course.fields.description.clone(),
        status: course_status(course.fields.status).into(),
        progress_percentage: decimal(course.fields.progress.into()),
        metadata: Some(struct_from_json(&course.fields.metadata)),
        create_time: Some(timestamp(course.created_at)),
        update_time: Some(timestamp(course.updated_at)),
        complete_time: optional_timestamp(course.completed_at),
    }
}
