//! The supervisor: one thread, one `poll(2)` loop over the signal self-pipe, the control
//! socket and its clients, and every service's output pipes; the timer queue supplies the
//! poll timeout. What happens to a service is decided by the pure table in `service`;
//! this loop measures facts, delivers events, and performs the actions it gets back.

mod actions;
mod adopt;
mod children;
mod command;
mod contain;
mod control;
mod cron;
mod cron_fire;
pub(crate) mod deps;
mod events;
mod handover;
mod health;
mod hooks;
mod inspect;
mod logfile;
mod notify;
mod output;
mod persist;
mod pipes;
mod plan;
mod policy;
mod prestart;
mod reaper;
mod reload;
mod reload_up;
mod requests;
mod resume;
mod rolling;
mod service;
mod shutdown;

mod startup;
mod survey;
mod timers;
mod unit;
mod upgrade;
mod wait_up;

pub use handover::VERSION as HANDOVER_VERSION;
pub use reload_up::RELOAD_UP_WITHIN;
pub use resume::resume;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::logger::{debug, info, warning};
use crate::paths::Paths;
use crate::sys;
use children::{Workers, MARKER_SERVICE, MARKER_STATE_DIR};
use control::Client;
use output::{Output, Pipe};
use requests::Waiter;
use service::{Event, StopIntent};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timers;
use unit::Unit;

pub use startup::{find_leftovers, stop_leftovers};

/// Names the fd of the handshake pipe a detached supervisor reports its startup on
/// (set by the client that spawns it, never passed on to services).
pub const READY_FD_ENV: &str = "SYSG_READY_FD";

/// How long a foreground supervisor, on its way out, waits for the terminal to take
/// what is still queued for it.
const TERMINAL_FLUSH: Duration = Duration::from_secs(2);
/// The shortest interval between two state snapshots (state.json, pid.json).
pub(super) const STATE_EVERY: Duration = Duration::from_millis(20);

pub struct Options {
    /// Echo service output and supervisor events to the terminal.
    pub foreground: bool,
    /// Write end of the daemon handshake pipe: "ok" or the startup error goes there.
    pub ready: Option<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A service's own timer, valid while its epoch is.
    Unit(usize, u64, service::Timer),
    CronFire(usize, u64),
    ClientDeadline(u64),
    ResumeAccept,
    /// The state files may be written again (see `STATE_EVERY`).
    FlushState,
    /// A reload's reply has waited long enough for its services to be up.
    ReloadUp(u64),
    /// A `WaitUp` client has waited long enough.
    WaitUp(u64),
}

struct Signals {
    pipe: File,
    /// Kept so hook threads can wake the loop through the same pipe.
    pipe_writer: File,
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

pub struct Supervisor {
    paths: Paths,
    config: Config,
    units: Vec<Unit>,
    /// Unit index by service name.
    index: HashMap<String, usize>,
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
    /// What is alive, gathered at most once per loop turn.
    survey: survey::Survey,
    /// The state dir as the markers in services' environments spell it.
    state_dir_text: String,
    /// Orphaned descendants are re-parented to us (else they go to init and only their
    /// markers find them).
    subreaper: bool,
    /// The kernel lists our children (/proc/.../children): escapees that became ours are
    /// found there cheaply; without it, only a census finds them.
    children_listed: bool,
    /// Units whose requested stop is over since waiters were last answered.
    settled: Vec<usize>,
    shutting_down: bool,
    /// The order of a shutdown under way: what is still to stop, level by level.
    shutdown: Option<shutdown::Shutdown>,
    /// How many control clients may be held, and whether an fd shortage was said.
    admission: control::Admission,
    /// Out of file descriptors: the listener is left alone until a timer resumes it,
    /// instead of poll reporting the pending connection again and again.
    accept_paused: bool,
    /// A reload whose config is being read and validated off the loop: its client.
    loading: Option<u64>,
    /// A reload in progress: the new config and the client to answer.
    reload: Option<reload::Reloading>,
    /// A reload whose reply waits for its services to be up, and its deadline's tag.
    reload_up: Option<reload_up::UpWait>,
    reload_up_gen: u64,
    first_failure: Option<i32>,
    /// Names of services dropped by reloads: their hooks' escapees are swept at exit too.
    retired: Vec<String>,
    foreground: bool,
    pid1: bool,
    state_dirty: bool,
    pids_dirty: bool,
    /// When state files were last handed to the writer, and whether a timer will let
    /// the next ones through.
    last_flush: Option<Instant>,
    flush_armed: bool,
    /// The last reap stopped at its batch size: children may still be waiting.
    reap_pending: bool,
    /// The cgroup tree instances run in, when cgroups are in use.
    cgroups: Option<crate::cgroup::Tree>,
    /// How the services are contained, as status says it.
    containment: String,
    /// An upgrade's checks run on a worker, for this client: no second one meanwhile.
    upgrading: Option<u64>,
    /// Clients of `start --wait` and the like, waiting for services to be up.
    up_waiters: Vec<wait_up::UpWaiter>,
    /// `sysg events` clients.
    subscribers: Vec<u64>,
    // Held for the supervisor's lifetime: the flock on sysg.pid says "someone is here".
    _pid_lock: File,
}

/// Runs a supervisor until it is told to stop (or, in the foreground, until nothing can
/// ever run again). Returns the process exit code.
pub fn run(paths: Paths, config: Config, mut opts: Options) -> Result<i32> {
    let foreground = opts.foreground;
    let built = startup::start(&paths, &config, foreground)
        .and_then(|started| Supervisor::new(paths, config, foreground, started));
    let mut sup = match built {
        Ok(sup) => sup,
        Err(e) => {
            if let Some(mut ready) = opts.ready.take() {
                let _ = writeln!(ready, "error {e}");
            }
            return Err(e);
        }
    };
    sup.apply_log_limits();
    sup.hold_stopped();
    sup.arm_all_cron();
    sup.settle();
    sup.flush_state();
    if let Some(mut ready) = opts.ready.take() {
        let _ = writeln!(ready, "ok {}", sys::getpid());
    }
    sup.run_loop()
}

impl Supervisor {
    fn new(
        paths: Paths,
        config: Config,
        foreground: bool,
        started: startup::Started,
    ) -> Result<Supervisor> {
        let wake = started
            .signals
            .pipe_writer
            .try_clone()
            .map_err(|e| Error::io("signal pipe", e))?;
        Ok(Supervisor {
            state_dir_text: paths.dir.to_string_lossy().into_owned(),
            output: Output::new(paths.clone(), foreground),
            workers: Workers::new(wake, &paths.dir),
            persist: persist::Persister::start(paths.clone()),
            index: index_of(&started.units),
            units: started.units,
            paths,
            config,
            timers: Timers::default(),
            pipes: Vec::new(),
            clients: Vec::new(),
            listener: started.listener,
            signals: started.signals,
            next_client: 0,
            next_generation: 0,
            waiters: Vec::new(),
            survey: survey::Survey::default(),
            subreaper: started.subreaper,
            children_listed: crate::procfs::children_listed(),
            settled: Vec::new(),
            shutting_down: false,
            shutdown: None,
            admission: control::Admission::new(),
            accept_paused: false,
            loading: None,
            reload: None,
            reload_up: None,
            reload_up_gen: 0,
            first_failure: None,
            retired: Vec::new(),
            foreground,
            pid1: sys::getpid() == 1,
            state_dirty: true,
            pids_dirty: true,
            last_flush: None,
            flush_armed: false,
            reap_pending: false,
            cgroups: started.cgroups,
            containment: started.containment,
            upgrading: None,
            up_waiters: Vec::new(),
            subscribers: Vec::new(),
            _pid_lock: started.pid_lock,
        })
    }

    fn run_loop(&mut self) -> Result<i32> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut pace = None;
        loop {
            if self.finished() {
                return Ok(self.finish());
            }
            self.survey.invalidate();
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
                fds.push(entry(c.stream.as_raw_fd(), c.poll_events()));
            }
            // Pacing a streaming writer: the pipes sit out this wait (a negative fd is
            // skipped), bounded by the pace; nothing else waits for them.
            for p in &self.pipes {
                let fd = if pace.is_some() {
                    -1
                } else {
                    p.file.as_raw_fd()
                };
                fds.push(entry(fd, libc::POLLIN));
            }
            let notify = self.notify_fds();
            fds.extend(notify.iter().map(|&(_, fd)| entry(fd, libc::POLLIN)));
            let npipes = self.pipes.len();
            let timeout = match (self.timers.until_next(Instant::now()), pace) {
                _ if self.reap_pending => Some(Duration::ZERO),
                _ if self.shutdown.as_ref().is_some_and(|s| s.has_batch_left()) => {
                    Some(Duration::ZERO)
                }
                (Some(t), Some(p)) => Some(t.min(p)),
                (t, p) => t.or(p),
            };
            sys::poll_for(&mut fds, timeout).map_err(|e| Error::io("poll", e))?;

            // Snapshot readiness first: handlers below add and remove clients and pipes.
            let nclients = self.clients.len();
            let client_ready: Vec<(u64, i16)> = self
                .clients
                .iter()
                .zip(&fds[2..])
                .map(|(c, fd)| (c.id, fd.revents))
                .collect();
            let pipes_at = 2 + nclients;
            let pipe_ready: Vec<i16> = fds[pipes_at..pipes_at + npipes]
                .iter()
                .map(|fd| fd.revents)
                .collect();
            let notify_ready: Vec<usize> = notify
                .iter()
                .zip(&fds[pipes_at + npipes..])
                .filter(|(_, fd)| fd.revents != 0)
                .map(|(&(i, _), _)| i)
                .collect();
            // Output first, so a service's last lines are stored before its exit is handled.
            self.on_pipes(&pipe_ready);
            for i in notify_ready {
                self.on_notify(i);
            }
            if fds[0].revents != 0 {
                self.on_signal();
            } else if self.reap_pending {
                self.reap();
            }
            if fds[1].revents != 0 {
                let before = self.next_client;
                self.accept_clients();
                // A new client's request is usually there already: read it now, not a
                // turn later.
                for id in before + 1..=self.next_client {
                    self.on_client(id, libc::POLLIN);
                }
            }
            for (id, rev) in client_ready {
                if rev != 0 {
                    self.on_client(id, rev);
                }
            }
            for t in self.timers.pop_due(Instant::now()) {
                self.on_timer(t);
            }
            self.settle();
            self.flush_state();
            pace = self.output.end_turn();
        }
    }

    fn on_signal(&mut self) {
        let mut buf = [0u8; 256];
        while matches!((&self.signals.pipe).read_nonblocking(&mut buf), Some(n) if n > 0) {}
        self.reap();
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

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Unit(i, epoch, timer) => {
                // A rolling restart's old instance is killed on time whatever became of
                // the new one: that timer outlives the phase it was armed in.
                let bound = timer != service::Timer::RetireKill;
                if self
                    .units
                    .get(i)
                    .is_none_or(|u| bound && u.svc.epoch != epoch)
                {
                    return;
                }
                let ev = match timer {
                    // A restart falls due while a shutdown waits to reach this service.
                    service::Timer::Backoff if self.shutting_down => {
                        self.stop(i, StopIntent::Shutdown);
                        return;
                    }
                    service::Timer::Up => Event::UpTimer,
                    service::Timer::Probe => Event::ProbeDue,
                    service::Timer::Backoff => Event::BackoffDue,
                    service::Timer::CheckDeadline => Event::CheckDeadline,
                    service::Timer::Grace => Event::GraceOver,
                    service::Timer::Watchdog => Event::WatchdogDue,
                    service::Timer::RetireKill => Event::RetireDeadline,
                    service::Timer::Kill => Event::KillDeadline {
                        survivors: self.leftovers(i).len(),
                    },
                    service::Timer::Recheck => Event::Recheck {
                        survivors: self.leftovers(i).len(),
                    },
                };
                self.deliver(i, ev);
            }
            Timer::CronFire(i, gen) => self.on_cron_timer(i, gen),
            Timer::ResumeAccept => self.accept_paused = false,
            Timer::FlushState => self.flush_armed = false,
            Timer::ReloadUp(gen) => self.on_reload_up_deadline(gen),
            Timer::WaitUp(gen) => self.answer_up_waiter_at_deadline(gen),
            Timer::ClientDeadline(id) => self.on_client_deadline(id),
        }
    }

    // ----- the table and its actions --------------------------------------------------

    /// Runs `ev` through unit `i`'s table, performs what it says, and runs the events
    /// those actions produce (a spawn's result) the same way, in order.
    fn deliver(&mut self, i: usize, ev: Event) {
        if let Event::ProbeResult { healthy, detail } = &ev {
            let probe = crate::ipc::ProbeStatus {
                healthy: *healthy,
                detail: detail.clone(),
                at: unit::rfc3339(std::time::SystemTime::now()),
            };
            self.note_probe(i, probe.clone());
            self.units[i].last_probe = Some(probe);
            if !healthy {
                self.publish_note(i, "probe", format!("failed: {detail}"));
            }
        }
        let mut queue = VecDeque::from([ev]);
        while let Some(ev) = queue.pop_front() {
            let u = &self.units[i];
            let (next, actions) = service::on_event(&u.cfg, &u.svc, ev, Instant::now());
            if next != u.svc {
                let shown_before = events::shown(&u.svc);
                let (from, to) = (u.svc.phase.name(), next.phase.name());
                if from != to {
                    debug!("{}: {from} -> {to}", u.cfg.name);
                }
                if u.svc.live().map(|r| r.pid) != next.live().map(|r| r.pid) {
                    self.pids_dirty = true;
                }
                self.state_dirty = true;
                self.units[i].svc = next;
                self.publish_transition(i, shown_before);
            }
            for action in actions {
                if let Some(ev) = self.perform(i, action) {
                    queue.push_back(ev);
                }
            }
        }
    }

    /// A stop for unit `i`; with no live instance, processes an earlier one left behind
    /// (found by their markers) are what is stopped.
    fn stop(&mut self, i: usize, intent: StopIntent) {
        let strays = if self.units[i].svc.has_processes() {
            0
        } else {
            self.marked(i).len()
        };
        self.deliver(i, Event::Stop { intent, strays });
    }

    /// Once per loop turn and after requests: start what may start, answer those
    /// waiting for a stop, finish a reload whose old services are all gone.
    fn settle(&mut self) {
        self.advance_shutdown();
        self.maybe_finish_reload();
        self.schedule();
        self.answer_waiters();
        self.answer_up(false);
        self.answer_up_waiters();
    }

    fn next_gen(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Delivers the dependency verdict to every pending service, until nothing more
    /// changes (a start can unblock or fail its dependents in turn).
    fn schedule(&mut self) {
        if self.shutting_down || self.reload.as_ref().is_some_and(|r| r.all.is_some()) {
            return;
        }
        loop {
            let mut changed = false;
            for i in 0..self.units.len() {
                if !self.units[i].svc.is_pending() || self.units[i].reload_hold {
                    continue;
                }
                // A spec a reload brought in, held back while the old instance stopped.
                if let Some(spec) = self.units[i].pending_spec.take() {
                    self.units[i].cfg = spec;
                }
                // A cron job waits for nobody (it is pending only for its skip check).
                let verdict = if self.units[i].is_cron() {
                    deps::Verdict::Ready
                } else {
                    deps::verdict(&self.units[i].cfg.depends_on, |name| {
                        self.index.get(name).map(|&d| self.units[d].standing())
                    })
                };
                changed |= !matches!(verdict, deps::Verdict::Wait(_));
                self.deliver(i, Event::Deps(verdict));
            }
            if !changed {
                break;
            }
        }
    }
}

/// Unit index by service name.
fn index_of(units: &[Unit]) -> HashMap<String, usize> {
    units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.cfg.name.clone(), i))
        .collect()
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
