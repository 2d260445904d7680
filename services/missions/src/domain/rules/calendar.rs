//! Days and weeks in a board's time zone: when a local date starts and ends (23- or 25-hour
//! days, midnights a DST change skips), its week's Monday, and the first date of a run not
//! closed yet.

use super::*;

/// The local date of `at` in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The instant local `date` starts in `tz` (the first existing local instant when midnight is
/// skipped by a DST change).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(start) => start.with_timezone(&Utc),
        // Clocks went back across midnight: the day starts at the first of the two midnights.
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, midnight),
    }
}

/// The first instant whose local time in `tz` is at or past `local`, for a `local` that falls in
/// a gap (e.g. America/Santiago and Asia/Beirut move their clocks forward at midnight, and
/// Pacific/Apia skipped 2011-12-30 altogether): that is the transition instant, which chrono
/// does not expose, so it is found by bisection over whole seconds (transitions are on whole
/// seconds). Local time grows with the instant around a forward jump, and offsets stay within a
/// day, so the transition lies within a day either side of `local` read as UTC.
pub(super) fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const DAY_SECONDS: i64 = 24 * 60 * 60;
    // Board dates are those of a clock within the years 1 to 9999, far inside chrono's range
    // (±262,000 years); saturating at its ends keeps this total.
    let instant = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    };
    let reached = |seconds: i64| instant(seconds).with_timezone(&tz).naive_local() >= local;
    let mut before = local.and_utc().timestamp() - DAY_SECONDS;
    let mut reached_at = local.and_utc().timestamp() + DAY_SECONDS;
    while reached_at - before > 1 {
        let middle = before + (reached_at - before) / 2;
        if reached(middle) {
            reached_at = middle;
        } else {
            before = middle;
        }
    }
    instant(reached_at)
}

/// The day after `date`. Board dates are nowhere near the end of chrono's calendar (year
/// 262,143); there it stays put, which ends every loop over dates, since no day ends there.
pub(super) fn next_date(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}

/// The instant local `date` ends in `tz`, i.e. the next day's start (23 or 25 hours after the
/// start on DST days).
pub(super) fn end_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    start_of_day(tz, next_date(date))
}

/// The Monday of `date`'s week (weeks run Monday to Sunday).
pub(super) fn week_start(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

/// When the local week of `now` ends in `tz`: next Monday 00:00 local.
pub(super) fn next_week_start(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    start_of_day(tz, week_start(local_date(tz, now)) + Days::new(7))
}

/// When the board's current local day ends, i.e. when the next day close is due.
pub fn next_day_close_at(board: &Board, now: DateTime<Utc>) -> DateTime<Utc> {
    end_of_day(board.time_zone, local_date(board.time_zone, now))
}

/// The first local date of `run` that is not closed yet: the day after the last closed one, or
/// the run's start date. Closed dates only move forward, whatever the zone or its offset does,
/// which is what keeps a date from being closed twice; the start date is the one of the zone the
/// run started in, so a move west on the first day adds no earlier date.
pub(super) fn first_open_date(tz: Tz, run: &Run) -> NaiveDate {
    match run.last_closed_date() {
        Some(closed) => next_date(closed),
        None => run
            .start_date
            .unwrap_or_else(|| local_date(tz, run.selected_at)),
    }
}
