//! The level curve: the XP each level starts at (seed 001's `min_level` requirements).
//!
//! XP is not kept here: it is a balance in the ledger (each user's XP account). A level is a
//! reading of that balance against this curve. A curve numbers its levels 1, 2, 3, … without
//! gaps, level 1 starts at 0 XP (every user is at least level 1) and each next level needs
//! strictly more XP, so every balance reaches exactly one level.

use serde::{Deserialize, Serialize};

/// Most levels a curve may have.
pub const MAX_LEVELS: usize = 100;
/// Longest level name, in characters.
pub const MAX_LEVEL_NAME_CHARS: usize = 200;

/// One step of the curve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub level: i32,
    pub min_xp: i64,
    pub name: String,
}

/// What is wrong with one level of a proposed curve: its index, a reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveViolation {
    pub index: usize,
    pub field: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// Every rule a curve breaks, level by level (empty: a valid curve).
pub fn curve_violations(levels: &[Level]) -> Vec<CurveViolation> {
    let mut found = Vec::new();
    for (index, level) in levels.iter().enumerate() {
        let expected = i32::try_from(index + 1).unwrap_or(i32::MAX);
        if level.level != expected {
            found.push(CurveViolation {
                index,
                field: "level",
                reason: "LEVELS_NOT_CONSECUTIVE",
                message: format!("must be {expected}: levels are numbered 1, 2, 3, … in order"),
            });
        }
        if index == 0 && level.min_xp != 0 {
            found.push(CurveViolation {
                index,
                field: "min_xp",
                reason: "FIRST_LEVEL_NOT_ZERO",
                message: "the first level starts at 0 XP".to_owned(),
            });
        }
        if level.min_xp < 0 {
            found.push(CurveViolation {
                index,
                field: "min_xp",
                reason: "NEGATIVE_XP",
                message: "must be 0 or more".to_owned(),
            });
        } else if let Some(previous) = index.checked_sub(1).map(|i| &levels[i])
            && level.min_xp <= previous.min_xp
        {
            found.push(CurveViolation {
                index,
                field: "min_xp",
                reason: "XP_NOT_INCREASING",
                message: format!(
                    "must be more than the previous level's {} XP",
                    previous.min_xp
                ),
            });
        }
        if level.name.chars().count() > MAX_LEVEL_NAME_CHARS {
            found.push(CurveViolation {
                index,
                field: "name",
                reason: "TOO_LONG",
                message: format!("at most {MAX_LEVEL_NAME_CHARS} characters"),
            });
        }
    }
    found
}

/// The level `xp` reaches on a valid curve and the one after it (None at the top). A negative
/// balance (a ledger account that may go below zero) reads as 0.
pub fn resolve(curve: &[Level], xp: i64) -> Option<(&Level, Option<&Level>)> {
    let reached = curve.iter().rposition(|level| level.min_xp <= xp.max(0))?;
    Some((&curve[reached], curve.get(reached + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(xps: &[i64]) -> Vec<Level> {
        xps.iter()
            .enumerate()
            .map(|(i, &min_xp)| Level {
                level: i32::try_from(i + 1).unwrap(),
                min_xp,
                name: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_balance_reaches_the_highest_level_it_covers() {
        let levels = curve(&[0, 100, 300]);
        assert_eq!(resolve(&levels, 0).unwrap().0.level, 1);
        assert_eq!(resolve(&levels, 99).unwrap().0.level, 1);
        assert_eq!(resolve(&levels, 100).unwrap().0.level, 2);
        let (top, next) = resolve(&levels, 10_000).unwrap();
        assert_eq!((top.level, next), (3, None));
        assert_eq!(resolve(&levels, 150).unwrap().1.unwrap().min_xp, 300);
        assert_eq!(resolve(&levels, -5).unwrap().0.level, 1);
    }

    #[test]
    fn a_curve_is_numbered_from_one_and_increasing() {
        assert!(curve_violations(&curve(&[0, 10, 20])).is_empty());
        let reasons = |levels: &[Level]| {
            curve_violations(levels)
                .into_iter()
                .map(|v| (v.index, v.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(reasons(&curve(&[5, 10])), [(0, "FIRST_LEVEL_NOT_ZERO")]);
        assert_eq!(reasons(&curve(&[0, 10, 10])), [(2, "XP_NOT_INCREASING")]);
        let mut gap = curve(&[0, 10]);
        gap[1].level = 3;
        assert_eq!(reasons(&gap), [(1, "LEVELS_NOT_CONSECUTIVE")]);
    }
}
