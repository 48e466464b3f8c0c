//! Children of the supervisor. Service processes and skip checks are spawned by the loop
//! thread (`sh -c` in their own process group, stdin from /dev/null, stdout/stderr to
//! pipes the loop reads, the layered environment, and markers that find every descendant
//! later). Hooks and health probes are short-lived children run by worker threads, each
//! bounded by a timeout; a worker registers its child's pid under the registry lock so
//! that the loop, the only reaper, can hand it the exit status, and reports back over a
//! channel, waking the loop with one byte on its self-pipe.

use super::policy::ExitStatus;
use crate::config::Service;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After SIGKILL at a bounded child's timeout, how long its worker still waits for the
/// exit status.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Every process of a service carries `SYSG_SERVICE=<name>` and `SYSG_STATE_DIR=<dir>`;
/// together they identify "ours" even after a `setsid` escape from the group, and the
/// second one makes a `sysg` run inside a service talk to this same supervisor.
pub const MARKER_SERVICE: &str = "SYSG_SERVICE";
pub const MARKER_STATE_DIR: &str = "SYSG_STATE_DIR";

pub struct Spawned {
    pub pid: i32,
    pub stdout: File,
    pub stderr: File,
}

/// Spawns `command` for `svc` with its environment plus `extra`. Only the loop thread
/// may spawn long-lived children: PDEATHSIG is tied to the spawning thread (DESIGN
/// pitfall 1).
pub fn spawn(
    svc: &Service,
    command: &str,
    extra: &[(String, String)],
    state_dir: &Path,
) -> io::Result<Spawned> {
    let env = svc.environment().map_err(io::Error::other)?;
    spawn_with_env(svc, &env, command, extra, state_dir)
}

/// `spawn` with the service's environment already read (env files can be slow).
pub fn spawn_with_env(
    svc: &Service,
    env: &[(String, String)],
    command: &str,
    extra: &[(String, String)],
    state_dir: &Path,
) -> io::Result<Spawned> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&svc.working_dir)
        .env_remove(super::READY_FD_ENV)
        // Only hooks and probes carry this (through `extra`); a supervisor started from
        // a hook must not pass it on, or its services would look like hooks.
        .env_remove(MARKER_AUX)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .env(MARKER_SERVICE, &svc.name)
        .env(MARKER_STATE_DIR, state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    crate::sys::configure_child(&mut cmd, Some(libc::SIGTERM), false);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound && !svc.working_dir.is_dir() {
            io::Error::new(
                e.kind(),
                format!("working_dir {} does not exist", svc.working_dir.display()),
            )
        } else {
            e
        }
    })?;
    let pid = child.id() as i32;
    // The Child handle is dropped without wait(): the loop is the only reaper.
    let stdout = child
        .stdout
        .take()
        .map(|p| File::from(std::os::fd::OwnedFd::from(p)));
    let stderr = child
        .stderr
        .take()
        .map(|p| File::from(std::os::fd::OwnedFd::from(p)));
    match (stdout, stderr) {
        (Some(stdout), Some(stderr)) => Ok(Spawned {
            pid,
            stdout,
            stderr,
        }),
        _ => Err(io::Error::other("child pipes missing")),
    }
}

/// Set in the environment of hooks and probes: tells their processes apart from the
/// service's own (their value says which: `on_start`, …, or `health_check`).
pub const MARKER_AUX: &str = "SYSG_HOOK";

/// What a worker reports when it is done.
pub enum Done {
    Hook,
    Probe(ProbeResult),
    /// A reload's config, read and validated off the loop thread, for `client`.
    Config {
        client: u64,
        result: Result<crate::config::Config, String>,
    },
    /// A status report whose /proc figures were gathered off the loop thread.
    Status {
        client: u64,
        report: crate::ipc::StatusReport,
    },
}

pub struct ProbeResult {
    pub unit: usize,
    pub generation: u64,
    pub healthy: bool,
    pub detail: String,
}

type Registry = Arc<Mutex<HashMap<i32, Sender<ExitStatus>>>>;

/// What a worker thread needs: the registry, its way back, and where state lives.
#[derive(Clone)]
pub struct Link {
    registry: Registry,
    done: Sender<Done>,
    wake: Arc<File>,
    pub state_dir: PathBuf,
}

impl Link {
    /// Spawns `command` for `svc`; the returned receiver gets its exit status.
    pub fn spawn(
        &self,
        svc: &Service,
        command: &str,
        extra: &[(String, String)],
    ) -> io::Result<(Spawned, Receiver<ExitStatus>)> {
        let (tx, rx) = mpsc::channel();
        // Env files are read before taking the lock: the loop waits on it when it reaps.
        let env = svc.environment().map_err(io::Error::other)?;
        let mut reg = self
            .registry
            .lock()
            .map_err(|_| io::Error::other("worker registry poisoned"))?;
        let spawned = spawn_with_env(svc, &env, command, extra, &self.state_dir)?;
        reg.insert(spawned.pid, tx);
        Ok((spawned, rx))
    }

    pub fn forget(&self, pid: i32) {
        if let Ok(mut reg) = self.registry.lock() {
            reg.remove(&pid);
        }
    }

    pub fn report(&self, done: Done) {
        let _ = self.done.send(done);
        let _ = (&*self.wake).write(b"w");
    }
}

pub struct Workers {
    link: Link,
    done_rx: Receiver<Done>,
    running: usize,
}

impl Workers {
    pub fn new(wake: File, state_dir: &Path) -> Workers {
        let (done, done_rx) = mpsc::channel();
        let link = Link {
            registry: Arc::default(),
            done,
            wake: Arc::new(wake),
            state_dir: state_dir.to_path_buf(),
        };
        Workers {
            link,
            done_rx,
            running: 0,
        }
    }

    /// Starts `job` on its own thread with a link back to the loop. Hooks are counted
    /// (shutdown waits for them, each bounded by its timeout); probes are not, since a
    /// probe's result means nothing once we are stopping.
    pub fn start(
        &mut self,
        name: String,
        counted: bool,
        job: impl FnOnce(Link) + Send + 'static,
    ) -> io::Result<()> {
        let link = self.link.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || job(link))?;
        if counted {
            self.running += 1;
        }
        Ok(())
    }

    /// Hooks still running (shutdown waits for them; each is bounded by its timeout).
    pub fn running(&self) -> usize {
        self.running
    }

    /// Takes the reports of workers that finished since the last call (hooks are only
    /// counted).
    pub fn collect(&mut self) -> Vec<Done> {
        let mut reports = Vec::new();
        while let Ok(done) = self.done_rx.try_recv() {
            match done {
                Done::Hook => self.running = self.running.saturating_sub(1),
                other => reports.push(other),
            }
        }
        reports
    }

    /// Gives a reaped pid to the worker that owns it. False if no worker does.
    pub fn route_exit(&self, pid: i32, status: ExitStatus) -> bool {
        // The spawning worker holds this lock from fork until it has registered the pid,
        // so a process that exits at once is still found here.
        let Ok(reg) = self.link.registry.lock() else {
            return false;
        };
        match reg.get(&pid) {
            Some(tx) => {
                let _ = tx.send(status);
                true
            }
            None => false,
        }
    }
}

/// How a bounded child ended: its status, if the loop handed one over, and whether it
/// was still running at its timeout (then its group was killed).
pub struct Bounded {
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
}

impl Link {
    /// Runs `command` for `svc` until it exits or `timeout` passes: each line of its
    /// output goes to `on_line`, `on_spawn` learns its pid, and its whole process group
    /// is killed when it is done (whatever it left behind goes with it) or timed out.
    pub fn run_bounded(
        &self,
        svc: &Service,
        command: &str,
        extra: &[(String, String)],
        timeout: Duration,
        on_spawn: impl FnOnce(i32),
        on_line: impl FnMut(&str),
    ) -> io::Result<Bounded> {
        let (spawned, rx) = self.spawn(svc, command, extra)?;
        let pid = spawned.pid;
        on_spawn(pid);
        let deadline = Instant::now() + timeout;
        let mut timed_out = !relay_output(spawned.stdout, spawned.stderr, deadline, on_line);
        let mut status = None;
        if !timed_out {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(s) => status = Some(s),
                Err(RecvTimeoutError::Timeout) => timed_out = true,
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
        let _ = crate::sys::killpg(pid, libc::SIGKILL);
        if timed_out {
            status = rx.recv_timeout(KILL_GRACE).ok();
        }
        self.forget(pid);
        Ok(Bounded { status, timed_out })
    }
}

/// Passes each line of a child's output to `log` until both pipes close. False if the
/// deadline passed first.
pub fn relay_output(
    stdout: File,
    stderr: File,
    deadline: Instant,
    mut log: impl FnMut(&str),
) -> bool {
    let mut open: Vec<(File, Vec<u8>)> = vec![(stdout, Vec::new()), (stderr, Vec::new())];
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|(f, _)| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        if crate::sys::poll(&mut fds, ms).is_err() {
            return true;
        }
        let mut closed = Vec::new();
        for (idx, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            let (file, partial) = &mut open[idx];
            let mut buf = [0u8; 8192];
            match file.read(&mut buf) {
                Ok(0) | Err(_) => {
                    emit_lines(partial, true, &mut log);
                    closed.push(idx);
                }
                Ok(n) => {
                    partial.extend_from_slice(&buf[..n]);
                    emit_lines(partial, false, &mut log);
                }
            }
        }
        for idx in closed.into_iter().rev() {
            open.remove(idx);
        }
    }
    true
}

fn emit_lines(buf: &mut Vec<u8>, flush: bool, log: &mut impl FnMut(&str)) {
    let cut = if flush {
        buf.len()
    } else {
        buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)
    };
    if cut == 0 {
        return;
    }
    let rest = buf.split_off(cut);
    for line in String::from_utf8_lossy(buf).lines() {
        log(line);
    }
    *buf = rest;
}
