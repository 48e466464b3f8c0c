//! PURE: the lifecycle of one service as a state × event table.
//!
//! [`on_event`] takes the service's spec, where it is in its life and one event, and
//! returns where it is next and what the loop must do. It performs no I/O and reads no
//! clock: the loop measures facts (a reaped status, how many processes are left, a spawn's
//! result) before it delivers an event, and turns each [`Action`] into a syscall, a timer,
//! a hook thread or a reply. Every cell of the table is one arm of the `match` below.

use super::deps::Verdict;
use super::policy::{self, Ended, ExitStatus, Next, Policy};
use crate::config::Service as Spec;
use crate::ipc::State;
use crate::logger::Level;
use std::time::{Duration, Instant, SystemTime};

/// How long a process must stay alive to count as up (SPEC §3).
pub const UP_AFTER: Duration = Duration::from_secs(1);
/// How long a `notify` service has to send `READY=1` (systemd's default start timeout).
pub const NOTIFY_START: Duration = Duration::from_secs(90);
/// A `skip` check that has not answered by then counts as "do not skip".
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a stop that has sent SIGKILL looks again for survivors that are not our
/// children (their death raises no SIGCHLD here).
pub const KILL_RECHECK: Duration = Duration::from_millis(100);

/// Why the supervisor is stopping an instance; decides what follows once it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopIntent {
    /// `sysg stop -s`: stay stopped until started again.
    Stop,
    /// `sysg restart -s`: start again, with fresh counters, once stopped.
    Restart,
    /// Supervisor shutdown or full reload. Never downgraded by a later request.
    Shutdown,
    /// Its health check failed `retries` times: a failure, handled by the restart policy.
    Unhealthy,
    /// A rolling restart's new instance failed to come up: once it is gone, the old one
    /// (still running) is the service's instance again.
    RollBack,
}

/// One live instance of the service: a process leading its own group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its main process: the one spawned, or the one it named with `MAINPID=`.
    pub pid: i32,
    /// The process group it runs in, led by the process spawned.
    pub group: i32,
    pub started: Instant,
    /// Started by the restart policy (fires `on_restart.success` once up).
    pub restarted: bool,
    /// Passed the up rule: alive for [`UP_AFTER`], or its health check passed.
    pub up: bool,
    pub probe_failures: u32,
    /// For a cron run: its `started_at` key in the run history.
    pub cron_key: Option<String>,
    /// `notify` with `watchdog`: the last `WATCHDOG=1` (or when it got up).
    pub watchdog_at: Option<Instant>,
}

/// The instance a rolling restart replaces: it keeps serving until its successor is up
/// and the grace period has passed; `signalled` once it has been asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retiring {
    pub inst: Instance,
    pub signalled: bool,
    /// The new instance said its address is in use (the old one holds the port without
    /// `SO_REUSEPORT`): once it is gone, fall back to stop-then-start.
    pub fallback: bool,
}

/// What a stop is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// The instance's leader is alive.
    Alive(Instance),
    /// The leader exited on its own, before any stop was asked; members of its group
    /// are left. Its hooks and history say it ended by itself, whatever follows.
    Crashed(Instance, ExitStatus),
    /// The leader was reaped during a stop; members of its group (or marked escapees)
    /// are left.
    Exited(Instance, ExitStatus),
    /// No instance: processes an earlier one left behind (escaped its group).
    Strays,
}

/// Where a service is in its life. Each state carries only what is valid in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// To be started once its dependencies allow; `waiting_for` names the one holding it.
    Pending {
        waiting_for: Option<String>,
    },
    /// Its `skip` check runs (`pid` is None while it is being spawned); `stop` is a stop
    /// that arrived meanwhile and applies once the check is gone.
    Checking {
        pid: Option<i32>,
        stop: Option<StopIntent>,
    },
    /// Its `pre_start` command runs (on a worker, bounded); `stop` is a stop that
    /// arrived meanwhile and applies once it is done.
    PreStarting {
        restarted: bool,
        stop: Option<StopIntent>,
    },
    /// A spawn was asked of the loop; its result is the next event.
    Starting {
        restarted: bool,
        cron_key: Option<String>,
    },
    Running(Instance),
    /// Processes are being stopped. `intent` is None when the leader exited on its own
    /// and the rest of its group is cleaned up before the policy decides.
    Stopping {
        leader: Leader,
        intent: Option<StopIntent>,
    },
    /// Waiting out the restart delay.
    Backoff {
        until: Instant,
    },
    /// A cron job between runs.
    Idle,
    /// Exited 0: its work is done; satisfies dependents.
    Completed,
    /// Failed, and its policy says leave it.
    Exited,
    Failed,
    Stopped,
    Skipped,
}

/// Everything the loop remembers about a service besides its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub phase: Phase,
    /// Changes on every new phase: timers and probe results carry the epoch they were
    /// armed in and the loop delivers only current ones.
    pub epoch: u64,
    /// Automatic restarts in a row, for `max_restarts`.
    pub consecutive: u32,
    /// Automatic restarts since the service was started at boot or by hand.
    pub restart_count: u32,
    pub last_exit: Option<ExitStatus>,
    pub last_started: Option<SystemTime>,
    pub reason: Option<String>,
    /// Why the last spawn since a start by hand failed, so `start -s` can answer with it.
    pub spawn_error: Option<String>,
    /// During a rolling restart: the old instance, beside the new one.
    pub retiring: Option<Retiring>,
}

/// The timers a service arms; the loop tags each with the service's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    Up,
    Probe,
    Backoff,
    Kill,
    Recheck,
    CheckDeadline,
    /// `watchdog` is due: a `WATCHDOG=1` must have come since.
    Watchdog,
    /// A rolling restart's new instance has been up this long: the old one is stopped.
    Grace,
    /// The old instance has had its `stop_timeout`. Bound to that instance, not to the
    /// phase: the loop delivers it whatever happened to the new one meanwhile.
    RetireKill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    Start,
    Stop,
    Restart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The scheduler's dependency verdict for a pending service.
    Deps(Verdict),
    /// `start -s` by hand: fresh counters, then scheduled like at boot.
    Start,
    /// `strays`: how many processes an earlier instance left behind (counted by the
    /// loop only when there is no live instance).
    Stop {
        intent: StopIntent,
        strays: usize,
    },
    Spawned {
        pid: i32,
        wall: SystemTime,
    },
    SpawnFailed {
        error: String,
    },
    CheckSpawned {
        pid: i32,
    },
    CheckFailed {
        error: String,
    },
    CheckExited {
        status: ExitStatus,
    },
    CheckDeadline,
    /// The `pre_start` command ended: `ok` when it exited 0; `detail` says how it ended
    /// and what it printed last.
    PreStartDone {
        ok: bool,
        detail: String,
    },
    UpTimer,
    ProbeDue,
    ProbeFailedToLaunch {
        error: String,
    },
    ProbeResult {
        healthy: bool,
        detail: String,
    },
    /// The leader was reaped; `survivors`: processes of the instance still alive.
    LeaderExited {
        status: ExitStatus,
        survivors: usize,
    },
    /// After a reap: nothing is left of a stopping instance whose leader has exited.
    GroupGone,
    /// `stop_timeout` passed; `survivors` are still alive.
    KillDeadline {
        survivors: usize,
    },
    /// A look after SIGKILL.
    Recheck {
        survivors: usize,
    },
    BackoffDue,
    /// sd_notify `READY=1` from the instance.
    NotifyReady,
    /// sd_notify `WATCHDOG=1` from the instance.
    WatchdogPing,
    /// sd_notify `MAINPID=pid` from the instance, `pid` checked to be one of its
    /// processes: its main process from now on.
    MainPid {
        pid: i32,
    },
    /// `Timer::Watchdog` fired.
    WatchdogDue,
    /// `restart -s` of a running, up service with `deployment.strategy: rolling`: start
    /// a new instance beside it.
    Roll,
    /// `Timer::Grace` fired.
    GraceOver,
    /// `Timer::RetireKill` fired.
    RetireDeadline,
    /// The new instance of a rolling restart printed "address already in use" (told
    /// just before its exit).
    AddressInUse,
    /// The old instance of a rolling restart was reaped.
    RetiredExited {
        status: ExitStatus,
    },
    /// A cron fire is due; `key` names the run in the history, `due` the instant.
    CronDue {
        key: String,
        due: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the service's command; the result comes back as `Spawned`/`SpawnFailed`.
    Spawn,
    /// Spawn the `skip` check; the result comes back as `CheckSpawned`/`CheckFailed`.
    SpawnCheck,
    /// Run `pre_start`; the result comes back as `PreStartDone`.
    RunPreStart,
    /// SIGKILL the skip check's group.
    KillCheck {
        pid: i32,
    },
    /// `sig` to the instance's group and to every process carrying its markers.
    Signal {
        sig: i32,
    },
    /// SIGKILL to the group and to every survivor the loop can find.
    KillAll,
    /// `sig` to the group of a rolling restart's old instance and to its main process.
    SignalRetired {
        pid: i32,
        group: i32,
        sig: i32,
    },
    /// A rolling restart is over: the new instance is up (`ok`), or it failed and the
    /// old one runs on. Answers whoever asked for it.
    RollDone {
        ok: bool,
        message: String,
    },
    /// The old instance of a rolling restart is the service's instance again (the new
    /// one failed, or could not bind and a plain restart follows, with the spec the
    /// roll was for when `new_spec`).
    Reinstated {
        new_spec: bool,
    },
    Arm(Timer, Duration),
    /// Start one health-probe attempt.
    Probe,
    Hook {
        event: HookEvent,
        outcome: Outcome,
        exit: Option<ExitStatus>,
        pid: Option<i32>,
    },
    /// Re-arm the cron schedule from now / disarm it.
    ArmCron,
    DisarmCron,
    /// Cron history: a run began, was skipped, or finished.
    CronBegin {
        key: String,
    },
    CronSkipped {
        key: String,
    },
    CronFinished {
        key: String,
        uptime: Duration,
        status: ExitStatus,
    },
    /// A failure that ends the service (for a foreground supervisor's exit code).
    Failure {
        code: i32,
    },
    /// A requested stop is over (the service may be starting again): answer its waiters.
    StopDone,
    Log(Level, String),
}

mod queries;
mod steps;
mod table;

pub use table::on_event;

#[cfg(test)]
mod tests;
