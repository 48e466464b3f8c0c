//! Lifecycle hooks (SPEC §3): each runs as `sh -c` on a short-lived worker thread that
//! spawns it, logs its output to supervisor.log and kills its group at the timeout. The
//! loop stays the only reaper: it hands each hook's exit status to its thread through
//! the registry below, and a hook never delays the loop.

use super::policy::ExitStatus;
use super::service::{HookEvent, Outcome};
use super::workers::{Done, Link, Workers, MARKER_AUX};
use crate::config::{Hook, Service};
use crate::logger::{info, warning};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// After SIGKILL at the timeout, how long the thread still waits for the exit status.
const KILL_GRACE: Duration = Duration::from_secs(5);

fn event_name(event: HookEvent) -> &'static str {
    match event {
        HookEvent::Start => "on_start",
        HookEvent::Stop => "on_stop",
        HookEvent::Restart => "on_restart",
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Error => "error",
    }
}

/// Fires the `event.outcome` hook of `svc`, if it has one, on a worker thread.
pub fn fire(
    workers: &mut Workers,
    svc: &Service,
    event: HookEvent,
    outcome: Outcome,
    exit: Option<ExitStatus>,
    pid: Option<i32>,
) {
    let pair = match event {
        HookEvent::Start => &svc.hooks.on_start,
        HookEvent::Stop => &svc.hooks.on_stop,
        HookEvent::Restart => &svc.hooks.on_restart,
    };
    let hook = match outcome {
        Outcome::Success => &pair.success,
        Outcome::Error => &pair.error,
    };
    let Some(hook) = hook.clone() else { return };
    let label = format!(
        "{} {}.{}",
        svc.name,
        event_name(event),
        outcome_name(outcome)
    );
    let extra = vec![
        (MARKER_AUX.to_string(), event_name(event).to_string()),
        (
            "SYSG_OUTCOME".to_string(),
            outcome_name(outcome).to_string(),
        ),
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
    };
    if let Err(e) = workers.start(format!("hook {label}"), true, move |link| {
        job.execute(&link);
        link.report(Done::Hook);
    }) {
        warning!("hook {label}: cannot start a thread for it: {e}");
    }
}

struct Job {
    svc: Service,
    hook: Hook,
    label: String,
    extra: Vec<(String, String)>,
}

impl Job {
    fn execute(&self, link: &Link) {
        let (spawned, rx) = match link.spawn(&self.svc, &self.hook.command, &self.extra) {
            Ok(s) => s,
            Err(e) => {
                warning!("hook {}: cannot run: {e}", self.label);
                return;
            }
        };
        let pid = spawned.pid;
        info!(
            "hook {} started (pid {pid}): {}",
            self.label, self.hook.command
        );
        let deadline = Instant::now() + self.hook.timeout;
        let timed_out = !relay_output(spawned.stdout, spawned.stderr, deadline, |line| {
            info!("hook {}: {line}", self.label)
        });
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
        link.forget(pid);
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

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
