//! When sources are polled: cron expressions (six fields, seconds first, as tokio-cron-scheduler
//! reads them) and intervals like `10m`, both validated when the config is read.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// When a source is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// A cron expression with a seconds field, as tokio-cron-scheduler reads it.
    Cron(String),
    /// A fixed interval.
    Every(Duration),
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(expr) => write!(f, "cron \"{expr}\""),
            Schedule::Every(every) => write!(f, "every {}s", every.as_secs()),
        }
    }
}

impl Schedule {
    /// The usual time between two polls (for a cron expression: between its next two times).
    pub fn interval(&self) -> Duration {
        match self {
            Schedule::Every(every) => *every,
            Schedule::Cron(_) => {
                let now = chrono::Utc::now();
                let first = self.next_after(now);
                let second = first.and_then(|t| self.next_after(t));
                match (first, second) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(600)),
                    _ => Duration::from_secs(600),
                }
            }
        }
    }

    /// The first poll time after `now` (cron expressions are read in UTC).
    pub fn next_after(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Schedule::Every(every) => chrono::Duration::from_std(*every).ok().map(|d| now + d),
            Schedule::Cron(expr) => parsed_cron(expr)?.find_next_occurrence(&now, false).ok(),
        }
    }
}

/// A cron expression parsed once per process (polls ask for the next time on every poll).
fn parsed_cron(expr: &str) -> Option<croner::Cron> {
    static PARSED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, croner::Cron>>> =
        std::sync::LazyLock::new(Default::default);
    let mut parsed = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cron) = parsed.get(expr) {
        return Some(cron.clone());
    }
    let cron = cron_parser().parse(expr).ok()?;
    parsed.insert(expr.to_owned(), cron.clone());
    Some(cron)
}

fn cron_parser() -> croner::parser::CronParser {
    croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Required).dom_and_dow(true).build()
}

/// A cron expression validated with the parser tokio-cron-scheduler uses.
#[derive(Debug, Clone)]
pub(super) struct CronExpr(String);

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        validate_cron(&text).map_err(serde::de::Error::custom)?;
        Ok(CronExpr(text))
    }
}

/// Checks a six-field (with seconds) cron expression.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    cron_parser()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| format!("invalid cron expression `{expr}` (six fields, seconds first): {e}"))
}

pub(super) fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Every::deserialize(d).map(|Every(every)| every)
}

/// An interval like `90s`, `10m`, `1h30m` or `2d`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Every(Duration);

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Every).map_err(serde::de::Error::custom)
    }
}

/// Parses `90s`, `10m`, `1h30m`, `2d`; the result must be at least one second.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid interval `{text}`: use a number with s, m, h or d, like \"10m\"");
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

pub(super) fn pick_schedule(
    cron: Option<CronExpr>,
    every: Option<Every>,
) -> Result<Option<Schedule>, String> {
    match (cron, every) {
        (Some(_), Some(_)) => Err("set either `schedule` or `every`, not both".into()),
        (Some(CronExpr(expr)), None) => Ok(Some(Schedule::Cron(expr))),
        (None, Some(Every(every))) => Ok(Some(Schedule::Every(every))),
        (None, None) => Ok(None),
    }
}
