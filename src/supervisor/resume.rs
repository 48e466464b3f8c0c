//! `sysg upgrade`, the new binary's side (`sysg __resume FD`): read the handover, take
//! the inherited descriptors, rebuild every service's state and timers, answer the
//! client that asked, and run the loop: same pid, same children, same pipes.

use super::handover::{self, Handover, PhaseState};
use super::output::Pipe;
use super::policy::ExitStatus;
use super::service::{self, Instance, Leader, Phase, StopIntent};
use super::{startup, Supervisor, Timer, Unit};
use crate::error::{Error, Result};
use crate::ipc::Response;
use crate::logger::{info, warning};
use crate::paths::Stream;
use crate::sys;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant, SystemTime};

fn inherited(fd: i32, what: &str) -> Result<std::fs::File> {
    sys::take_inherited_fd(fd)
        .ok_or_else(|| Error::msg(format!("upgrade: the {what} (fd {fd}) was not handed over")))
}

/// Takes over from the supervisor that exec'd this binary. If the handover cannot be
/// read or the config no longer loads, nothing has been touched yet: the old binary
/// (`fallback`, opened before the exec) is exec'd again with the same handover, and it
/// takes over instead.
pub fn resume(fd: i32, fallback: Option<i32>) -> Result<i32> {
    let (h, paths, config) = match prepare(fd) {
        Ok(ready) => ready,
        Err(e) => {
            let Some(old) = fallback else {
                return Err(e);
            };
            // Said on the supervisor log too: this is a detached process.
            if let Ok(paths) = crate::commands::paths() {
                if crate::logger::open(paths.supervisor_log(), false).is_ok() {
                    crate::logger::error!("{e}; running the previous binary again");
                }
            }
            let arg = fd.to_string();
            let binary = std::path::PathBuf::from(format!("/proc/self/fd/{old}"));
            let err = sys::exec::exec(&binary, &["sysg", "__resume", &arg]);
            return Err(Error::msg(format!(
                "{e}; and the previous binary could not be run again: {err}"
            )));
        }
    };
    take_over(h, paths, config)
}

/// Everything that may fail before any inherited descriptor is taken.
fn prepare(fd: i32) -> Result<(Handover, crate::paths::Paths, crate::config::Config)> {
    let bytes = sys::exec::read_from_start(fd)
        .map_err(|e| Error::io("upgrade: reading the handover", e))?;
    let h: Handover = serde_json::from_slice(&bytes)
        .map_err(|e| Error::msg(format!("upgrade: unreadable handover: {e}")))?;
    if h.version != handover::VERSION {
        return Err(Error::msg(format!(
            "upgrade: handover version {} (this binary reads {})",
            h.version,
            handover::VERSION
        )));
    }
    let paths = crate::commands::paths()?;
    let config = crate::config::load_regular(&h.config)?;
    let _ = inherited(fd, "handover");
    Ok((h, paths, config))
}

fn take_over(
    h: Handover,
    paths: crate::paths::Paths,
    config: crate::config::Config,
) -> Result<i32> {
    if h.foreground {
        crate::terminal::start();
    }
    crate::logger::open(paths.supervisor_log(), h.foreground)
        .map_err(|e| Error::io_path("cannot open", &paths.supervisor_log(), e))?;
    let pid_lock = inherited(h.lock_fd, "sysg.pid lock")?;
    let listener = UnixListener::from(OwnedFd::from(inherited(h.listener_fd, "control socket")?));
    let subreaper = h.subreaper && sys::set_child_subreaper().is_ok();
    let signals = startup::install_signals()?;
    // Held across the exec: what came meanwhile (a child's exit, a SIGTERM) is
    // delivered now, to these handlers.
    sys::exec::unblock_signals(super::upgrade::HELD_SIGNALS);
    let now = Instant::now();
    let mut deadlines = Vec::new();
    let units: Vec<Unit> = config
        .services
        .iter()
        .map(|svc| {
            let state = h.units.iter().find(|u| u.name == svc.name);
            let history = state.map(|s| s.cron_history.clone()).unwrap_or_default();
            let mut unit = Unit::new(svc.clone(), history);
            if let Some(s) = state {
                restore(&mut unit, s, now, &mut deadlines);
            }
            unit
        })
        .collect();
    let (cgroups, containment) = super::contain::open_tree(&paths.dir);
    let started = startup::Started {
        pid_lock,
        signals,
        listener,
        units,
        subreaper,
        // Not cleared: the services running in it are ours now.
        cgroups,
        containment,
    };
    let mut sup = Supervisor::new(paths, config, h.foreground, started)?;
    if let Some(tree) = sup.cgroups.clone() {
        for s in &h.units {
            let leaf = s.cgroup.clone().filter(|p| p.starts_with(&tree.base));
            if let (Some(path), Some(&i)) = (leaf, sup.index.get(&s.name)) {
                sup.units[i].leaves.live = Some(tree.leaf(path));
            }
        }
    }
    sup.first_failure = h.first_failure;
    for p in &h.pipes {
        let stream = if p.stderr {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        match inherited(p.fd, "output pipe")
            .and_then(|f| Pipe::new(&p.service, stream, f).map_err(|e| Error::io("output pipe", e)))
        {
            Ok(pipe) => sup.pipes.push(pipe),
            Err(e) => warning!("{}: {e}", p.service),
        }
    }
    for (service, fd, address) in &h.notify {
        match (inherited(*fd, "notify socket"), sup.index.get(service)) {
            (Ok(file), Some(&i)) => {
                let mut socket =
                    super::notify::Notify::taken_over(OwnedFd::from(file), address.clone());
                socket.status = h
                    .notify_status
                    .iter()
                    .find(|(name, _)| name == service)
                    .map(|(_, text)| text.clone());
                sup.units[i].notify = Some(socket);
            }
            (Err(e), _) => warning!("{service}: {e}"),
            _ => {}
        }
    }
    // A watchdog's period starts again here: pings sent during the exec wait in the
    // socket and are read by the first turn.
    for i in 0..sup.units.len() {
        let u = &mut sup.units[i];
        let (Some(wd), Phase::Running(inst)) = (u.cfg.watchdog, &mut u.svc.phase) else {
            continue;
        };
        inst.watchdog_at = Some(now);
        let epoch = u.svc.epoch;
        sup.timers
            .after(wd, Timer::Unit(i, epoch, service::Timer::Watchdog));
    }
    for (name, kind, remaining) in deadlines {
        if let Some(&i) = sup.index.get(&name) {
            let epoch = sup.units[i].svc.epoch;
            sup.timers.after(remaining, Timer::Unit(i, epoch, kind));
        }
    }
    // Those waiting for a stop or restart hear the end of it from here.
    for ws in &h.waiters {
        let (Ok(file), Some(&unit)) = (inherited(ws.fd, "client"), sup.index.get(&ws.service))
        else {
            continue;
        };
        sup.next_client += 1;
        let id = sup.next_client;
        match super::control::Client::new(id, UnixStream::from(OwnedFd::from(file))) {
            Ok(mut client) => {
                client.answered = true;
                sup.clients.push(client);
                let awaits = if ws.restart {
                    super::requests::Awaited::Restart
                } else {
                    super::requests::Awaited::Stop
                };
                sup.waiters.push(super::requests::Waiter {
                    client: id,
                    unit,
                    awaits,
                });
            }
            Err(e) => warning!("{}: a waiting client: {e}", ws.service),
        }
    }
    sup.apply_log_limits();
    sup.arm_all_cron();
    sup.settle();
    sup.flush_state();
    let me = sys::getpid();
    let binary = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    info!(
        "supervisor upgraded in place (pid {me}, {}, {} services, {} pipes)",
        binary.display(),
        sup.units.len(),
        sup.pipes.len()
    );
    if let Some(fd) = h.client_fd {
        if let Ok(file) = inherited(fd, "client") {
            let mut stream = UnixStream::from(OwnedFd::from(file));
            let reply = Response::ok(format!(
                "Upgraded: supervisor pid {me} now runs {}",
                binary.display()
            ));
            let mut line = serde_json::to_vec(&reply).unwrap_or_default();
            line.push(b'\n');
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(&line);
        }
    }
    sup.run_loop()
}

/// `unit` as the handover describes it; a pending backoff or stop deadline is added to
/// `deadlines`.
fn restore(
    unit: &mut Unit,
    s: &handover::UnitState,
    now: Instant,
    deadlines: &mut Vec<(String, service::Timer, Duration)>,
) {
    let svc = &mut unit.svc;
    svc.phase = match &s.phase {
        PhaseState::Running {
            pid,
            group,
            running_ms,
            restarted,
            cron_key,
        } => Phase::Running(Instance {
            pid: *pid,
            group: group.unwrap_or(*pid),
            started: now
                .checked_sub(Duration::from_millis(*running_ms))
                .unwrap_or(now),
            restarted: *restarted,
            up: true,
            probe_failures: 0,
            cron_key: cron_key.clone(),
            watchdog_at: None,
        }),
        PhaseState::Backoff { remaining_ms } => {
            let left = Duration::from_millis(*remaining_ms);
            deadlines.push((s.name.clone(), service::Timer::Backoff, left));
            Phase::Backoff { until: now + left }
        }
        PhaseState::Stopping {
            leader,
            intent,
            kill_in_ms,
            recheck_in_ms,
        } => {
            let inst = Instance {
                pid: leader.pid,
                group: leader.group,
                started: now
                    .checked_sub(Duration::from_millis(leader.running_ms))
                    .unwrap_or(now),
                restarted: leader.restarted,
                up: true,
                probe_failures: 0,
                cron_key: None,
                watchdog_at: None,
            };
            let exit = leader.exit.map(ExitStatus::from);
            let leader = match (leader.state.as_str(), exit) {
                ("exited", Some(e)) => Leader::Exited(inst, e),
                ("crashed", Some(e)) => Leader::Crashed(inst, e),
                _ => Leader::Alive(inst),
            };
            let intent = intent.as_deref().map(|i| match i {
                "stop" => StopIntent::Stop,
                "restart" => StopIntent::Restart,
                _ => StopIntent::Unhealthy,
            });
            for (kind, ms) in [
                (service::Timer::Kill, kill_in_ms),
                (service::Timer::Recheck, recheck_in_ms),
            ] {
                if let Some(ms) = ms {
                    deadlines.push((s.name.clone(), kind, Duration::from_millis(*ms)));
                }
            }
            Phase::Stopping { leader, intent }
        }
        PhaseState::Idle => Phase::Idle,
        PhaseState::Completed => Phase::Completed,
        PhaseState::Exited => Phase::Exited,
        PhaseState::Failed => Phase::Failed,
        PhaseState::Stopped => Phase::Stopped,
        PhaseState::Skipped => Phase::Skipped,
    };
    svc.consecutive = s.consecutive;
    svc.restart_count = s.restart_count;
    svc.last_exit = s.last_exit.map(Into::into);
    svc.last_started = s
        .last_started_ms
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    svc.reason = s.reason.clone();
    unit.held = s.held;
    unit.start_ticks = s.start_ticks;
    unit.adopted = s
        .adopted
        .iter()
        .map(|&(pid, start_ticks, leads_group)| super::adopt::Adopted {
            pid,
            start_ticks,
            leads_group,
        })
        .collect();
    unit.spawned_env = s.spawned_env.clone();
}
