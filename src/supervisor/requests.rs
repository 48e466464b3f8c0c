//! Control clients: accepting them, their requests turned into events for the services'
//! tables, the replies, clients waiting for a stop or restart to finish, and reloads.

use super::children::{Done, Link};
use super::control::{self, Client, ClientEvent};
use super::service::StopIntent;
use super::unit::Unit;
use super::{Supervisor, Timer};
use crate::ipc::{Request, Response, State, StatusReport};
use crate::logger::{debug, error, info, warning};
use crate::sys;
use std::time::{Duration, Instant};

/// Tells a connection there is no room for it, without waiting, and hangs up.
fn refuse(stream: std::os::unix::net::UnixStream) {
    let _ = stream.set_nonblocking(true);
    let mut line = serde_json::to_vec(&Response::error(
        "too many control clients waiting; try again",
    ))
    .unwrap_or_default();
    line.push(b'\n');
    let _ = std::io::Write::write(&mut &stream, &line);
}

/// A client waiting for a stop or restart to finish before it gets its reply.
pub struct Waiter {
    pub(super) client: u64,
    pub(super) unit: usize,
    pub(super) awaits: Awaited,
}

/// What a waiter asked for, and so what it is told.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaited {
    Stop,
    Restart,
    /// A rolling restart: answered once the new instance is up, or failed.
    Roll,
}

impl Supervisor {
    pub(super) fn accept_clients(&mut self) {
        let limit = sys::open_files_limit();
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
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                    let held = self.clients.len();
                    let (admit, pressure) = self.admission.on_accept(fd, held, limit);
                    match pressure {
                        control::Pressure::Began => warning!(
                            "file descriptors running low (fd {fd} of limit {}): keeping at most {held} control clients, the oldest idle ones dropped (logged once until it clears)",
                            limit.map_or_else(|| "unknown".to_string(), |l| l.to_string())
                        ),
                        control::Pressure::Ended => {
                            info!("file descriptors available again: control clients accepted as usual")
                        }
                        control::Pressure::Unchanged => {}
                    }
                    if admit == control::Admit::DisplaceOldestIdle && !self.drop_oldest_idle() {
                        debug!("refusing a control connection: every client is waiting for a stop");
                        refuse(stream);
                        continue;
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
                    let exhausted = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                    if exhausted {
                        if self.admission.on_exhausted(self.clients.len()) {
                            error!(
                                "accept on control socket failed: {e}; dropping idle clients and retrying every 100 ms (logged once until it clears)"
                            );
                        }
                        // An idle client's fd is the quickest way to make room.
                        if self.drop_oldest_idle() {
                            continue;
                        }
                    } else {
                        debug!("accept on control socket failed: {e}");
                    }
                    // The connection stays queued, so the listener would stay readable;
                    // pause it instead of spinning.
                    self.accept_paused = true;
                    self.timers
                        .after(Duration::from_millis(100), Timer::ResumeAccept);
                    return;
                }
            }
        }
    }

    pub(super) fn on_client(&mut self, id: u64, revents: i16) {
        let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let hung_up = revents & (libc::POLLHUP | libc::POLLERR) != 0;
        let event = if hung_up && c.answered && !c.wants_write() {
            // Gone while its reply was still to come: nobody is left to read it.
            ClientEvent::Close
        } else if revents & libc::POLLOUT != 0 && c.wants_write() {
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

    /// A client waiting for a stop or restart is bounded by stop timeouts; anyone else
    /// still here at its deadline has stalled: sent nothing, or stopped reading.
    pub(super) fn on_client_deadline(&mut self, id: u64) {
        let waiting = self.waiters.iter().any(|w| w.client == id)
            || self.loading == Some(id)
            || self.upgrading == Some(id)
            || self.up_waiters.iter().any(|w| w.client == id)
            || self.subscribers.contains(&id)
            || self.reload.as_ref().is_some_and(|r| r.client == id);
        if !waiting && self.clients.iter().any(|c| c.id == id) {
            debug!("dropping a stalled control client");
            self.drop_client(id);
        }
    }

    /// A client that hung up no longer waits for anything.
    pub(super) fn drop_client(&mut self, id: u64) {
        self.clients.retain(|c| c.id != id);
        self.waiters.retain(|w| w.client != id);
        self.subscribers.retain(|&s| s != id);
    }

    /// Makes room for a new client: drops the oldest one that has not sent its request,
    /// else the oldest one not waiting for a stop, restart or reload. False if every
    /// client is waiting.
    fn drop_oldest_idle(&mut self) -> bool {
        let waiting = |id: u64| {
            self.waiters.iter().any(|w| w.client == id)
                || self.reload.as_ref().is_some_and(|r| r.client == id)
        };
        let victim = self
            .clients
            .iter()
            .find(|c| !c.answered && !waiting(c.id))
            .or_else(|| self.clients.iter().find(|c| !waiting(c.id)))
            .map(|c| c.id);
        match victim {
            Some(id) => {
                debug!("dropping the oldest idle control client to make room");
                self.drop_client(id);
                true
            }
            None => false,
        }
    }

    /// Last replies (e.g. to the `stop` that ended us) get a bounded, blocking write.
    pub(super) fn flush_clients(&mut self) {
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = c.on_writable();
        }
    }

    fn on_request(&mut self, client: u64, req: Request) {
        debug!("control request: {req:?}");
        let reply = match req {
            Request::Status { service } => self.status_reply(client, service.as_deref()),
            Request::Start { service } => self.start_request(&service),
            Request::Stop { service: None, .. } => {
                self.begin_shutdown();
                Some(Response::ok("Supervisor shutting down"))
            }
            Request::Stop {
                service: Some(name),
                with_dependents,
            } => self.stop_request(client, &name, with_dependents),
            Request::Restart {
                service: Some(name),
                ..
            } => self.restart_request(client, &name),
            Request::Restart {
                service: None,
                config,
                dry_run,
                all,
            } => self.reload_request(client, config, super::reload::Mode { dry_run, all }),
            Request::Upgrade { binary } => self.upgrade_request(client, binary),
            Request::WaitUp {
                services,
                timeout_ms,
            } => self.wait_up_request(client, services, timeout_ms),
            Request::Events => self.events_request(client),
            Request::Inspect { service, env } => self.inspect_request(&service, env),
            Request::Rotate { service } => Some(self.rotate_request(service.as_deref())),
        };
        if let Some(resp) = reply {
            self.reply(client, &resp);
        }
    }

    pub(super) fn reply(&mut self, client: u64, resp: &Response) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
            c.reply(resp);
            // Try at once: most replies fit in the socket buffer.
            if matches!(c.on_writable(), ClientEvent::Close) {
                self.drop_client(client);
            }
        }
    }

    pub(super) fn find(&self, name: &str) -> Result<usize, Response> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| Response::error(format!("unknown service '{name}'")))
    }

    pub(super) fn busy(&self) -> Option<Response> {
        (self.shutting_down || self.reload.is_some() || self.loading.is_some()).then(|| {
            let mut resp = Response::error("supervisor is shutting down or reloading; try again");
            resp.busy = true;
            resp
        })
    }

    /// The unit states are taken here; the /proc figures (a census of every process,
    /// a command line each: tens of ms with thousands of services) are gathered on a
    /// worker thread, so the loop goes on meanwhile. The reply comes as `Done::Status`.
    fn status_reply(&mut self, client: u64, service: Option<&str>) -> Option<Response> {
        let now = Instant::now();
        let selected: Vec<&Unit> = match service {
            Some(name) => match self.find(name) {
                Ok(i) => vec![&self.units[i]],
                Err(e) => return Some(e),
            },
            None => self.units.iter().filter(|u| !u.removed).collect(),
        };
        let (services, live): (Vec<_>, Vec<_>) = selected.iter().map(|u| u.status(now)).unzip();
        let mut report = StatusReport {
            supervisor_pid: Some(sys::getpid()),
            config: Some(self.config.path.clone()),
            services,
            containment: Some(self.containment.clone()),
        };
        if live.iter().all(Option::is_none) {
            // Nothing runs: no /proc figures to gather, no thread.
            return Some(status_response(report));
        }
        let known = self.known();
        // Instances in cgroups need no pass over /proc: their cgroups list them.
        let census_needed = live.iter().flatten().any(|l| !l.contained());
        let gather = move |report: &mut StatusReport| {
            let census = if census_needed {
                super::survey::take_census(&known)
            } else {
                super::survey::Census::new()
            };
            crate::procfs::for_each_spread(&mut report.services, |i, st| {
                if let Some(live) = &live[i] {
                    live.fill(st, &census, now);
                }
            });
        };
        // The worker writes the reply itself when it can: 750 KB for 2,000 services
        // would otherwise wait for the loop's turns, which a big stop keeps busy.
        let out = self
            .clients
            .iter_mut()
            .find(|c| c.id == client)
            .and_then(|c| c.hand_off());
        let job = move |link: Link| {
            gather(&mut report);
            let resp = status_response(report);
            let unsent = match out {
                Some(stream) => {
                    super::control::send_from_worker(&stream, &resp);
                    None
                }
                None => Some(resp),
            };
            link.report(Done::Status { client, unsent });
        };
        match self.workers.start("status".into(), false, job) {
            Ok(()) => None,
            Err(e) => Some(Response::error(format!("cannot gather the status: {e}"))),
        }
    }

    fn start_request(&mut self, name: &str) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        if let Some(refused) = self.busy() {
            return Some(refused);
        }
        let u = &self.units[i];
        if u.svc.has_processes() || u.svc.is_pending() {
            return Some(Response::error(format!("{name} is already running")));
        }
        if u.is_cron() && !matches!(u.svc.state(), State::Stopped | State::Skipped) {
            return Some(Response::error(format!(
                "cron job {name} is already scheduled"
            )));
        }
        info!("{name}: start requested");
        // What it needs and nothing would start on its own (stopped, failed) starts first.
        let needed = self.blocking_dependencies(i);
        for &d in &needed {
            info!(
                "{}: started for {name}, which depends on it",
                self.units[d].cfg.name
            );
            self.units[d].held = false;
            self.deliver(d, super::service::Event::Start);
        }
        self.units[i].held = false;
        self.start_fresh(i);
        let verb = if self.units[i].is_cron() {
            "Scheduled"
        } else {
            "Started"
        };
        let reply = self.started_reply(i, verb);
        if needed.is_empty() || !reply.ok {
            return Some(reply);
        }
        let names: Vec<&str> = needed
            .iter()
            .map(|&d| self.units[d].cfg.name.as_str())
            .collect();
        let text = reply.message.unwrap_or_default();
        Some(Response::ok(format!(
            "{text} (after starting {})",
            names.join(", ")
        )))
    }

    /// The dependencies of unit `i`, direct or not, that cannot satisfy it as they stand
    /// (stopped or failed), dependencies first.
    fn blocking_dependencies(&self, i: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.units.len()];
        let mut stack = vec![(i, false)];
        while let Some((at, expanded)) = stack.pop() {
            if expanded {
                if at != i {
                    order.push(at);
                }
                continue;
            }
            if std::mem::replace(&mut seen[at], true) {
                continue;
            }
            stack.push((at, true));
            for dep in &self.units[at].cfg.depends_on {
                if let Some(&d) = self.index.get(dep) {
                    let blocking = self.units[d].standing() == super::deps::Standing::Blocking;
                    if blocking && !seen[d] {
                        stack.push((d, false));
                    }
                }
            }
        }
        order
    }

    /// The services that depend on unit `i`, directly or not, and have processes.
    fn running_dependents(&self, i: usize) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        let mut queue = vec![i];
        while let Some(at) = queue.pop() {
            let name = &self.units[at].cfg.name;
            for (j, u) in self.units.iter().enumerate() {
                let depends = !u.removed && u.cfg.depends_on.contains(name);
                if depends && j != i && !found.contains(&j) {
                    found.push(j);
                    queue.push(j);
                }
            }
        }
        found.retain(|&j| self.units[j].svc.has_processes());
        found
    }

    /// "Stopped db", and which running services depend on it (they keep running).
    pub(super) fn stopped_reply(&self, i: usize) -> Response {
        let name = &self.units[i].cfg.name;
        let dependents: Vec<&str> = self
            .units
            .iter()
            .filter(|u| !u.removed && u.svc.has_processes() && !u.svc.stop_requested())
            .filter(|u| u.cfg.depends_on.contains(name))
            .map(|u| u.cfg.name.as_str())
            .collect();
        if dependents.is_empty() {
            return Response::ok(format!("Stopped {name}"));
        }
        warning!(
            "{name} stopped; {} depend on it and keep running",
            dependents.join(", ")
        );
        Response::ok(format!(
            "Stopped {name}; still running without it: {}",
            dependents.join(", ")
        ))
    }

    /// A start by hand: the table resets the counters, then the service is scheduled
    /// at once so that the reply can say whether its spawn failed.
    fn start_fresh(&mut self, i: usize) {
        self.deliver(i, super::service::Event::Start);
        self.schedule();
    }

    /// The answer to a start or restart by hand, once the unit has been started afresh:
    /// an error when the spawn was attempted at once and failed.
    fn started_reply(&self, i: usize, verb: &str) -> Response {
        let u = &self.units[i];
        if let Some(e) = &u.svc.spawn_error {
            return Response::error(e.clone());
        }
        // A cron job does not run when (re)started by hand: say what did happen.
        match (&u.cron, u.svc.state()) {
            (Some(_), State::Skipped) => {
                Response::ok(format!("Skipped {} (skip check exited 0)", u.cfg.name))
            }
            (Some(c), _) => {
                let when = c.next.map_or_else(|| "never".to_string(), |t| c.format(t));
                let what = if verb == "Restarted" {
                    "Re-armed"
                } else {
                    verb
                };
                Response::ok(format!("{what} {}; next run at {when}", u.cfg.name))
            }
            (None, _) => Response::ok(format!("{verb} {}", u.cfg.name)),
        }
    }

    fn stop_request(&mut self, client: u64, name: &str, with_dependents: bool) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        info!("{name}: stop requested");
        if with_dependents {
            for d in self.running_dependents(i) {
                info!(
                    "{}: stopped with {name}, which it depends on",
                    self.units[d].cfg.name
                );
                self.stop(d, StopIntent::Stop);
                self.units[d].held = true;
            }
        }
        self.stop(i, StopIntent::Stop);
        self.units[i].held = true;
        // Leftovers of an earlier instance are being stopped too: the reply waits.
        if !self.units[i].svc.has_processes() {
            return Some(self.stopped_reply(i));
        }
        self.wait_for(client, i, Awaited::Stop);
        None
    }

    fn restart_request(&mut self, client: u64, name: &str) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        if let Some(refused) = self.busy() {
            return Some(refused);
        }
        info!("{name}: restart requested");
        self.units[i].held = false;
        let u = &self.units[i];
        if u.cfg.deployment.rolling && u.svc.can_roll() {
            self.begin_roll(i, None);
            self.wait_for(client, i, Awaited::Roll);
            return None;
        }
        // With nothing running, this still stops what an earlier instance left behind
        // before starting afresh: never two copies.
        self.stop(i, StopIntent::Restart);
        if self.units[i].svc.has_processes() {
            self.wait_for(client, i, Awaited::Restart);
            return None;
        }
        self.schedule();
        Some(self.started_reply(i, "Restarted"))
    }

    /// Registers a waiter, unless the stop is already over (it had nothing left to kill).
    fn wait_for(&mut self, client: u64, unit: usize, awaits: Awaited) {
        self.waiters.push(Waiter {
            client,
            unit,
            awaits,
        });
        if self.settled.contains(&unit) {
            self.answer_waiters();
        }
    }

    /// Answers everyone waiting on a unit whose requested stop is over.
    pub(super) fn answer_waiters(&mut self) {
        let settled = std::mem::take(&mut self.settled);
        if settled.is_empty() {
            return;
        }
        let (done, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| settled.contains(&w.unit));
        self.waiters = keep;
        for w in done {
            let reply = match w.awaits {
                // A stop or shutdown asked meanwhile won: say what happened.
                Awaited::Restart if self.units[w.unit].svc.state() == State::Stopped => {
                    Response::ok(format!("Stopped {}", self.units[w.unit].cfg.name))
                }
                Awaited::Roll if std::mem::take(&mut self.units[w.unit].roll_fell_back) => {
                    let mut reply = self.started_reply(w.unit, "Restarted");
                    if let Some(m) = reply.message.as_mut() {
                        m.push_str(" (stopped first: the new instance found its address in use)");
                    }
                    reply
                }
                Awaited::Restart | Awaited::Roll => self.started_reply(w.unit, "Restarted"),
                Awaited::Stop => self.stopped_reply(w.unit),
            };
            self.reply(w.client, &reply);
        }
    }
}

pub(super) fn status_response(report: StatusReport) -> Response {
    Response {
        ok: true,
        status: Some(Box::new(report)),
        ..Default::default()
    }
}
