//! The steps several cells of the table share: spawning, marking up, stopping, and
//! concluding an instance (its hooks, its history, the restart policy).

use super::*;

impl Service {
    pub(super) fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.epoch += 1;
    }

    /// A start by hand (`start -s`, `restart -s`) begins a fresh history.
    pub(super) fn start_fresh(&mut self, spec: &Spec, out: &mut Vec<Action>) {
        self.consecutive = 0;
        self.restart_count = 0;
        self.reason = None;
        self.spawn_error = None;
        self.last_exit = None;
        if spec.cron.is_some() && spec.skip.is_none() {
            self.enter(Phase::Idle);
            out.push(Action::ArmCron);
        } else {
            // A cron job with a skip check runs the check first, like a service.
            self.enter(Phase::Pending { waiting_for: None });
        }
    }
}

/// The skip check said "do not skip" (or could not say): a service starts, a cron job
/// is scheduled.
pub(super) fn not_skipped(spec: &Spec, next: &mut Service, out: &mut Vec<Action>) {
    if spec.cron.is_some() {
        next.enter(Phase::Idle);
        out.push(Action::ArmCron);
    } else {
        begin_spawn(spec, next, out, false, None);
    }
}

pub(super) fn log(level: Level, msg: String) -> Action {
    Action::Log(level, msg)
}

pub(super) fn hook(
    event: HookEvent,
    outcome: Outcome,
    exit: Option<ExitStatus>,
    pid: Option<i32>,
) -> Action {
    Action::Hook {
        event,
        outcome,
        exit,
        pid,
    }
}

/// A shutdown stays a shutdown whatever is asked after it.
pub(super) fn keep_shutdown(current: Option<StopIntent>, asked: StopIntent) -> StopIntent {
    match current {
        Some(StopIntent::Shutdown) => StopIntent::Shutdown,
        _ => asked,
    }
}

/// A start: `pre_start` first when the service has one (a cron run goes straight on).
pub(super) fn begin_spawn(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    restarted: bool,
    cron_key: Option<String>,
) {
    if spec.pre_start.is_some() && cron_key.is_none() {
        next.enter(Phase::PreStarting {
            restarted,
            stop: None,
        });
        out.push(Action::RunPreStart);
        return;
    }
    spawn_now(next, out, restarted, cron_key);
}

pub(super) fn spawn_now(
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

pub(super) fn mark_up(name: &str, next: &mut Service, out: &mut Vec<Action>) {
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

pub(super) fn begin_stop(
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
        Leader::Alive(i) | Leader::Crashed(i, _) | Leader::Exited(i, _) => Some(i.pid),
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
pub(super) fn conclude(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    leader: Leader,
    intent: Option<StopIntent>,
    now: Instant,
) {
    let (inst, status, own_exit) = match leader {
        Leader::Crashed(inst, status) => (Some(inst), status, true),
        Leader::Exited(inst, status) => (Some(inst), status, false),
        Leader::Alive(inst) => (Some(inst), ExitStatus::Signal(libc::SIGKILL), false),
        Leader::Strays => (None, ExitStatus::Signal(libc::SIGKILL), false),
    };
    let uptime = inst
        .as_ref()
        .map_or(Duration::ZERO, |i| now.saturating_duration_since(i.started));
    let pid = inst.as_ref().map(|i| i.pid);
    let was_up = inst.as_ref().is_some_and(|i| i.up);
    if let Some(key) = inst.as_ref().and_then(|i| i.cron_key.clone()) {
        out.push(Action::CronFinished {
            key,
            uptime,
            status,
        });
    }
    if intent == Some(StopIntent::RollBack) {
        let why = next.reason.clone().unwrap_or_else(|| {
            format!(
                "the new instance ended ({}) before it was up",
                status.describe()
            )
        });
        if reinstate(spec, next, out, &why) {
            exit_hooks(out, status, true, was_up, pid);
            return;
        }
    }
    // A roll back with no old instance left is a failure like any other.
    let unhealthy = matches!(intent, Some(StopIntent::Unhealthy | StopIntent::RollBack));
    if let Some(intent) = intent.filter(|_| !unhealthy) {
        out.push(log(Level::Info, format!("{} stopped", spec.name)));
        if own_exit {
            // It ended by itself before the stop was asked: its hooks say so.
            exit_hooks(out, status, false, was_up, pid);
        } else if inst.is_some() {
            out.push(hook(HookEvent::Stop, Outcome::Success, Some(status), pid));
        }
        match intent {
            StopIntent::Restart => next.start_fresh(spec, out),
            _ => next.enter(Phase::Stopped),
        }
        out.push(Action::StopDone);
        return;
    }
    exit_hooks(out, status, unhealthy, was_up, pid);
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

/// The hooks of an instance that ended by itself (or failed its health check).
pub(super) fn exit_hooks(
    out: &mut Vec<Action>,
    status: ExitStatus,
    unhealthy: bool,
    was_up: bool,
    pid: Option<i32>,
) {
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
}

/// A stop that arrived while the skip check ran applies once the check is gone.
pub(super) fn after_check(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    stop: StopIntent,
) {
    match stop {
        StopIntent::Restart => next.start_fresh(spec, out),
        _ => next.enter(Phase::Stopped),
    }
    out.push(Action::StopDone);
}

/// A failure or an exit on its own: the restart policy decides what comes next.
pub(super) fn apply_policy(
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

/// A rolling restart whose new instance is not up yet and whose old one still serves:
/// a failure of the new one now hands the service back to the old one.
pub(super) fn rolling_back(svc: &Service) -> bool {
    svc.retiring.as_ref().is_some_and(|r| !r.signalled)
}

/// The instance passed the up rule. In a rolling restart the old one then goes, after
/// the grace period; whoever asked for the restart is answered now.
pub(super) fn up_now(spec: &Spec, next: &mut Service, out: &mut Vec<Action>) {
    mark_up(&spec.name, next, out);
    if let (true, Phase::Running(inst)) = (live_checked(spec), &mut next.phase) {
        // Liveness from here on: the count starts again.
        inst.probe_failures = 0;
        if let Some(check) = &spec.health_check {
            out.push(Action::Arm(Timer::Probe, check.interval));
        }
    }
    let (Some(old), Phase::Running(inst)) = (&next.retiring, &next.phase) else {
        return;
    };
    if old.signalled {
        return;
    }
    let grace = spec.deployment.grace_period.as_secs_f64();
    let (name, new, old) = (&spec.name, inst.pid, old.inst.pid);
    out.push(log(
        Level::Info,
        format!("{name}: new instance (pid {new}) is up; stopping the old one (pid {old}) in {grace:.1}s"),
    ));
    out.push(Action::RollDone {
        ok: true,
        message: format!(
            "Restarted {name} (rolling: pid {new} is up; pid {old} stops in {grace:.1}s)"
        ),
    });
    out.push(Action::Arm(Timer::Grace, spec.deployment.grace_period));
}

/// Asks a rolling restart's old instance to stop, bounded by its `stop_timeout`.
pub(super) fn retire(spec: &Spec, next: &mut Service, out: &mut Vec<Action>) {
    let Some(old) = next.retiring.as_mut().filter(|r| !r.signalled) else {
        return;
    };
    old.signalled = true;
    let pid = old.inst.pid;
    out.push(log(
        Level::Info,
        format!(
            "stopping {} old instance (pid {pid}, {})",
            spec.name,
            crate::config::signal_name(spec.stop_signal)
        ),
    ));
    out.push(Action::SignalRetired {
        pid,
        group: old.inst.group,
        sig: spec.stop_signal,
    });
    out.push(Action::Arm(Timer::RetireKill, spec.stop_timeout));
}

/// A rolling restart's new instance failed before it was up, and nothing of it is left:
/// the old instance, which never stopped serving, is the service's instance again.
/// False when there is no such old instance (it exited meanwhile, or was already asked
/// to stop): the failure is then handled like any other.
pub(super) fn reinstate(spec: &Spec, next: &mut Service, out: &mut Vec<Action>, why: &str) -> bool {
    if !rolling_back(next) {
        return false;
    }
    let Some(old) = next.retiring.take() else {
        return false;
    };
    let (name, pid) = (&spec.name, old.inst.pid);
    if old.fallback {
        // Two instances cannot share its port: the old one goes first, as without a
        // rolling strategy; the restart's hooks and reply follow as for any restart.
        out.push(log(
            Level::Warn,
            format!(
                "{name}: the new instance found its address in use (the old one, pid {pid}, holds it); falling back to stop-then-start"
            ),
        ));
        next.enter(Phase::Running(old.inst.clone()));
        out.push(Action::Reinstated { new_spec: true });
        begin_stop(
            spec,
            next,
            out,
            Leader::Alive(old.inst),
            StopIntent::Restart,
        );
        return true;
    }
    out.push(log(
        Level::Warn,
        format!(
            "{name}: rolling restart failed: {why}; the old instance (pid {pid}) keeps running"
        ),
    ));
    next.reason = Some(format!("rolling restart failed: {why}"));
    next.enter(Phase::Running(old.inst));
    out.push(Action::Reinstated { new_spec: false });
    out.push(Action::RollDone {
        ok: false,
        message: format!("rolling restart of {name} failed: {why}; pid {pid} keeps running"),
    });
    true
}

/// The service's health check goes on after up (`liveness: true`).
pub(super) fn live_checked(spec: &Spec) -> bool {
    spec.health_check.as_ref().is_some_and(|c| c.liveness)
}

/// A liveness probe of an instance that is up: a pass resets the count, `retries`
/// failures in a row make it unhealthy (stopped, then the restart policy).
pub(super) fn liveness_result(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    inst: &Instance,
    healthy: bool,
    detail: String,
) {
    let Some(check) = &spec.health_check else {
        return;
    };
    let name = &spec.name;
    let failures = if healthy { 0 } else { inst.probe_failures + 1 };
    if let Phase::Running(i) = &mut next.phase {
        i.probe_failures = failures;
    }
    if failures == 0 {
        out.push(Action::Arm(Timer::Probe, check.interval));
        return;
    }
    if failures < check.retries {
        out.push(log(
            Level::Info,
            format!(
                "{name}: liveness check failed ({failures}/{}): {detail}",
                check.retries
            ),
        ));
        out.push(Action::Arm(Timer::Probe, check.interval));
        return;
    }
    out.push(log(
        Level::Warn,
        format!("{name}: liveness check failed {failures} times, last: {detail}; stopping it"),
    ));
    next.reason = Some(format!("unhealthy: {detail}"));
    let mut inst = inst.clone();
    inst.probe_failures = failures;
    begin_stop(spec, next, out, Leader::Alive(inst), StopIntent::Unhealthy);
}

/// How an instance that failed before it was up is stopped: handed back to the old one
/// in a rolling restart, else as unhealthy.
pub(super) fn not_up_intent(svc: &Service) -> StopIntent {
    if rolling_back(svc) {
        StopIntent::RollBack
    } else {
        StopIntent::Unhealthy
    }
}

/// The instance will not get up (`why`): it is stopped as a failure.
pub(super) fn failed_before_up(
    spec: &Spec,
    svc: &Service,
    next: &mut Service,
    out: &mut Vec<Action>,
    inst: &Instance,
    why: String,
) {
    out.push(log(
        Level::Warn,
        format!("{}: {why}; stopping it", spec.name),
    ));
    next.reason = Some(why);
    begin_stop(
        spec,
        next,
        out,
        Leader::Alive(inst.clone()),
        not_up_intent(svc),
    );
}

/// `Timer::Watchdog` fired: a `WATCHDOG=1` within the period arms what is left of it;
/// none is a failure.
pub(super) fn watchdog_due(
    spec: &Spec,
    next: &mut Service,
    out: &mut Vec<Action>,
    inst: &Instance,
    now: Instant,
) {
    let Some(wd) = spec.watchdog else {
        return;
    };
    let since = now.saturating_duration_since(inst.watchdog_at.unwrap_or(inst.started));
    if since < wd {
        out.push(Action::Arm(Timer::Watchdog, wd - since));
        return;
    }
    let why = format!(
        "watchdog timeout: no WATCHDOG=1 for {:.1}s",
        since.as_secs_f64()
    );
    out.push(log(
        Level::Warn,
        format!("{}: {why}; stopping it", spec.name),
    ));
    next.reason = Some(why);
    begin_stop(
        spec,
        next,
        out,
        Leader::Alive(inst.clone()),
        StopIntent::Unhealthy,
    );
}
