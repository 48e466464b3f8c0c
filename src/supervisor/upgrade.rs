//! `sysg upgrade`, the running supervisor's side: check that the services can be handed
//! over (nothing starting or stopping, the config file still what runs, a binary that
//! reads this handover format), write the handover, keep the descriptors it names open
//! across the exec, and exec the new binary at the same pid. Any failure up to and
//! including the exec leaves this supervisor running, and the client is told why.

use super::children::{Done, Link};
use super::handover::{self, Handover, PhaseState, PipeState, StopLeader, UnitState, WaiterState};
use super::requests::Awaited;
use super::service::{self, Leader, Phase, StopIntent};
use super::{Supervisor, Timer};
use crate::ipc::Response;
use crate::logger::{error, info};
use crate::paths::Stream;
use crate::sys;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long the new binary gets to say which handover format it reads.
const VERSION_CHECK: Duration = Duration::from_secs(5);

/// Held across the exec; the new binary installs its handlers, then lets them in.
pub(super) const HELD_SIGNALS: &[i32] = &[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

impl Supervisor {
    /// The new binary is asked which handover it reads, and the config is read again,
    /// on a worker thread (either may take a while); `upgrade_checked` goes on.
    pub(super) fn upgrade_request(
        &mut self,
        client: u64,
        binary: Option<PathBuf>,
    ) -> Option<Response> {
        if self.upgrading.is_some() {
            return Some(Response::error(
                "cannot upgrade now: an upgrade is under way; try again",
            ));
        }
        if let Some(why) = self.not_upgradable() {
            return Some(Response::error(format!(
                "cannot upgrade now: {why}; try again"
            )));
        }
        let binary = match binary.map_or_else(own_binary, Ok) {
            Ok(b) => b,
            Err(e) => return Some(Response::error(format!("cannot upgrade: {e}"))),
        };
        let path = self.config.path.clone();
        let job = move |link: Link| {
            let result = reads_our_handover(&link, &binary)
                .map_err(|e| {
                    format!(
                        "cannot upgrade to {}: {e}; still running the current binary",
                        binary.display()
                    )
                })
                .and_then(|()| {
                    crate::config::load_regular(&path)
                        .map_err(|e| format!("cannot upgrade: the config does not load: {e}"))
                });
            link.report(Done::UpgradeChecked {
                client,
                binary,
                result,
            });
        };
        match self.workers.start("upgrade check".into(), false, job) {
            Ok(()) => {
                self.upgrading = Some(client);
                None
            }
            Err(e) => Some(Response::error(format!("cannot upgrade: {e}"))),
        }
    }

    /// The checks of `upgrade_request` are done: unless something changed meanwhile,
    /// the exec. Only a failure is answered here (a success by the new binary).
    pub(super) fn upgrade_checked(
        &mut self,
        client: u64,
        binary: PathBuf,
        result: Result<crate::config::Config, String>,
    ) {
        self.upgrading = None;
        let resp = match result {
            Ok(config) => self.upgrade_now(client, &binary, &config),
            Err(e) => Response::error(e),
        };
        self.reply(client, &resp);
    }

    fn upgrade_now(
        &mut self,
        client: u64,
        binary: &Path,
        config: &crate::config::Config,
    ) -> Response {
        if let Some(why) = self.not_upgradable() {
            return Response::error(format!("cannot upgrade now: {why}; try again"));
        }
        match config {
            config if self.config_matches(config) => {}
            _ => {
                return Response::error(format!(
                    "cannot upgrade: {} changed since it was loaded; apply it first with 'sysg restart'",
                    self.config.path.display()
                ))
            }
        }
        info!(
            "upgrade: handing over to {} (pid {})",
            binary.display(),
            sys::getpid()
        );
        let e = self.exec_into(binary, client);
        error!(
            "upgrade to {} failed: {e}; the current supervisor goes on",
            binary.display()
        );
        Response::error(format!(
            "cannot upgrade to {}: {e}; still running the current binary",
            binary.display()
        ))
    }

    /// Why the services cannot be handed over right now, if they cannot.
    fn not_upgradable(&self) -> Option<String> {
        if self.shutting_down {
            return Some("the supervisor is shutting down".into());
        }
        if self.loading.is_some() || self.reload.is_some() {
            return Some("a reload is under way".into());
        }
        if self.workers.running() > 0 {
            return Some("hooks are running".into());
        }
        if self
            .waiters
            .iter()
            .any(|w| !matches!(w.awaits, Awaited::Stop | Awaited::Restart))
        {
            return Some("a rolling restart is under way".into());
        }
        for u in self.units.iter().filter(|u| !u.removed) {
            let name = &u.cfg.name;
            let settled = match &u.svc.phase {
                Phase::Running(inst) => inst.up,
                Phase::Backoff { .. }
                | Phase::Idle
                | Phase::Completed
                | Phase::Exited
                | Phase::Failed
                | Phase::Stopped
                | Phase::Skipped => true,
                // A stop goes on in the new binary, its deadline kept.
                Phase::Stopping { leader, intent } => {
                    !matches!(leader, Leader::Strays)
                        && !matches!(intent, Some(StopIntent::Shutdown | StopIntent::RollBack))
                }
                _ => false,
            };
            if !settled || u.svc.retiring.is_some() || u.retiring || u.reload_hold {
                let what = match u.svc.phase.name() {
                    "running" => "running but not up yet",
                    other => other,
                };
                return Some(format!("{name} is {what}"));
            }
        }
        None
    }

    /// What the new binary needs to take over, naming the descriptors it inherits.
    fn handover(&self, client_fd: Option<RawFd>) -> Handover {
        let now = Instant::now();
        let units = self
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| !u.removed)
            .map(|(i, u)| {
                let phase = match &u.svc.phase {
                    Phase::Running(inst) => PhaseState::Running {
                        pid: inst.pid,
                        group: Some(inst.group),
                        running_ms: now.saturating_duration_since(inst.started).as_millis() as u64,
                        restarted: inst.restarted,
                        cron_key: inst.cron_key.clone(),
                    },
                    Phase::Backoff { until } => PhaseState::Backoff {
                        remaining_ms: until.saturating_duration_since(now).as_millis() as u64,
                    },
                    Phase::Idle => PhaseState::Idle,
                    Phase::Completed => PhaseState::Completed,
                    Phase::Exited => PhaseState::Exited,
                    Phase::Failed => PhaseState::Failed,
                    Phase::Skipped => PhaseState::Skipped,
                    Phase::Stopping { leader, intent } => self.stopping_state(i, leader, *intent),
                    _ => PhaseState::Stopped,
                };
                UnitState {
                    name: u.cfg.name.clone(),
                    phase,
                    consecutive: u.svc.consecutive,
                    restart_count: u.svc.restart_count,
                    last_exit: u.svc.last_exit.map(Into::into),
                    last_started_ms: u.svc.last_started.and_then(|t| {
                        t.duration_since(SystemTime::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_millis() as u64)
                    }),
                    reason: u.svc.reason.clone(),
                    held: u.held,
                    start_ticks: u.start_ticks,
                    spawned_env: u.spawned_env.clone(),
                    cron_history: u
                        .cron
                        .as_ref()
                        .map(|c| c.history.iter().cloned().collect())
                        .unwrap_or_default(),
                    cgroup: u.leaves.live.as_ref().map(|l| l.path.clone()),
                    adopted: u
                        .adopted
                        .iter()
                        .map(|a| (a.pid, a.start_ticks, a.leads_group))
                        .collect(),
                }
            })
            .collect();
        Handover {
            version: handover::VERSION,
            config: self.config.path.clone(),
            foreground: self.foreground,
            subreaper: self.subreaper,
            first_failure: self.first_failure,
            listener_fd: self.listener.as_raw_fd(),
            lock_fd: self._pid_lock.as_raw_fd(),
            client_fd,
            units,
            pipes: self
                .pipes
                .iter()
                .map(|p| PipeState {
                    service: p.service.clone(),
                    stderr: p.stream == Stream::Stderr,
                    fd: p.file.as_raw_fd(),
                })
                .collect(),
            notify: self
                .units
                .iter()
                .filter(|u| !u.removed)
                .filter_map(|u| {
                    let (fd, address) = u.notify.as_ref()?.handed();
                    Some((u.cfg.name.clone(), fd, address))
                })
                .collect(),
            waiters: self
                .waiters
                .iter()
                .filter_map(|w| {
                    let client = self.clients.iter().find(|c| c.id == w.client)?;
                    Some(WaiterState {
                        fd: client.stream.as_raw_fd(),
                        service: self.units[w.unit].cfg.name.clone(),
                        restart: w.awaits == Awaited::Restart,
                    })
                })
                .collect(),
            notify_status: self
                .units
                .iter()
                .filter(|u| !u.removed)
                .filter_map(|u| {
                    let text = u.notify.as_ref()?.status.clone()?;
                    Some((u.cfg.name.clone(), text))
                })
                .collect(),
        }
    }

    /// Unit `i`, stopping: its instance and what is left of its deadlines.
    fn stopping_state(&self, i: usize, leader: &Leader, intent: Option<StopIntent>) -> PhaseState {
        let now = Instant::now();
        let (state, inst, exit) = match leader {
            Leader::Alive(inst) => ("alive", inst, None),
            Leader::Exited(inst, status) => ("exited", inst, Some((*status).into())),
            Leader::Crashed(inst, status) => ("crashed", inst, Some((*status).into())),
            Leader::Strays => unreachable!("refused by not_upgradable"),
        };
        let epoch = self.units[i].svc.epoch;
        let left = |kind: service::Timer| {
            self.timers
                .first(
                    |k| matches!(k, Timer::Unit(j, e, t) if *j == i && *e == epoch && *t == kind),
                )
                .map(|at| at.saturating_duration_since(now).as_millis() as u64)
        };
        PhaseState::Stopping {
            leader: StopLeader {
                state: state.into(),
                pid: inst.pid,
                group: inst.group,
                running_ms: now.saturating_duration_since(inst.started).as_millis() as u64,
                restarted: inst.restarted,
                exit,
            },
            intent: intent.map(|i| {
                match i {
                    StopIntent::Stop => "stop",
                    StopIntent::Restart => "restart",
                    _ => "unhealthy",
                }
                .to_string()
            }),
            kill_in_ms: left(service::Timer::Kill),
            recheck_in_ms: left(service::Timer::Recheck),
        }
    }

    /// Execs `binary` with the handover; returns only if that failed, with everything
    /// as it was.
    fn exec_into(&mut self, binary: &Path, client: u64) -> std::io::Error {
        let client_fd = self
            .clients
            .iter()
            .find(|c| c.id == client)
            .map(|c| c.stream.as_raw_fd());
        let handover = self.handover(client_fd);
        let bytes = match serde_json::to_vec(&handover) {
            Ok(b) => b,
            Err(e) => return std::io::Error::other(e),
        };
        let memfd = match sys::exec::sealed_memfd("sysg-handover", &bytes) {
            Ok(fd) => fd,
            Err(e) => return e,
        };
        let mut kept: Vec<RawFd> = vec![handover.listener_fd, handover.lock_fd];
        kept.extend(client_fd);
        kept.extend(handover.pipes.iter().map(|p| p.fd));
        kept.extend(handover.notify.iter().map(|n| n.1));
        kept.extend(handover.waiters.iter().map(|w| w.fd));
        for &fd in &kept {
            if let Err(e) = sys::clear_cloexec(fd) {
                reclose(&kept);
                return e;
            }
        }
        // The state files are written, the writer thread done.
        self.state_dirty = true;
        self.pids_dirty = true;
        self.last_flush = None;
        self.flush_state();
        self.persist.finish();
        // This binary, for the new one to exec again should it fail to take over.
        let old = std::fs::File::open("/proc/self/exe").ok();
        let old_arg = old
            .as_ref()
            .filter(|f| sys::clear_cloexec(f.as_raw_fd()).is_ok())
            .map_or_else(String::new, |f| f.as_raw_fd().to_string());
        let mask = sys::exec::block_signals(HELD_SIGNALS);
        let arg = memfd.as_raw_fd().to_string();
        let mut args = vec!["sysg", "__resume", arg.as_str()];
        if !old_arg.is_empty() {
            args.push(&old_arg);
        }
        let e = sys::exec::exec(binary, &args);
        sys::exec::set_signal_mask(&mask);
        reclose(&kept);
        self.persist = super::persist::Persister::start(self.paths.clone());
        e
    }
}

/// Close-on-exec again, after an exec that failed.
fn reclose(fds: &[RawFd]) {
    for &fd in fds {
        let _ = sys::set_cloexec(fd);
    }
}

/// The binary this supervisor runs from, as its path now names it (a package upgrade
/// replaces the file: /proc says "(deleted)" of the old one).
fn own_binary() -> std::io::Result<PathBuf> {
    let link = std::fs::read_link("/proc/self/exe")?;
    let text = link.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => link,
    })
}

/// Runs `binary __handover-version`: it must print the version this binary writes.
fn reads_our_handover(link: &Link, binary: &Path) -> Result<(), String> {
    let (out, status) = link
        .output_of(binary, &["__handover-version"], VERSION_CHECK)
        .map_err(|e| format!("cannot run it: {e}"))?
        .ok_or("it did not say which handover it reads")?;
    let exited_0 = status == super::policy::ExitStatus::Code(0);
    let version = out
        .trim()
        .strip_prefix("sysg-handover ")
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(v) if exited_0 && v == handover::VERSION => Ok(()),
        Some(v) => Err(format!(
            "it reads handover version {v}, this supervisor writes {}",
            handover::VERSION
        )),
        None => Err("it is not a sysg that can take over".into()),
    }
}
