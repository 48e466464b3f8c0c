//! `pre_start`: a command run before each start of a service (like `ExecStartPre`), as
//! `sh -c` in the service's working dir and environment, on a worker thread, bounded by
//! its timeout so a hung one never holds anything up. Its output goes to supervisor.log;
//! how it ended (and its last line) comes back to the table as `PreStartDone`.

use super::children::{Done, Link, Workers, MARKER_AUX};
use super::policy::ExitStatus;
use crate::config::Service;
use crate::logger::{info, warning};

/// The last output line kept for the reason a failed start shows.
const LAST_LINE_MAX: usize = 200;

/// What a `pre_start` run reports.
pub struct Outcome {
    pub unit: usize,
    pub generation: u64,
    pub ok: bool,
    pub detail: String,
}

/// Starts `svc`'s `pre_start` on a worker for unit `unit` in epoch `generation`; false
/// when no thread could be started (reported as a failed run).
pub fn launch(workers: &mut Workers, svc: &Service, unit: usize, generation: u64) -> bool {
    let Some(hook) = svc.pre_start.clone() else {
        return false;
    };
    let svc = svc.clone();
    let job = move |link: Link| {
        let (ok, detail) = run(&link, &svc, &hook.command, hook.timeout);
        link.report(Done::PreStart(Outcome {
            unit,
            generation,
            ok,
            detail,
        }));
    };
    workers
        .start(format!("pre_start {unit}"), true, job)
        .is_ok()
}

fn run(link: &Link, svc: &Service, command: &str, timeout: std::time::Duration) -> (bool, String) {
    let name = &svc.name;
    let extra = [(MARKER_AUX.to_string(), "pre_start".to_string())];
    let mut last = String::new();
    let ran = link.run_bounded(
        svc,
        command,
        &extra,
        timeout,
        |pid| info!("{name}: pre_start started (pid {pid}): {command}"),
        |line| {
            info!("{name} pre_start: {line}");
            if !line.trim().is_empty() {
                last = line.chars().take(LAST_LINE_MAX).collect();
            }
        },
    );
    let said = |how: String| {
        if last.is_empty() {
            how
        } else {
            format!("{how}: {last}")
        }
    };
    match ran {
        Err(e) => (false, format!("cannot run: {e}")),
        Ok(done) if done.timed_out => {
            let how = format!("timed out after {}s; killed", timeout.as_secs_f64());
            warning!("{name}: pre_start {how}");
            (false, said(how))
        }
        Ok(done) => match done.status {
            Some(ExitStatus::Code(0)) => (true, String::new()),
            Some(ExitStatus::Code(c)) => (false, said(format!("exit code {c}"))),
            Some(ExitStatus::Signal(s)) => (
                false,
                said(format!("killed by {}", crate::config::signal_name(s))),
            ),
            None => (false, "exit status unknown".to_string()),
        },
    }
}
