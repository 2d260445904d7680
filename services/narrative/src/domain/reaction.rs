//! Reactions: a user's reaction to a piece of content, one per user, content and reaction, and
//! the reaction rewards that pay besitos for a reaction on a content, once per user (the
//! reaction's uniqueness makes it once; a revert, a saga's compensation, gives it back).

use serde::{Deserialize, Serialize};

/// Longest reaction text and channel post id.
pub const MAX_REACTION_CHARS: usize = 32;
pub const MAX_CONTENT_ID_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentKind {
    Fragment,
    Experience,
    ChannelPost,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fragment => "fragment",
            Self::Experience => "experience",
            Self::ChannelPost => "channel_post",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "fragment" => Some(Self::Fragment),
            "experience" => Some(Self::Experience),
            "channel_post" => Some(Self::ChannelPost),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentRef {
    pub kind: ContentKind,
    /// A UUID for fragments and experiences, the channel's own id for posts.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionReward {
    pub content: ContentRef,
    pub reaction: String,
    pub besitos: i64,
    pub active: bool,
}

impl ReactionReward {
    /// What the reward pays a new reaction.
    pub fn pays(reward: Option<&ReactionReward>) -> i64 {
        reward.filter(|r| r.active).map_or(0, |r| r.besitos)
    }
}
