//! The loop's side of the table: each `service::Action` performed as a syscall, a
//! timer, a worker thread or a record, and the spawns whose results go back to the table
//! as events.

use super::output::Pipe;
use super::service::{Action, Event};
use super::{children, health, hooks, policy, Supervisor, Timer};
use crate::ipc::CronRun;
use crate::logger::{self, error};
use crate::paths::Stream;
use crate::sys;
use std::fs::File;
use std::time::SystemTime;

impl Supervisor {
    pub(super) fn perform(&mut self, i: usize, action: Action) -> Option<Event> {
        match action {
            Action::Spawn => return Some(self.spawn_instance(i)),
            Action::SpawnCheck => return Some(self.spawn_check(i)),
            Action::RunPreStart => {
                let u = &self.units[i];
                if !super::prestart::launch(&mut self.workers, &u.cfg, i, u.svc.epoch) {
                    return Some(Event::PreStartDone {
                        ok: false,
                        detail: "cannot start a thread for it".into(),
                    });
                }
            }
            Action::KillCheck { pid } => {
                let _ = sys::killpg(pid, libc::SIGKILL);
            }
            Action::Signal { sig } => {
                if let Some(pgid) = self.group_of(i) {
                    let _ = sys::killpg(pgid, sig);
                }
                self.signal_marked(i, sig);
                self.signal_adopted(i, sig);
            }
            Action::KillAll => self.kill_all(i),
            Action::SignalRetired { pid, group, sig } => {
                // Its group; the main process itself too, should it be outside it.
                let _ = sys::killpg(group, sig);
                let _ = sys::kill(pid, sig);
                self.signal_retiring_leaf(i, group, sig);
            }
            Action::RollDone { ok, message } => self.roll_done(i, ok, message),
            Action::Reinstated { new_spec } => {
                self.retiring_leaf_over(i, true);
                self.reinstated(i, new_spec);
            }
            Action::Arm(timer, after) => {
                let epoch = self.units[i].svc.epoch;
                self.timers.after(after, Timer::Unit(i, epoch, timer));
            }
            Action::Probe => {
                let u = &self.units[i];
                if let Some(seen) = &u.ready_seen {
                    // A log probe: the output path says when it passes.
                    let healthy = seen.load(std::sync::atomic::Ordering::Relaxed);
                    let detail = match u.cfg.health_check.as_ref().map(|c| &c.probe) {
                        Some(crate::config::Probe::Log(text)) if !healthy => {
                            format!("no output line has contained \"{text}\" yet")
                        }
                        _ => "its output said it is ready".into(),
                    };
                    return Some(Event::ProbeResult { healthy, detail });
                }
                if let Some(check) = u.cfg.health_check.as_ref() {
                    let pid = u.svc.live().map(|r| r.pid);
                    let launched =
                        health::launch(&mut self.workers, &u.cfg, check, i, u.svc.epoch, pid);
                    if let Err(e) = launched {
                        return Some(Event::ProbeFailedToLaunch {
                            error: e.to_string(),
                        });
                    }
                }
            }
            Action::Hook {
                event,
                outcome,
                exit,
                pid,
            } => hooks::fire(
                &mut self.workers,
                &self.units[i].cfg,
                event,
                outcome,
                exit,
                pid,
            ),
            Action::ArmCron => self.arm_cron(i),
            Action::DisarmCron => {
                let gen = self.next_gen();
                if let Some(c) = self.units[i].cron.as_mut() {
                    c.gen = gen;
                    c.next = None;
                }
            }
            Action::CronBegin { key } => {
                self.publish_note(i, "cron", format!("fired ({key})"));
                self.cron_record(i, key, false);
            }
            Action::CronSkipped { key } => {
                self.publish_note(
                    i,
                    "cron",
                    format!("skipped ({key}): the last run is still on"),
                );
                self.cron_record(i, key, true);
            }
            Action::CronFinished {
                key,
                uptime,
                status,
            } => {
                if let Some(c) = self.units[i].cron.as_mut() {
                    let (code, signal) = policy::split(Some(status));
                    c.finish(&key, uptime, code, signal);
                }
            }
            Action::Failure { code } => {
                self.first_failure.get_or_insert(code);
            }
            Action::StopDone => self.settled.push(i),
            Action::Log(level, msg) => logger::log(level, &msg),
        }
        self.state_dirty = true;
        None
    }

    fn spawn_instance(&mut self, i: usize) -> Event {
        // NOTIFY_SOCKET and WATCHDOG_USEC: not part of the environment a reload compares.
        let extra = match self.notify_env(i) {
            Ok(extra) => extra,
            Err(e) => {
                return Event::SpawnFailed {
                    error: format!("cannot create its notify socket: {e}"),
                }
            }
        };
        let cgroup = match self
            .new_leaf(i)
            .and_then(|l| l.map(|l| l.procs_file()).transpose())
        {
            Ok(cgroup) => cgroup,
            Err(e) => {
                return Event::SpawnFailed {
                    error: format!("cannot give it a cgroup: {e}"),
                }
            }
        };
        let u = &self.units[i];
        let spawned = u
            .cfg
            .environment()
            .map_err(std::io::Error::other)
            .and_then(|env| {
                children::spawn_service(&u.cfg, &env, &extra, &self.paths.dir, cgroup.as_ref())
                    .map(|s| (s, env))
            });
        match spawned {
            Ok((s, env)) => {
                let name = u.cfg.name.clone();
                self.units[i].spawned_env = Some(env);
                self.units[i].start_ticks = crate::procfs::start_time_ticks(s.pid);
                self.units[i].group_empty = false;
                self.output.create_logs(&name);
                let first = self.pipes.len();
                self.add_pipes(&name, s.stdout, s.stderr);
                let watch = self.roll_watch(i);
                let ready = self.ready_watch(i);
                for pipe in &mut self.pipes[first..] {
                    pipe.watch = watch.clone();
                    pipe.ready = ready.clone();
                }
                Event::Spawned {
                    pid: s.pid,
                    wall: SystemTime::now(),
                }
            }
            Err(e) => Event::SpawnFailed {
                error: e.to_string(),
            },
        }
    }

    fn spawn_check(&mut self, i: usize) -> Event {
        let u = &self.units[i];
        let Some(skip) = u.cfg.skip.as_deref() else {
            return Event::CheckFailed {
                error: "no skip check configured".into(),
            };
        };
        match children::spawn(&u.cfg, skip, &[], &self.paths.dir) {
            Ok(s) => {
                let name = u.cfg.name.clone();
                self.add_pipes(&name, s.stdout, s.stderr);
                Event::CheckSpawned { pid: s.pid }
            }
            Err(e) => Event::CheckFailed {
                error: e.to_string(),
            },
        }
    }

    fn cron_record(&mut self, i: usize, key: String, skipped: bool) {
        if let Some(c) = self.units[i].cron.as_mut() {
            c.push(CronRun {
                started_at: key,
                duration_ms: skipped.then_some(0),
                exit_code: None,
                signal: None,
                skipped,
            });
        }
    }

    fn add_pipes(&mut self, name: &str, stdout: File, stderr: File) {
        for (stream, file) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            match Pipe::new(name, stream, file) {
                Ok(p) => self.pipes.push(p),
                Err(e) => error!("{name}: cannot read {} pipe: {e}", stream.as_str()),
            }
        }
    }

    /// For an instance of unit `i` about to start, with `health_check.log`: a fresh
    /// flag (kept by the unit) and the watch its pipes carry.
    fn ready_watch(&mut self, i: usize) -> Option<super::output::ReadyWatch> {
        let u = &mut self.units[i];
        let text = match u.cfg.health_check.as_ref().map(|c| &c.probe) {
            Some(crate::config::Probe::Log(text)) => text.clone(),
            _ => {
                u.ready_seen = None;
                return None;
            }
        };
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        u.ready_seen = Some(seen.clone());
        Some(super::output::ReadyWatch::new(
            seen,
            text.into_bytes().into(),
        ))
    }
}
