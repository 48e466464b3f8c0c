//! Lifecycle hooks (SPEC §3): each runs as `sh -c` on a short-lived worker thread that
//! spawns it, logs its output to supervisor.log and kills its group at the timeout. The
//! loop stays the only reaper: it hands each hook's exit status to its thread through
//! the registry below, and a hook never delays the loop.

use super::policy::ExitStatus;
use super::spawn;
use crate::config::{Hook, Service};
use crate::logger::{info, warning};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in every hook's environment; also tells hook processes apart from the service's.
pub const MARKER_HOOK: &str = "SYSG_HOOK";

/// After SIGKILL at the timeout, how long the thread still waits for the exit status.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Stop,
    Restart,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Start => "on_start",
            Event::Stop => "on_stop",
            Event::Restart => "on_restart",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
        }
    }
}

/// Exit statuses the loop has reaped, routed to the hook thread waiting for that pid.
type Registry = Arc<Mutex<HashMap<i32, Sender<ExitStatus>>>>;

pub struct Hooks {
    registry: Registry,
    done_tx: Sender<()>,
    done_rx: Receiver<()>,
    /// Write end of the loop's wake pipe: a finished hook writes one byte.
    wake: Arc<File>,
    running: usize,
    state_dir: PathBuf,
}

impl Hooks {
    pub fn new(wake: File, state_dir: PathBuf) -> Hooks {
        let (done_tx, done_rx) = mpsc::channel();
        Hooks {
            registry: Arc::default(),
            done_tx,
            done_rx,
            wake: Arc::new(wake),
            running: 0,
            state_dir,
        }
    }

    /// Hooks still running (shutdown waits for them, each bounded by its timeout).
    pub fn running(&self) -> usize {
        self.running
    }

    /// Counts hooks that finished since the last call.
    pub fn collect(&mut self) {
        while self.done_rx.try_recv().is_ok() {
            self.running = self.running.saturating_sub(1);
        }
    }

    /// Gives a reaped pid to the hook thread that owns it. False if it is not a hook.
    pub fn route_exit(&self, pid: i32, status: ExitStatus) -> bool {
        // The spawning thread holds this lock from fork until it has registered the pid,
        // so a hook that exits at once is still found here.
        let Ok(reg) = self.registry.lock() else {
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

    /// Fires the `event.outcome` hook of `svc`, if it has one.
    pub fn fire(
        &mut self,
        svc: &Service,
        event: Event,
        outcome: Outcome,
        exit: Option<ExitStatus>,
        pid: Option<i32>,
    ) {
        let pair = match event {
            Event::Start => &svc.hooks.on_start,
            Event::Stop => &svc.hooks.on_stop,
            Event::Restart => &svc.hooks.on_restart,
        };
        let hook = match outcome {
            Outcome::Success => &pair.success,
            Outcome::Error => &pair.error,
        };
        let Some(hook) = hook.clone() else { return };
        let label = format!("{} {}.{}", svc.name, event.as_str(), outcome.as_str());
        let extra = vec![
            (MARKER_HOOK.to_string(), event.as_str().to_string()),
            ("SYSG_OUTCOME".to_string(), outcome.as_str().to_string()),
            (
                "SYSG_EXIT_CODE".to_string(),
                exit.map(|e| e.as_code().to_string()).unwrap_or_default(),
            ),
            (
                "SYSG_PID".to_string(),
                pid.map(|p| p.to_string()).unwrap_or_default(),
            ),
        ];
        let job = Job {
            svc: svc.clone(),
            hook,
            label: label.clone(),
            extra,
            state_dir: self.state_dir.clone(),
            registry: Arc::clone(&self.registry),
            done: self.done_tx.clone(),
            wake: Arc::clone(&self.wake),
        };
        match std::thread::Builder::new()
            .name(format!("hook {label}"))
            .spawn(move || job.run())
        {
            Ok(_) => self.running += 1,
            Err(e) => warning!("hook {label}: cannot start a thread for it: {e}"),
        }
    }
}

struct Job {
    svc: Service,
    hook: Hook,
    label: String,
    extra: Vec<(String, String)>,
    state_dir: PathBuf,
    registry: Registry,
    done: Sender<()>,
    wake: Arc<File>,
}

impl Job {
    fn run(self) {
        self.execute();
        let _ = self.done.send(());
        let _ = (&*self.wake).write(b"h");
    }

    fn execute(&self) {
        let (tx, rx) = mpsc::channel();
        let spawned = {
            let Ok(mut reg) = self.registry.lock() else {
                return;
            };
            match spawn::spawn(&self.svc, &self.hook.command, &self.extra, &self.state_dir) {
                Ok(s) => {
                    reg.insert(s.pid, tx);
                    s
                }
                Err(e) => {
                    warning!("hook {}: cannot run: {e}", self.label);
                    return;
                }
            }
        };
        let pid = spawned.pid;
        info!(
            "hook {} started (pid {pid}): {}",
            self.label, self.hook.command
        );
        let deadline = Instant::now() + self.hook.timeout;
        let timed_out = !self.relay_output(spawned.stdout, spawned.stderr, deadline);
        let status = if timed_out {
            warning!(
                "hook {} timed out after {}; killing its process group",
                self.label,
                humantime(self.hook.timeout)
            );
            let _ = crate::sys::killpg(pid, libc::SIGKILL);
            rx.recv_timeout(KILL_GRACE).ok()
        } else {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(s) => Some(s),
                Err(RecvTimeoutError::Timeout) => {
                    warning!("hook {} timed out; killing its process group", self.label);
                    let _ = crate::sys::killpg(pid, libc::SIGKILL);
                    rx.recv_timeout(KILL_GRACE).ok()
                }
                Err(RecvTimeoutError::Disconnected) => None,
            }
        };
        // Whatever the hook left behind in its group goes with it.
        let _ = crate::sys::killpg(pid, libc::SIGKILL);
        if let Ok(mut reg) = self.registry.lock() {
            reg.remove(&pid);
        }
        match status {
            Some(ExitStatus::Code(0)) => info!("hook {} exited with code 0", self.label),
            Some(ExitStatus::Code(c)) => warning!("hook {} failed: exit code {c}", self.label),
            Some(ExitStatus::Signal(s)) => {
                warning!(
                    "hook {} killed by {}",
                    self.label,
                    crate::config::signal_name(s)
                )
            }
            None => warning!("hook {}: exit status unknown", self.label),
        }
    }

    /// Logs the hook's output line by line until both pipes close. False if the deadline
    /// passed first.
    fn relay_output(&self, stdout: File, stderr: File, deadline: Instant) -> bool {
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
                        self.log_lines(partial, true);
                        closed.push(idx);
                    }
                    Ok(n) => {
                        partial.extend_from_slice(&buf[..n]);
                        self.log_lines(partial, false);
                    }
                }
            }
            for idx in closed.into_iter().rev() {
                open.remove(idx);
            }
        }
        true
    }

    fn log_lines(&self, buf: &mut Vec<u8>, flush: bool) {
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
            info!("hook {}: {line}", self.label);
        }
        *buf = rest;
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
