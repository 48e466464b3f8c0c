//! `status`: ask the supervisor, or fall back to the last state.json (exit 3).

use super::paths;
use crate::client;
use crate::error::{Error, Result};
use crate::ipc::{Request, ServiceStatus, State, StatusReport};
use crate::state::StateFile;
use std::io::{IsTerminal, Write};

pub fn status(service: Option<&str>, json: bool) -> Result<i32> {
    status_bounded(service, json)
}

fn status_bounded(service: Option<&str>, json: bool) -> Result<i32> {
    let paths = paths()?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (text, code) = report_text(&paths, service, json, color)?;
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(code)
}

/// The status as printed, and the exit code it goes with (3: no supervisor).
pub fn report_text(
    paths: &crate::paths::Paths,
    service: Option<&str>,
    json: bool,
    color: bool,
) -> Result<(String, i32)> {
    let req = Request::Status {
        service: service.map(str::to_string),
    };
    let (mut report, code) = match client::call(paths, &req, client::REPLY_TIMEOUT) {
        Ok(resp) => (
            *resp
                .status
                .ok_or_else(|| Error::msg("supervisor sent no status"))?,
            0,
        ),
        Err(Error::NotRunning(_)) => (last_known(paths, service)?, 3),
        Err(e) => return Err(e),
    };
    let text = if json {
        for svc in &mut report.services {
            svc.processes = super::status_view::tree_order(std::mem::take(&mut svc.processes));
        }
        let mut s = serde_json::to_string_pretty(&report).map_err(|e| Error::msg(e.to_string()))?;
        s.push('\n');
        s
    } else {
        super::status_view::render(&report, chrono::Utc::now(), color)
    };
    Ok((text, code))
}

/// The report a stopped supervisor left behind, without any live figures.
pub fn last_known(paths: &crate::paths::Paths, service: Option<&str>) -> Result<StatusReport> {
    let state = StateFile::read(paths).unwrap_or_default();
    let mut services: Vec<ServiceStatus> = state
        .services
        .iter()
        .map(|(name, rec)| ServiceStatus {
            name: name.clone(),
            kind: if rec.cron.is_some() {
                "cron"
            } else {
                "service"
            }
            .into(),
            status: rec.status,
            pid: None,
            started_at: rec.started_at.clone(),
            uptime_s: None,
            restart_count: rec.restart_count,
            max_restarts: None,
            exit_code: rec.exit_code,
            signal: rec.signal,
            up: false,
            restart_in_ms: None,
            waiting_for: None,
            reason: rec.reason.clone(),
            rss_bytes: None,
            cpu_s: None,
            tasks: None,
            processes: Vec::new(),
            cron: rec.cron.clone(),
            stopped_by_request: rec.stopped_by_request,
            last_probe: None,
            notify_status: None,
            cgroup: None,
        })
        .collect();
    mark_leftovers(paths, &mut services);
    if let Some(name) = service {
        services.retain(|s| s.name == name);
        if services.is_empty() {
            return Err(Error::NotRunning(format!(
                "No supervisor running; no recorded state for '{name}'"
            )));
        }
    }
    Ok(StatusReport {
        supervisor_pid: None,
        config: crate::state::read_config_hint(paths),
        containment: None,
        services,
    })
}

/// With no supervisor, a record saying "running" is only true of processes a crashed
/// supervisor left behind: those are shown as such (with their pid), and a service with
/// none left is not shown as running.
fn mark_leftovers(paths: &crate::paths::Paths, services: &mut [ServiceStatus]) {
    let found = super::leftovers::find(paths);
    let crashed = super::leftovers::crashed_supervisor(paths);
    let recorded = crate::state::PidFile::read(paths);
    for svc in services.iter_mut() {
        match found.get(&svc.name) {
            Some(pids) => {
                let main = recorded
                    .services
                    .get(&svc.name)
                    .copied()
                    .filter(|p| pids.contains(p))
                    .unwrap_or(pids[0]);
                svc.status = State::Running;
                svc.pid = Some(main);
                svc.tasks = Some(pids.len() as u32);
                svc.reason = Some(super::leftovers::left_by(crashed));
            }
            None if matches!(svc.status, State::Running | State::Stopping) => {
                svc.status = State::Stopped;
                svc.reason = Some(match crashed {
                    Some(pid) => format!("its supervisor (pid {pid}) ended without stopping it"),
                    None => "its supervisor ended without stopping it".to_string(),
                });
            }
            None => {}
        }
    }
}
