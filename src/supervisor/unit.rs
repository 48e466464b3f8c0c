//! One configured service as the loop sees it: its config, where it is in its life, and
//! its live instance if any. Owned and mutated by the loop only.

use super::cron::CronState;
use super::policy::ExitStatus;
use crate::config::Service;
use crate::ipc::{CronRun, ServiceStatus, State};
use crate::procfs::ProcStat;
use crate::state::ServiceRecord;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// Why the supervisor is stopping an instance; decides what happens once it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopIntent {
    /// `sysg stop -s`: stay stopped until started again.
    Stop,
    /// `sysg restart -s`: start again once stopped.
    Restart,
    /// Supervisor shutdown or full reload.
    Shutdown,
    /// Its health check failed `retries` times: a failure, handled by the restart policy.
    Unhealthy,
}

/// A live process of the service (or its `skip` probe).
#[derive(Debug)]
pub struct Run {
    pub pid: i32,
    /// Equal to `pid`: every instance leads its own group.
    pub pgid: i32,
    pub started: Instant,
    pub started_wall: SystemTime,
    pub start_ticks: Option<u64>,
    /// The leader has been reaped; stragglers in the group may remain.
    pub reaped: Option<ExitStatus>,
    pub stop: Option<StopIntent>,
    /// Started by the restart policy (fires `on_restart.success` once up).
    pub is_restart: bool,
    /// For a cron run: its `started_at` key in the history.
    pub cron_key: Option<String>,
    /// Failed health probes of this instance so far.
    pub probe_failures: u32,
    /// Not an instance: escaped processes of an earlier one, being stopped. No hooks,
    /// no history, no policy when they are gone.
    pub leftovers_only: bool,
}

impl Run {
    pub fn new(pid: i32) -> Run {
        Run {
            pid,
            pgid: pid,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            start_ticks: crate::procfs::start_time_ticks(pid),
            reaped: None,
            stop: None,
            is_restart: false,
            cron_key: None,
            probe_failures: 0,
            leftovers_only: false,
        }
    }

    /// Stands for processes an earlier instance left behind (`pid` is one of them), so
    /// the usual stop machinery can signal them and wait until they are gone.
    pub fn leftovers(pid: i32) -> Run {
        let mut run = Run::new(pid);
        run.reaped = Some(ExitStatus::Signal(0));
        run.leftovers_only = true;
        run
    }
}

#[derive(Debug)]
pub struct Unit {
    pub cfg: Service,
    pub state: State,
    pub run: Option<Run>,
    /// A running `skip:` probe.
    pub probe: Option<Run>,
    /// The instance passed the "up" rule (1 s alive).
    pub up: bool,
    /// Exited 0 (a one-shot): satisfies dependents like `up`.
    pub completed: bool,
    /// Automatic restarts in a row, for `max_restarts`.
    pub consecutive: u32,
    /// Automatic restarts since the service was (re)started by hand or at boot.
    pub restart_count: u32,
    pub last_exit: Option<ExitStatus>,
    pub last_started: Option<SystemTime>,
    pub reason: Option<String>,
    /// Why the last spawn attempt since a start by hand failed (cleared by a spawn), so
    /// that `start -s` / `restart -s` can answer with it instead of "Started".
    pub spawn_error: Option<String>,
    pub waiting_for: Option<String>,
    pub restart_at: Option<Instant>,
    /// Bumped at every spawn and state change that invalidates armed timers.
    pub generation: u64,
    /// Schedule and run history of a cron job.
    pub cron: Option<CronState>,
}

impl Unit {
    /// A unit for `cfg`; a cron job starts idle and takes over `history` from state.json.
    pub fn new(cfg: Service, history: Vec<CronRun>) -> Unit {
        let cron = cfg.cron.as_ref().map(|spec| CronState::new(spec, history));
        Unit {
            state: if cron.is_some() {
                State::Idle
            } else {
                State::Pending
            },
            cron,
            cfg,
            run: None,
            probe: None,
            up: false,
            completed: false,
            consecutive: 0,
            restart_count: 0,
            last_exit: None,
            last_started: None,
            reason: None,
            spawn_error: None,
            waiting_for: None,
            restart_at: None,
            generation: 0,
        }
    }

    pub fn is_cron(&self) -> bool {
        self.cron.is_some()
    }

    /// Satisfies dependents: up, finished its work, or skipped.
    pub fn satisfies_dependents(&self) -> bool {
        (self.state == State::Running && self.up) || self.completed || self.state == State::Skipped
    }

    /// Can never satisfy dependents without someone starting it again by hand.
    pub fn blocks_dependents(&self) -> bool {
        matches!(self.state, State::Failed | State::Stopped)
            || (self.state == State::Exited && !self.completed)
    }

    /// Has a process (or probe) the loop still has to see die.
    /// The process group of the live instance, if any.
    pub fn live_pgid(&self) -> Option<i32> {
        self.run
            .as_ref()
            .filter(|r| r.reaped.is_none())
            .map(|r| r.pgid)
    }

    pub fn has_processes(&self) -> bool {
        self.run.is_some() || self.probe.is_some()
    }

    /// Can run again without a request: something is scheduled or alive.
    pub fn is_active(&self) -> bool {
        self.has_processes()
            || matches!(self.state, State::Pending | State::Waiting | State::Backoff)
    }

    pub fn record(&self) -> ServiceRecord {
        let run = self.run.as_ref().filter(|r| r.reaped.is_none());
        ServiceRecord {
            status: self.state,
            pid: run.map(|r| r.pid),
            started_at: self.last_started.map(rfc3339),
            restart_count: self.restart_count,
            exit_code: match self.last_exit {
                Some(ExitStatus::Code(c)) => Some(c),
                _ => None,
            },
            signal: match self.last_exit {
                Some(ExitStatus::Signal(s)) => Some(s),
                _ => None,
            },
            pgid: run.map(|r| r.pgid),
            start_ticks: run.and_then(|r| r.start_ticks),
            reason: self.reason.clone(),
            cron: self.cron.as_ref().map(|c| c.status()),
        }
    }

    /// The status a client sees; /proc figures come from `groups` (one /proc pass for
    /// every service, made only when a client asks).
    pub fn status(&self, now: Instant, groups: &HashMap<i32, Vec<ProcStat>>) -> ServiceStatus {
        let rec = self.record();
        let run = self.run.as_ref().filter(|r| r.reaped.is_none());
        let mut st = ServiceStatus {
            name: self.cfg.name.clone(),
            kind: if self.cfg.cron.is_some() {
                "cron"
            } else {
                "service"
            }
            .to_string(),
            status: self.state,
            pid: rec.pid,
            started_at: rec.started_at,
            uptime_s: run.map(|r| uptime_secs(r, now)),
            restart_count: self.restart_count,
            max_restarts: self.cfg.max_restarts,
            exit_code: rec.exit_code,
            signal: rec.signal,
            up: self.up,
            restart_in_ms: self
                .restart_at
                .filter(|_| self.state == State::Backoff)
                .map(|at| at.saturating_duration_since(now).as_millis() as u64),
            waiting_for: self.waiting_for.clone(),
            reason: self.reason.clone(),
            rss_bytes: None,
            cpu_s: None,
            tasks: None,
            processes: Vec::new(),
            cron: rec.cron,
        };
        if let Some(run) = run {
            let members: Vec<i32> = groups
                .get(&run.pgid)
                .map_or_else(Vec::new, |g| g.iter().map(|p| p.pid).collect());
            let snap = crate::procfs::snapshot(&members);
            st.rss_bytes = Some(snap.rss_bytes);
            st.cpu_s = Some(snap.cpu_s);
            st.tasks = Some(snap.tasks);
            st.processes = snap.processes;
        }
        st
    }
}

/// Uptime from the kernel's start time of the process (DESIGN pitfall 15), falling back
/// to our own clock if /proc cannot say.
fn uptime_secs(run: &Run, now: Instant) -> u64 {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64());
    match (crate::procfs::process_start_unix(run.pid), wall) {
        (Some(start), Ok(now_wall)) if now_wall >= start => (now_wall - start) as u64,
        _ => now.duration_since(run.started).as_secs(),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long a process must stay alive to count as up (SPEC §3).
pub const UP_AFTER: Duration = Duration::from_secs(1);
