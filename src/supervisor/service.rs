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
}

/// One live instance of the service: a process leading its own group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub pid: i32,
    pub started: Instant,
    /// Started by the restart policy (fires `on_restart.success` once up).
    pub restarted: bool,
    /// Passed the up rule: alive for [`UP_AFTER`], or its health check passed.
    pub up: bool,
    pub probe_failures: u32,
    /// For a cron run: its `started_at` key in the run history.
    pub cron_key: Option<String>,
}

/// What a stop is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// The instance's leader is alive.
    Alive(Instance),
    /// The leader was reaped; members of its group (or marked escapees) are left.
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

impl Phase {
    /// For the transition log.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Pending { waiting_for: None } => "pending",
            Phase::Pending {
                waiting_for: Some(_),
            } => "waiting",
            Phase::Checking { .. } => "checking",
            Phase::Starting { .. } => "starting",
            Phase::Running(i) if i.up => "up",
            Phase::Running(_) => "running",
            Phase::Stopping { .. } => "stopping",
            Phase::Backoff { .. } => "backoff",
            Phase::Idle => "idle",
            Phase::Completed => "completed",
            Phase::Exited => "exited",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
            Phase::Skipped => "skipped",
        }
    }
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

impl Service {
    /// A service as configured, before anything happened to it.
    pub fn new(spec: &Spec) -> Service {
        Service {
            phase: if spec.cron.is_some() {
                Phase::Idle
            } else {
                Phase::Pending { waiting_for: None }
            },
            epoch: 0,
            consecutive: 0,
            restart_count: 0,
            last_exit: None,
            last_started: None,
            reason: None,
            spawn_error: None,
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.epoch += 1;
    }

    /// The state a client sees.
    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Pending { waiting_for: None } => State::Pending,
            Phase::Pending {
                waiting_for: Some(_),
            } => State::Waiting,
            Phase::Checking { .. } | Phase::Starting { .. } => State::Pending,
            Phase::Running(_) => State::Running,
            Phase::Stopping { .. } => State::Stopping,
            Phase::Backoff { .. } => State::Backoff,
            Phase::Idle => State::Idle,
            Phase::Completed | Phase::Exited => State::Exited,
            Phase::Failed => State::Failed,
            Phase::Stopped => State::Stopped,
            Phase::Skipped => State::Skipped,
        }
    }

    /// The live instance, if its leader has not exited.
    pub fn live(&self) -> Option<&Instance> {
        match &self.phase {
            Phase::Running(inst)
            | Phase::Stopping {
                leader: Leader::Alive(inst),
                ..
            } => Some(inst),
            _ => None,
        }
    }

    /// The process group the instance being run or stopped leads.
    pub fn group(&self) -> Option<i32> {
        match &self.phase {
            Phase::Running(inst)
            | Phase::Stopping {
                leader: Leader::Alive(inst) | Leader::Exited(inst, _),
                ..
            } => Some(inst.pid),
            _ => None,
        }
    }

    pub fn check_pid(&self) -> Option<i32> {
        match self.phase {
            Phase::Checking { pid, .. } => pid,
            _ => None,
        }
    }

    /// Whether a stop is looking for marked escapees too (an own exit checks the group).
    pub fn stop_requested(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stopping {
                intent: Some(_),
                ..
            }
        )
    }

    /// A stop whose leader is gone: it is over once nothing of the instance is left.
    pub fn awaits_group(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stopping {
                leader: Leader::Exited(..) | Leader::Strays,
                ..
            }
        )
    }

    /// Has a process (or a skip check) the loop still has to see die.
    pub fn has_processes(&self) -> bool {
        matches!(
            self.phase,
            Phase::Checking { .. }
                | Phase::Starting { .. }
                | Phase::Running(_)
                | Phase::Stopping { .. }
        )
    }

    /// Can run again without a request: something is scheduled or alive.
    pub fn is_active(&self) -> bool {
        self.has_processes() || matches!(self.phase, Phase::Pending { .. } | Phase::Backoff { .. })
    }

    pub fn is_up(&self) -> bool {
        matches!(&self.phase, Phase::Running(inst) if inst.up)
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.phase, Phase::Pending { .. })
    }

    pub fn waiting_for(&self) -> Option<&str> {
        match &self.phase {
            Phase::Pending { waiting_for } => waiting_for.as_deref(),
            _ => None,
        }
    }

    pub fn restart_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Backoff { until } => Some(until),
            _ => None,
        }
    }

    /// Up, done, or skipped: its dependents may start.
    pub fn satisfies_dependents(&self) -> bool {
        self.is_up() || matches!(self.phase, Phase::Completed | Phase::Skipped)
    }

    /// Can never satisfy dependents unless someone starts it again by hand.
    pub fn blocks_dependents(&self) -> bool {
        matches!(self.phase, Phase::Failed | Phase::Stopped | Phase::Exited)
    }

    /// A start by hand (`start -s`, `restart -s`) begins a fresh history.
    fn start_fresh(&mut self, spec: &Spec, out: &mut Vec<Action>) {
        self.consecutive = 0;
        self.restart_count = 0;
        self.reason = None;
        self.spawn_error = None;
        self.last_exit = None;
        if spec.cron.is_some() {
            self.enter(Phase::Idle);
            out.push(Action::ArmCron);
        } else {
            self.enter(Phase::Pending { waiting_for: None });
        }
    }
}

/// The table: where `svc` goes on `ev`, and what the loop must do about it.
pub fn on_event(spec: &Spec, svc: &Service, ev: Event, now: Instant) -> (Service, Vec<Action>) {
    let mut next = svc.clone();
    let mut out = Vec::new();
    let name = spec.name.as_str();
    let is_cron = spec.cron.is_some();
    match (&svc.phase, ev) {
        // ----- getting started -----------------------------------------------------
        (Phase::Pending { .. }, Event::Deps(Verdict::Blocked(dep))) => {
            out.push(log(
                Level::Warn,
                format!("{name}: not started: dependency {dep} failed"),
            ));
            next.reason = Some(format!("dependency {dep} failed"));
            next.enter(Phase::Failed);
        }
        (Phase::Pending { waiting_for }, Event::Deps(Verdict::Wait(dep)))
            if waiting_for.as_deref() != Some(dep.as_str()) =>
        {
            out.push(log(Level::Debug, format!("{name}: waiting for {dep}")));
            next.phase = Phase::Pending {
                waiting_for: Some(dep),
            };
        }
        (Phase::Pending { .. }, Event::Deps(Verdict::Ready)) if spec.skip.is_some() => {
            next.enter(Phase::Checking {
                pid: None,
                stop: None,
            });
            out.push(Action::SpawnCheck);
        }
        (Phase::Pending { .. }, Event::Deps(Verdict::Ready)) => {
            begin_spawn(&mut next, &mut out, false, None);
        }
        (_, Event::Start) if !svc.has_processes() => next.start_fresh(spec, &mut out),

        // ----- the skip check ------------------------------------------------------
        (Phase::Checking { pid: None, stop }, Event::CheckSpawned { pid }) => {
            out.push(log(Level::Debug, format!("{name}: running skip check")));
            next.phase = Phase::Checking {
                pid: Some(pid),
                stop: *stop,
            };
            out.push(Action::Arm(Timer::CheckDeadline, CHECK_TIMEOUT));
        }
        (Phase::Checking { .. }, Event::CheckFailed { error }) => {
            out.push(log(
                Level::Warn,
                format!("{name}: skip check could not run ({error}); starting it"),
            ));
            begin_spawn(&mut next, &mut out, false, None);
        }
        (Phase::Checking { pid: Some(pid), .. }, Event::CheckDeadline) => {
            out.push(log(
                Level::Warn,
                format!(
                    "{name}: skip check still running after {}s; killing it and starting the service",
                    CHECK_TIMEOUT.as_secs()
                ),
            ));
            out.push(Action::KillCheck { pid: *pid });
        }
        (Phase::Checking { pid, stop }, Event::CheckExited { status }) => {
            if let Some(pid) = *pid {
                // Whatever the check left in its group goes with it.
                out.push(Action::KillCheck { pid });
            }
            match stop {
                Some(StopIntent::Restart) => {
                    next.start_fresh(spec, &mut out);
                    out.push(Action::StopDone);
                }
                Some(_) => {
                    next.enter(Phase::Stopped);
                    out.push(Action::StopDone);
                }
                None if status.success() => {
                    out.push(log(
                        Level::Info,
                        format!("{name} skipped (skip check exited 0)"),
                    ));
                    next.enter(Phase::Skipped);
                }
                None => begin_spawn(&mut next, &mut out, false, None),
            }
        }
        (Phase::Checking { pid, stop }, Event::Stop { intent, .. }) => {
            next.phase = Phase::Checking {
                pid: *pid,
                stop: Some(keep_shutdown(*stop, intent)),
            };
            if let Some(pid) = *pid {
                out.push(Action::KillCheck { pid });
            }
        }

        // ----- spawning ------------------------------------------------------------
        (
            Phase::Starting {
                restarted,
                cron_key,
            },
            Event::Spawned { pid, wall },
        ) => {
            out.push(log(Level::Info, format!("started {name} (pid {pid})")));
            next.last_started = Some(wall);
            next.reason = None;
            next.spawn_error = None;
            next.enter(Phase::Running(Instance {
                pid,
                started: now,
                restarted: *restarted,
                up: false,
                probe_failures: 0,
                cron_key: cron_key.clone(),
            }));
            // With a health check the first probe goes at once: readiness then has no
            // fixed floor. Without one, the 1 s rule applies.
            out.push(match spec.health_check {
                Some(_) => Action::Arm(Timer::Probe, Duration::ZERO),
                None => Action::Arm(Timer::Up, UP_AFTER),
            });
        }
        (Phase::Starting { cron_key, .. }, Event::SpawnFailed { error }) => {
            out.push(log(Level::Error, format!("{name}: cannot start: {error}")));
            next.reason = Some(format!("cannot start: {error}"));
            next.spawn_error = Some(format!("cannot start {name}: {error}"));
            out.push(hook(HookEvent::Start, Outcome::Error, None, None));
            if is_cron {
                // Recorded like `sh` reports a command it cannot run; the next fire is
                // the retry.
                if let Some(key) = cron_key.clone() {
                    out.push(Action::CronFinished {
                        key,
                        uptime: Duration::ZERO,
                        status: ExitStatus::Code(127),
                    });
                }
                next.enter(Phase::Idle);
            } else {
                // Like an exit with 127 before up: the policy may try again.
                let ended = Ended {
                    status: ExitStatus::Code(127),
                    unhealthy: false,
                    uptime: Duration::ZERO,
                };
                apply_policy(spec, &mut next, &mut out, ended, false, None, now);
            }
        }

        // ----- running -------------------------------------------------------------
        (Phase::Running(inst), Event::UpTimer) if !inst.up => {
            mark_up(name, &mut next, &mut out);
        }
        (Phase::Running(inst), Event::ProbeDue) if !inst.up => out.push(Action::Probe),
        (Phase::Running(inst), Event::ProbeFailedToLaunch { error }) if !inst.up => {
            out.push(log(
                Level::Warn,
                format!("{name}: cannot start a health probe ({error}); retrying"),
            ));
            if let Some(check) = &spec.health_check {
                out.push(Action::Arm(Timer::Probe, check.interval));
            }
        }
        (
            Phase::Running(inst),
            Event::ProbeResult {
                healthy: true,
                detail,
            },
        ) if !inst.up => {
            out.push(log(
                Level::Debug,
                format!("{name}: health check passed ({detail})"),
            ));
            mark_up(name, &mut next, &mut out);
        }
        (
            Phase::Running(inst),
            Event::ProbeResult {
                healthy: false,
                detail,
            },
        ) if !inst.up => {
            let Some(check) = &spec.health_check else {
                return (next, out);
            };
            let failures = inst.probe_failures + 1;
            if let Phase::Running(i) = &mut next.phase {
                i.probe_failures = failures;
            }
            if failures < check.retries {
                out.push(log(
                    Level::Debug,
                    format!(
                        "{name}: health check failed ({failures}/{}): {detail}",
                        check.retries
                    ),
                ));
                out.push(Action::Arm(Timer::Probe, check.interval));
            } else {
                out.push(log(
                    Level::Warn,
                    format!(
                        "{name}: health check failed {failures} times, last: {detail}; stopping it"
                    ),
                ));
                next.reason = Some(format!("health check failed {failures} times: {detail}"));
                let inst = match &next.phase {
                    Phase::Running(i) => i.clone(),
                    _ => inst.clone(),
                };
                begin_stop(
                    spec,
                    &mut next,
                    &mut out,
                    Leader::Alive(inst),
                    StopIntent::Unhealthy,
                );
            }
        }
        (Phase::Running(inst), Event::Stop { intent, .. }) => {
            begin_stop(
                spec,
                &mut next,
                &mut out,
                Leader::Alive(inst.clone()),
                intent,
            );
        }
        (Phase::Running(inst), Event::LeaderExited { status, survivors }) => {
            out.push(log(
                Level::Info,
                format!(
                    "{name} exited ({}) after {:.1}s",
                    describe(status),
                    now.saturating_duration_since(inst.started).as_secs_f64()
                ),
            ));
            next.last_exit = Some(status);
            if survivors == 0 {
                conclude(
                    spec,
                    &mut next,
                    &mut out,
                    Leader::Exited(inst.clone(), status),
                    None,
                    now,
                );
            } else {
                // The group lives on: clean up before deciding, so a restart never runs
                // beside the remains of the previous instance.
                out.push(log(
                    Level::Debug,
                    format!("{name}: stopping leftover processes of the exited instance"),
                ));
                next.enter(Phase::Stopping {
                    leader: Leader::Exited(inst.clone(), status),
                    intent: None,
                });
                out.push(Action::Signal {
                    sig: spec.stop_signal,
                });
                out.push(Action::Arm(Timer::Kill, spec.stop_timeout));
            }
        }

        // ----- stopping ------------------------------------------------------------
        (
            Phase::Stopping {
                leader,
                intent: None,
            },
            Event::Stop { intent, .. },
        ) => {
            // Cleaning up after an own exit: the stop takes over, with its own deadline.
            begin_stop(spec, &mut next, &mut out, leader.clone(), intent);
        }
        (
            Phase::Stopping {
                leader,
                intent: Some(current),
            },
            Event::Stop { intent, .. },
        ) => {
            // The stop under way keeps its signal and deadline; only what follows changes.
            if is_cron && intent != StopIntent::Unhealthy {
                out.push(Action::DisarmCron);
            }
            next.phase = Phase::Stopping {
                leader: leader.clone(),
                intent: Some(keep_shutdown(Some(*current), intent)),
            };
        }
        (
            Phase::Stopping {
                leader: Leader::Alive(inst),
                intent,
            },
            Event::LeaderExited { status, survivors },
        ) => {
            out.push(log(
                Level::Debug,
                format!("{name} leader exited ({})", describe(status)),
            ));
            next.last_exit = Some(status);
            let leader = Leader::Exited(inst.clone(), status);
            if survivors == 0 {
                conclude(spec, &mut next, &mut out, leader, *intent, now);
            } else {
                // Same stop, same deadline: the epoch stays.
                next.phase = Phase::Stopping {
                    leader,
                    intent: *intent,
                };
            }
        }
        (
            Phase::Stopping {
                leader: leader @ (Leader::Exited(..) | Leader::Strays),
                intent,
            },
            Event::GroupGone
            | Event::KillDeadline { survivors: 0 }
            | Event::Recheck { survivors: 0 },
        ) => {
            conclude(spec, &mut next, &mut out, leader.clone(), *intent, now);
        }
        (Phase::Stopping { .. }, Event::KillDeadline { survivors }) if survivors > 0 => {
            out.push(log(
                Level::Warn,
                format!("{name}: {survivors} process(es) still alive after stop_timeout; sending SIGKILL"),
            ));
            out.push(Action::KillAll);
            out.push(Action::Arm(Timer::Recheck, KILL_RECHECK));
        }
        (Phase::Stopping { .. }, Event::Recheck { survivors }) if survivors > 0 => {
            out.push(Action::KillAll);
            out.push(Action::Arm(Timer::Recheck, KILL_RECHECK));
        }

        // ----- restarting and cron -------------------------------------------------
        (Phase::Backoff { .. }, Event::BackoffDue) => begin_spawn(&mut next, &mut out, true, None),
        (Phase::Idle, Event::CronDue { key, .. }) => {
            out.push(Action::CronBegin { key: key.clone() });
            begin_spawn(&mut next, &mut out, false, Some(key));
        }
        (
            Phase::Starting { .. } | Phase::Running(_) | Phase::Stopping { .. },
            Event::CronDue { key, due },
        ) => {
            out.push(log(
                Level::Info,
                format!("{name}: run due at {due} skipped (still running)"),
            ));
            out.push(Action::CronSkipped { key });
        }

        // ----- a stop with no instance ---------------------------------------------
        (_, Event::Stop { intent, strays }) if !svc.has_processes() => {
            if is_cron && intent != StopIntent::Unhealthy {
                out.push(Action::DisarmCron);
            }
            if strays > 0 {
                out.push(log(
                    Level::Info,
                    format!(
                        "{name}: stopping {strays} leftover process(es) of an earlier instance"
                    ),
                ));
                begin_stop(spec, &mut next, &mut out, Leader::Strays, intent);
                return (next, out);
            }
            match intent {
                StopIntent::Restart if is_cron => {
                    next.enter(Phase::Idle);
                    out.push(Action::ArmCron);
                }
                StopIntent::Restart => next.enter(Phase::Pending { waiting_for: None }),
                StopIntent::Stop | StopIntent::Unhealthy => next.enter(Phase::Stopped),
                StopIntent::Shutdown if svc.is_active() => next.enter(Phase::Stopped),
                StopIntent::Shutdown => {}
            }
        }

        // Everything else is stale (a timer or result of an earlier phase) or cannot
        // happen in this state: nothing changes.
        _ => {}
    }
    (next, out)
}

fn log(level: Level, msg: String) -> Action {
    Action::Log(level, msg)
}

fn hook(event: HookEvent, outcome: Outcome, exit: Option<ExitStatus>, pid: Option<i32>) -> Action {
    Action::Hook {
        event,
        outcome,
        exit,
        pid,
    }
}

/// A shutdown stays a shutdown whatever is asked after it.
fn keep_shutdown(current: Option<StopIntent>, asked: StopIntent) -> StopIntent {
    match current {
        Some(StopIntent::Shutdown) => StopIntent::Shutdown,
        _ => asked,
    }
}

fn begin_spawn(
    next: &mut Service,
    out: &mut Vec<Action>,
    restarted: bool,
    cron_key: Option<String>,
) {
    next.enter(Phase::Starting {
        restarted,
        cron_key,
    });
    out.push(Action::Spawn);
}

fn mark_up(name: &str, next: &mut Service, out: &mut Vec<Action>) {
    let Phase::Running(inst) = &mut next.phase else {
        return;
    };
    inst.up = true;
    out.push(log(Level::Info, format!("{name} is up")));
    let pid = Some(inst.pid);
    out.push(hook(HookEvent::Start, Outcome::Success, None, pid));
    if inst.restarted {
        out.push(hook(HookEvent::Restart, Outcome::Success, None, pid));
    }
}

fn begin_stop(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    leader: Leader,
    intent: StopIntent,
) {
    if spec.cron.is_some() && intent != StopIntent::Unhealthy && !out.contains(&Action::DisarmCron)
    {
        // An unhealthy cron run is only a failed run: the schedule goes on.
        out.push(Action::DisarmCron);
    }
    let pid = match &leader {
        Leader::Alive(i) | Leader::Exited(i, _) => Some(i.pid),
        Leader::Strays => None,
    };
    if let Some(pid) = pid {
        out.push(log(
            Level::Info,
            format!(
                "stopping {} (pid {pid}, {})",
                spec.name,
                crate::config::signal_name(spec.stop_signal)
            ),
        ));
    }
    next.enter(Phase::Stopping {
        leader,
        intent: Some(intent),
    });
    out.push(Action::Signal {
        sig: spec.stop_signal,
    });
    out.push(Action::Arm(Timer::Kill, spec.stop_timeout));
}

/// Every process of the instance is gone: apply the stop's intent, or the restart policy.
fn conclude(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    leader: Leader,
    intent: Option<StopIntent>,
    now: Instant,
) {
    let name = spec.name.as_str();
    let (inst, status) = match leader {
        Leader::Exited(inst, status) => (Some(inst), status),
        Leader::Alive(inst) => (Some(inst), ExitStatus::Signal(libc::SIGKILL)),
        Leader::Strays => (None, ExitStatus::Signal(libc::SIGKILL)),
    };
    let uptime = inst
        .as_ref()
        .map_or(Duration::ZERO, |i| now.saturating_duration_since(i.started));
    let pid = inst.as_ref().map(|i| i.pid);
    if let Some(key) = inst.as_ref().and_then(|i| i.cron_key.clone()) {
        out.push(Action::CronFinished {
            key,
            uptime,
            status,
        });
    }
    let unhealthy = intent == Some(StopIntent::Unhealthy);
    if let Some(intent) = intent.filter(|_| !unhealthy) {
        out.push(log(Level::Info, format!("{name} stopped")));
        if inst.is_some() {
            out.push(hook(HookEvent::Stop, Outcome::Success, Some(status), pid));
        }
        match intent {
            StopIntent::Restart => next.start_fresh(spec, out),
            _ => next.enter(Phase::Stopped),
        }
        out.push(Action::StopDone);
        return;
    }
    let was_up = inst.as_ref().is_some_and(|i| i.up);
    let failed = unhealthy || !status.success();
    if failed && !was_up {
        out.push(hook(HookEvent::Start, Outcome::Error, Some(status), pid));
    }
    let outcome = if failed {
        Outcome::Error
    } else {
        Outcome::Success
    };
    out.push(hook(HookEvent::Stop, outcome, Some(status), pid));
    if spec.cron.is_some() {
        // A failed run is never retried by policy: the next fire is the retry.
        next.enter(Phase::Idle);
        return;
    }
    let ended = Ended {
        status,
        unhealthy,
        uptime,
    };
    apply_policy(spec, next, out, ended, was_up, pid, now);
}

/// A failure or an exit on its own: the restart policy decides what comes next.
fn apply_policy(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    ended: Ended,
    was_up: bool,
    pid: Option<i32>,
    now: Instant,
) {
    let name = spec.name.as_str();
    let status = ended.status;
    match policy::after_exit(&Policy::of(spec), next.consecutive, &ended) {
        Next::Completed => {
            next.consecutive = 0;
            next.enter(Phase::Completed);
        }
        Next::Exited => {
            if !was_up && next.reason.is_none() {
                next.reason = Some("failed before it was up".into());
            }
            next.enter(Phase::Exited);
            out.push(Action::Failure {
                code: status.as_code(),
            });
        }
        Next::Restart { delay, consecutive } => {
            out.push(hook(HookEvent::Restart, Outcome::Error, Some(status), pid));
            next.consecutive = consecutive;
            next.restart_count += 1;
            out.push(log(
                Level::Info,
                format!(
                    "{name}: restarting in {} ms (restart {})",
                    delay.as_millis(),
                    next.restart_count
                ),
            ));
            next.enter(Phase::Backoff { until: now + delay });
            out.push(Action::Arm(Timer::Backoff, delay));
        }
        Next::GiveUp { restarts } => {
            let plural = if restarts == 1 { "" } else { "s" };
            out.push(log(
                Level::Warn,
                format!("{name}: gave up after {restarts} restart{plural}"),
            ));
            next.reason = Some(format!("gave up after {restarts} restart{plural}"));
            next.enter(Phase::Failed);
            out.push(Action::Failure {
                code: status.as_code(),
            });
        }
    }
}

pub fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exit code {c}"),
        ExitStatus::Signal(s) => crate::config::signal_name(s),
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
