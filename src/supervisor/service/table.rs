//! The table itself: one arm per (phase, event) cell. Read by rows:
//!
//! - Pending: Deps(Ready) -> Checking (skip set) or Starting; Deps(Wait) -> Pending
//!   naming the dependency; Deps(Blocked) -> Failed.
//! - Checking: CheckSpawned arms its deadline; CheckDeadline kills it; CheckExited (or
//!   CheckFailed) -> a stop asked meanwhile applies, else Skipped on exit 0, else Starting
//!   (a cron job: Idle, its schedule armed).
//! - Starting: Spawned -> Running (up timer, or a probe at once); SpawnFailed ->
//!   on_start.error, then the policy (a cron job: Idle).
//! - Running: UpTimer / passing probe -> up; failing probes -> retry, then an Unhealthy
//!   stop; LeaderExited -> conclude, or Stopping (Crashed) while its group lives on.
//! - Stopping: LeaderExited / GroupGone / a deadline with nothing left -> conclude;
//!   KillDeadline / Recheck with survivors -> SIGKILL and look again.
//! - Backoff: BackoffDue -> Starting (restarted). Idle: CronDue -> Starting.
//! - Stop, in any state: with processes -> Stopping (a Shutdown is never downgraded);
//!   without -> Stopped, or Stopping for strays an earlier instance left.
//! - Start by hand, in any state without processes: fresh counters -> Pending (cron: Idle).
//!
//! Concluding applies the stop's intent (Stopped, or a fresh start) or, for an exit on
//! its own, the hooks and `policy::after_exit`.

use super::steps::*;
use super::*;

/// The table: where `svc` goes on `ev`, and what the loop must do about it.
pub fn on_event(spec: &Spec, svc: &Service, ev: Event, now: Instant) -> (Service, Vec<Action>) {
    let mut next = svc.clone();
    let mut out = Vec::new();
    let name = spec.name.as_str();
    let is_cron = spec.cron.is_some();
    if matches!(ev, Event::Stop { .. }) {
        // Whatever the stop does to the new instance, the old one of a rolling restart
        // goes too.
        retire(spec, &mut next, &mut out);
    }
    match (&svc.phase, ev) {
        // ----- a rolling restart ---------------------------------------------------
        (Phase::Running(inst), Event::Roll) if inst.up && svc.retiring.is_none() => {
            out.push(log(
                Level::Info,
                format!(
                    "{name}: rolling restart: starting a new instance beside pid {}",
                    inst.pid
                ),
            ));
            next.retiring = Some(Retiring {
                inst: inst.clone(),
                signalled: false,
                fallback: false,
            });
            next.consecutive = 0;
            begin_spawn(spec, &mut next, &mut out, false, None);
        }
        (Phase::Running(inst), Event::GraceOver) if inst.up => retire(spec, &mut next, &mut out),
        (Phase::Running(inst), Event::AddressInUse) if !inst.up && rolling_back(svc) => {
            if let Some(old) = next.retiring.as_mut() {
                old.fallback = true;
            }
        }
        (_, Event::RetireDeadline) => {
            if let Some(old) = svc.retiring.as_ref().filter(|r| r.signalled) {
                out.push(log(
                    Level::Warn,
                    format!(
                        "{name}: old instance (pid {}) still alive after stop_timeout; sending SIGKILL",
                        old.inst.pid
                    ),
                ));
                out.push(Action::SignalRetired {
                    pid: old.inst.pid,
                    group: old.inst.group,
                    sig: libc::SIGKILL,
                });
            }
        }
        (_, Event::RetiredExited { status }) => {
            if let Some(old) = next.retiring.take() {
                out.push(log(
                    Level::Info,
                    format!(
                        "{name}: old instance (pid {}) exited ({})",
                        old.inst.pid,
                        status.describe()
                    ),
                ));
                // What else was in its group goes with it.
                out.push(Action::SignalRetired {
                    pid: old.inst.pid,
                    group: old.inst.group,
                    sig: libc::SIGKILL,
                });
            }
        }
        (Phase::Starting { .. }, Event::SpawnFailed { error }) if rolling_back(svc) => {
            out.push(log(Level::Error, format!("{name}: cannot start: {error}")));
            out.push(hook(HookEvent::Start, Outcome::Error, None, None));
            let why = format!("cannot start the new instance: {error}");
            reinstate(spec, &mut next, &mut out, &why);
        }
        (Phase::Running(inst), Event::LeaderExited { status, survivors })
            if !inst.up && rolling_back(svc) =>
        {
            next.last_exit = Some(status);
            next.reason = None;
            let leader = Leader::Crashed(inst.clone(), status);
            if survivors == 0 {
                conclude(
                    spec,
                    &mut next,
                    &mut out,
                    leader,
                    Some(StopIntent::RollBack),
                    now,
                );
            } else {
                next.enter(Phase::Stopping {
                    leader,
                    intent: Some(StopIntent::RollBack),
                });
                out.push(Action::Signal {
                    sig: spec.stop_signal,
                });
                out.push(Action::Arm(Timer::Kill, spec.stop_timeout));
            }
        }

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
            begin_spawn(spec, &mut next, &mut out, false, None);
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
        (
            Phase::Checking {
                stop: Some(stop), ..
            },
            Event::CheckFailed { .. },
        ) => {
            after_check(spec, &mut next, &mut out, *stop);
        }
        (Phase::Checking { .. }, Event::CheckFailed { error }) => {
            out.push(log(
                Level::Warn,
                format!("{name}: skip check could not run ({error}); starting it"),
            ));
            not_skipped(spec, &mut next, &mut out);
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
                Some(stop) => after_check(spec, &mut next, &mut out, *stop),
                None if status.success() => {
                    out.push(log(
                        Level::Info,
                        format!("{name} skipped (skip check exited 0)"),
                    ));
                    next.enter(Phase::Skipped);
                }
                None => not_skipped(spec, &mut next, &mut out),
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

        // ----- pre_start -------------------------------------------------------------
        (Phase::PreStarting { restarted, stop }, Event::Stop { intent, .. }) => {
            next.phase = Phase::PreStarting {
                restarted: *restarted,
                stop: Some(keep_shutdown(*stop, intent)),
            };
        }
        (
            Phase::PreStarting {
                stop: Some(stop), ..
            },
            Event::PreStartDone { .. },
        ) => after_check(spec, &mut next, &mut out, *stop),
        (Phase::PreStarting { restarted, .. }, Event::PreStartDone { ok: true, .. }) => {
            out.push(log(Level::Debug, format!("{name}: pre_start done")));
            spawn_now(&mut next, &mut out, *restarted, None);
        }
        (Phase::PreStarting { restarted, .. }, Event::PreStartDone { ok: false, detail }) => {
            // A start that failed, like a spawn that failed: hooks, then the policy.
            next.enter(Phase::Starting {
                restarted: *restarted,
                cron_key: None,
            });
            let error = format!("pre_start failed ({detail})");
            let (after, more) = on_event(spec, &next, Event::SpawnFailed { error }, now);
            next = after;
            out.extend(more);
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
                group: pid,
                started: now,
                restarted: *restarted,
                up: false,
                probe_failures: 0,
                cron_key: cron_key.clone(),
                watchdog_at: None,
            }));
            // With a health check the first probe goes at once: readiness then has no
            // fixed floor. Without one, the 1 s rule applies. With notify, READY=1 says
            // it, within NOTIFY_START.
            out.push(match spec.health_check {
                _ if spec.notify => Action::Arm(Timer::Up, NOTIFY_START),
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
        (Phase::Running(inst), Event::UpTimer) if !inst.up && spec.notify => {
            let why = format!("no READY=1 within {}s", NOTIFY_START.as_secs());
            failed_before_up(spec, svc, &mut next, &mut out, inst, why);
        }
        (Phase::Running(inst), Event::UpTimer) if !inst.up => {
            up_now(spec, &mut next, &mut out);
        }
        (Phase::Running(inst), Event::NotifyReady) if !inst.up && spec.notify => {
            out.push(log(Level::Debug, format!("{name}: READY=1")));
            up_now(spec, &mut next, &mut out);
            if let (Some(wd), Phase::Running(i)) = (spec.watchdog, &mut next.phase) {
                i.watchdog_at = Some(now);
                out.push(Action::Arm(Timer::Watchdog, wd));
            }
        }
        (Phase::Running(inst), Event::MainPid { pid }) if spec.notify && pid != inst.pid => {
            out.push(log(
                Level::Info,
                format!(
                    "{name}: main process is now pid {pid} (MAINPID=, was {})",
                    inst.pid
                ),
            ));
            if let Phase::Running(i) = &mut next.phase {
                i.pid = pid;
            }
        }
        (Phase::Running(inst), Event::WatchdogPing) if inst.up => {
            if let Phase::Running(i) = &mut next.phase {
                i.watchdog_at = Some(now);
            }
        }
        (Phase::Running(inst), Event::WatchdogDue) if inst.up => {
            watchdog_due(spec, &mut next, &mut out, inst, now);
        }
        (Phase::Running(inst), Event::ProbeDue) if !inst.up || live_checked(spec) => {
            out.push(Action::Probe)
        }
        (Phase::Running(inst), Event::ProbeFailedToLaunch { error })
            if inst.up && live_checked(spec) =>
        {
            out.push(log(
                Level::Warn,
                format!("{name}: cannot start a liveness probe ({error}); retrying"),
            ));
            if let Some(check) = &spec.health_check {
                out.push(Action::Arm(Timer::Probe, check.interval));
            }
        }
        (Phase::Running(inst), Event::ProbeResult { healthy, detail })
            if inst.up && live_checked(spec) =>
        {
            liveness_result(spec, &mut next, &mut out, inst, healthy, detail);
        }
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
            up_now(spec, &mut next, &mut out);
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
                    not_up_intent(svc),
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
                    status.describe(),
                    now.saturating_duration_since(inst.started).as_secs_f64()
                ),
            ));
            next.last_exit = Some(status);
            let leader = Leader::Crashed(inst.clone(), status);
            if survivors == 0 {
                conclude(spec, &mut next, &mut out, leader, None, now);
            } else {
                // The group lives on: clean up before deciding, so a restart never runs
                // beside the remains of the previous instance.
                // Said at info level: a service that daemonizes (its parent exits, a
                // child goes on) is not supervised that way, and should know it.
                out.push(log(
                    Level::Info,
                    format!(
                        "{name}: the instance exited ({}) leaving {survivors} process(es) \
                         running; stopping them",
                        status.describe()
                    ),
                ));
                next.reason = Some(format!("{survivors} leftover process(es) stopped"));
                next.enter(Phase::Stopping {
                    leader,
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
                format!("{name} leader exited ({})", status.describe()),
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
                leader: leader @ (Leader::Crashed(..) | Leader::Exited(..) | Leader::Strays),
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
        (Phase::Backoff { .. }, Event::BackoffDue) => {
            begin_spawn(spec, &mut next, &mut out, true, None)
        }
        (Phase::Idle, Event::CronDue { key, .. }) => {
            out.push(Action::CronBegin { key: key.clone() });
            begin_spawn(spec, &mut next, &mut out, false, Some(key));
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
                StopIntent::Restart => next.start_fresh(spec, &mut out),
                StopIntent::Stop | StopIntent::Unhealthy | StopIntent::RollBack => {
                    next.enter(Phase::Stopped)
                }
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
