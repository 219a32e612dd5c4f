//! Time grounding: find the time expressions in one turn's text and resolve each to absolute
//! dates against the turn's OWN local date (never the wall clock), so "yesterday" said on
//! 8 May 2023 is always 7 May 2023 no matter when the turn is processed.
//!
//! Everything is a pure function. Matching is case-insensitive and whole-word only ("this",
//! "high" and "history" never match anything); overlapping candidates are settled longest-first.

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, Utc};
use regex::{Captures, Regex};
use std::sync::LazyLock;

/// How precise a resolution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Weekend,
    Month,
    Year,
}

/// An absolute date range: `start ..= end` (both inclusive; `start == end` for one day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub granularity: Granularity,
}

/// One time expression found in a text.
///
/// `start..end` are byte offsets of `phrase` in the text (always on char boundaries, so
/// `&text[start..end] == phrase`). `label` is the resolution written out; it always contains
/// a date as "7 May 2023", "May 2023" or "2023".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeMention {
    pub start: usize,
    pub end: usize,
    pub phrase: String,
    pub resolved: Resolved,
    pub label: String,
}

impl TimeMention {
    /// True when the phrase needs the reference date to mean anything ("yesterday", "in May",
    /// "May 7th"); false for phrases that carry their own year ("7 May 2023", "2022").
    pub fn is_relative(&self) -> bool {
        !self
            .phrase
            .as_bytes()
            .windows(4)
            .any(|w| w.iter().all(u8::is_ascii_digit))
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const NUM_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];
const MONTH_ALT: &str =
    "january|february|march|april|may|june|july|august|september|october|november|december";
const NUM: &str = r"(\d{1,3}|a\s+couple\s+of|a\s+couple|a\s+few|couple\s+of|few|several|an|a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("time.rs: static regex must compile")
}

static DAY_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(the\s+day\s+before\s+yesterday|the\s+day\s+after\s+tomorrow|the\s+other\s+day|yesterday|last\s+night|today|tonight|tomorrow|this\s+(?:morning|afternoon|evening))\b",
    )
});
static PERIOD_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(last|this\s+past|the\s+past|past|this|next|earlier\s+this|later\s+this)\s+(week|weekend|month|year)\b",
    )
});
static BEFORE_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bthe\s+(week|weekend)\s+before(\s+last)?\b"));
static WEEKDAY_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:(last|this\s+past|past|this|next|on|to|until|till|by|for)\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|\b(last|next)\s+(mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\b",
    )
});
static COUNT_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?:(in)\s+)?{NUM}\s+(day|week|weekend|month|year|fortnight)s?(?:\s+(ago|since|from\s+(?:today|now)))?\b"
    ))
});
static MONTH_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?:(in|last|this|next|of|since|until|till|by|during|from|early|late|mid|before|after)\s+)?(?:the\s+)?(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?)?({MONTH_ALT})\b(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?\b)?(?:,?\s+(\d{{4}})\b)?"
    ))
});
static ISO_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{2})-(\d{2})\b"));
static YEAR_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b((?:19|20)\d{2})\b"));
static WORD_RE: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Za-z'’]+"));
static QUESTION_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(when|(?:what|which)\s+(?:date|year|month|day|time|week|weekend)|how\s+long|ago|since\s+when|how\s+many\s+(?:days|weeks|months|years)|january|february|march|april|june|july|august|september|october|november|december)\b",
    )
});

const FUTURE_CUES: [&str; 19] = [
    "can",
    "can't",
    "cannot",
    "will",
    "shall",
    "gonna",
    "going",
    "plan",
    "plans",
    "planning",
    "hope",
    "hoping",
    "hopefully",
    "intend",
    "upcoming",
    "soon",
    "tomorrow",
    "forward",
    "until",
];
const PAST_CUES: [&str; 30] = [
    "was",
    "were",
    "did",
    "had",
    "went",
    "ago",
    "yesterday",
    "got",
    "came",
    "took",
    "saw",
    "met",
    "made",
    "gave",
    "told",
    "said",
    "felt",
    "ran",
    "began",
    "won",
    "lost",
    "bought",
    "left",
    "spent",
    "found",
    "thought",
    "heard",
    "wrote",
    "sent",
    "since",
];

/// A candidate before overlap resolution.
struct Cand {
    start: usize,
    end: usize,
    resolved: Resolved,
    label: String,
}

/// Formats one day as "7 May 2023": day without leading zero, full English month, year.
pub fn format_day(d: NaiveDate) -> String {
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

fn month_label(y: i32, m: u32) -> String {
    format!("{} {}", MONTHS[(m as usize).saturating_sub(1) % 12], y)
}

fn add_days(d: NaiveDate, n: i64) -> Option<NaiveDate> {
    if n >= 0 {
        d.checked_add_days(Days::new(n.unsigned_abs()))
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs()))
    }
}

/// (year, month 1..=12) of `d`'s month shifted by `n` months.
fn add_months(d: NaiveDate, n: i64) -> Option<(i32, u32)> {
    let t = i64::from(d.year()) * 12 + i64::from(d.month0()) + n;
    Some((
        i32::try_from(t.div_euclid(12)).ok()?,
        u32::try_from(t.rem_euclid(12)).ok()? + 1,
    ))
}

fn month_range(y: i32, m: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    Some((first, next.pred_opt()?))
}

fn monday(d: NaiveDate) -> Option<NaiveDate> {
    add_days(d, -i64::from(d.weekday().num_days_from_monday()))
}

/// Most recent `weekday` (0 = Monday) strictly before `r`.
fn last_weekday(r: NaiveDate, weekday: u32) -> Option<NaiveDate> {
    let back = (r.weekday().num_days_from_monday() + 7 - weekday) % 7;
    add_days(r, -i64::from(if back == 0 { 7 } else { back }))
}

/// First `weekday` (0 = Monday) strictly after `r`.
fn next_weekday(r: NaiveDate, weekday: u32) -> Option<NaiveDate> {
    let fwd = (weekday + 7 - r.weekday().num_days_from_monday()) % 7;
    add_days(r, i64::from(if fwd == 0 { 7 } else { fwd }))
}

/// Saturday of the latest weekend that ended before `r` (a Sunday `r` is still "this weekend").
fn last_weekend(r: NaiveDate) -> Option<NaiveDate> {
    let sat = last_weekday(r, 5)?;
    if add_days(sat, 1)? < r {
        Some(sat)
    } else {
        add_days(sat, -7)
    }
}

fn cand(
    start: usize,
    end: usize,
    s: NaiveDate,
    e: NaiveDate,
    g: Granularity,
    label: String,
) -> Option<Cand> {
    Some(Cand {
        start,
        end,
        resolved: Resolved {
            start: s.min(e),
            end: s.max(e),
            granularity: g,
        },
        label,
    })
}

fn day(start: usize, end: usize, d: NaiveDate) -> Option<Cand> {
    cand(start, end, d, d, Granularity::Day, format_day(d))
}

fn month(start: usize, end: usize, (y, m): (i32, u32)) -> Option<Cand> {
    let (s, e) = month_range(y, m)?;
    cand(start, end, s, e, Granularity::Month, month_label(y, m))
}

fn year(start: usize, end: usize, y: i32) -> Option<Cand> {
    cand(
        start,
        end,
        NaiveDate::from_ymd_opt(y, 1, 1)?,
        NaiveDate::from_ymd_opt(y, 12, 31)?,
        Granularity::Year,
        y.to_string(),
    )
}

fn weekend(start: usize, end: usize, sat: NaiveDate) -> Option<Cand> {
    cand(
        start,
        end,
        sat,
        add_days(sat, 1)?,
        Granularity::Weekend,
        format!("the weekend of {}", format_day(sat)),
    )
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn month_index(name: &str) -> Option<u32> {
    let lower = name.to_lowercase();
    MONTHS
        .iter()
        .position(|m| m.to_lowercase() == lower)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// The tense of the clause around `start..end`: `Some(true)` future, `Some(false)` past, from
/// the nearest cue word before the phrase in the same sentence, else the nearest after it;
/// `None` when there is none or it is present tense ("my birthday is on July 20th").
fn tense(text: &str, start: usize, end: usize) -> Option<bool> {
    match clause_tense(text, start, end) {
        Tense::Future => Some(true),
        Tense::Past => Some(false),
        Tense::Present | Tense::Unknown => None,
    }
}

/// What [`clause_tense`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tense {
    Future,
    Past,
    /// A present verb ("is", "are", "'s") is the nearest cue: a scheduled event when it
    /// governs a day ("the trip is on Wednesday").
    Present,
    Unknown,
}

/// The tense of the clause around `start..end`, from the nearest cue word before the phrase
/// in the same sentence, else the nearest after it.
fn clause_tense(text: &str, start: usize, end: usize) -> Tense {
    let stops = ['.', '!', '?', ';', '\n'];
    let s = text[..start].rfind(stops).map_or(0, |i| i + 1);
    let e = text[end..].find(stops).map_or(text.len(), |i| end + i);
    let (mut before, mut after) = (None, None);
    let mut prev = String::new();
    for w in WORD_RE.find_iter(&text[s..e]) {
        let (ws, we) = (s + w.start(), s + w.end());
        let lw = w.as_str().to_lowercase().replace('’', "'");
        let prior = std::mem::replace(&mut prev, lw.clone());
        let cue = if lw == "got" && got_is_having(&prior, text, we, start) {
            Tense::Present
        } else if FUTURE_CUES.contains(&lw.as_str()) || lw.ends_with("'ll") {
            Tense::Future
        } else if PAST_CUES.contains(&lw.as_str())
            || (lw.len() >= 5
                && lw.ends_with("ed")
                && !super::clause::NOT_PAST_ED.contains(&lw.as_str()))
        {
            Tense::Past
        } else if ["is", "are", "am"].contains(&lw.as_str())
            || lw.ends_with("'re")
            || lw.ends_with("'m")
        {
            Tense::Present
        } else {
            continue;
        };
        if we <= start {
            before = Some(cue); // the last one before the phrase is the nearest
        } else if ws >= end && after.is_none() {
            after = Some(cue);
        }
    }
    before.or(after).unwrap_or(Tense::Unknown)
}

/// Planned events one "has got" on a day ("got the dentist appointment on Friday").
#[rustfmt::skip]
const PLANNED: &[&str] = &[
    "appointment", "appt", "fitting", "interview", "exam", "meeting", "session", "class",
    "lesson", "checkup", "check-up", "viewing", "date", "dinner", "party", "game", "match",
    "shift", "surgery", "scan", "hearing", "concert", "gig", "flight", "rehearsal", "recital",
    "presentation", "deadline", "practice", "training", "call", "consultation", "audition",
    "test", "haircut", "massage", "workout",
];

/// "got" means "have" rather than a past "received": after "have"/"has" ("I've got a
/// meeting on Monday", "she's got the audition Friday"), or with a planned event naming the
/// day right before the phrase at `start` ("got the suit fitting on Thursday"; not "got the
/// results on Thursday").
fn got_is_having(prior: &str, text: &str, got_end: usize, start: usize) -> bool {
    if matches!(prior, "have" | "has" | "ve") || prior.ends_with("'ve") || prior.ends_with("'s") {
        return true;
    }
    if start < got_end {
        return false;
    }
    let between: Vec<String> = WORD_RE
        .find_iter(&text[got_end..start])
        .map(|w| w.as_str().to_lowercase())
        .collect();
    let mut last = between.iter().rev().map(String::as_str);
    let head = match last.next() {
        Some("on" | "for" | "this" | "next") => last.next(),
        other => other,
    };
    between.len() <= 6 && head.is_some_and(|h| PLANNED.contains(&h))
}

/// Verbs that move a planned event to a new day: the day after "to"/"until" is the new
/// date, which lies ahead even when the verb is in the past ("they moved it to Tuesday").
const RESCHEDULE: [&str; 12] = [
    "move",
    "moved",
    "push",
    "pushed",
    "postpone",
    "postponed",
    "reschedule",
    "rescheduled",
    "shift",
    "shifted",
    "bump",
    "bumped",
];

/// The sentence around `start..end` has a verb in the past ("threw", "moved", "was").
fn sentence_is_past(text: &str, start: usize, end: usize) -> bool {
    let stops = ['.', '!', '?', ';', '\n'];
    let s = text[..start].rfind(stops).map_or(0, |i| i + 1);
    let e = text[end..].find(stops).map_or(text.len(), |i| end + i);
    WORD_RE.find_iter(&text[s..e]).any(|w| {
        let lw = w.as_str().to_lowercase();
        PAST_CUES.contains(&lw.as_str()) || super::clause::is_past_form(&lw)
    })
}

/// The sentence before `start` has a verb of [`RESCHEDULE`].
fn moves_a_plan(text: &str, start: usize) -> bool {
    let s = text[..start]
        .rfind(['.', '!', '?', ';', '\n'])
        .map_or(0, |i| i + 1);
    WORD_RE
        .find_iter(&text[s..start])
        .any(|w| RESCHEDULE.contains(&w.as_str().to_lowercase().as_str()))
}

fn day_cand(c: &Captures, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let (s, e) = (m.start(), m.end());
    let offset = match norm(m.as_str()).as_str() {
        "the day before yesterday" => -2,
        "yesterday" | "last night" => -1,
        "tomorrow" => 1,
        "the day after tomorrow" => 2,
        "the other day" => {
            return cand(
                s,
                e,
                add_days(r, -7)?,
                add_days(r, -1)?,
                Granularity::Week,
                format!("a few days before {}", format_day(r)),
            );
        }
        _ => 0,
    };
    day(s, e, add_days(r, offset)?)
}

fn period_cand(c: &Captures, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let (s, e) = (m.start(), m.end());
    let which = match norm(c.get(1)?.as_str()).as_str() {
        "this past" | "the past" | "past" => "last".to_string(),
        other => other.to_string(),
    };
    let (mon, sun) = (monday(r)?, add_days(monday(r)?, 6)?);
    match (which.as_str(), norm(c.get(2)?.as_str()).as_str()) {
        ("last", "week") => week_before(s, e, r, 1),
        ("this", "week") => cand(
            s,
            e,
            mon,
            sun,
            Granularity::Week,
            // The week containing the turn, named by the turn's own date.
            format!("the week of {}", format_day(r)),
        ),
        ("next", "week") => cand(
            s,
            e,
            add_days(r, 1)?,
            add_days(mon, 13)?,
            Granularity::Week,
            format!(
                "the week after {}, around {}",
                format_day(r),
                format_day(add_days(r, 7)?)
            ),
        ),
        ("earlier this", "week") => cand(
            s,
            e,
            mon,
            add_days(r, -1)?.max(mon),
            Granularity::Week,
            format!("earlier in the week of {}", format_day(mon)),
        ),
        ("later this", "week") => cand(
            s,
            e,
            add_days(r, 1)?.min(sun),
            sun,
            Granularity::Week,
            format!("later in the week of {}", format_day(mon)),
        ),
        ("last", "weekend") => weekend(s, e, last_weekend(r)?),
        ("next", "weekend") => weekend(s, e, next_weekday(r, 5)?),
        (_, "weekend") => weekend(s, e, add_days(mon, 5)?),
        ("last", "month") => month(s, e, add_months(r, -1)?),
        ("next", "month") => month(s, e, add_months(r, 1)?),
        (_, "month") => {
            let (first, last) = month_range(r.year(), r.month())?;
            let label = month_label(r.year(), r.month());
            match which.as_str() {
                "earlier this" => cand(
                    s,
                    e,
                    first,
                    add_days(r, -1)?.max(first),
                    Granularity::Month,
                    format!("earlier in {label}"),
                ),
                "later this" => cand(
                    s,
                    e,
                    add_days(r, 1)?.min(last),
                    last,
                    Granularity::Month,
                    format!("later in {label}"),
                ),
                _ => month(s, e, (r.year(), r.month())),
            }
        }
        ("last", _) => year(s, e, r.year().checked_sub(1)?),
        ("next", _) => year(s, e, r.year().checked_add(1)?),
        ("earlier this", _) => {
            let first = NaiveDate::from_ymd_opt(r.year(), 1, 1)?;
            cand(
                s,
                e,
                first,
                add_days(r, -1)?.max(first),
                Granularity::Year,
                format!("earlier in {}", r.year()),
            )
        }
        ("later this", _) => {
            let last = NaiveDate::from_ymd_opt(r.year(), 12, 31)?;
            cand(
                s,
                e,
                add_days(r, 1)?.min(last),
                last,
                Granularity::Year,
                format!("later in {}", r.year()),
            )
        }
        _ => year(s, e, r.year()),
    }
}

/// "last week" / "the week before" (n = 1), "the week before last" (n = 2): the calendar week
/// `n` weeks back from its Monday up to the day before the reference.
fn week_before(s: usize, e: usize, r: NaiveDate, n: i64) -> Option<Cand> {
    let around = add_days(r, -7 * n)?;
    let what = if n == 1 {
        "the week".to_string()
    } else {
        format!("{} weeks", count_word(n))
    };
    cand(
        s,
        e,
        monday(around)?,
        add_days(r, -1)?,
        Granularity::Week,
        format!(
            "{what} before {}, around {}",
            format_day(r),
            format_day(around)
        ),
    )
}

fn count_word(n: i64) -> String {
    usize::try_from(n)
        .ok()
        .and_then(|i| NUM_WORDS.get(i))
        .map_or_else(|| n.to_string(), |w| (*w).to_string())
}

fn before_cand(c: &Captures, text: &str, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let twice = c.get(2).is_some();
    // "the week before the wedding" is relative to an event, not to the turn: only a bare
    // "the week before" (end of clause) or "the week before last" counts.
    if !twice
        && !text[m.end()..]
            .trim_start()
            .chars()
            .next()
            .is_none_or(|ch| ".,;:!?)\"'".contains(ch))
    {
        return None;
    }
    let n = if twice { 2 } else { 1 };
    if norm(c.get(1)?.as_str()) == "week" {
        week_before(m.start(), m.end(), r, n)
    } else {
        weekend(
            m.start(),
            m.end(),
            add_days(last_weekend(r)?, -7 * (n - 1))?,
        )
    }
}

fn weekday_cand(c: &Captures, text: &str, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let names = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    // Full names (groups 1, 2), or abbreviations after last/next (groups 3, 4: "last Fri").
    let (which, name) = match c.get(2) {
        Some(n) => (c.get(1).map_or("", |w| w.as_str()), n),
        None => (c.get(3)?.as_str(), c.get(4)?),
    };
    // A bare weekday ("can do Thursday", "Monday is my first day") needs a tense in its
    // clause to say which one it is; alone ("Monday") it is no date.
    if which.is_empty() && clause_tense(text, m.start(), m.end()) == Tense::Unknown {
        return None;
    }
    let name = name.as_str().to_lowercase();
    let wd = u32::try_from(names.iter().position(|n| n.starts_with(&name[..3]))?).ok()?;
    // A bare weekday ("on Friday", "Thursday instead") follows the clause's tense: forward
    // for the future and for a present ("we're driving up on Friday", "the party is on
    // Monday": a scheduled event), back when the sentence speaks of the past.
    let d = match norm(which).as_str() {
        "last" | "this past" | "past" => last_weekday(r, wd)?,
        "next" => next_weekday(r, wd)?,
        "this" => add_days(monday(r)?, i64::from(wd))?,
        "to" | "until" | "till" if moves_a_plan(text, m.start()) => next_weekday(r, wd)?,
        _ => match clause_tense(text, m.start(), m.end()) {
            Tense::Future | Tense::Present => next_weekday(r, wd)?,
            Tense::Past => last_weekday(r, wd)?,
            Tense::Unknown if sentence_is_past(text, m.start(), m.end()) => last_weekday(r, wd)?,
            Tense::Unknown => next_weekday(r, wd)?,
        },
    };
    day(m.start(), m.end(), d)
}

fn count_cand(c: &Captures, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let (s, e) = (m.start(), m.end());
    let after = c
        .get(4)
        .map(|g| g.as_str().to_lowercase())
        .filter(|g| g.starts_with("from"));
    let future = c.get(1).is_some() || after.is_some();
    if c.get(1).is_some() == c.get(4).is_some() {
        return None; // needs exactly one of "in …" (future), "… from today" or "… ago" (past)
    }
    let qty = norm(c.get(2)?.as_str());
    let (n, vague): (i64, bool) = match qty.as_str() {
        "a" | "an" => (1, false),
        "a couple of" | "a couple" | "couple of" => (2, true),
        "a few" | "few" | "several" => (3, true),
        w => match NUM_WORDS.iter().position(|x| *x == w) {
            Some(i) => (i64::try_from(i).ok()?, false),
            None => (w.parse().ok()?, false),
        },
    };
    let sign = if future { 1 } else { -1 };
    let unit = norm(c.get(3)?.as_str());
    match unit.as_str() {
        "day" if vague => {
            let center = add_days(r, sign * n)?;
            cand(
                s,
                e,
                add_days(center, -1)?,
                add_days(center, 1)?,
                Granularity::Day,
                format!("around {}", format_day(center)),
            )
        }
        "day" => day(s, e, add_days(r, sign * n)?),
        // "in a fortnight", "two weeks from today": counted days, exact.
        "fortnight" => day(s, e, add_days(r, sign * 14 * n)?),
        "week" if after.is_some() => day(s, e, add_days(r, 7 * n)?),
        "week" if !future && !vague && n >= 1 => week_before(s, e, r, n),
        "week" => {
            let center = add_days(r, sign * 7 * n)?;
            let what = if vague {
                format!("{qty} weeks")
            } else if n == 1 {
                "a week".into()
            } else {
                format!("{} weeks", count_word(n))
            };
            let dir = if future { "after" } else { "before" };
            cand(
                s,
                e,
                add_days(center, -3)?,
                add_days(center, 3)?,
                Granularity::Week,
                format!(
                    "{what} {dir} {}, around {}",
                    format_day(r),
                    format_day(center)
                ),
            )
        }
        "weekend" if n >= 1 => {
            let base = if future {
                next_weekday(r, 5)?
            } else {
                last_weekend(r)?
            };
            weekend(s, e, add_days(base, sign * 7 * (n - 1))?)
        }
        "month" if vague => {
            let (y, mo) = add_months(r, sign * n)?;
            let center = NaiveDate::from_ymd_opt(y, mo, 1)?;
            let (first, _) = month_range(add_months(center, -1)?.0, add_months(center, -1)?.1)?;
            let (_, last) = month_range(add_months(center, 1)?.0, add_months(center, 1)?.1)?;
            cand(
                s,
                e,
                first,
                last,
                Granularity::Month,
                format!("around {}", month_label(y, mo)),
            )
        }
        "month" => month(s, e, add_months(r, sign * n)?),
        "year" => {
            let y = i32::try_from(i64::from(r.year()) + sign * n).ok()?;
            if !vague {
                return year(s, e, y);
            }
            cand(
                s,
                e,
                NaiveDate::from_ymd_opt(y - 1, 1, 1)?,
                NaiveDate::from_ymd_opt(y + 1, 12, 31)?,
                Granularity::Year,
                format!("around {y}"),
            )
        }
        _ => None,
    }
}

fn month_cand(c: &Captures, text: &str, r: NaiveDate) -> Option<Cand> {
    let m = c.get(0)?;
    let name = c.get(3)?;
    let mo = month_index(name.as_str())?;
    let prep = c.get(1).map(|p| p.as_str().to_lowercase());
    let dom = match c.get(2).or(c.get(4)) {
        Some(d) => Some(d.as_str().parse::<u32>().ok()?),
        None => None,
    };
    let yr = match c.get(5) {
        Some(y) => Some(y.as_str().parse::<i32>().ok()?),
        None => None,
    };
    // The phrase starts after the preposition, except for "in/last/this/next May" where the
    // preposition decides the year.
    let body = c.get(1).map_or(m.start(), |p| {
        p.end() + (text[p.end()..].len() - text[p.end()..].trim_start().len())
    });
    let keeps_prep = dom.is_none()
        && yr.is_none()
        && matches!(prep.as_deref(), Some("in" | "last" | "this" | "next"));
    let (s, e) = (if keeps_prep { m.start() } else { body }, m.end());
    if dom.is_none()
        && yr.is_none()
        && (prep.is_none() || (mo == 5 && !name.as_str().starts_with('M')))
    {
        return None; // a bare month name, or "may" the modal verb ("this may be hard")
    }
    let future = tense(text, s, e);
    match (dom, yr) {
        // An impossible day ("31 February 2023") still names its month.
        (Some(d), Some(y)) => {
            NaiveDate::from_ymd_opt(y, mo, d).map_or_else(|| month(s, e, (y, mo)), |x| day(s, e, x))
        }
        (None, Some(y)) => month(s, e, (y, mo)),
        (Some(d), None) => {
            let options = [r.year() - 1, r.year(), r.year() + 1]
                .into_iter()
                .filter_map(|y| NaiveDate::from_ymd_opt(y, mo, d));
            let pick = match future {
                Some(true) => options.filter(|x| *x >= r).min(),
                Some(false) => options.filter(|x| *x <= r).max(),
                None => options.min_by_key(|x| (*x - r).num_days().abs()),
            };
            day(s, e, pick?)
        }
        (None, None) => {
            let rm = r.month();
            let y = match prep.as_deref() {
                Some("this") => r.year(),
                Some("last") => {
                    if mo < rm {
                        r.year()
                    } else {
                        r.year() - 1
                    }
                }
                Some("next") => {
                    if mo > rm {
                        r.year()
                    } else {
                        r.year() + 1
                    }
                }
                _ => {
                    let (back, fwd) = ((rm + 12 - mo) % 12, (mo + 12 - rm) % 12);
                    let go_future = future.unwrap_or(fwd < back);
                    if go_future {
                        if mo >= rm { r.year() } else { r.year() + 1 }
                    } else if mo <= rm {
                        r.year()
                    } else {
                        r.year() - 1
                    }
                }
            };
            month(s, e, (y, mo))
        }
    }
}

fn year_cand(c: &Captures, text: &str) -> Option<Cand> {
    let m = c.get(1)?;
    let before = text[..m.start()].chars().next_back();
    let after = &text[m.end()..];
    let numeric_tail = after.len() > 1
        && (after.starts_with(['.', ','])
            && after[1..].starts_with(|ch: char| ch.is_ascii_digit()));
    if before.is_some_and(|ch| "$€£#.,:/".contains(ch))
        || after.starts_with(['%', ':', '/'])
        || numeric_tail
    {
        return None; // amounts, times, decimals: "$2000", "2000%", "1.2000", "2,000"
    }
    year(m.start(), m.end(), m.as_str().parse().ok()?)
}

fn iso_cand(c: &Captures) -> Option<Cand> {
    let m = c.get(0)?;
    let (y, mo, d) = (
        c.get(1)?.as_str().parse().ok()?,
        c.get(2)?.as_str().parse().ok()?,
        c.get(3)?.as_str().parse().ok()?,
    );
    day(m.start(), m.end(), NaiveDate::from_ymd_opt(y, mo, d)?)
}

/// Every time expression in `text`, resolved against `reference` (the turn's local date),
/// non-overlapping, in text order.
///
/// Relative: today/tonight/this morning|afternoon|evening, (the day before) yesterday, last
/// night, (the day after) tomorrow, the other day, last/this/next <weekday>, "on <weekday>"
/// (past unless the sentence reads as future), last/this/next/earlier this/later this
/// week|weekend|month|year, the week|weekend before (last), "N days|weeks|weekends|months|years
/// ago", "in N …", month names after in/last/this/next/of/since/… and days without a year
/// ("May 7th"). Absolute: "7 May 2023", "May 7, 2023", "May 2023", "2022", "2023-05-07".
/// Not dates: "recently", "lately", "a while ago", a bare month name ("June was fun"), and
/// "may" the modal verb. An impossible day keeps its month ("31 February 2023" → February
/// 2023); without a year ("February 30") it is dropped.
pub fn find_mentions(text: &str, reference: NaiveDate) -> Vec<TimeMention> {
    let r = reference;
    let mut cands: Vec<Cand> = Vec::new();
    cands.extend(DAY_RE.captures_iter(text).filter_map(|c| day_cand(&c, r)));
    cands.extend(
        PERIOD_RE
            .captures_iter(text)
            .filter_map(|c| period_cand(&c, r)),
    );
    cands.extend(
        BEFORE_RE
            .captures_iter(text)
            .filter_map(|c| before_cand(&c, text, r)),
    );
    cands.extend(
        WEEKDAY_RE
            .captures_iter(text)
            .filter_map(|c| weekday_cand(&c, text, r)),
    );
    cands.extend(
        COUNT_RE
            .captures_iter(text)
            .filter_map(|c| count_cand(&c, r)),
    );
    cands.extend(
        MONTH_RE
            .captures_iter(text)
            .filter_map(|c| month_cand(&c, text, r)),
    );
    cands.extend(ISO_RE.captures_iter(text).filter_map(|c| iso_cand(&c)));
    cands.extend(
        YEAR_RE
            .captures_iter(text)
            .filter_map(|c| year_cand(&c, text)),
    );
    cands.sort_by_key(|c| (std::cmp::Reverse(c.end - c.start), c.start));
    let mut taken: Vec<Cand> = Vec::new();
    for c in cands {
        if taken.iter().all(|t| c.end <= t.start || c.start >= t.end) {
            taken.push(c);
        }
    }
    taken.sort_by_key(|c| c.start);
    taken
        .into_iter()
        .filter_map(|c| {
            let phrase = text.get(c.start..c.end)?.to_string();
            Some(TimeMention {
                start: c.start,
                end: c.end,
                phrase,
                resolved: c.resolved,
                label: c.label,
            })
        })
        .collect()
}

/// `text` with " (LABEL)" inserted right after each relative mention (see
/// [`TimeMention::is_relative`]), plus all mentions (offsets refer to the ORIGINAL text).
/// Idempotent: a mention already followed by its own " (LABEL)" is left as is.
pub fn ground(text: &str, reference: NaiveDate) -> (String, Vec<TimeMention>) {
    let mentions = find_mentions(text, reference);
    let mut out = String::with_capacity(text.len() + 32 * mentions.len());
    let mut copied = 0;
    for m in mentions.iter().filter(|m| m.is_relative()) {
        let insert = format!(" ({})", m.label);
        if text[m.end..].starts_with(&insert) {
            continue;
        }
        out.push_str(&text[copied..m.end]);
        out.push_str(&insert);
        copied = m.end;
    }
    out.push_str(&text[copied..]);
    (out, mentions)
}

/// Converts a UTC instant to the user's local time. `tz`: an IANA name ("Pacific/Kiritimati",
/// "America/New_York") or a UTC offset ("+14:00", "-10:00", "+0530", "+5", "UTC+02:00", "UTC",
/// "Z", "GMT"); `None` or a blank string → UTC. Offsets beyond ±14:00 and unknown names →
/// `Err` naming the value.
pub fn to_local(ts: DateTime<Utc>, tz: Option<&str>) -> Result<DateTime<FixedOffset>, String> {
    let Some(raw) = tz else {
        return Ok(ts.fixed_offset());
    };
    let name = raw.trim();
    if name.is_empty() {
        return Ok(ts.fixed_offset());
    }
    if let Some(offset) = parse_offset(name) {
        return Ok(ts.with_timezone(&offset));
    }
    name.parse::<chrono_tz::Tz>()
        .map(|zone| ts.with_timezone(&zone).fixed_offset())
        .map_err(|_| format!("unknown time zone {raw:?}: expected an IANA name such as \"America/New_York\" or an offset such as \"+05:30\""))
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let u = s.to_ascii_uppercase();
    if matches!(u.as_str(), "UTC" | "Z" | "GMT") {
        return FixedOffset::east_opt(0);
    }
    let rest = u
        .strip_prefix("UTC")
        .or_else(|| u.strip_prefix("GMT"))
        .unwrap_or(&u);
    let sign = match rest.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &rest[1..];
    let (h, m) = match digits.split_once(':') {
        Some(hm) => hm,
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "00"),
    };
    if h.is_empty()
        || h.len() > 2
        || m.len() != 2
        || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// True when the question asks about time: "when", "what date/year/month/day/time", "which
/// year/month", "how long (ago)", "how many days/weeks/…", "since when", a month name (not
/// "may" the verb), or any expression [`find_mentions`] recognises ("last week", "in 2022").
/// Whole words only.
pub fn is_temporal_question(q: &str) -> bool {
    QUESTION_RE.is_match(q)
        || NaiveDate::from_ymd_opt(2000, 6, 15).is_some_and(|r| !find_mentions(q, r).is_empty())
}

/// The union range (earliest start ..= latest end) of every mention in `text`, for recall's
/// time boost; `None` when the text names no time.
pub fn explicit_range(text: &str, reference: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let mentions = find_mentions(text, reference);
    let start = mentions.iter().map(|m| m.resolved.start).min()?;
    let end = mentions.iter().map(|m| m.resolved.end).max()?;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    /// The single mention's (phrase, start, end, label).
    fn one(text: &str, r: NaiveDate) -> (String, NaiveDate, NaiveDate, String) {
        let ms = find_mentions(text, r);
        assert_eq!(ms.len(), 1, "{text:?} → {ms:?}");
        let m = &ms[0];
        (
            m.phrase.clone(),
            m.resolved.start,
            m.resolved.end,
            m.label.clone(),
        )
    }

    fn label(text: &str, r: NaiveDate) -> String {
        one(text, r).3
    }

    const MON: (i32, u32, u32) = (2023, 5, 8); // Monday 8 May 2023

    fn mon() -> NaiveDate {
        d(MON.0, MON.1, MON.2)
    }

    #[test]
    fn ground_inserts_label_after_relative_phrase() {
        let (out, ms) = ground(
            "I went to a support group yesterday and it was great.",
            mon(),
        );
        assert_eq!(
            out,
            "I went to a support group yesterday (7 May 2023) and it was great."
        );
        assert_eq!(ms.len(), 1);
        assert_eq!(
            &"I went to a support group yesterday and"[ms[0].start..ms[0].end],
            "yesterday"
        );
    }

    #[test]
    fn ground_leaves_absolute_dates_and_is_idempotent() {
        let text = "On 7 May 2023 we met, in 2022 too, and last week again.";
        let (out, ms) = ground(text, mon());
        assert_eq!(
            out,
            "On 7 May 2023 we met, in 2022 too, and last week (the week before 8 May 2023, around 1 May 2023) again."
        );
        assert_eq!(ms.len(), 3);
        assert_eq!(ground(&out, mon()).0, out);
    }

    #[test]
    fn day_words() {
        let r = mon();
        for (text, want) in [
            ("today", d(2023, 5, 8)),
            ("Tonight", d(2023, 5, 8)),
            ("this morning", d(2023, 5, 8)),
            ("this AFTERNOON", d(2023, 5, 8)),
            ("this evening", d(2023, 5, 8)),
            ("yesterday", d(2023, 5, 7)),
            ("last night", d(2023, 5, 7)),
            ("the day before yesterday", d(2023, 5, 6)),
            ("tomorrow", d(2023, 5, 9)),
            ("the day after tomorrow", d(2023, 5, 10)),
        ] {
            let (phrase, s, e, l) = one(text, r);
            assert_eq!(
                (phrase.as_str(), s, e, l),
                (text, want, want, format_day(want)),
                "{text}"
            );
        }
    }

    #[test]
    fn weekdays() {
        let r = mon();
        assert_eq!(label("I saw her last Friday.", r), "5 May 2023");
        assert_eq!(label("next friday", r), "12 May 2023");
        assert_eq!(label("this Wednesday", r), "10 May 2023");
        assert_eq!(label("I went hiking on Saturday", r), "6 May 2023");
        assert_eq!(label("I will go hiking on Saturday", r), "13 May 2023");
        assert_eq!(label("On Saturday I went hiking", r), "6 May 2023");
        // A bare weekday follows the clause's tense too.
        assert_eq!(label("Friday was fun", r), "5 May 2023");
        // Reference itself a Friday: "last Friday" is a week earlier.
        assert_eq!(label("last Friday", d(2023, 5, 12)), "5 May 2023");
        assert_eq!(label("next Friday", d(2023, 5, 12)), "19 May 2023");
    }

    #[test]
    fn weekdays_of_scheduled_and_moved_plans() {
        let r = mon();
        // "got" is "have" with a planned event or after "have": the day lies ahead.
        assert_eq!(
            label("Got my eye exam on Wednesday, wish me luck", r),
            "10 May 2023"
        );
        assert_eq!(label("I've got a haircut Friday", r), "12 May 2023");
        assert_eq!(
            label("she's got her driving lesson on Friday", r),
            "12 May 2023"
        );
        // A thing received is past.
        assert_eq!(label("We got the scan results on Friday", r), "5 May 2023");
        assert_eq!(label("I got the keys on Saturday", r), "6 May 2023");
        // A present copula governing the day is a scheduled event, whatever the next clause.
        assert_eq!(
            label("The book club is on Thursday and I finished the novel", r),
            "11 May 2023"
        );
        assert_eq!(label("Thursday is the first rehearsal", r), "11 May 2023");
        assert_eq!(label("We're hiking on Sunday", r), "14 May 2023");
        // The destination of a rescheduling verb lies ahead, though the verb is past.
        assert_eq!(
            label("The vet rang and pushed the appointment back to Friday", r),
            "12 May 2023"
        );
        assert_eq!(label("They moved my exam to Wednesday", r), "10 May 2023");
        // Without such a verb "to" keeps the clause's tense.
        assert_eq!(label("We walked to the lake on Tuesday", r), "2 May 2023");
        // A modal of ability offers a day ahead.
        assert_eq!(
            label("She says she can manage Wednesday instead", r),
            "10 May 2023"
        );
        // "need" is no past form.
        assert_eq!(label("I need new boots by Saturday", r), "13 May 2023");
    }

    #[test]
    fn weeks() {
        let r = mon();
        let (_, s, e, l) = one("last week", r);
        assert_eq!(
            (s, e, l.as_str()),
            (
                d(2023, 5, 1),
                d(2023, 5, 7),
                "the week before 8 May 2023, around 1 May 2023"
            )
        );
        assert_eq!(
            label("this week", d(2023, 5, 10)),
            "the week of 10 May 2023"
        );
        assert_eq!(
            label("this past weekend", d(2023, 10, 20)),
            "the weekend of 14 October 2023"
        );
        assert_eq!(label("last Fri", d(2023, 7, 15)), "14 July 2023");
        assert_eq!(label("last tues", d(2023, 7, 20)), "18 July 2023");
        assert_eq!(
            label("the past week", d(2023, 5, 8)),
            label("last week", d(2023, 5, 8))
        );
        let (_, s, e, _) = one("next week", r);
        assert_eq!((s, e), (d(2023, 5, 9), d(2023, 5, 21)));
        assert_eq!(
            label("the week before.", r),
            "the week before 8 May 2023, around 1 May 2023"
        );
        assert_eq!(
            label("the week before last", r),
            "two weeks before 8 May 2023, around 24 April 2023"
        );
        assert!(find_mentions("the week before the wedding", r).is_empty());
        assert_eq!(
            label("two weeks ago", r),
            "two weeks before 8 May 2023, around 24 April 2023"
        );
        assert_eq!(
            label("a week ago", r),
            "the week before 8 May 2023, around 1 May 2023"
        );
        assert_eq!(
            label("in 3 weeks", r),
            "three weeks after 8 May 2023, around 29 May 2023"
        );
        assert_eq!(
            label("a few weeks ago", r),
            "a few weeks before 8 May 2023, around 17 April 2023"
        );
        let (_, s, e, l) = one("the other day", r);
        assert_eq!(
            (s, e, l.as_str()),
            (d(2023, 5, 1), d(2023, 5, 7), "a few days before 8 May 2023")
        );
        assert_eq!(
            label("earlier this week", d(2023, 5, 10)),
            "earlier in the week of 8 May 2023"
        );
    }

    #[test]
    fn weekends() {
        let r = mon();
        assert_eq!(label("last weekend", r), "the weekend of 6 May 2023");
        assert_eq!(label("this weekend", r), "the weekend of 13 May 2023");
        assert_eq!(label("next weekend", r), "the weekend of 13 May 2023");
        assert_eq!(label("two weekends ago", r), "the weekend of 29 April 2023");
        assert_eq!(label("the weekend before!", r), "the weekend of 6 May 2023");
        // On a Sunday the current weekend is "this", not "last".
        assert_eq!(
            label("last weekend", d(2023, 5, 7)),
            "the weekend of 29 April 2023"
        );
        assert_eq!(
            label("this weekend", d(2023, 5, 7)),
            "the weekend of 6 May 2023"
        );
    }

    #[test]
    fn months_and_years() {
        let r = mon();
        assert_eq!(label("last month", r), "April 2023");
        assert_eq!(label("this month", r), "May 2023");
        assert_eq!(label("next month", r), "June 2023");
        assert_eq!(label("earlier this month", r), "earlier in May 2023");
        assert_eq!(label("3 months ago", r), "February 2023");
        assert_eq!(label("a couple of months ago", r), "around March 2023");
        assert_eq!(label("in two months", r), "July 2023");
        assert_eq!(label("last year", r), "2022");
        assert_eq!(label("this year", r), "2023");
        assert_eq!(label("next year", r), "2024");
        assert_eq!(label("earlier this year", r), "earlier in 2023");
        assert_eq!(label("two years ago", r), "2021");
        assert_eq!(label("a few years ago", r), "around 2020");
    }

    #[test]
    fn a_count_since_an_event_is_ago() {
        let r = mon();
        assert_eq!(
            label("It's been three days since the party", r),
            "5 May 2023"
        );
        assert!(label("two weeks since I quit", r).contains("24 April 2023"));
    }

    #[test]
    fn day_counts() {
        let r = mon();
        assert_eq!(label("3 days ago", r), "5 May 2023");
        assert_eq!(label("Five days ago", r), "3 May 2023");
        assert_eq!(label("a day ago", r), "7 May 2023");
        assert_eq!(label("a few days ago", r), "around 5 May 2023");
        assert_eq!(label("a couple of days ago", r), "around 6 May 2023");
        assert_eq!(label("in 2 days", r), "10 May 2023");
        assert_eq!(label("in twelve days", r), "20 May 2023");
        assert!(find_mentions("I spent three days there", r).is_empty());
    }

    #[test]
    fn month_names_and_absolute_dates() {
        let r = mon();
        assert_eq!(one("in 2022", r).0, "2022");
        assert_eq!(label("we moved in 2022", r), "2022");
        assert_eq!(label("in May", r), "May 2023");
        assert_eq!(one("in May", r).0, "in May");
        assert_eq!(label("in May 2021", r), "May 2021");
        assert_eq!(label("last May", r), "May 2022");
        assert_eq!(label("last April", r), "April 2023");
        assert_eq!(label("this May", r), "May 2023");
        assert_eq!(label("next May", r), "May 2024");
        assert_eq!(label("I went there in July", r), "July 2022");
        assert_eq!(label("I will go there in July", r), "July 2023");
        assert_eq!(label("7 May 2023", r), "7 May 2023");
        assert_eq!(label("May 7, 2023", r), "7 May 2023");
        assert_eq!(label("the 3rd of June 2021", r), "3 June 2021");
        assert_eq!(label("May 2023", r), "May 2023");
        assert_eq!(label("2022-12-31", r), "31 December 2022");
        assert_eq!(label("May 7th", r), "7 May 2023");
        assert_eq!(label("we met on May 1st", r), "1 May 2023");
        assert_eq!(label("my exam is on June 2nd", r), "2 June 2023");
        assert_eq!(
            label("My birthday is on July 20th and I started a job.", r),
            "20 July 2023"
        );
        assert_eq!(label("On July 20th I started a job.", r), "20 July 2022");
        assert_eq!(label("31 February 2023", r), "February 2023");
        assert!(find_mentions("February 30", r).is_empty());
        assert!(find_mentions("it cost $2000 and 2000% more", r).is_empty());
    }

    #[test]
    fn may_the_verb_is_not_a_month() {
        let r = mon();
        for text in [
            "I may go",
            "This may be hard",
            "you may want to",
            "in may be",
            "May I ask?",
            "June was fun",
        ] {
            assert!(find_mentions(text, r).is_empty(), "{text}");
        }
        assert_eq!(label("May 7", r), "7 May 2023");
    }

    #[test]
    fn no_substring_or_vague_matches() {
        let r = mon();
        for text in [
            "this is high history",
            "recently",
            "lately",
            "a while ago",
            "todays yesterdays",
            "Mayday",
            "weekday weekender",
            "the thistory",
            "nowadays",
            "within3 days",
            "Monday",
        ] {
            assert!(
                find_mentions(text, r).is_empty(),
                "{text}: {:?}",
                find_mentions(text, r)
            );
        }
    }

    #[test]
    fn month_boundary_and_leap_day() {
        assert_eq!(label("yesterday", d(2023, 3, 1)), "28 February 2023");
        assert_eq!(label("yesterday", d(2024, 3, 1)), "29 February 2024");
        assert_eq!(label("last month", d(2024, 3, 31)), "February 2024");
        assert_eq!(label("a year ago", d(2024, 2, 29)), "2023");
        assert_eq!(label("29 February 2024", d(2024, 5, 1)), "29 February 2024");
        assert_eq!(one("29 February 2023", d(2024, 5, 1)).1, d(2023, 2, 1));
    }

    #[test]
    fn year_boundary() {
        let r = d(2024, 1, 1);
        assert_eq!(label("last month", r), "December 2023");
        assert_eq!(label("yesterday", r), "31 December 2023");
        assert_eq!(label("last year", r), "2023");
        assert_eq!(label("next month", d(2023, 12, 15)), "January 2024");
    }

    #[test]
    fn time_zones_decide_the_reference_date() {
        let noon = DateTime::parse_from_rfc3339("2023-12-31T12:00:00Z")
            .expect("ts")
            .with_timezone(&Utc);
        for tz in ["+14:00", "Pacific/Kiritimati", "+1400", "UTC+14"] {
            let local = to_local(noon, Some(tz)).expect("valid zone");
            assert_eq!(local.date_naive(), d(2024, 1, 1), "{tz}");
            assert_eq!(
                ground("yesterday", local.date_naive()).0,
                "yesterday (31 December 2023)"
            );
        }
        let early = DateTime::parse_from_rfc3339("2024-01-01T04:00:00Z")
            .expect("ts")
            .with_timezone(&Utc);
        let local = to_local(early, Some("-10:00")).expect("valid offset");
        assert_eq!(local.date_naive(), d(2023, 12, 31));
        assert_eq!(
            ground("tomorrow", local.date_naive()).0,
            "tomorrow (1 January 2024)"
        );
        assert_eq!(
            to_local(early, Some("America/New_York"))
                .expect("ny")
                .date_naive(),
            d(2023, 12, 31)
        );
        for tz in [None, Some("UTC"), Some("Z"), Some(" ")] {
            assert_eq!(
                to_local(early, tz).expect("utc").date_naive(),
                d(2024, 1, 1)
            );
        }
        assert_eq!(
            to_local(early, Some("+0530"))
                .expect("ist")
                .offset()
                .local_minus_utc(),
            19800
        );
        for bad in ["Mars/Olympus", "+25:00", "+5:7", "+"] {
            let err = to_local(early, Some(bad)).expect_err("bad zone");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn temporal_questions() {
        for q in [
            "When did Caroline go to the support group?",
            "What year did she move?",
            "How long ago was the trip?",
            "Which month was the concert?",
            "What did she do last week?",
            "Did he visit in 2022?",
            "What happened in June?",
        ] {
            assert!(is_temporal_question(q), "{q}");
        }
        for q in [
            "What is Caroline's identity?",
            "Whenever she sings, who listens?",
            "May I ask what she likes?",
            "What is her history?",
        ] {
            assert!(!is_temporal_question(q), "{q}");
        }
    }

    #[test]
    fn explicit_range_is_the_union() {
        let r = mon();
        assert_eq!(
            explicit_range("yesterday or last month", r),
            Some((d(2023, 4, 1), d(2023, 5, 7)))
        );
        assert_eq!(explicit_range("what does she like?", r), None);
    }

    #[test]
    fn several_mentions_in_order() {
        let ms = find_mentions(
            "Yesterday I ran; last Friday I swam; next year I'll fly.",
            mon(),
        );
        let phrases: Vec<&str> = ms.iter().map(|m| m.phrase.as_str()).collect();
        assert_eq!(phrases, ["Yesterday", "last Friday", "next year"]);
    }

    #[test]
    fn ground_never_panics_and_offsets_are_char_boundaries() {
        let tricky = [
            "",
            "é",
            "¡yesterday!",
            "éyesterday",
            "yesterdayé",
            "今天yesterday今天",
            "昨日 yesterday 🎉 today🎉",
            "in ２０２２",
            "May 7th—ok",
            "ʼlast week",
            "last\u{a0}week",
            "LAST WEEK",
            "ſunday last ſunday",
            "in 999 years",
            "999 years ago",
            "in 999 months",
            "a few\u{2003}days ago",
            "May\u{301} 7",
            "🎉May 2023🎉",
            "the week before\u{301}",
            "2023-02-30",
            "on Friday。I will",
            "\u{feff}tomorrow\u{200d}",
        ];
        for text in tricky {
            for r in [
                mon(),
                d(2024, 2, 29),
                d(1, 1, 1),
                NaiveDate::MAX,
                NaiveDate::MIN,
            ] {
                let (out, ms) = ground(text, r);
                assert!(out.len() >= text.len());
                for m in &ms {
                    assert!(
                        text.is_char_boundary(m.start) && text.is_char_boundary(m.end),
                        "{text:?}"
                    );
                    assert_eq!(&text[m.start..m.end], m.phrase);
                }
            }
        }
    }
}
