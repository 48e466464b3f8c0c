//! The supervisor: one thread, one `poll(2)` loop over the signal self-pipe, the control
//! socket and its clients, and every service's output pipes; the timer queue supplies the
//! poll timeout. Events go to the units' state; decisions come from `policy`.

mod control;
mod cron;
mod health;
mod hooks;
mod logfile;
mod output;
mod persist;
mod policy;
mod spawn;
mod startup;
mod timers;
mod unit;
mod workers;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ipc::{CronRun, Request, Response, State, StatusReport};
use crate::logger::{debug, error, info, warning};
use crate::paths::{Paths, Stream};
use crate::state::{PidFile, StateFile};
use crate::sys;
use control::{Client, ClientEvent};
use hooks::{Event, Outcome};
use output::{Output, Pipe, ReadOutcome};
use policy::{Ended, ExitStatus, Next, Policy};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timers;
use unit::{Run, StopIntent, Unit, UP_AFTER};
use workers::{ProbeResult, Workers};

use spawn::{MARKER_SERVICE, MARKER_STATE_DIR};
pub use startup::stop_leftovers;

/// A `skip` check that has not answered by then counts as "do not skip".
const SKIP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a stop that has sent SIGKILL re-checks for survivors that are not our
/// children (their death raises no SIGCHLD here).
const KILL_RECHECK: Duration = Duration::from_millis(100);
/// How long a foreground supervisor, on its way out, waits for the terminal to take
/// what is still queued for it.
const TERMINAL_FLUSH: Duration = Duration::from_secs(2);

/// Names the fd of the handshake pipe a detached supervisor reports its startup on
/// (set by the client that spawns it, never passed on to services).
pub const READY_FD_ENV: &str = "SYSG_READY_FD";

pub struct Options {
    /// Echo service output and supervisor events to the terminal.
    pub foreground: bool,
    /// Write end of the daemon handshake pipe: "ok" or the startup error goes there.
    pub ready: Option<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Up(usize, u64),
    Restart(usize, u64),
    Kill(usize, u64),
    Recheck(usize, u64),
    CronFire(usize, u64),
    Health(usize, u64),
    ClientDeadline(u64),
    ResumeAccept,
    /// A `skip` check (unit, its pid) still running at its deadline.
    SkipDeadline(usize, i32),
}

struct Signals {
    pipe: File,
    /// Kept so hook threads can wake the loop through the same pipe.
    pipe_writer: File,
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

/// A client waiting for a stop or restart to finish before it gets its reply.
struct Waiter {
    client: u64,
    unit: usize,
    awaits: Awaited,
}

/// What a waiter asked for, and so what it is told.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Awaited {
    Stop,
    Restart,
}

pub struct Supervisor {
    paths: Paths,
    config: Config,
    units: Vec<Unit>,
    timers: Timers<Timer>,
    output: Output,
    workers: Workers,
    persist: persist::Persister,
    pipes: Vec<Pipe>,
    clients: Vec<Client>,
    listener: UnixListener,
    signals: Signals,
    next_client: u64,
    next_generation: u64,
    waiters: Vec<Waiter>,
    shutting_down: bool,
    /// Out of file descriptors: the listener is left alone until a timer resumes it,
    /// instead of poll reporting the pending connection again and again.
    accept_paused: bool,
    /// A reload in progress: the new config and the client to answer.
    reload: Option<(Config, u64)>,
    first_failure: Option<i32>,
    /// Names of services dropped by reloads: their hooks' escapees are swept at exit too.
    retired: Vec<String>,
    foreground: bool,
    pid1: bool,
    state_dirty: bool,
    pids_dirty: bool,
    // Held for the supervisor's lifetime: the flock on sysg.pid says "someone is here".
    _pid_lock: File,
}

/// Runs a supervisor until it is told to stop (or, in the foreground, until nothing can
/// ever run again). Returns the process exit code.
pub fn run(paths: Paths, config: Config, mut opts: Options) -> Result<i32> {
    let mut sup = match startup::start(&paths, config, opts.foreground) {
        Ok(sup) => sup,
        Err(e) => {
            if let Some(mut ready) = opts.ready.take() {
                let _ = writeln!(ready, "error {e}");
            }
            return Err(e);
        }
    };
    sup.apply_log_limits();
    sup.arm_all_cron();
    sup.schedule();
    sup.flush_state();
    if let Some(mut ready) = opts.ready.take() {
        let _ = writeln!(ready, "ok {}", sys::getpid());
    }
    sup.run_loop()
}

impl Supervisor {
    fn run_loop(&mut self) -> Result<i32> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        loop {
            if self.finished() {
                return Ok(self.finish());
            }
            fds.clear();
            let entry = |fd: i32, events: i16| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            fds.push(entry(self.signals.pipe.as_raw_fd(), libc::POLLIN));
            // A negative fd is skipped by poll: how accepting pauses after EMFILE.
            let listen_fd = if self.accept_paused {
                -1
            } else {
                self.listener.as_raw_fd()
            };
            fds.push(entry(listen_fd, libc::POLLIN));
            for c in &self.clients {
                let ev = if c.wants_write() {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                fds.push(entry(c.stream.as_raw_fd(), ev));
            }
            for p in &self.pipes {
                fds.push(entry(p.file.as_raw_fd(), libc::POLLIN));
            }
            let timeout = self.timers.poll_timeout(Instant::now());
            sys::poll(&mut fds, timeout).map_err(|e| Error::io("poll", e))?;

            // Snapshot readiness first: handlers below add and remove clients and pipes.
            let nclients = self.clients.len();
            let client_ready: Vec<(u64, i16)> = self
                .clients
                .iter()
                .zip(&fds[2..])
                .map(|(c, fd)| (c.id, fd.revents))
                .collect();
            let pipe_ready: Vec<i16> = fds[2 + nclients..].iter().map(|fd| fd.revents).collect();
            // Output first, so a service's last lines are stored before its exit is handled.
            self.on_pipes(&pipe_ready);
            if fds[0].revents != 0 {
                self.on_signal();
            }
            if fds[1].revents != 0 {
                self.accept_clients();
            }
            for (id, rev) in client_ready {
                if rev != 0 {
                    self.on_client(id, rev);
                }
            }
            for t in self.timers.pop_due(Instant::now()) {
                self.on_timer(t);
            }
            self.flush_state();
        }
    }

    // ----- events -------------------------------------------------------------------

    fn on_signal(&mut self) {
        let mut buf = [0u8; 256];
        while matches!((&self.signals.pipe).read_nonblocking(&mut buf), Some(n) if n > 0) {}
        while let Some((pid, ws)) = sys::reap_any() {
            let status = match ws {
                sys::WaitStatus::Exited(c) => ExitStatus::Code(c),
                sys::WaitStatus::Signaled(s) => ExitStatus::Signal(s),
            };
            self.on_reaped(pid, status);
        }
        for result in self.workers.collect() {
            self.on_probe(result);
        }
        self.check_stopping();
        let term = self.signals.term.swap(false, Ordering::Relaxed);
        let int = self.signals.int.swap(false, Ordering::Relaxed);
        let hup = self.signals.hup.swap(false, Ordering::Relaxed);
        if term || int || (hup && self.foreground) {
            let name = if term {
                "SIGTERM"
            } else if int {
                "SIGINT"
            } else {
                "SIGHUP"
            };
            if self.shutting_down {
                warning!("{name} again during shutdown: killing every service now");
                self.kill_everything();
            } else {
                info!("{name} received: stopping all services");
                self.begin_shutdown();
            }
        } else if hup {
            info!("SIGHUP ignored (use 'sysg restart' to reload the config)");
        }
    }

    fn on_reaped(&mut self, pid: i32, status: ExitStatus) {
        for i in 0..self.units.len() {
            if self.units[i]
                .run
                .as_ref()
                .is_some_and(|r| r.pid == pid && r.reaped.is_none())
            {
                self.on_leader_exit(i, status);
                return;
            }
            if self.units[i].probe.as_ref().is_some_and(|r| r.pid == pid) {
                self.on_probe_exit(i, status);
                return;
            }
        }
        if !self.workers.route_exit(pid, status) {
            debug!("reaped orphan pid {pid} ({})", describe(status));
        }
    }

    fn on_leader_exit(&mut self, i: usize, status: ExitStatus) {
        let u = &mut self.units[i];
        let Some(run) = u.run.as_mut() else { return };
        run.reaped = Some(status);
        u.last_exit = Some(status);
        self.pids_dirty = true;
        self.state_dirty = true;
        let uptime = run.started.elapsed();
        if run.stop.is_none() {
            info!(
                "{} exited ({}) after {:.1}s",
                u.cfg.name,
                describe(status),
                uptime.as_secs_f64()
            );
        } else {
            debug!("{} leader exited ({})", u.cfg.name, describe(status));
        }
        if self.leftovers(i).is_empty() {
            self.conclude(i);
            return;
        }
        let u = &mut self.units[i];
        let Some(run) = u.run.as_mut() else { return };
        if run.stop.is_none() {
            // The leader is gone but the group lives on: clean up before deciding, so a
            // restart never runs beside the remains of the previous instance.
            debug!(
                "{}: stopping leftover processes of the exited instance",
                u.cfg.name
            );
            let sig = u.cfg.stop_signal;
            let pgid = run.pgid;
            let gen = u.generation;
            let timeout = u.cfg.stop_timeout;
            u.state = State::Stopping;
            let _ = sys::killpg(pgid, sig);
            self.signal_marked(i, sig);
            self.timers.after(timeout, Timer::Kill(i, gen));
        }
    }

    fn on_probe_exit(&mut self, i: usize, status: ExitStatus) {
        let u = &mut self.units[i];
        let Some(probe) = u.probe.take() else { return };
        let _ = sys::killpg(probe.pgid, libc::SIGKILL);
        if probe.stop.is_some() || self.shutting_down {
            self.state_dirty = true;
            if probe.stop == Some(StopIntent::Restart) && !self.shutting_down {
                self.start_fresh(i);
                self.resolve_waiters(i);
                return;
            }
            if u.state == State::Pending {
                u.state = State::Stopped;
            }
            self.resolve_waiters(i);
            self.maybe_finish_reload();
            return;
        }
        if status.success() {
            info!("{} skipped (skip check exited 0)", u.cfg.name);
            u.state = State::Skipped;
            self.state_dirty = true;
            self.schedule();
        } else {
            self.spawn_unit(i);
        }
    }

    /// Called whenever processes may have vanished: finishes stops whose processes are all gone.
    fn check_stopping(&mut self) {
        for i in 0..self.units.len() {
            let reaped = self.units[i]
                .run
                .as_ref()
                .is_some_and(|r| r.reaped.is_some());
            if reaped && self.leftovers(i).is_empty() {
                self.conclude(i);
            }
        }
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Up(i, gen) => {
                let Some(u) = self.units.get(i) else { return };
                let alive = u
                    .run
                    .as_ref()
                    .is_some_and(|r| r.reaped.is_none() && r.stop.is_none());
                if u.generation == gen && alive && u.state == State::Running && !u.up {
                    self.mark_up(i);
                }
            }
            Timer::Health(i, gen) => self.probe_now(i, gen),
            Timer::Restart(i, gen) => {
                let Some(u) = self.units.get_mut(i) else {
                    return;
                };
                if u.generation == gen && u.state == State::Backoff && !self.shutting_down {
                    u.restart_at = None;
                    self.spawn_unit(i);
                    if let Some(run) = self.units[i].run.as_mut() {
                        run.is_restart = true;
                    }
                }
            }
            Timer::Kill(i, gen) => {
                let Some(u) = self.units.get(i) else { return };
                if u.generation != gen || u.run.is_none() {
                    return;
                }
                let survivors = self.leftovers(i);
                if survivors.is_empty() {
                    self.check_stopping();
                    return;
                }
                warning!(
                    "{}: {} process(es) still alive after stop_timeout; sending SIGKILL",
                    u.cfg.name,
                    survivors.len()
                );
                self.kill_now(i, &survivors);
            }
            Timer::Recheck(i, gen) => {
                let Some(u) = self.units.get(i) else { return };
                if u.generation != gen || u.run.is_none() {
                    return;
                }
                let survivors = self.leftovers(i);
                let leader_gone = u.run.as_ref().is_some_and(|r| r.reaped.is_some());
                if survivors.is_empty() && leader_gone {
                    self.conclude(i);
                } else {
                    self.kill_now(i, &survivors);
                }
            }
            Timer::CronFire(i, gen) => self.on_cron_timer(i, gen),
            Timer::ResumeAccept => self.accept_paused = false,
            Timer::SkipDeadline(i, pid) => {
                let Some(u) = self.units.get(i) else { return };
                if let Some(probe) = u.probe.as_ref().filter(|p| p.pid == pid) {
                    warning!("{}: skip check still running after {}s; killing it and starting the service", u.cfg.name, SKIP_TIMEOUT.as_secs());
                    let _ = sys::killpg(probe.pgid, libc::SIGKILL);
                }
            }
            Timer::ClientDeadline(id) => {
                // A client waiting for a stop or restart is bounded by stop timeouts;
                // anyone else still here has stalled: sent nothing, or stopped reading.
                let waiting = self.waiters.iter().any(|w| w.client == id)
                    || self.reload.as_ref().is_some_and(|(_, c)| *c == id);
                if !waiting && self.clients.iter().any(|c| c.id == id) {
                    debug!("dropping a stalled control client");
                    self.drop_client(id);
                }
            }
        }
    }

    /// The instance passed the up rule (1 s alive, or its first passing health check).
    fn mark_up(&mut self, i: usize) {
        let u = &mut self.units[i];
        u.up = true;
        info!("{} is up", u.cfg.name);
        let pid = u.run.as_ref().map(|r| r.pid);
        let restarted = u.run.as_ref().is_some_and(|r| r.is_restart);
        hooks::fire(
            &mut self.workers,
            &u.cfg,
            Event::Start,
            Outcome::Success,
            None,
            pid,
        );
        if restarted {
            hooks::fire(
                &mut self.workers,
                &u.cfg,
                Event::Restart,
                Outcome::Success,
                None,
                pid,
            );
        }
        self.state_dirty = true;
        self.schedule();
    }

    fn probe_now(&mut self, i: usize, gen: u64) {
        let Some(u) = self.units.get(i) else { return };
        let alive = u
            .run
            .as_ref()
            .is_some_and(|r| r.reaped.is_none() && r.stop.is_none());
        let Some(check) = u.cfg.health_check.as_ref() else {
            return;
        };
        if u.generation != gen || !alive || u.up || self.shutting_down {
            return;
        }
        if let Err(e) = health::launch(&mut self.workers, &u.cfg, check, i, gen) {
            warning!(
                "{}: cannot start a health probe ({e}); retrying",
                u.cfg.name
            );
            let interval = check.interval;
            self.timers.after(interval, Timer::Health(i, gen));
        }
    }

    fn on_probe(&mut self, r: ProbeResult) {
        let Some(u) = self.units.get_mut(r.unit) else {
            return;
        };
        let alive = u
            .run
            .as_ref()
            .is_some_and(|run| run.reaped.is_none() && run.stop.is_none());
        if u.generation != r.generation || !alive || u.up || u.state != State::Running {
            return;
        }
        let Some(check) = u.cfg.health_check.clone() else {
            return;
        };
        if r.healthy {
            debug!("{}: health check passed ({})", u.cfg.name, r.detail);
            self.mark_up(r.unit);
            return;
        }
        let Some(run) = u.run.as_mut() else { return };
        run.probe_failures += 1;
        let failures = run.probe_failures;
        debug!(
            "{}: health check failed ({failures}/{}): {}",
            u.cfg.name, check.retries, r.detail
        );
        if failures < check.retries {
            self.timers
                .after(check.interval, Timer::Health(r.unit, r.generation));
            return;
        }
        warning!(
            "{}: health check failed {failures} times, last: {}; stopping it",
            u.cfg.name,
            r.detail
        );
        u.reason = Some(format!(
            "health check failed {failures} times: {}",
            r.detail
        ));
        self.stop_unit(r.unit, StopIntent::Unhealthy);
    }

    fn on_pipes(&mut self, ready: &[i16]) {
        let mut closed = Vec::new();
        for (idx, &rev) in ready.iter().enumerate() {
            if rev == 0 {
                continue;
            }
            let pipe = &mut self.pipes[idx];
            if let ReadOutcome::Closed = self.output.read(pipe) {
                closed.push(idx);
            }
        }
        for idx in closed.into_iter().rev() {
            self.pipes.swap_remove(idx);
        }
    }

    fn accept_clients(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let me = sys::getuid();
                    match sys::peer_uid(&stream) {
                        Ok(uid) if uid == me || uid == 0 => {}
                        Ok(uid) => {
                            warning!("refused control connection from uid {uid}");
                            continue;
                        }
                        Err(e) => {
                            warning!(
                                "refused control connection: cannot read peer credentials: {e}"
                            );
                            continue;
                        }
                    }
                    self.next_client += 1;
                    let id = self.next_client;
                    match Client::new(id, stream) {
                        Ok(c) => {
                            self.clients.push(c);
                            self.timers
                                .after(control::CLIENT_DEADLINE, Timer::ClientDeadline(id));
                        }
                        Err(e) => warning!("control client setup failed: {e}"),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the connection stays queued, so the listener
                    // would stay readable; pause it instead of spinning.
                    error!(
                        "accept on control socket failed: {e}; pausing new connections for 100 ms"
                    );
                    self.accept_paused = true;
                    self.timers
                        .after(Duration::from_millis(100), Timer::ResumeAccept);
                    return;
                }
            }
        }
    }

    fn on_client(&mut self, id: u64, revents: i16) {
        let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let event = if revents & libc::POLLOUT != 0 && c.wants_write() {
            c.on_writable()
        } else if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            c.on_readable()
        } else {
            ClientEvent::Pending
        };
        match event {
            ClientEvent::Request(req) => self.on_request(id, req),
            ClientEvent::Close => self.drop_client(id),
            ClientEvent::Pending => {}
        }
    }

    /// A client that hung up no longer waits for anything.
    fn drop_client(&mut self, id: u64) {
        self.clients.retain(|c| c.id != id);
        self.waiters.retain(|w| w.client != id);
    }

    // ----- requests -----------------------------------------------------------------

    fn on_request(&mut self, client: u64, req: Request) {
        debug!("control request: {req:?}");
        let reply = match req {
            Request::Status { service } => self.status_reply(service.as_deref()),
            Request::Start { service } => self.start_request(&service),
            Request::Stop { service: None } => {
                self.begin_shutdown();
                Some(Response::ok("Supervisor shutting down"))
            }
            Request::Stop {
                service: Some(name),
            } => self.stop_request(client, &name),
            Request::Restart {
                service: Some(name),
                ..
            } => self.restart_request(client, &name),
            Request::Restart {
                service: None,
                config,
            } => self.reload_request(client, config),
        };
        if let Some(resp) = reply {
            self.reply(client, &resp);
        }
    }

    fn reply(&mut self, client: u64, resp: &Response) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
            c.reply(resp);
            // Try at once: most replies fit in the socket buffer.
            if matches!(c.on_writable(), ClientEvent::Close) {
                self.drop_client(client);
            }
        }
    }

    fn find(&self, name: &str) -> std::result::Result<usize, Response> {
        self.units
            .iter()
            .position(|u| u.cfg.name == name)
            .ok_or_else(|| Response::error(format!("unknown service '{name}'")))
    }

    fn status_reply(&self, service: Option<&str>) -> Option<Response> {
        let now = Instant::now();
        let selected: Vec<&Unit> = match service {
            Some(name) => match self.find(name) {
                Ok(i) => vec![&self.units[i]],
                Err(e) => return Some(e),
            },
            None => self.units.iter().collect(),
        };
        let pgids: Vec<i32> = selected.iter().filter_map(|u| u.live_pgid()).collect();
        let groups = crate::procfs::by_group(&pgids);
        let services = selected.iter().map(|u| u.status(now, &groups)).collect();
        let report = StatusReport {
            supervisor_pid: Some(sys::getpid()),
            config: Some(self.config.path.clone()),
            services,
        };
        Some(Response {
            ok: true,
            status: Some(report),
            ..Default::default()
        })
    }

    fn start_request(&mut self, name: &str) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        if self.shutting_down || self.reload.is_some() {
            return Some(Response::error("supervisor is shutting down or reloading"));
        }
        let u = &self.units[i];
        if u.has_processes() || matches!(u.state, State::Pending | State::Waiting) {
            return Some(Response::error(format!("{name} is already running")));
        }
        if u.is_cron() && u.state != State::Stopped {
            return Some(Response::error(format!(
                "cron job {name} is already scheduled"
            )));
        }
        info!("{name}: start requested");
        self.start_fresh(i);
        let verb = if self.units[i].is_cron() {
            "Scheduled"
        } else {
            "Started"
        };
        Some(self.started_reply(i, verb))
    }

    /// The answer to a start or restart by hand, once the unit has been started afresh:
    /// an error when the spawn was attempted at once and failed.
    fn started_reply(&self, i: usize, verb: &str) -> Response {
        let u = &self.units[i];
        match &u.spawn_error {
            Some(e) => Response::error(e.clone()),
            None => Response::ok(format!("{verb} {}", u.cfg.name)),
        }
    }

    fn stop_request(&mut self, client: u64, name: &str) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        info!("{name}: stop requested");
        if !self.units[i].has_processes() {
            self.stop_unit(i, StopIntent::Stop);
            return Some(Response::ok(format!("Stopped {name}")));
        }
        self.stop_unit(i, StopIntent::Stop);
        self.waiters.push(Waiter {
            client,
            unit: i,
            awaits: Awaited::Stop,
        });
        None
    }

    fn restart_request(&mut self, client: u64, name: &str) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        if self.shutting_down || self.reload.is_some() {
            return Some(Response::error("supervisor is shutting down or reloading"));
        }
        info!("{name}: restart requested");
        if !self.units[i].has_processes() {
            self.start_fresh(i);
            return Some(self.started_reply(i, "Restarted"));
        }
        self.stop_unit(i, StopIntent::Restart);
        self.waiters.push(Waiter {
            client,
            unit: i,
            awaits: Awaited::Restart,
        });
        None
    }

    fn reload_request(
        &mut self,
        client: u64,
        path: Option<std::path::PathBuf>,
    ) -> Option<Response> {
        if self.shutting_down || self.reload.is_some() {
            return Some(Response::error("supervisor is shutting down or reloading"));
        }
        let path = path.unwrap_or_else(|| self.config.path.clone());
        let config = match crate::config::load_regular(&path) {
            Ok(c) => c,
            Err(e) => return Some(Response::error(e.to_string())),
        };
        info!(
            "reloading: stopping all services, then starting from {}",
            config.path.display()
        );
        self.reload = Some((config, client));
        for i in 0..self.units.len() {
            self.stop_unit(i, StopIntent::Shutdown);
        }
        self.maybe_finish_reload();
        None
    }

    fn maybe_finish_reload(&mut self) {
        if self.units.iter().any(|u| u.has_processes()) {
            return;
        }
        let Some((config, client)) = self.reload.take() else {
            return;
        };
        let names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        self.output.retain(|n| names.iter().any(|m| m == n));
        let mut old: Vec<Unit> = std::mem::take(&mut self.units);
        for u in &old {
            if !names.contains(&u.cfg.name) && !self.retired.contains(&u.cfg.name) {
                self.retired.push(u.cfg.name.clone());
            }
        }
        self.units = config
            .services
            .iter()
            .map(|svc| {
                let history = old
                    .iter_mut()
                    .find(|u| u.cfg.name == svc.name)
                    .and_then(|u| u.cron.take())
                    .map(|c| c.history.into_iter().collect())
                    .unwrap_or_default();
                Unit::new(svc.clone(), history)
            })
            .collect();
        self.config = config;
        self.apply_log_limits();
        self.arm_all_cron();
        self.waiters.clear();
        let hint = format!("{}\n", self.config.path.display());
        if let Err(e) = crate::state::write_atomic(&self.paths.config_hint(), hint.as_bytes()) {
            warning!("cannot write config_hint: {e}");
        }
        self.first_failure = None;
        self.state_dirty = true;
        self.pids_dirty = true;
        self.schedule();
        let n = self.units.len();
        self.reply(client, &Response::ok(format!("Restarted {n} services")));
    }

    fn resolve_waiters(&mut self, i: usize) {
        let done: Vec<Waiter> = {
            let (done, keep) = std::mem::take(&mut self.waiters)
                .into_iter()
                .partition(|w| w.unit == i);
            self.waiters = keep;
            done
        };
        for w in done {
            let reply = match w.awaits {
                Awaited::Restart => self.started_reply(i, "Restarted"),
                Awaited::Stop => Response::ok(format!("Stopped {}", self.units[i].cfg.name)),
            };
            self.reply(w.client, &reply);
        }
    }

    // ----- lifecycle ----------------------------------------------------------------

    fn next_gen(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Starts every pending service whose dependencies allow it; marks those that can no
    /// longer start. Cheap enough to call after every change.
    fn schedule(&mut self) {
        if self.shutting_down || self.reload.is_some() {
            return;
        }
        loop {
            let mut changed = false;
            for i in 0..self.units.len() {
                if !matches!(self.units[i].state, State::Pending | State::Waiting)
                    || self.units[i].probe.is_some()
                {
                    continue;
                }
                let mut waiting = None;
                let mut failed = None;
                for dep in &self.units[i].cfg.depends_on {
                    let Some(d) = self.units.iter().find(|u| &u.cfg.name == dep) else {
                        continue;
                    };
                    if d.cfg.cron.is_some() || d.satisfies_dependents() {
                        continue;
                    }
                    if d.blocks_dependents() {
                        failed = Some(dep.clone());
                        break;
                    }
                    waiting.get_or_insert_with(|| dep.clone());
                }
                let u = &mut self.units[i];
                if let Some(dep) = failed {
                    warning!("{}: not started: dependency {dep} failed", u.cfg.name);
                    u.state = State::Failed;
                    u.reason = Some(format!("dependency {dep} failed"));
                    u.waiting_for = None;
                    self.state_dirty = true;
                    changed = true;
                } else if let Some(dep) = waiting {
                    if u.state != State::Waiting || u.waiting_for.as_deref() != Some(&dep) {
                        debug!("{}: waiting for {dep}", u.cfg.name);
                        u.state = State::Waiting;
                        u.waiting_for = Some(dep);
                        self.state_dirty = true;
                    }
                } else {
                    u.waiting_for = None;
                    self.start_unit(i);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// First start of an instance after boot or a request: runs the `skip` probe if any.
    fn start_unit(&mut self, i: usize) {
        let Some(skip) = self.units[i].cfg.skip.clone() else {
            self.spawn_unit(i);
            return;
        };
        let u = &self.units[i];
        match spawn::spawn(&u.cfg, &skip, &[], &self.paths.dir) {
            Ok(s) => {
                debug!("{}: running skip check", u.cfg.name);
                let name = u.cfg.name.clone();
                self.add_pipes(&name, s.stdout, s.stderr);
                let u = &mut self.units[i];
                u.probe = Some(Run::new(s.pid));
                u.state = State::Pending;
                self.timers
                    .after(SKIP_TIMEOUT, Timer::SkipDeadline(i, s.pid));
            }
            Err(e) => {
                warning!(
                    "{}: skip check could not run ({e}); starting it",
                    u.cfg.name
                );
                self.spawn_unit(i);
            }
        }
    }

    fn spawn_unit(&mut self, i: usize) {
        let gen = self.next_gen();
        let u = &mut self.units[i];
        u.generation = gen;
        u.up = false;
        u.completed = false;
        u.waiting_for = None;
        self.state_dirty = true;
        self.pids_dirty = true;
        match spawn::spawn(&u.cfg, &u.cfg.command, &[], &self.paths.dir) {
            Ok(s) => {
                info!("started {} (pid {})", u.cfg.name, s.pid);
                let run = Run::new(s.pid);
                u.last_started = Some(run.started_wall);
                u.run = Some(run);
                u.state = State::Running;
                u.reason = None;
                u.spawn_error = None;
                let name = u.cfg.name.clone();
                // With a health check the first probe goes at once: readiness then has no
                // fixed floor. Without one, the 1 s rule applies.
                let first = match u.cfg.health_check {
                    Some(_) => (Duration::ZERO, Timer::Health(i, gen)),
                    None => (UP_AFTER, Timer::Up(i, gen)),
                };
                self.timers.after(first.0, first.1);
                self.add_pipes(&name, s.stdout, s.stderr);
            }
            Err(e) => {
                error!("{}: cannot start: {e}", u.cfg.name);
                u.reason = Some(format!("cannot start: {e}"));
                u.spawn_error = Some(format!("cannot start {}: {e}", u.cfg.name));
                hooks::fire(
                    &mut self.workers,
                    &u.cfg,
                    Event::Start,
                    Outcome::Error,
                    None,
                    None,
                );
                if u.is_cron() {
                    // The next fire is the retry.
                    u.state = State::Idle;
                    self.schedule();
                } else {
                    // Like an exit with 127 before up: the policy may try again.
                    self.apply_policy(i, ExitStatus::Code(127), false, Duration::ZERO, false, None);
                }
            }
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

    /// Stops a unit's processes (or cancels its pending start).
    fn stop_unit(&mut self, i: usize, intent: StopIntent) {
        // A stop under way keeps its signal and SIGKILL deadline; only what follows it
        // changes (a shutdown is never downgraded).
        if let Some(run) = self.units[i].run.as_mut().filter(|r| r.stop.is_some()) {
            if run.stop != Some(StopIntent::Shutdown) {
                run.stop = Some(intent);
            }
            return;
        }
        let gen = self.next_gen();
        let u = &mut self.units[i];
        if let Some(c) = u.cron.as_mut().filter(|_| intent != StopIntent::Unhealthy) {
            // An unhealthy cron run is only a failed run: the schedule goes on.
            c.gen = gen;
            c.next = None;
        }
        u.restart_at = None;
        u.waiting_for = None;
        self.state_dirty = true;
        if let Some(probe) = u.probe.as_mut() {
            probe.stop = Some(intent);
            let _ = sys::killpg(probe.pgid, libc::SIGKILL);
        }
        if u.run.is_none() && u.probe.is_none() {
            // No instance; but an earlier one may have left escaped processes behind.
            let strays = self.marked(i);
            let u = &mut self.units[i];
            let Some(&first) = strays.first() else {
                u.generation = gen;
                match intent {
                    StopIntent::Restart if u.is_cron() => {
                        u.state = State::Idle;
                        self.arm_cron(i);
                    }
                    StopIntent::Restart => u.state = State::Pending,
                    StopIntent::Stop | StopIntent::Unhealthy => u.state = State::Stopped,
                    StopIntent::Shutdown => {
                        if u.is_active() {
                            u.state = State::Stopped;
                        }
                    }
                }
                return;
            };
            info!(
                "{}: stopping {} leftover process(es) of an earlier instance",
                u.cfg.name,
                strays.len()
            );
            u.run = Some(Run::leftovers(first));
        }
        let u = &mut self.units[i];
        let Some(run) = u.run.as_mut() else { return };
        u.generation = gen;
        run.stop = Some(intent);
        u.state = State::Stopping;
        let sig = u.cfg.stop_signal;
        let timeout = u.cfg.stop_timeout;
        info!(
            "stopping {} (pid {}, {})",
            u.cfg.name,
            run.pid,
            crate::config::signal_name(sig)
        );
        let _ = sys::killpg(run.pgid, sig);
        self.signal_marked(i, sig);
        self.timers.after(timeout, Timer::Kill(i, gen));
    }

    /// The instance and every process of it are gone: apply the stop intent or the
    /// restart policy.
    fn conclude(&mut self, i: usize) {
        let gen = self.next_gen();
        let u = &mut self.units[i];
        let Some(run) = u.run.take() else { return };
        let status = run.reaped.unwrap_or(ExitStatus::Signal(libc::SIGKILL));
        self.state_dirty = true;
        self.pids_dirty = true;
        u.generation = gen;
        let was_up = std::mem::replace(&mut u.up, false);
        let uptime = run.started.elapsed();
        if let Some(c) = u.cron.as_mut() {
            if let Some(key) = run.cron_key.as_deref() {
                let (code, signal) = match status {
                    ExitStatus::Code(c) => (Some(c), None),
                    ExitStatus::Signal(s) => (None, Some(s)),
                };
                c.finish(key, uptime, code, signal);
            }
        }
        let unhealthy = run.stop == Some(StopIntent::Unhealthy);
        if let Some(intent) = run.stop.filter(|_| !unhealthy) {
            info!("{} stopped", u.cfg.name);
            if !run.leftovers_only {
                hooks::fire(
                    &mut self.workers,
                    &u.cfg,
                    Event::Stop,
                    Outcome::Success,
                    Some(status),
                    Some(run.pid),
                );
            }
            match intent {
                StopIntent::Stop | StopIntent::Shutdown | StopIntent::Unhealthy => {
                    u.state = State::Stopped
                }
                StopIntent::Restart => self.start_fresh(i),
            }
            self.resolve_waiters(i);
            self.maybe_finish_reload();
            return;
        }
        let failed = unhealthy || !status.success();
        if failed && !was_up {
            hooks::fire(
                &mut self.workers,
                &u.cfg,
                Event::Start,
                Outcome::Error,
                Some(status),
                Some(run.pid),
            );
        }
        let outcome = if failed {
            Outcome::Error
        } else {
            Outcome::Success
        };
        hooks::fire(
            &mut self.workers,
            &u.cfg,
            Event::Stop,
            outcome,
            Some(status),
            Some(run.pid),
        );
        if u.is_cron() {
            // A failed run is never retried by policy: the next fire is the retry.
            u.state = State::Idle;
            self.schedule();
            return;
        }
        self.apply_policy(i, status, unhealthy, uptime, was_up, Some(run.pid));
    }

    /// A failure or an exit on its own: the restart policy decides what comes next.
    fn apply_policy(
        &mut self,
        i: usize,
        status: ExitStatus,
        unhealthy: bool,
        uptime: Duration,
        was_up: bool,
        pid: Option<i32>,
    ) {
        let gen = self.units[i].generation;
        let u = &mut self.units[i];
        let ended = Ended {
            status,
            requested: false,
            unhealthy,
            uptime,
        };
        match policy::after_exit(&Policy::of(&u.cfg), u.consecutive, &ended) {
            Next::Stopped => u.state = State::Stopped,
            Next::Completed => {
                u.state = State::Exited;
                u.completed = true;
                u.consecutive = 0;
            }
            Next::Exited => {
                u.state = State::Exited;
                if !was_up && u.reason.is_none() {
                    u.reason = Some("failed before it was up".into());
                }
                self.first_failure.get_or_insert(status.as_code());
            }
            Next::Restart { delay, consecutive } => {
                hooks::fire(
                    &mut self.workers,
                    &u.cfg,
                    Event::Restart,
                    Outcome::Error,
                    Some(status),
                    pid,
                );
                u.consecutive = consecutive;
                u.restart_count += 1;
                u.state = State::Backoff;
                u.restart_at = Some(Instant::now() + delay);
                info!(
                    "{}: restarting in {} ms (restart {})",
                    u.cfg.name,
                    delay.as_millis(),
                    u.restart_count
                );
                self.timers.after(delay, Timer::Restart(i, gen));
            }
            Next::GiveUp { restarts } => {
                u.state = State::Failed;
                let plural = if restarts == 1 { "" } else { "s" };
                u.reason = Some(format!("gave up after {restarts} restart{plural}"));
                warning!("{}: gave up after {restarts} restart{plural}", u.cfg.name);
                self.first_failure.get_or_insert(status.as_code());
            }
        }
        self.schedule();
    }

    /// Arms the timer for the next fire of cron unit `i` (none while it is stopped).
    fn arm_cron(&mut self, i: usize) {
        let gen = self.next_gen();
        let u = &mut self.units[i];
        let Some(c) = u.cron.as_mut() else { return };
        c.gen = gen;
        let now = chrono::Utc::now();
        c.next = c.next_after(now);
        match c.next {
            Some(next) => {
                debug!("{}: next run at {}", u.cfg.name, c.format(next));
                self.timers
                    .after(cron::sleep_until(next, now), Timer::CronFire(i, gen));
            }
            None => info!("{}: the schedule has no future run", u.cfg.name),
        }
        self.state_dirty = true;
    }

    fn on_cron_timer(&mut self, i: usize, gen: u64) {
        if self.shutting_down || self.reload.is_some() {
            return;
        }
        let Some(u) = self.units.get_mut(i) else {
            return;
        };
        let Some(c) = u.cron.as_mut() else { return };
        if c.gen != gen || u.state == State::Stopped {
            return;
        }
        let Some(due) = c.next else { return };
        let now = chrono::Utc::now();
        if now < due {
            // Woken early (the sleep is capped) or the clock went back: wait on.
            self.timers
                .after(cron::sleep_until(due, now), Timer::CronFire(i, gen));
            return;
        }
        // Strictly after the instant just due, and after now: one instant never fires
        // twice, and a clock that jumped ahead fires once, not once per missed instant.
        c.last_wall = Some(c.wall(due));
        c.next = c.next_after(due.max(now));
        let started_at = c.format(now);
        let busy = u.run.is_some();
        if busy {
            info!(
                "{}: run due at {} skipped (still running)",
                u.cfg.name,
                c.format(due)
            );
            c.push(CronRun {
                started_at: started_at.clone(),
                duration_ms: Some(0),
                exit_code: None,
                signal: None,
                skipped: true,
            });
        } else {
            c.push(CronRun {
                started_at: started_at.clone(),
                duration_ms: None,
                exit_code: None,
                signal: None,
                skipped: false,
            });
        }
        let next = c.next;
        self.state_dirty = true;
        if !busy {
            self.spawn_unit(i);
            let u = &mut self.units[i];
            match (u.run.as_mut(), u.cron.as_mut()) {
                (Some(run), _) => run.cron_key = Some(started_at),
                // Could not even start: recorded like `sh` reports a command it cannot run.
                (None, Some(c)) => c.finish(&started_at, Duration::ZERO, Some(127), None),
                (None, None) => {}
            }
        }
        if let Some(next) = next {
            self.timers
                .after(cron::sleep_until(next, now), Timer::CronFire(i, gen));
        }
    }

    fn apply_log_limits(&mut self) {
        for u in &self.units {
            self.output.set_limits(&u.cfg.name, u.cfg.logs);
        }
    }

    /// A start by hand (`start -s`, `restart -s`): fresh counters, then scheduled like
    /// at boot (a cron job is re-armed instead).
    fn start_fresh(&mut self, i: usize) {
        let gen = self.next_gen();
        let u = &mut self.units[i];
        u.reset_for_manual_start();
        u.generation = gen;
        self.state_dirty = true;
        if u.is_cron() {
            self.arm_cron(i);
        }
        self.schedule();
    }

    fn arm_all_cron(&mut self) {
        for i in 0..self.units.len() {
            if self.units[i].is_cron() {
                self.arm_cron(i);
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        info!("shutting down");
        if let Some((_, client)) = self.reload.take() {
            self.reply(
                client,
                &Response::error("reload abandoned: the supervisor is shutting down"),
            );
        }
        for i in 0..self.units.len() {
            self.stop_unit(i, StopIntent::Shutdown);
        }
    }

    fn kill_everything(&mut self) {
        for i in 0..self.units.len() {
            if self.units[i].run.is_some() {
                let survivors = self.leftovers(i);
                self.kill_now(i, &survivors);
            }
        }
    }

    /// SIGKILL to unit `i`'s group and to `survivors`, then look again shortly: processes
    /// that are not our children raise no SIGCHLD when they die.
    fn kill_now(&mut self, i: usize, survivors: &[i32]) {
        let u = &self.units[i];
        if let Some(run) = u.run.as_ref() {
            let _ = sys::killpg(run.pgid, libc::SIGKILL);
        }
        for &pid in survivors {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        self.timers
            .after(KILL_RECHECK, Timer::Recheck(i, u.generation));
    }

    /// Processes of unit `i` that are still alive: members of its current group, and
    /// when a stop was requested, anything carrying its markers (escaped via setsid or a
    /// double fork). After an exit on its own only the group is checked: that is one
    /// syscall when the group is empty, which keeps a crash-restart cycle cheap; escaped
    /// processes are still found by the next stop.
    fn leftovers(&self, i: usize) -> Vec<i32> {
        let u = &self.units[i];
        let mut pids = Vec::new();
        let Some(run) = u.run.as_ref() else {
            return pids;
        };
        if sys::group_exists(run.pgid) {
            pids.extend(
                crate::procfs::group_members(run.pgid)
                    .iter()
                    .filter(|p| p.state != 'Z')
                    .map(|p| p.pid),
            );
        }
        if run.stop.is_none() {
            // Escaped descendants whose parent has died were re-parented to us: our own
            // children are few, so only those not known as someone's leader are read.
            let known = |pid: i32| {
                self.units.iter().any(|u| {
                    u.run.as_ref().is_some_and(|r| r.pid == pid)
                        || u.probe.as_ref().is_some_and(|p| p.pid == pid)
                })
            };
            let dir = self.paths.dir.to_string_lossy();
            let markers = [
                (MARKER_SERVICE, u.cfg.name.as_str()),
                (MARKER_STATE_DIR, &*dir),
            ];
            for pid in crate::procfs::children_of_self() {
                if !known(pid)
                    && !pids.contains(&pid)
                    && crate::procfs::environ_matches(pid, &markers, &[workers::MARKER_AUX])
                    && crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
                {
                    pids.push(pid);
                }
            }
            return pids;
        }
        for pid in self.marked(i) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids
    }

    fn marked(&self, i: usize) -> Vec<i32> {
        let dir = self.paths.dir.to_string_lossy();
        let probe = self.units[i].probe.as_ref().map(|p| p.pid);
        let markers = [
            (MARKER_SERVICE, self.units[i].cfg.name.as_str()),
            (MARKER_STATE_DIR, &dir),
        ];
        // Hooks carry the service's markers too, but run on their own clock.
        crate::procfs::marked_processes(&markers, &[workers::MARKER_AUX])
            .into_iter()
            .filter(|&pid| Some(pid) != probe)
            .filter(|&pid| crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z'))
            .collect()
    }

    fn signal_marked(&self, i: usize, sig: i32) {
        let pgid = self.units[i].run.as_ref().map(|r| r.pgid);
        for pid in self.marked(i) {
            if crate::procfs::stat(pid).map(|s| s.pgid) != pgid {
                let _ = sys::kill(pid, sig);
            }
        }
    }

    // ----- ending -------------------------------------------------------------------

    /// Kills what is left carrying a service's markers once every service has stopped:
    /// descendants of hooks and health probes that left their process group (setsid,
    /// double fork) and outlived them. Their group died with them; these never outlive
    /// the supervisor. One pass over /proc.
    fn sweep_escapees(&self) {
        let dir = self.paths.dir.to_string_lossy();
        let names: Vec<&str> = self
            .units
            .iter()
            .map(|u| u.cfg.name.as_str())
            .chain(self.retired.iter().map(String::as_str))
            .collect();
        let left: Vec<i32> =
            crate::procfs::marked_by_any((MARKER_STATE_DIR, &dir), MARKER_SERVICE, &names)
                .into_iter()
                .filter(|&pid| crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z'))
                .collect();
        if left.is_empty() {
            return;
        }
        warning!(
            "killing {} process(es) still carrying a service's markers after every \
             service stopped (escaped from a hook or probe): {left:?}",
            left.len()
        );
        for pid in left {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }

    fn finished(&self) -> bool {
        if self.reload.is_some() {
            return false;
        }
        // Hooks are bounded by their timeouts, so waiting for them cannot hang shutdown.
        if self.workers.running() > 0 {
            return false;
        }
        if self.shutting_down {
            return !self.units.iter().any(|u| u.has_processes());
        }
        // Foreground: exit once nothing can ever run again.
        self.foreground
            && !self.units.iter().any(|u| u.is_active() || u.is_cron())
            && self.waiters.is_empty()
    }

    fn finish(&mut self) -> i32 {
        self.sweep_escapees();
        for pipe in &mut self.pipes {
            self.output.drain(pipe);
        }
        // Last replies (e.g. to the `stop` that ended us) get a bounded, blocking write.
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = c.on_writable();
        }
        self.state_dirty = true;
        self.pids_dirty = true;
        self.flush_state();
        self.persist.finish();
        let _ = std::fs::remove_file(self.paths.socket());
        let _ = std::fs::remove_file(self.paths.pid_file());
        let code = if self.shutting_down && !self.pid1 {
            0
        } else {
            self.first_failure.unwrap_or(0)
        };
        info!("supervisor stopped (exit {code})");
        crate::terminal::flush(TERMINAL_FLUSH);
        code
    }

    fn flush_state(&mut self) {
        if self.state_dirty {
            self.state_dirty = false;
            let mut file = StateFile::default();
            for u in &self.units {
                file.services.insert(u.cfg.name.clone(), u.record());
            }
            self.persist.state(&self.paths, file);
        }
        if self.pids_dirty {
            self.pids_dirty = false;
            let mut pids = PidFile::default();
            for u in &self.units {
                if let Some(run) = u.run.as_ref().filter(|r| r.reaped.is_none()) {
                    pids.services.insert(u.cfg.name.clone(), run.pid);
                }
            }
            self.persist.pids(&self.paths, pids);
        }
    }
}

impl Unit {
    /// A start by hand (`start -s`, `restart -s`) begins a fresh history.
    fn reset_for_manual_start(&mut self) {
        self.state = if self.is_cron() {
            State::Idle
        } else {
            State::Pending
        };
        self.consecutive = 0;
        self.restart_count = 0;
        self.reason = None;
        self.spawn_error = None;
        self.completed = false;
        self.up = false;
        self.restart_at = None;
        self.last_exit = None;
    }
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exit code {c}"),
        ExitStatus::Signal(s) => crate::config::signal_name(s),
    }
}

trait ReadNonblocking {
    fn read_nonblocking(self, buf: &mut [u8]) -> Option<usize>;
}

impl ReadNonblocking for &File {
    fn read_nonblocking(mut self, buf: &mut [u8]) -> Option<usize> {
        use std::io::Read;
        self.read(buf).ok()
    }
}
