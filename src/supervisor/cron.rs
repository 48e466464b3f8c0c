//! Cron schedules on the loop's timer queue: the next fire time in the job's time zone,
//! overlap skips, and the last runs (kept in state.json across supervisor restarts).

use crate::config::{CronSpec, Timezone};
use crate::ipc::{CronRun, CronStatus};
use chrono::{DateTime, Local, TimeZone, Utc};
use std::collections::VecDeque;
use std::time::Duration;

/// Runs kept in the history (SPEC §3).
pub const HISTORY: usize = 10;

/// The longest the loop sleeps toward a fire time before looking at the wall clock
/// again, so a clock that jumps (NTP, suspend) is noticed within this bound.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Zone {
    Local,
    Utc,
    Named(crate::tz::Zone),
}

#[derive(Debug)]
pub struct CronState {
    pub spec: CronSpec,
    pub zone: Zone,
    /// The instant the next run is due.
    pub next: Option<DateTime<Utc>>,
    /// Newest first.
    pub history: VecDeque<CronRun>,
    /// Generation of the armed fire timer; bumping it disarms the schedule.
    pub gen: u64,
    /// Wall-clock time (in the job's zone) of the last fire: when clocks go back, the
    /// same wall time comes round again and must not fire a second time.
    pub last_wall: Option<chrono::NaiveDateTime>,
}

impl CronState {
    /// The config validated the zone; should its file vanish since, UTC is used and said.
    pub fn new(spec: &CronSpec, history: Vec<CronRun>) -> CronState {
        let zone = match &spec.timezone {
            Timezone::Local => Zone::Local,
            Timezone::Utc => Zone::Utc,
            Timezone::Named(name) => match crate::tz::Zone::load(name) {
                Ok(z) => Zone::Named(z),
                Err(e) => {
                    crate::logger::error!("cron time zone {name}: {e}; using UTC");
                    Zone::Utc
                }
            },
        };
        let mut history: VecDeque<CronRun> = history.into();
        history.truncate(HISTORY);
        CronState {
            spec: spec.clone(),
            zone,
            next: None,
            history,
            gen: 0,
            last_wall: None,
        }
    }

    /// The first fire time strictly after `after`, following the zone's wall clock.
    ///
    /// The cron crate walks wall-clock time, so in a repeated (fall-back) hour it can
    /// answer with an instant before `after`; such answers, and a second fire at the wall
    /// time fired last, are passed over. Look-ahead is bounded so no schedule can spin.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        fn pick<Z: TimeZone>(
            it: impl Iterator<Item = DateTime<Z>>,
            after: DateTime<Utc>,
            last: Option<chrono::NaiveDateTime>,
        ) -> Option<DateTime<Utc>> {
            it.take(16)
                .find(|t| t.with_timezone(&Utc) > after && Some(t.naive_local()) != last)
                .map(|t| t.with_timezone(&Utc))
        }
        let schedule = &self.spec.schedule;
        let last = self.last_wall;
        match &self.zone {
            Zone::Utc => pick(schedule.after(&after), after, last),
            Zone::Local => pick(schedule.after(&after.with_timezone(&Local)), after, last),
            Zone::Named(z) => pick(schedule.after(&after.with_timezone(z)), after, last),
        }
    }

    /// Wall-clock time of instant `t` in the job's zone.
    pub fn wall(&self, t: DateTime<Utc>) -> chrono::NaiveDateTime {
        match &self.zone {
            Zone::Utc => t.naive_utc(),
            Zone::Local => t.with_timezone(&Local).naive_local(),
            Zone::Named(z) => t.with_timezone(z).naive_local(),
        }
    }

    /// A time as RFC 3339 with the zone's offset, as users read it.
    pub fn format(&self, t: DateTime<Utc>) -> String {
        let secs = chrono::SecondsFormat::Secs;
        match &self.zone {
            Zone::Utc => t.to_rfc3339_opts(secs, true),
            Zone::Local => t.with_timezone(&Local).to_rfc3339_opts(secs, false),
            Zone::Named(z) => t.with_timezone(&z.fix_at(t)).to_rfc3339_opts(secs, false),
        }
    }

    pub fn zone_label(&self) -> String {
        match &self.zone {
            Zone::Utc => "UTC".into(),
            Zone::Local => format!("local {}", Local::now().format("%:z")),
            Zone::Named(z) => z.name().to_string(),
        }
    }

    pub fn push(&mut self, run: CronRun) {
        self.history.push_front(run);
        self.history.truncate(HISTORY);
    }

    /// Fills in the run that started at `started_at` once it has ended.
    pub fn finish(
        &mut self,
        started_at: &str,
        duration: Duration,
        code: Option<i32>,
        signal: Option<i32>,
    ) {
        if let Some(run) = self
            .history
            .iter_mut()
            .find(|r| r.started_at == started_at && r.duration_ms.is_none())
        {
            run.duration_ms = Some(duration.as_millis() as u64);
            run.exit_code = code;
            run.signal = signal;
        }
    }

    pub fn status(&self) -> CronStatus {
        CronStatus {
            expression: self.spec.expression.clone(),
            timezone: self.zone_label(),
            next_run: self.next.map(|t| self.format(t)),
            history: self.history.iter().cloned().collect(),
        }
    }
}

/// How long the loop may sleep before the fire at `next` (bounded by `MAX_SLEEP`).
pub fn sleep_until(next: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (next - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .min(MAX_SLEEP)
}

/// `Zone::fix_at` gives the fixed offset in force at an instant.
trait FixAt {
    fn fix_at(&self, t: DateTime<Utc>) -> chrono::FixedOffset;
}

impl FixAt for crate::tz::Zone {
    fn fix_at(&self, t: DateTime<Utc>) -> chrono::FixedOffset {
        use chrono::Offset;
        self.offset_from_utc_datetime(&t.naive_utc()).fix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn spec(expr: &str, tz: Timezone) -> CronSpec {
        CronSpec {
            expression: expr.into(),
            schedule: cron::Schedule::from_str(expr).unwrap(),
            timezone: tz,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_ten_seconds_fires_strictly_after() {
        let c = CronState::new(&spec("*/10 * * * * *", Timezone::Utc), vec![]);
        assert_eq!(
            c.next_after(utc("2025-12-31T15:47:00Z")),
            Some(utc("2025-12-31T15:47:10Z"))
        );
        assert_eq!(
            c.next_after(utc("2025-12-31T15:47:03Z")),
            Some(utc("2025-12-31T15:47:10Z"))
        );
    }

    #[test]
    fn a_repeated_wall_time_fires_once_in_a_named_zone() {
        if !std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            eprintln!("skipped: no /usr/share/zoneinfo/Europe/Berlin");
            return;
        }
        let berlin = || Timezone::Named("Europe/Berlin".into());
        // 2025-10-26: Berlin clocks go from 03:00 CEST back to 02:00 CET.
        let mut c = CronState::new(&spec("0 30 2 * * *", berlin()), vec![]);
        let first = c.next_after(utc("2025-10-25T12:00:00Z")).unwrap();
        assert_eq!(first, utc("2025-10-26T00:30:00Z"), "02:30 CEST");
        c.last_wall = Some(c.wall(first));
        let second = c.next_after(first).unwrap();
        assert_eq!(
            second,
            utc("2025-10-27T01:30:00Z"),
            "next day, not 02:30 CET again"
        );
        // Asked from inside the repeated hour, the answer is never in the past.
        let mut c = CronState::new(&spec("*/10 * * * * *", berlin()), vec![]);
        let mut t = utc("2025-10-26T00:59:30Z");
        for _ in 0..10 {
            let n = c.next_after(t).unwrap();
            assert!(n > t, "{n} after {t}");
            c.last_wall = Some(c.wall(n));
            t = n;
        }
    }

    #[test]
    fn history_keeps_newest_ten() {
        let mut c = CronState::new(&spec("* * * * * *", Timezone::Utc), vec![]);
        for i in 0..15 {
            c.push(CronRun {
                started_at: format!("t{i}"),
                duration_ms: None,
                exit_code: None,
                signal: None,
                skipped: false,
            });
        }
        assert_eq!(c.history.len(), HISTORY);
        assert_eq!(c.history[0].started_at, "t14");
        c.finish("t14", Duration::from_millis(53), Some(0), None);
        assert_eq!(c.history[0].duration_ms, Some(53));
        assert_eq!(c.history[0].exit_code, Some(0));
    }

    #[test]
    fn sleep_is_bounded_and_never_negative() {
        let now = utc("2025-01-01T00:00:00Z");
        assert_eq!(
            sleep_until(utc("2025-01-01T00:00:05Z"), now),
            Duration::from_secs(5)
        );
        assert_eq!(sleep_until(utc("2025-01-01T05:00:00Z"), now), MAX_SLEEP);
        assert_eq!(
            sleep_until(utc("2024-12-31T00:00:00Z"), now),
            Duration::ZERO
        );
    }
}
