//! The lifecycle table, cell by cell, with no processes.

use super::*;
use crate::config::{CronSpec, HealthCheck, Hooks, LogLimits, Probe, RestartPolicy, Timezone};
use std::path::PathBuf;
use std::str::FromStr;

const PID: i32 = 4242;
const CHECK_PID: i32 = 4343;

// ----- specs -----------------------------------------------------------------------

/// A service with the loader's defaults: `never`, 1 s backoff, TERM, 10 s stop timeout.
fn spec() -> Spec {
    Spec {
        name: "api".into(),
        command: "sleep 10".into(),
        working_dir: PathBuf::from("."),
        env: Vec::new(),
        restart_policy: RestartPolicy::Never,
        backoff: secs(1),
        backoff_max: None,
        max_restarts: None,
        depends_on: Vec::new(),
        skip: None,
        stop_signal: libc::SIGTERM,
        stop_timeout: secs(10),
        health_check: None,
        hooks: Hooks::default(),
        cron: None,
        logs: LogLimits::default(),
        exec: true,
        restart_with: Vec::new(),
        pre_start: None,
        deployment: Default::default(),
        run_as: None,
        umask: None,
        limits: Vec::new(),
        cgroup_limits: Default::default(),
        notify: false,
        watchdog: None,
    }
}

fn on_failure(max_restarts: Option<u32>) -> Spec {
    Spec {
        restart_policy: RestartPolicy::OnFailure,
        max_restarts,
        ..spec()
    }
}

fn with_skip() -> Spec {
    Spec {
        skip: Some("test -n \"$CI\"".into()),
        ..spec()
    }
}

/// Probes every 500 ms, three attempts.
fn health_check() -> HealthCheck {
    HealthCheck {
        probe: Probe::Command("true".into()),
        interval: ms(500),
        timeout: secs(5),
        retries: 3,
        liveness: false,
    }
}

fn healthy(base: Spec) -> Spec {
    Spec {
        health_check: Some(health_check()),
        ..base
    }
}

fn cron_job() -> Spec {
    Spec {
        cron: Some(CronSpec {
            expression: "*/10 * * * * *".into(),
            schedule: cron::Schedule::from_str("*/10 * * * * *").unwrap(),
            timezone: Timezone::Utc,
        }),
        ..spec()
    }
}

// ----- facts and actions -----------------------------------------------------------

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

fn sig(s: i32) -> ExitStatus {
    ExitStatus::Signal(s)
}

fn spawned(pid: i32) -> Event {
    Event::Spawned {
        pid,
        wall: SystemTime::UNIX_EPOCH + secs(1_000),
    }
}

fn exited(status: ExitStatus, survivors: usize) -> Event {
    Event::LeaderExited { status, survivors }
}

fn stop(intent: StopIntent) -> Event {
    Event::Stop { intent, strays: 0 }
}

fn fire(key: &str) -> Event {
    Event::CronDue {
        key: key.into(),
        due: format!("{key} UTC"),
    }
}

fn unhealthy_probe(detail: &str) -> Event {
    Event::ProbeResult {
        healthy: false,
        detail: detail.into(),
    }
}

fn hook(event: HookEvent, outcome: Outcome, exit: Option<ExitStatus>, pid: Option<i32>) -> Action {
    Action::Hook {
        event,
        outcome,
        exit,
        pid,
    }
}

fn on_start_success() -> Action {
    hook(HookEvent::Start, Outcome::Success, None, Some(PID))
}

fn on_start_error(status: ExitStatus) -> Action {
    hook(HookEvent::Start, Outcome::Error, Some(status), Some(PID))
}

fn on_stop_success(status: ExitStatus) -> Action {
    hook(HookEvent::Stop, Outcome::Success, Some(status), Some(PID))
}

fn on_stop_error(status: ExitStatus) -> Action {
    hook(HookEvent::Stop, Outcome::Error, Some(status), Some(PID))
}

fn on_restart_success() -> Action {
    hook(HookEvent::Restart, Outcome::Success, None, Some(PID))
}

fn on_restart_error(status: ExitStatus) -> Action {
    hook(HookEvent::Restart, Outcome::Error, Some(status), Some(PID))
}

fn signal_term() -> Action {
    Action::Signal { sig: libc::SIGTERM }
}

fn arm(timer: Timer, after: Duration) -> Action {
    Action::Arm(timer, after)
}

fn without_logs(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Log(..)))
        .collect()
}

fn logs(actions: &[Action]) -> Vec<(Level, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(level, msg) => Some((*level, msg.clone())),
            _ => None,
        })
        .collect()
}

// ----- the driver ------------------------------------------------------------------

/// One cell: where `svc` goes on `ev` at `now`, and what the loop must do (logs included).
fn step(spec: &Spec, svc: &Service, ev: Event, now: Instant) -> (Service, Vec<Action>) {
    on_event(spec, svc, ev, now)
}

/// A service, its spec and a clock that moves only when told to.
struct Unit {
    spec: Spec,
    svc: Service,
    now: Instant,
}

impl Unit {
    fn new(spec: Spec) -> Unit {
        let svc = Service::new(&spec);
        Unit {
            spec,
            svc,
            now: Instant::now(),
        }
    }

    /// Delivers `ev` now; the actions without `Log`.
    fn on(&mut self, ev: Event) -> Vec<Action> {
        without_logs(self.on_logged(ev))
    }

    /// Delivers `ev` now; every action, logs included.
    fn on_logged(&mut self, ev: Event) -> Vec<Action> {
        let (next, actions) = step(&self.spec, &self.svc, ev, self.now);
        self.svc = next;
        actions
    }

    fn wait(&mut self, d: Duration) -> &mut Unit {
        self.now += d;
        self
    }

    fn phase(&self) -> &Phase {
        &self.svc.phase
    }

    fn instance(&self) -> Instance {
        match self.phase() {
            Phase::Running(inst) => inst.clone(),
            other => panic!("expected a running instance, got {other:?}"),
        }
    }
}

/// Started (no skip check, not a cron job) and spawned as [`PID`], not up yet.
fn running(spec: Spec) -> Unit {
    assert!(spec.skip.is_none() && spec.cron.is_none());
    let mut u = Unit::new(spec);
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::Spawn]);
    u.on(spawned(PID));
    assert!(matches!(u.phase(), Phase::Running(_)));
    u
}

/// Running and past the up rule (no health check).
fn up(spec: Spec) -> Unit {
    let mut u = running(spec);
    u.wait(UP_AFTER).on(Event::UpTimer);
    assert!(u.svc.is_up());
    u
}

/// A cron job whose run `key` has been spawned as [`PID`].
fn cron_run(spec: Spec, key: &str) -> Unit {
    let mut u = Unit::new(spec);
    u.on(fire(key));
    u.on(spawned(PID));
    assert!(matches!(u.phase(), Phase::Running(_)));
    u
}

/// At the skip check, spawned as [`CHECK_PID`].
fn checking(spec: Spec) -> Unit {
    let mut u = Unit::new(spec);
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::SpawnCheck]);
    u.on(Event::CheckSpawned { pid: CHECK_PID });
    u
}

// ----- getting started -------------------------------------------------------------

fn with_pre_start() -> Spec {
    Spec {
        pre_start: Some(crate::config::Hook {
            command: "./migrate".into(),
            timeout: secs(30),
        }),
        ..spec()
    }
}

#[test]
fn pre_start_runs_first_and_its_success_spawns() {
    let mut u = Unit::new(with_pre_start());
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::RunPreStart]);
    assert!(matches!(u.phase(), Phase::PreStarting { stop: None, .. }));
    assert!(u.svc.has_processes(), "a shutdown waits for it");
    let ok = Event::PreStartDone {
        ok: true,
        detail: String::new(),
    };
    assert_eq!(u.on(ok), [Action::Spawn]);
    u.on(spawned(PID));
    assert!(matches!(u.phase(), Phase::Running(_)));
}

#[test]
fn a_failed_pre_start_is_a_failed_start_handled_by_the_policy() {
    let mut u = Unit::new(Spec {
        restart_policy: RestartPolicy::OnFailure,
        ..with_pre_start()
    });
    u.on(Event::Deps(Verdict::Ready));
    let failed = Event::PreStartDone {
        ok: false,
        detail: "exit code 3: no database".into(),
    };
    let actions = u.on(failed);
    assert!(
        actions.contains(&hook(HookEvent::Start, Outcome::Error, None, None)),
        "{actions:?}"
    );
    assert!(
        matches!(u.phase(), Phase::Backoff { .. }),
        "{:?}",
        u.phase()
    );
    assert_eq!(
        u.svc.reason.as_deref(),
        Some("cannot start: pre_start failed (exit code 3: no database)")
    );
    // The retry runs pre_start again.
    u.wait(secs(1));
    assert_eq!(u.on(Event::BackoffDue), [Action::RunPreStart]);
}

#[test]
fn a_stop_during_pre_start_applies_once_it_is_done() {
    let mut u = Unit::new(with_pre_start());
    u.on(Event::Deps(Verdict::Ready));
    assert!(u.on(stop(StopIntent::Stop)).is_empty());
    let ok = Event::PreStartDone {
        ok: true,
        detail: String::new(),
    };
    assert_eq!(u.on(ok), [Action::StopDone]);
    assert_eq!(u.phase(), &Phase::Stopped);
}

#[test]
fn a_new_service_is_pending_and_a_new_cron_job_idle() {
    let u = Unit::new(spec());
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert!(u.svc.is_active() && !u.svc.has_processes());
    let c = Unit::new(cron_job());
    assert_eq!(*c.phase(), Phase::Idle);
    assert_eq!(c.svc.state(), State::Idle);
}

#[test]
fn ready_dependencies_spawn_the_service() {
    let mut u = Unit::new(spec());
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::Spawn]);
    assert_eq!(
        *u.phase(),
        Phase::Starting {
            restarted: false,
            cron_key: None
        }
    );
}

#[test]
fn waiting_for_a_dependency_names_it_once() {
    let mut u = Unit::new(spec());
    let epoch = u.svc.epoch;
    let first = u.on_logged(Event::Deps(Verdict::Wait("db".into())));
    assert_eq!(logs(&first), [(Level::Debug, "api: waiting for db".into())]);
    assert_eq!(u.svc.waiting_for(), Some("db"));
    assert_eq!(u.svc.state(), State::Waiting);
    assert_eq!(u.on_logged(Event::Deps(Verdict::Wait("db".into()))), []);
    assert_eq!(u.svc.epoch, epoch, "waiting arms nothing: no new epoch");
}

#[test]
fn dependency_blocked_fails_with_a_reason() {
    let mut u = Unit::new(spec());
    u.on(Event::Deps(Verdict::Wait("db".into())));
    assert_eq!(u.on(Event::Deps(Verdict::Blocked("db".into()))), []);
    assert_eq!(*u.phase(), Phase::Failed);
    assert_eq!(u.svc.reason.as_deref(), Some("dependency db failed"));
    assert!(u.svc.blocks_dependents());
}

#[test]
fn spawned_arms_the_up_timer_and_records_the_start() {
    let mut u = Unit::new(spec());
    u.svc.reason = Some("cannot start: earlier".into());
    u.on(Event::Deps(Verdict::Ready));
    assert_eq!(u.on(spawned(PID)), [arm(Timer::Up, UP_AFTER)]);
    let want = Instance {
        pid: PID,
        group: PID,
        started: u.now,
        restarted: false,
        up: false,
        probe_failures: 0,
        cron_key: None,
        watchdog_at: None,
    };
    assert_eq!(u.instance(), want);
    assert_eq!(
        u.svc.last_started,
        Some(SystemTime::UNIX_EPOCH + secs(1_000))
    );
    assert_eq!(u.svc.reason, None);
    assert_eq!(u.svc.live().map(|i| i.pid), Some(PID));
    assert!(!u.svc.satisfies_dependents(), "running is not up yet");
}

#[test]
fn with_a_health_check_the_first_probe_goes_at_once() {
    let mut u = Unit::new(healthy(spec()));
    u.on(Event::Deps(Verdict::Ready));
    assert_eq!(u.on(spawned(PID)), [arm(Timer::Probe, Duration::ZERO)]);
}

#[test]
fn up_timer_marks_it_up_and_fires_on_start_success() {
    let mut u = running(spec());
    assert_eq!(u.wait(UP_AFTER).on(Event::UpTimer), [on_start_success()]);
    assert!(u.svc.is_up() && u.svc.satisfies_dependents());
    assert_eq!(u.phase().name(), "up");
    assert_eq!(u.on(Event::UpTimer), [], "up once, hooks once");
}

#[test]
fn up_timer_of_an_earlier_instance_is_ignored() {
    let mut u = running(on_failure(None));
    let first = u.svc.epoch;
    u.wait(ms(300)).on(exited(code(1), 0));
    assert_ne!(
        u.svc.epoch, first,
        "the crash ends the epoch its Up timer was armed in"
    );
    let before = u.svc.clone();
    assert_eq!(u.on_logged(Event::UpTimer), []);
    assert_eq!(
        u.svc, before,
        "an Up timer that slips through changes nothing in backoff"
    );
    u.wait(secs(1)).on(Event::BackoffDue);
    u.on(spawned(PID + 1));
    assert_ne!(
        u.svc.epoch, first,
        "the new instance has an epoch of its own"
    );
    assert!(!u.instance().up);
}

#[test]
fn spawn_failure_fires_on_start_error_and_goes_to_the_policy() {
    let mut u = Unit::new(on_failure(None));
    u.on(Event::Deps(Verdict::Ready));
    let actions = u.on(Event::SpawnFailed {
        error: "No such file or directory".into(),
    });
    assert_eq!(
        actions,
        [
            hook(HookEvent::Start, Outcome::Error, None, None),
            hook(HookEvent::Restart, Outcome::Error, Some(code(127)), None),
            arm(Timer::Backoff, secs(1)),
        ]
    );
    assert_eq!(
        *u.phase(),
        Phase::Backoff {
            until: u.now + secs(1)
        }
    );
    assert_eq!(
        u.svc.reason.as_deref(),
        Some("cannot start: No such file or directory")
    );
    assert_eq!(
        u.svc.spawn_error.as_deref(),
        Some("cannot start api: No such file or directory")
    );
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (1, 1));
}

#[test]
fn spawn_failure_under_never_is_exited_with_127() {
    let mut u = Unit::new(spec());
    u.on(Event::Deps(Verdict::Ready));
    let actions = u.on(Event::SpawnFailed {
        error: "Permission denied".into(),
    });
    assert_eq!(
        actions,
        [
            hook(HookEvent::Start, Outcome::Error, None, None),
            Action::Failure { code: 127 },
        ]
    );
    assert_eq!(*u.phase(), Phase::Exited);
    assert_eq!(
        u.svc.reason.as_deref(),
        Some("cannot start: Permission denied")
    );
}

#[test]
fn start_while_running_is_ignored() {
    let mut u = up(spec());
    let before = u.svc.clone();
    assert_eq!(u.on_logged(Event::Start), []);
    assert_eq!(u.svc, before);
}

#[test]
fn start_after_giving_up_begins_a_fresh_history() {
    let mut u = running(on_failure(Some(0)));
    u.on(exited(code(2), 0));
    assert_eq!(*u.phase(), Phase::Failed);
    assert_eq!(u.on(Event::Start), []);
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (0, 0));
    assert_eq!((u.svc.reason.clone(), u.svc.last_exit), (None, None));
}

// ----- the skip check --------------------------------------------------------------

#[test]
fn ready_with_a_skip_check_runs_the_check_first() {
    let mut u = Unit::new(with_skip());
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::SpawnCheck]);
    assert_eq!(
        *u.phase(),
        Phase::Checking {
            pid: None,
            stop: None
        }
    );
    assert_eq!(
        u.on(Event::CheckSpawned { pid: CHECK_PID }),
        [arm(Timer::CheckDeadline, CHECK_TIMEOUT)]
    );
    assert_eq!(u.svc.check_pid(), Some(CHECK_PID));
    assert!(u.svc.has_processes());
}

#[test]
fn skip_check_exit_zero_skips() {
    let mut u = checking(with_skip());
    let actions = u.on(Event::CheckExited { status: code(0) });
    assert_eq!(actions, [Action::KillCheck { pid: CHECK_PID }]);
    assert_eq!(*u.phase(), Phase::Skipped);
    assert_eq!(u.svc.state(), State::Skipped);
    assert!(
        u.svc.satisfies_dependents(),
        "skipped counts as up for dependents"
    );
}

#[test]
fn skip_check_exit_nonzero_starts_the_service() {
    let mut u = checking(with_skip());
    let actions = u.on(Event::CheckExited { status: code(1) });
    assert_eq!(
        actions,
        [Action::KillCheck { pid: CHECK_PID }, Action::Spawn]
    );
    assert!(matches!(
        u.phase(),
        Phase::Starting {
            restarted: false,
            ..
        }
    ));
}

#[test]
fn skip_check_that_cannot_run_starts_the_service() {
    let mut u = Unit::new(with_skip());
    u.on(Event::Deps(Verdict::Ready));
    let actions = u.on(Event::CheckFailed {
        error: "fork failed".into(),
    });
    assert_eq!(actions, [Action::Spawn]);
    assert!(matches!(u.phase(), Phase::Starting { .. }));
}

#[test]
fn skip_check_past_its_deadline_is_killed_and_the_service_starts() {
    let mut u = checking(with_skip());
    let actions = u.wait(CHECK_TIMEOUT).on(Event::CheckDeadline);
    assert_eq!(actions, [Action::KillCheck { pid: CHECK_PID }]);
    assert!(matches!(u.phase(), Phase::Checking { stop: None, .. }));
    let actions = u.on(Event::CheckExited {
        status: sig(libc::SIGKILL),
    });
    assert_eq!(
        actions,
        [Action::KillCheck { pid: CHECK_PID }, Action::Spawn]
    );
}

#[test]
fn stop_during_skip_check_kills_it_and_ends_stopped() {
    let mut u = checking(with_skip());
    assert_eq!(
        u.on(stop(StopIntent::Stop)),
        [Action::KillCheck { pid: CHECK_PID }]
    );
    assert_eq!(
        *u.phase(),
        Phase::Checking {
            pid: Some(CHECK_PID),
            stop: Some(StopIntent::Stop)
        }
    );
    // Even a check that got to say "skip" before the kill landed: the stop decides.
    let actions = u.on(Event::CheckExited { status: code(0) });
    assert_eq!(
        actions,
        [Action::KillCheck { pid: CHECK_PID }, Action::StopDone]
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]
fn restart_during_skip_check_starts_afresh_once_the_check_is_gone() {
    let mut u = checking(with_skip());
    u.svc.restart_count = 4;
    u.on(stop(StopIntent::Restart));
    let actions = u.on(Event::CheckExited {
        status: sig(libc::SIGKILL),
    });
    assert_eq!(
        actions,
        [Action::KillCheck { pid: CHECK_PID }, Action::StopDone]
    );
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert_eq!(u.svc.restart_count, 0);
}

#[test]

fn check_that_cannot_run_after_a_stop_request_does_not_start_the_service() {
    let mut u = Unit::new(with_skip());
    u.on(Event::Deps(Verdict::Ready));
    assert_eq!(
        u.on(stop(StopIntent::Stop)),
        [],
        "no pid yet: nothing to kill"
    );
    let actions = u.on(Event::CheckFailed {
        error: "fork failed".into(),
    });
    assert_eq!(actions, [Action::StopDone]);
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]
fn a_shutdown_is_never_downgraded_by_a_later_restart_request() {
    // During the skip check.
    let mut u = checking(with_skip());
    u.on(stop(StopIntent::Shutdown));
    u.on(stop(StopIntent::Restart));
    u.on(Event::CheckExited { status: code(1) });
    assert_eq!(*u.phase(), Phase::Stopped);

    // While the instance is being stopped.
    let mut u = up(spec());
    u.on(stop(StopIntent::Shutdown));
    let epoch = u.svc.epoch;
    assert_eq!(u.on(stop(StopIntent::Restart)), []);
    assert_eq!(u.svc.epoch, epoch, "the shutdown keeps its deadline");
    assert!(matches!(
        u.phase(),
        Phase::Stopping {
            intent: Some(StopIntent::Shutdown),
            ..
        }
    ));
    let actions = u.on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(
        actions,
        [on_stop_success(sig(libc::SIGTERM)), Action::StopDone]
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

// ----- exits and the restart policy ------------------------------------------------

#[test]
fn exit_zero_completes_and_satisfies_dependents() {
    let mut u = up(Spec {
        restart_policy: RestartPolicy::Always,
        ..spec()
    });
    u.svc.consecutive = 2;
    assert_eq!(
        u.wait(secs(5)).on(exited(code(0), 0)),
        [on_stop_success(code(0))]
    );
    assert_eq!(*u.phase(), Phase::Completed);
    assert!(u.svc.satisfies_dependents() && !u.svc.is_active());
    assert_eq!(u.svc.last_exit, Some(code(0)));
    assert_eq!(u.svc.consecutive, 0);
}

#[test]
fn exit_zero_before_up_is_a_completed_one_shot() {
    let mut u = running(on_failure(None));
    assert_eq!(
        u.wait(ms(50)).on(exited(code(0), 0)),
        [on_stop_success(code(0))],
        "no on_start.error for a one-shot that finished its work"
    );
    assert_eq!(*u.phase(), Phase::Completed);
    assert!(u.svc.satisfies_dependents());
}

#[test]
fn failure_before_up_under_never_is_exited_and_fires_both_error_hooks() {
    let mut u = running(spec());
    let actions = u.wait(ms(200)).on(exited(code(3), 0));
    assert_eq!(
        actions,
        [
            on_start_error(code(3)),
            on_stop_error(code(3)),
            Action::Failure { code: 3 },
        ]
    );
    assert_eq!(*u.phase(), Phase::Exited);
    assert_eq!(u.svc.reason.as_deref(), Some("failed before it was up"));
    assert!(u.svc.blocks_dependents());
}

#[test]
fn failure_after_up_restarts_after_backoff_with_on_restart_error() {
    let mut u = up(Spec {
        backoff: secs(5),
        ..on_failure(None)
    });
    let actions = u.wait(secs(3)).on(exited(code(1), 0));
    assert_eq!(
        actions,
        [
            on_stop_error(code(1)),
            on_restart_error(code(1)),
            arm(Timer::Backoff, secs(5)),
        ]
    );
    assert_eq!(
        *u.phase(),
        Phase::Backoff {
            until: u.now + secs(5)
        }
    );
    assert_eq!(u.svc.restart_at(), Some(u.now + secs(5)));
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (1, 1));
    assert_eq!(u.svc.state(), State::Backoff);
}

#[test]
fn death_by_a_signal_not_sent_is_a_failure() {
    let mut u = up(on_failure(None));
    let actions = u.on(exited(sig(libc::SIGKILL), 0));
    assert_eq!(
        actions,
        [
            on_stop_error(sig(libc::SIGKILL)),
            on_restart_error(sig(libc::SIGKILL)),
            arm(Timer::Backoff, secs(1)),
        ]
    );
    assert_eq!(u.svc.last_exit, Some(sig(libc::SIGKILL)));
}

#[test]
fn backoff_due_spawns_a_restarted_instance() {
    let mut u = up(on_failure(None));
    u.on(exited(code(1), 0));
    assert_eq!(u.wait(secs(1)).on(Event::BackoffDue), [Action::Spawn]);
    assert_eq!(
        *u.phase(),
        Phase::Starting {
            restarted: true,
            cron_key: None
        }
    );
    u.on(spawned(PID));
    assert!(u.instance().restarted);
}

#[test]
fn restarted_instance_up_fires_on_restart_success() {
    let mut u = up(on_failure(None));
    u.on(exited(code(1), 0));
    u.wait(secs(1)).on(Event::BackoffDue);
    u.on(spawned(PID));
    assert_eq!(
        u.wait(UP_AFTER).on(Event::UpTimer),
        [on_start_success(), on_restart_success()]
    );
}

#[test]
fn max_restarts_used_up_gives_up_as_failed() {
    let mut u = running(on_failure(Some(2)));
    for n in 1..=2 {
        u.wait(secs(2)).on(exited(code(1), 0));
        assert_eq!(u.svc.state(), State::Backoff, "restart {n}");
        assert_eq!((u.svc.consecutive, u.svc.restart_count), (n, n));
        u.wait(secs(1)).on(Event::BackoffDue);
        u.on(spawned(PID));
    }
    let actions = u.wait(secs(2)).on(exited(code(1), 0));
    assert_eq!(
        actions,
        [
            on_start_error(code(1)),
            on_stop_error(code(1)),
            Action::Failure { code: 1 },
        ]
    );
    assert_eq!(*u.phase(), Phase::Failed);
    assert_eq!(u.svc.reason.as_deref(), Some("gave up after 2 restarts"));
    assert!(!u.svc.is_active() && u.svc.blocks_dependents());
}

#[test]
fn a_crash_after_a_minute_up_starts_the_count_over() {
    let mut u = running(on_failure(Some(1)));
    u.wait(secs(2)).on(exited(code(1), 0));
    assert_eq!(u.svc.consecutive, 1);
    u.wait(secs(1)).on(Event::BackoffDue);
    u.on(spawned(PID));
    u.wait(UP_AFTER).on(Event::UpTimer);
    u.wait(secs(60)).on(exited(code(1), 0));
    assert_eq!(
        u.svc.state(),
        State::Backoff,
        "stable for a minute: not given up"
    );
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (1, 2));
    // One that crashes after 2 s still hits the limit.
    u.wait(secs(1)).on(Event::BackoffDue);
    u.on(spawned(PID));
    u.wait(secs(2)).on(exited(code(1), 0));
    assert_eq!(*u.phase(), Phase::Failed);
    assert_eq!(u.svc.reason.as_deref(), Some("gave up after 1 restart"));
}

#[test]
fn backoff_doubles_per_consecutive_failure_up_to_backoff_max() {
    let mut u = running(Spec {
        backoff_max: Some(secs(3)),
        ..on_failure(None)
    });
    let mut delays = Vec::new();
    for _ in 0..4 {
        let actions = u.wait(ms(100)).on(exited(code(1), 0));
        let Some(Action::Arm(Timer::Backoff, d)) = actions.last() else {
            panic!("no backoff armed: {actions:?}");
        };
        delays.push(*d);
        u.wait(*d).on(Event::BackoffDue);
        u.on(spawned(PID));
    }
    assert_eq!(delays, [secs(1), secs(2), secs(3), secs(3)]);
}

#[test]
fn leader_exit_with_survivors_cleans_up_before_the_policy_decides() {
    let mut u = running(on_failure(None));
    let inst = u.instance();
    let actions = u.wait(ms(500)).on(exited(code(1), 2));
    assert_eq!(actions, [signal_term(), arm(Timer::Kill, secs(10))]);
    assert_eq!(
        *u.phase(),
        Phase::Stopping {
            leader: Leader::Crashed(inst, code(1)),
            intent: None
        }
    );
    assert!(u.svc.awaits_group() && !u.svc.stop_requested());
    assert_eq!(u.svc.group(), Some(PID), "the group is still signalled");
    assert_eq!(u.svc.live(), None);
    let actions = u.on(Event::GroupGone);
    assert_eq!(
        actions,
        [
            on_start_error(code(1)),
            on_stop_error(code(1)),
            on_restart_error(code(1)),
            arm(Timer::Backoff, secs(1)),
        ]
    );
    assert_eq!(u.svc.state(), State::Backoff);
}

#[test]
fn cleanup_after_an_exit_concludes_at_the_kill_deadline_when_nothing_is_left() {
    let mut u = up(spec());
    u.on(exited(code(0), 1));
    let actions = u.wait(secs(10)).on(Event::KillDeadline { survivors: 0 });
    assert_eq!(actions, [on_stop_success(code(0))]);
    assert_eq!(*u.phase(), Phase::Completed);
}

#[test]
fn stop_request_during_cleanup_after_an_exit_takes_over_with_its_own_deadline() {
    let mut u = up(on_failure(None));
    u.on(exited(code(1), 1));
    let epoch = u.svc.epoch;
    let actions = u.wait(secs(2)).on(stop(StopIntent::Stop));
    assert_eq!(actions, [signal_term(), arm(Timer::Kill, secs(10))]);
    assert_ne!(u.svc.epoch, epoch, "the cleanup's deadline is replaced");
    assert!(u.svc.stop_requested() && u.svc.awaits_group());
    let actions = u.on(Event::GroupGone);
    assert!(actions.contains(&Action::StopDone), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Arm(..))));
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]

fn a_crash_reaped_before_a_stop_request_keeps_its_error_hooks() {
    let mut u = running(on_failure(None));
    u.on(exited(code(1), 1));
    u.on(stop(StopIntent::Stop));
    let actions = u.on(Event::GroupGone);
    assert_eq!(
        actions,
        [
            on_start_error(code(1)),
            on_stop_error(code(1)),
            Action::StopDone
        ]
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

// ----- stopping --------------------------------------------------------------------

#[test]
fn stop_request_while_running_signals_the_group_and_arms_the_kill_deadline() {
    let mut u = up(Spec {
        stop_signal: libc::SIGINT,
        stop_timeout: secs(3),
        ..spec()
    });
    let inst = u.instance();
    let actions = u.on(stop(StopIntent::Stop));
    assert_eq!(
        actions,
        [
            Action::Signal { sig: libc::SIGINT },
            arm(Timer::Kill, secs(3))
        ]
    );
    assert_eq!(
        *u.phase(),
        Phase::Stopping {
            leader: Leader::Alive(inst),
            intent: Some(StopIntent::Stop)
        }
    );
    assert!(u.svc.stop_requested() && !u.svc.awaits_group());
    assert_eq!(u.svc.state(), State::Stopping);
}

#[test]
fn leader_exit_during_a_stop_with_survivors_keeps_the_deadline() {
    let mut u = up(spec());
    u.on(stop(StopIntent::Stop));
    let epoch = u.svc.epoch;
    assert_eq!(u.on(exited(sig(libc::SIGTERM), 3)), []);
    assert_eq!(
        u.svc.epoch, epoch,
        "the Kill timer armed by the stop stays valid"
    );
    assert!(matches!(
        u.phase(),
        Phase::Stopping {
            leader: Leader::Exited(_, ExitStatus::Signal(libc::SIGTERM)),
            intent: Some(StopIntent::Stop)
        }
    ));
    assert!(u.svc.awaits_group());
}

#[test]
fn group_gone_concludes_a_stop_with_on_stop_success() {
    let mut u = up(on_failure(None));
    u.on(stop(StopIntent::Stop));
    u.on(exited(sig(libc::SIGTERM), 1));
    let actions = u.on(Event::GroupGone);
    assert_eq!(
        actions,
        [on_stop_success(sig(libc::SIGTERM)), Action::StopDone],
        "our own signal is no failure, and a stop is never restarted"
    );
    assert_eq!(*u.phase(), Phase::Stopped);
    assert!(u.svc.blocks_dependents() && !u.svc.is_active());
}

#[test]
fn leader_exit_with_nothing_left_concludes_a_stop_at_once() {
    let mut u = up(on_failure(None));
    u.on(stop(StopIntent::Stop));
    let actions = u.on(exited(code(143), 0));
    assert_eq!(actions, [on_stop_success(code(143)), Action::StopDone]);
    assert_eq!(*u.phase(), Phase::Stopped);
    assert_eq!(u.svc.last_exit, Some(code(143)));
}

#[test]
fn kill_deadline_with_survivors_sends_sigkill_and_rechecks() {
    let mut u = up(spec());
    u.on(stop(StopIntent::Stop));
    let before = u.svc.clone();
    let actions = u
        .wait(secs(10))
        .on_logged(Event::KillDeadline { survivors: 2 });
    assert_eq!(
        logs(&actions),
        [(
            Level::Warn,
            "api: 2 process(es) still alive after stop_timeout; sending SIGKILL".into()
        )]
    );
    assert_eq!(
        without_logs(actions),
        [Action::KillAll, arm(Timer::Recheck, KILL_RECHECK)]
    );
    assert_eq!(u.svc, before, "still stopping, same epoch");
    u.on(exited(sig(libc::SIGKILL), 1));
    assert_eq!(
        u.wait(KILL_RECHECK).on(Event::Recheck { survivors: 1 }),
        [Action::KillAll, arm(Timer::Recheck, KILL_RECHECK)]
    );
    let actions = u.wait(KILL_RECHECK).on(Event::Recheck { survivors: 0 });
    assert_eq!(
        actions,
        [on_stop_success(sig(libc::SIGKILL)), Action::StopDone]
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]
fn kill_deadline_after_the_leader_with_nothing_left_concludes() {
    let mut u = up(spec());
    u.on(stop(StopIntent::Stop));
    u.on(exited(sig(libc::SIGTERM), 1));
    let actions = u.wait(secs(10)).on(Event::KillDeadline { survivors: 0 });
    assert_eq!(
        actions,
        [on_stop_success(sig(libc::SIGTERM)), Action::StopDone]
    );
}

#[test]
fn a_second_stop_keeps_the_signal_and_deadline_of_the_first() {
    let mut u = up(spec());
    u.on(stop(StopIntent::Stop));
    let before = u.svc.clone();
    assert_eq!(u.on(stop(StopIntent::Stop)), []);
    assert_eq!(u.svc, before);
}

#[test]
fn restart_request_while_stopping_starts_fresh_once_gone() {
    let mut u = up(on_failure(None));
    u.svc.consecutive = 3;
    u.svc.restart_count = 3;
    u.on(stop(StopIntent::Stop));
    assert_eq!(u.on(stop(StopIntent::Restart)), []);
    let actions = u.on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(
        actions,
        [on_stop_success(sig(libc::SIGTERM)), Action::StopDone]
    );
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (0, 0));
    assert_eq!(u.svc.last_exit, None);
}

#[test]
fn stop_request_during_a_restart_keeps_it_stopped() {
    let mut u = up(spec());
    u.on(stop(StopIntent::Restart));
    u.on(stop(StopIntent::Stop));
    u.on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]
fn stop_request_while_in_backoff_cancels_the_restart() {
    let mut u = up(on_failure(None));
    u.on(exited(code(1), 0));
    let epoch = u.svc.epoch;
    assert_eq!(u.on(stop(StopIntent::Stop)), []);
    assert_eq!(*u.phase(), Phase::Stopped);
    assert_ne!(
        u.svc.epoch, epoch,
        "the Backoff timer is stale from here on"
    );
    assert_eq!(u.svc.restart_at(), None);
    let before = u.svc.clone();
    assert_eq!(u.wait(secs(1)).on_logged(Event::BackoffDue), []);
    assert_eq!(u.svc, before);
}

#[test]
fn stop_request_while_pending_ends_stopped() {
    let mut u = Unit::new(spec());
    u.on(Event::Deps(Verdict::Wait("db".into())));
    assert_eq!(u.on(stop(StopIntent::Stop)), []);
    assert_eq!(*u.phase(), Phase::Stopped);
    assert_eq!(
        u.on(Event::Deps(Verdict::Ready)),
        [],
        "never started again by itself"
    );
}

#[test]
fn shutdown_stops_what_is_scheduled_and_leaves_what_is_finished() {
    let mut u = Unit::new(spec());
    assert_eq!(u.on(stop(StopIntent::Shutdown)), []);
    assert_eq!(*u.phase(), Phase::Stopped);

    let mut u = up(spec());
    u.on(exited(code(0), 0));
    let before = u.svc.clone();
    assert_eq!(u.on_logged(stop(StopIntent::Shutdown)), []);
    assert_eq!(u.svc, before, "completed stays completed");
}

#[test]
fn stop_with_strays_of_an_earlier_instance_kills_them_first() {
    let mut u = up(spec());
    u.on(exited(code(0), 0));
    let actions = u.on(Event::Stop {
        intent: StopIntent::Stop,
        strays: 2,
    });
    assert_eq!(actions, [signal_term(), arm(Timer::Kill, secs(10))]);
    assert_eq!(
        *u.phase(),
        Phase::Stopping {
            leader: Leader::Strays,
            intent: Some(StopIntent::Stop)
        }
    );
    assert!(u.svc.awaits_group() && u.svc.stop_requested());
    assert_eq!(u.svc.group(), None);
    assert_eq!(
        u.on(Event::GroupGone),
        [Action::StopDone],
        "no instance: no hook"
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]

fn restart_request_with_nothing_running_starts_fresh() {
    let mut u = running(on_failure(Some(1)));
    u.on(exited(code(1), 0));
    u.on(Event::BackoffDue);
    u.on(spawned(PID));
    u.on(exited(code(1), 0));
    assert_eq!(*u.phase(), Phase::Failed);
    assert_eq!(u.on(stop(StopIntent::Restart)), []);
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert_eq!((u.svc.consecutive, u.svc.restart_count), (0, 0));
    assert_eq!(u.svc.reason, None);
}

// ----- health checks ---------------------------------------------------------------

#[test]
fn probe_due_launches_one_probe_attempt() {
    let mut u = running(healthy(spec()));
    assert_eq!(u.on(Event::ProbeDue), [Action::Probe]);
}

#[test]
fn health_check_passing_marks_it_up() {
    let mut u = running(healthy(spec()));
    let actions = u.on(Event::ProbeResult {
        healthy: true,
        detail: "exit 0".into(),
    });
    assert_eq!(actions, [on_start_success()]);
    assert!(u.svc.is_up() && u.svc.satisfies_dependents());
    assert_eq!(u.on(Event::ProbeDue), [], "no probing once up");
}

#[test]
fn health_check_failing_fewer_than_retries_probes_again() {
    let mut u = running(healthy(spec()));
    let epoch = u.svc.epoch;
    assert_eq!(
        u.on(unhealthy_probe("exit 7")),
        [arm(Timer::Probe, ms(500))]
    );
    assert_eq!(u.instance().probe_failures, 1);
    assert!(!u.instance().up);
    assert_eq!(u.svc.epoch, epoch, "the same instance keeps its epoch");
}

#[test]
fn probe_that_cannot_launch_is_retried_after_the_interval() {
    let mut u = running(healthy(spec()));
    let actions = u.on(Event::ProbeFailedToLaunch {
        error: "too many open files".into(),
    });
    assert_eq!(actions, [arm(Timer::Probe, ms(500))]);
    assert_eq!(
        u.instance().probe_failures,
        0,
        "not an answer from the service"
    );
}

#[test]
fn health_check_failing_retries_times_stops_it_as_unhealthy() {
    let mut u = running(healthy(on_failure(None)));
    u.on(unhealthy_probe("exit 7"));
    u.on(unhealthy_probe("exit 7"));
    let actions = u.on(unhealthy_probe("connection refused"));
    assert_eq!(actions, [signal_term(), arm(Timer::Kill, secs(10))]);
    let Phase::Stopping {
        leader: Leader::Alive(inst),
        intent: Some(StopIntent::Unhealthy),
    } = u.phase()
    else {
        panic!("expected an unhealthy stop, got {:?}", u.phase());
    };
    assert_eq!(inst.probe_failures, 3);
    assert_eq!(
        u.svc.reason.as_deref(),
        Some("health check failed 3 times: connection refused")
    );
    let actions = u.on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(
        actions,
        [
            on_start_error(sig(libc::SIGTERM)),
            on_stop_error(sig(libc::SIGTERM)),
            on_restart_error(sig(libc::SIGTERM)),
            arm(Timer::Backoff, secs(1)),
        ],
        "our signal, but the failure is the health check's"
    );
    assert_eq!(u.svc.state(), State::Backoff);
}

#[test]
fn unhealthy_under_never_is_exited_with_its_reason() {
    let mut u = running(healthy(spec()));
    for _ in 0..3 {
        u.on(unhealthy_probe("exit 1"));
    }
    let actions = u.on(exited(code(0), 0));
    assert_eq!(
        actions,
        [
            on_start_error(code(0)),
            on_stop_error(code(0)),
            Action::Failure { code: 0 },
        ]
    );
    assert_eq!(*u.phase(), Phase::Exited);
    assert_eq!(
        u.svc.reason.as_deref(),
        Some("health check failed 3 times: exit 1")
    );
}

// ----- cron ------------------------------------------------------------------------

#[test]
fn cron_due_while_idle_begins_a_run() {
    let mut u = Unit::new(cron_job());
    let key = "2025-12-31T15:30:00Z";
    assert_eq!(
        u.on(fire(key)),
        [Action::CronBegin { key: key.into() }, Action::Spawn]
    );
    assert_eq!(
        *u.phase(),
        Phase::Starting {
            restarted: false,
            cron_key: Some(key.into())
        }
    );
    u.on(spawned(PID));
    assert_eq!(u.instance().cron_key.as_deref(), Some(key));
}

#[test]
fn cron_due_while_running_is_recorded_skipped() {
    let mut u = cron_run(cron_job(), "t0");
    let before = u.svc.clone();
    let actions = u.wait(secs(10)).on_logged(fire("t10"));
    assert_eq!(
        logs(&actions),
        [(
            Level::Info,
            "api: run due at t10 UTC skipped (still running)".into()
        )]
    );
    assert_eq!(
        without_logs(actions),
        [Action::CronSkipped { key: "t10".into() }]
    );
    assert_eq!(u.svc, before);
}

#[test]
fn cron_run_exit_records_it_and_returns_to_idle() {
    let mut u = cron_run(cron_job(), "t0");
    u.wait(UP_AFTER).on(Event::UpTimer);
    let actions = u.wait(secs(1)).on(exited(code(0), 0));
    assert_eq!(
        actions,
        [
            Action::CronFinished {
                key: "t0".into(),
                uptime: secs(2),
                status: code(0)
            },
            on_stop_success(code(0)),
        ]
    );
    assert_eq!(*u.phase(), Phase::Idle);
}

#[test]
fn failed_cron_run_is_never_retried_by_policy() {
    let mut u = cron_run(
        Spec {
            restart_policy: RestartPolicy::Always,
            ..cron_job()
        },
        "t0",
    );
    let actions = u.wait(ms(20)).on(exited(code(4), 0));
    assert_eq!(
        actions,
        [
            Action::CronFinished {
                key: "t0".into(),
                uptime: ms(20),
                status: code(4)
            },
            on_start_error(code(4)),
            on_stop_error(code(4)),
        ]
    );
    assert_eq!(*u.phase(), Phase::Idle, "the next fire is the retry");
    assert_eq!(u.svc.restart_count, 0);
}

#[test]
fn cron_spawn_failure_is_recorded_as_127() {
    let mut u = Unit::new(cron_job());
    u.on(fire("t0"));
    let actions = u.on(Event::SpawnFailed {
        error: "No such file or directory".into(),
    });
    assert_eq!(
        actions,
        [
            hook(HookEvent::Start, Outcome::Error, None, None),
            Action::CronFinished {
                key: "t0".into(),
                uptime: Duration::ZERO,
                status: code(127)
            },
        ]
    );
    assert_eq!(*u.phase(), Phase::Idle);
}

#[test]
fn unhealthy_cron_run_keeps_its_schedule() {
    let mut u = cron_run(healthy(cron_job()), "t0");
    u.on(unhealthy_probe("exit 1"));
    u.on(unhealthy_probe("exit 1"));
    let actions = u.on(unhealthy_probe("exit 1"));
    assert_eq!(actions, [signal_term(), arm(Timer::Kill, secs(10))]);
    let actions = u.wait(secs(1)).on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(
        actions,
        [
            Action::CronFinished {
                key: "t0".into(),
                uptime: secs(1),
                status: sig(libc::SIGTERM)
            },
            on_start_error(sig(libc::SIGTERM)),
            on_stop_error(sig(libc::SIGTERM)),
        ]
    );
    assert_eq!(*u.phase(), Phase::Idle);
}

#[test]
fn stopping_an_idle_cron_job_disarms_it_and_a_start_rearms_it() {
    let mut u = Unit::new(cron_job());
    assert_eq!(u.on(stop(StopIntent::Stop)), [Action::DisarmCron]);
    assert_eq!(*u.phase(), Phase::Stopped);
    assert_eq!(u.on(Event::Start), [Action::ArmCron]);
    assert_eq!(*u.phase(), Phase::Idle);
}

#[test]
fn stopping_a_cron_run_disarms_the_schedule_and_records_the_run() {
    let mut u = cron_run(cron_job(), "t0");
    let actions = u.on(stop(StopIntent::Stop));
    assert_eq!(
        actions,
        [
            Action::DisarmCron,
            signal_term(),
            arm(Timer::Kill, secs(10))
        ]
    );
    let actions = u.wait(secs(1)).on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(
        actions,
        [
            Action::CronFinished {
                key: "t0".into(),
                uptime: secs(1),
                status: sig(libc::SIGTERM)
            },
            on_stop_success(sig(libc::SIGTERM)),
            Action::StopDone,
        ]
    );
    assert_eq!(*u.phase(), Phase::Stopped);
}

#[test]
fn restarting_an_idle_cron_job_rearms_its_schedule() {
    let mut u = Unit::new(cron_job());
    assert_eq!(
        u.on(stop(StopIntent::Restart)),
        [Action::DisarmCron, Action::ArmCron]
    );
    assert_eq!(*u.phase(), Phase::Idle);
}

// ----- cron jobs with a skip check -------------------------------------------------

fn cron_with_skip() -> Spec {
    Spec {
        skip: Some("true".into()),
        ..cron_job()
    }
}

#[test]
fn a_cron_job_with_a_skip_check_waits_for_it_before_arming() {
    let mut u = Unit::new(cron_with_skip());
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
    assert_eq!(u.on(Event::Deps(Verdict::Ready)), [Action::SpawnCheck]);
    u.on(Event::CheckSpawned { pid: 77 });
    assert!(matches!(u.phase(), Phase::Checking { pid: Some(77), .. }));
}

#[test]
fn a_cron_job_whose_skip_check_exits_zero_is_skipped_and_never_armed() {
    let mut u = Unit::new(cron_with_skip());
    u.on(Event::Deps(Verdict::Ready));
    u.on(Event::CheckSpawned { pid: 77 });
    let actions = u.on(Event::CheckExited { status: code(0) });
    assert_eq!(actions, [Action::KillCheck { pid: 77 }]);
    assert_eq!(*u.phase(), Phase::Skipped);
    assert_eq!(u.svc.state(), State::Skipped);
    let key = || Event::CronDue {
        key: "k".into(),
        due: "d".into(),
    };
    assert_eq!(u.on(key()), [], "a skipped cron job never runs");
}

#[test]
fn a_cron_job_whose_skip_check_fails_is_armed_not_spawned() {
    let mut u = Unit::new(cron_with_skip());
    u.on(Event::Deps(Verdict::Ready));
    u.on(Event::CheckSpawned { pid: 77 });
    let actions = u.on(Event::CheckExited { status: code(1) });
    assert_eq!(actions, [Action::KillCheck { pid: 77 }, Action::ArmCron]);
    assert_eq!(*u.phase(), Phase::Idle);
    let mut u = Unit::new(cron_with_skip());
    u.on(Event::Deps(Verdict::Ready));
    let actions = u.on(Event::CheckFailed {
        error: "no shell".into(),
    });
    assert_eq!(actions, [Action::ArmCron]);
    assert_eq!(*u.phase(), Phase::Idle);
}

#[test]
fn starting_a_cron_job_with_a_skip_check_by_hand_checks_again() {
    let mut u = Unit::new(cron_with_skip());
    u.on(Event::Deps(Verdict::Ready));
    u.on(Event::CheckSpawned { pid: 77 });
    u.on(Event::CheckExited { status: code(0) });
    assert_eq!(u.on(Event::Start), []);
    assert_eq!(*u.phase(), Phase::Pending { waiting_for: None });
}

// ----- rolling restarts ------------------------------------------------------------

const NEW_PID: i32 = 4545;

/// `deployment: { strategy: rolling, grace_period: 2s }`, with a health check.
fn rolling() -> Spec {
    Spec {
        deployment: crate::config::Deployment {
            rolling: true,
            grace_period: secs(2),
        },
        ..healthy(spec())
    }
}

/// Up as [`PID`] after one passing probe, then rolled: the new instance is spawned as
/// [`NEW_PID`], not up yet.
fn rolled(spec: Spec) -> Unit {
    let mut u = running(spec);
    u.on(Event::ProbeResult {
        healthy: true,
        detail: String::new(),
    });
    assert!(u.svc.can_roll());
    assert_eq!(u.on(Event::Roll), [Action::Spawn]);
    assert_eq!(u.svc.retiring_pid(), Some(PID));
    u.on(spawned(NEW_PID));
    assert_eq!(u.instance().pid, NEW_PID);
    assert!(!u.svc.can_roll(), "one roll at a time");
    u
}

#[test]
fn a_roll_starts_the_new_instance_beside_the_old_and_stops_the_old_after_the_grace() {
    let mut u = rolled(rolling());
    let up = u.on(Event::ProbeResult {
        healthy: true,
        detail: String::new(),
    });
    assert!(up.contains(&arm(Timer::Grace, secs(2))), "{up:?}");
    assert!(
        up.iter()
            .any(|a| matches!(a, Action::RollDone { ok: true, message } if message.contains("pid 4545 is up"))),
        "{up:?}"
    );
    assert!(
        !up.iter().any(|a| matches!(a, Action::SignalRetired { .. })),
        "the old one serves through the grace period"
    );
    let grace = u.wait(secs(2)).on(Event::GraceOver);
    assert_eq!(
        grace,
        [
            Action::SignalRetired {
                pid: PID,
                group: PID,
                sig: libc::SIGTERM
            },
            arm(Timer::RetireKill, secs(10)),
        ]
    );
    // The old one ignores SIGTERM: killed at its stop_timeout.
    let late = u.wait(secs(10)).on(Event::RetireDeadline);
    assert_eq!(
        late,
        [Action::SignalRetired {
            pid: PID,
            group: PID,
            sig: libc::SIGKILL
        }]
    );
    u.on(Event::RetiredExited {
        status: sig(libc::SIGKILL),
    });
    assert_eq!(u.svc.retiring_pid(), None);
    assert_eq!(u.instance().pid, NEW_PID);
    assert!(u.svc.is_up() && u.svc.can_roll());
}

#[test]
fn a_new_instance_that_exits_before_up_hands_the_service_back_to_the_old_one() {
    let mut u = rolled(rolling());
    let failed = u.on(exited(code(1), 0));
    assert!(
        failed
            .iter()
            .any(|a| matches!(a, Action::RollDone { ok: false, message } if message.contains("pid 4242 keeps running"))),
        "{failed:?}"
    );
    assert!(
        !failed
            .iter()
            .any(|a| matches!(a, Action::SignalRetired { .. })),
        "{failed:?}"
    );
    let inst = u.instance();
    assert_eq!(inst.pid, PID);
    assert!(inst.up, "the old one is still up");
    assert_eq!(u.svc.retiring_pid(), None);
    assert!(u
        .svc
        .reason
        .as_deref()
        .unwrap()
        .starts_with("rolling restart failed"));
}

#[test]
fn a_new_instance_that_never_gets_healthy_is_stopped_and_the_old_one_stays() {
    let mut u = rolled(rolling());
    for _ in 0..2 {
        u.on(unhealthy_probe("connection refused"));
    }
    let third = u.on(unhealthy_probe("connection refused"));
    assert!(
        third.contains(&signal_term()),
        "the new one is stopped: {third:?}"
    );
    assert!(matches!(
        u.phase(),
        Phase::Stopping {
            intent: Some(StopIntent::RollBack),
            ..
        }
    ));
    let gone = u.on(exited(sig(libc::SIGTERM), 0));
    assert!(
        gone.iter()
            .any(|a| matches!(a, Action::RollDone { ok: false, message }
            if message.contains("health check failed 3 times"))),
        "{gone:?}"
    );
    assert_eq!(u.instance().pid, PID);
    assert!(u.svc.is_up());
}

#[test]
fn a_stop_during_a_roll_stops_both_instances() {
    let mut u = rolled(rolling());
    let stop = u.on(stop(StopIntent::Stop));
    assert!(
        stop.contains(&Action::SignalRetired {
            pid: PID,
            group: PID,
            sig: libc::SIGTERM
        }),
        "{stop:?}"
    );
    assert!(stop.contains(&signal_term()), "{stop:?}");
    u.on(exited(sig(libc::SIGTERM), 0));
    assert_eq!(*u.phase(), Phase::Stopped);
    assert!(u.svc.is_active(), "the old one is still to be seen exit");
    u.on(Event::RetiredExited {
        status: sig(libc::SIGTERM),
    });
    assert!(!u.svc.is_active());
}

#[test]
fn a_roll_is_only_for_an_instance_that_is_up() {
    let mut u = running(rolling());
    assert!(!u.svc.can_roll());
    assert_eq!(u.on(Event::Roll), []);
    assert_eq!(u.svc.retiring_pid(), None);
}

#[test]
fn a_new_instance_that_finds_its_address_in_use_falls_back_to_stop_then_start() {
    let mut u = rolled(rolling());
    assert_eq!(u.on(Event::AddressInUse), []);
    let gone = u.on(exited(code(1), 0));
    assert!(
        gone.contains(&Action::Reinstated { new_spec: true }),
        "{gone:?}"
    );
    assert!(
        gone.contains(&signal_term()),
        "the old one is stopped: {gone:?}"
    );
    assert!(
        !gone.iter().any(|a| matches!(a, Action::RollDone { .. })),
        "answered when the restart is over, as any restart: {gone:?}"
    );
    assert!(matches!(
        u.phase(),
        Phase::Stopping {
            intent: Some(StopIntent::Restart),
            leader: Leader::Alive(Instance { pid: PID, .. }),
        }
    ));
    assert_eq!(u.svc.retiring_pid(), None);
    let after = u.on(exited(sig(libc::SIGTERM), 0));
    assert!(after.contains(&Action::StopDone), "{after:?}");
    assert!(
        matches!(u.phase(), Phase::Pending { .. }),
        "then started afresh: {:?}",
        u.phase()
    );
}

// ----- liveness ----------------------------------------------------------------------

fn live_checked_spec() -> Spec {
    let mut check = health_check();
    check.liveness = true;
    Spec {
        health_check: Some(check),
        restart_policy: RestartPolicy::OnFailure,
        ..spec()
    }
}

fn passing() -> Event {
    Event::ProbeResult {
        healthy: true,
        detail: "ok".into(),
    }
}

#[test]
fn a_liveness_check_goes_on_after_up_and_a_pass_resets_the_count() {
    let mut u = running(live_checked_spec());
    let up = u.on(passing());
    assert!(up.contains(&arm(Timer::Probe, ms(500))), "{up:?}");
    assert!(u.svc.is_up());
    assert_eq!(u.on(Event::ProbeDue), [Action::Probe]);
    assert_eq!(
        u.on(unhealthy_probe("timed out")),
        [arm(Timer::Probe, ms(500))]
    );
    assert_eq!(u.instance().probe_failures, 1);
    assert_eq!(u.on(passing()), [arm(Timer::Probe, ms(500))]);
    assert_eq!(u.instance().probe_failures, 0);
    assert!(u.svc.is_up(), "still up");
}

#[test]
fn retries_failed_liveness_probes_make_the_instance_unhealthy_and_the_policy_restarts_it() {
    let mut u = running(live_checked_spec());
    u.on(passing());
    u.on(unhealthy_probe("timed out"));
    u.on(unhealthy_probe("timed out"));
    let third = u.on(unhealthy_probe("HTTP 503"));
    assert!(third.contains(&signal_term()), "{third:?}");
    assert!(matches!(
        u.phase(),
        Phase::Stopping {
            intent: Some(StopIntent::Unhealthy),
            ..
        }
    ));
    assert_eq!(u.svc.reason.as_deref(), Some("unhealthy: HTTP 503"));
    let gone = u.on(exited(sig(libc::SIGTERM), 0));
    assert!(
        gone.contains(&on_restart_error(sig(libc::SIGTERM))),
        "{gone:?}"
    );
    assert!(
        matches!(u.phase(), Phase::Backoff { .. }),
        "{:?}",
        u.phase()
    );
    assert_eq!(u.svc.reason.as_deref(), Some("unhealthy: HTTP 503"));
}

#[test]
fn without_liveness_the_check_stops_at_up() {
    let mut u = running(healthy(spec()));
    let up = u.on(passing());
    assert!(
        !up.iter().any(|a| matches!(a, Action::Arm(Timer::Probe, _))),
        "{up:?}"
    );
    assert_eq!(u.on(Event::ProbeDue), []);
}

// ----- sd_notify -----------------------------------------------------------------------

fn notifying() -> Spec {
    Spec {
        notify: true,
        watchdog: Some(secs(2)),
        restart_policy: RestartPolicy::OnFailure,
        ..spec()
    }
}

#[test]
fn a_notify_service_is_up_on_ready_and_its_watchdog_is_armed() {
    let mut u = Unit::new(notifying());
    u.on(Event::Deps(Verdict::Ready));
    assert_eq!(u.on(spawned(PID)), [arm(Timer::Up, NOTIFY_START)]);
    assert!(!u.svc.is_up());
    let ready = u.on(Event::NotifyReady);
    assert!(u.svc.is_up());
    assert!(ready.contains(&arm(Timer::Watchdog, secs(2))), "{ready:?}");
    // A ping a second later: when the timer fires, what is left of the period is armed.
    u.wait(secs(1)).on(Event::WatchdogPing);
    assert_eq!(
        u.wait(secs(1)).on(Event::WatchdogDue),
        [arm(Timer::Watchdog, secs(1))]
    );
    // No ping since: a failure, and the policy restarts it.
    let late = u.wait(secs(1)).on(Event::WatchdogDue);
    assert!(late.contains(&signal_term()), "{late:?}");
    assert!(u
        .svc
        .reason
        .as_deref()
        .unwrap()
        .starts_with("watchdog timeout"));
    u.on(exited(sig(libc::SIGTERM), 0));
    assert!(
        matches!(u.phase(), Phase::Backoff { .. }),
        "{:?}",
        u.phase()
    );
}

#[test]
fn mainpid_makes_the_named_process_the_instance_and_keeps_its_group() {
    let mut u = Unit::new(notifying());
    u.on(Event::Deps(Verdict::Ready));
    u.on(spawned(PID));
    let daemon = PID + 7;
    // Only the table's log says so: nothing to do for the loop.
    assert_eq!(u.on(Event::MainPid { pid: daemon }), []);
    u.on(Event::NotifyReady);
    let inst = u.instance();
    assert_eq!((inst.pid, inst.group), (daemon, PID));
    assert_eq!(
        u.svc.group(),
        Some(PID),
        "signals still go to the group it runs in"
    );
    // The daemon's death is the instance's, handled by the policy.
    u.on(exited(ExitStatus::Code(1), 0));
    assert!(
        matches!(u.phase(), Phase::Backoff { .. }),
        "{:?}",
        u.phase()
    );
}

#[test]
fn mainpid_is_ignored_without_notify() {
    let mut u = running(spec());
    assert!(u.on(Event::MainPid { pid: PID + 1 }).is_empty());
    assert_eq!(u.instance().pid, PID);
}

#[test]
fn a_notify_service_without_ready_in_time_fails_its_start() {
    let mut u = Unit::new(notifying());
    u.on(Event::Deps(Verdict::Ready));
    u.on(spawned(PID));
    let late = u.wait(NOTIFY_START).on(Event::UpTimer);
    assert!(late.contains(&signal_term()), "{late:?}");
    assert!(!u.svc.is_up());
    assert_eq!(u.svc.reason.as_deref(), Some("no READY=1 within 90s"));
}
