//! Lifecycle hooks (SPEC §3): each runs as `sh -c` on a short-lived worker thread that
//! spawns it, logs its output to supervisor.log and kills its group at the timeout. The
//! loop stays the only reaper: it hands each hook's exit status to its thread through
//! the registry below, and a hook never delays the loop.

use super::children::{Done, Link, Workers, MARKER_AUX};
use super::policy::ExitStatus;
use super::service::{HookEvent, Outcome};
use crate::config::{Hook, Service};
use crate::logger::{info, warning};
use std::time::Duration;

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
        event,
        outcome,
        svc: svc.clone(),
        hook,
        label: label.clone(),
        extra,
    };
    if let Err(e) = workers.start(format!("hook {label}"), true, move |link| {
        let began = std::time::Instant::now();
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let outcome = job.execute(&link);
        let run = crate::ipc::HookRun {
            hook: format!("{}.{}", event_name(job.event), outcome_name(job.outcome)),
            at,
            outcome,
            duration_ms: began.elapsed().as_millis() as u64,
        };
        link.report(Done::Hook(Some((job.svc.name.clone(), run))));
    }) {
        warning!("hook {label}: cannot start a thread for it: {e}");
    }
}

struct Job {
    event: HookEvent,
    outcome: Outcome,
    svc: Service,
    hook: Hook,
    label: String,
    extra: Vec<(String, String)>,
}

impl Job {
    /// Runs the hook; says how it ended.
    fn execute(&self, link: &Link) -> String {
        let label = &self.label;
        let svc = runnable(&self.svc, &link.state_dir);
        let command = &self.hook.command;
        let ran = link.run_bounded(
            &svc,
            command,
            &self.extra,
            self.hook.timeout,
            |pid| info!("hook {label} started (pid {pid}): {command}"),
            |line| info!("hook {label}: {line}"),
        );
        let done = match ran {
            Ok(done) => done,
            Err(e) => {
                warning!("hook {label}: cannot run: {e}");
                return format!("cannot run: {e}");
            }
        };
        if done.timed_out {
            warning!(
                "hook {label} timed out after {}; its process group was killed",
                humantime(self.hook.timeout)
            );
        }
        match done.status {
            Some(ExitStatus::Code(0)) => info!("hook {label} exited with code 0"),
            Some(ExitStatus::Code(c)) => warning!("hook {label} failed: exit code {c}"),
            Some(ExitStatus::Signal(s)) => {
                warning!("hook {label} killed by {}", crate::config::signal_name(s))
            }
            None => warning!("hook {label}: exit status unknown"),
        }
        let how = done
            .status
            .map_or_else(|| "exit status unknown".to_string(), |s| s.describe());
        if done.timed_out {
            format!("timed out after {} ({how})", humantime(self.hook.timeout))
        } else {
            how
        }
    }
}

/// A hook runs even where its service could not: `on_start.error` reports exactly that.
/// So a working dir that is gone is replaced by the state dir, and env files that cannot
/// be read are left out (the hook still gets the rest, and `SYSG_*`).
fn runnable(svc: &Service, state_dir: &std::path::Path) -> Service {
    let mut svc = svc.clone();
    if !svc.working_dir.is_dir() {
        svc.working_dir = state_dir.to_path_buf();
    }
    svc.env.retain(|layer| layer.readable());
    svc
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
