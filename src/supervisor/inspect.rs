//! `sysg inspect NAME`: everything about one service, and the short histories it needs
//! (the last exits and what the policy did about each, the last probe results, the last
//! run of each hook), kept by the loop as they happen.

use super::policy::ExitStatus;
use super::service::Phase;
use super::Supervisor;
use crate::ipc::{ExitRecord, HookRun, Inspect, LogFileInfo, ProbeStatus, Response};
use crate::paths::Stream;
use std::collections::VecDeque;
use std::time::Instant;

/// Exits and probe results kept per service.
const KEPT: usize = 10;

fn keep<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() == KEPT {
        list.pop_front();
    }
    list.push_back(item);
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Supervisor {
    /// Unit `i`'s instance, started at `started`, ended with `status`; its table has
    /// just decided what follows.
    pub(super) fn note_exit(&mut self, i: usize, status: ExitStatus, started: Option<Instant>) {
        let u = &mut self.units[i];
        let now = Instant::now();
        let then = match &u.svc.phase {
            Phase::Backoff { until } => format!(
                "restart in {:.1}s",
                until.saturating_duration_since(now).as_secs_f64()
            ),
            Phase::Pending { .. } | Phase::Starting { .. } => "started again".into(),
            Phase::Stopping { intent: None, .. } => "stopping what it left running".into(),
            Phase::Stopping { .. } | Phase::Stopped => "stopped, as asked".into(),
            Phase::Completed => "completed".into(),
            Phase::Idle => "waits for its next cron run".into(),
            other => match &u.svc.reason {
                Some(why) => format!("{}: {why}", other.name()),
                None => format!("{} (restart_policy says so)", other.name()),
            },
        };
        let record = ExitRecord {
            at: now_rfc3339(),
            exit: status.describe(),
            uptime_s: started.map_or(0.0, |s| now.duration_since(s).as_secs_f64()),
            then,
        };
        keep(&mut u.exits, record);
    }

    pub(super) fn note_probe(&mut self, i: usize, probe: ProbeStatus) {
        keep(&mut self.units[i].probes, probe);
    }

    pub(super) fn note_hook_run(&mut self, service: &str, run: HookRun) {
        let Some(&i) = self.index.get(service) else {
            return;
        };
        let told = format!("{}: {} in {}ms", run.hook, run.outcome, run.duration_ms);
        self.publish_note(i, "hook", told);
        let runs = &mut self.units[i].hook_runs;
        match runs.iter_mut().find(|r| r.hook == run.hook) {
            Some(slot) => *slot = run,
            None => runs.push(run),
        }
    }

    /// `sysg logs --rotate [NAME]`.
    pub(super) fn rotate_request(&mut self, service: Option<&str>) -> Response {
        let units: Vec<usize> = match service {
            Some(name) => match self.find(name) {
                Ok(i) => vec![i],
                Err(e) => return e,
            },
            None => (0..self.units.len())
                .filter(|&i| !self.units[i].removed)
                .collect(),
        };
        let mut rotated = 0;
        for i in units {
            let name = self.units[i].cfg.name.clone();
            rotated += self.output.rotate(&name);
        }
        crate::logger::info!("rotated {rotated} log file(s) on request");
        Response::ok(format!("Rotated {rotated} log file(s)"))
    }

    pub(super) fn inspect_request(&mut self, name: &str, with_env: bool) -> Option<Response> {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(e) => return Some(e),
        };
        let u = &self.units[i];
        let cfg = &u.cfg;
        let env = u
            .spawned_env
            .clone()
            .or_else(|| cfg.environment().ok())
            .unwrap_or_default();
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("PATH").ok());
        let direct = cfg
            .exec
            .then(|| super::command::plain_words(&cfg.command))
            .flatten()
            .and_then(|words| {
                let program =
                    super::command::find_program(words[0], path.as_deref(), &cfg.working_dir)?;
                let mut argv = vec![program.display().to_string()];
                argv.extend(words[1..].iter().map(|w| w.to_string()));
                Some(argv)
            });
        let runs =
            direct.unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), cfg.command.clone()]);
        let mut keys: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        let logs = [Stream::Stdout, Stream::Stderr]
            .iter()
            .map(|&s| {
                let path = self.paths.service_log(&cfg.name, s);
                let bytes = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
                LogFileInfo {
                    path: path.display().to_string(),
                    bytes,
                }
            })
            .collect();
        let (status, _) = u.status(Instant::now());
        let report = Inspect {
            name: cfg.name.clone(),
            kind: status.kind.clone(),
            status: status.status,
            pid: status.pid,
            command: cfg.command.clone(),
            runs,
            working_dir: cfg.working_dir.display().to_string(),
            user: cfg.run_as.as_ref().map(|r| match &r.user {
                Some(a) => format!("{} ({})", a.name, r.uid),
                None => r.uid.to_string(),
            }),
            group: cfg.run_as.as_ref().map(|r| r.gid),
            env_keys: keys,
            env: with_env.then_some(env),
            restart_policy: match cfg.restart_policy {
                crate::config::RestartPolicy::Never => "never",
                crate::config::RestartPolicy::OnFailure => "on-failure",
                crate::config::RestartPolicy::Always => "always",
            }
            .to_string(),
            backoff_ms: cfg.backoff.as_millis() as u64,
            max_restarts: cfg.max_restarts,
            restart_count: u.svc.restart_count,
            stop_signal: crate::config::signal_name(cfg.stop_signal).to_string(),
            stop_timeout_ms: cfg.stop_timeout.as_millis() as u64,
            depends_on: cfg.depends_on.clone(),
            health_check: cfg.health_check.as_ref().map(|h| {
                let (kind, target) = match &h.probe {
                    crate::config::Probe::Command(c) => ("command", c),
                    crate::config::Probe::Url(u) => ("url", u),
                    crate::config::Probe::Tcp(t) => ("tcp", t),
                    crate::config::Probe::Log(l) => ("log", l),
                };
                format!(
                    "{kind} {target} (every {}s, {} retries{})",
                    h.interval.as_secs_f64(),
                    h.retries,
                    if h.liveness { ", liveness" } else { "" }
                )
            }),
            exits: u.exits.iter().rev().cloned().collect(),
            probes: u.probes.iter().rev().cloned().collect(),
            hooks: u.hook_runs.clone(),
            logs,
            next_cron: u
                .cron
                .as_ref()
                .and_then(|c| c.next)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            cgroup: u.leaves.live.as_ref().map(|l| l.shown.clone()),
        };
        let mut resp = Response::ok("");
        resp.inspect = Some(Box::new(report));
        Some(resp)
    }
}
