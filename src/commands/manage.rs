//! `stop`, `validate`, `purge`, and the glue of `logs`.

use super::paths;
use crate::cli::LogKind;
use crate::client;
use crate::error::{Error, Result};
use crate::ipc::{Request, State};
use crate::paths::Stream;
use std::path::Path;
use std::time::Duration;

/// How long `stop` waits for the supervisor process to be gone after it acknowledged.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(600);

pub fn stop(service: Option<&str>) -> Result<i32> {
    let paths = paths()?;
    let Some(pid) = crate::state::running_supervisor(&paths) else {
        println!("No supervisor running");
        return Ok(0);
    };
    let req = Request::Stop {
        service: service.map(str::to_string),
    };
    let resp = match client::call(&paths, &req, super::start::LONG_REPLY) {
        Err(Error::NotRunning(_)) => {
            println!("No supervisor running");
            return Ok(0);
        }
        other => other?,
    };
    println!("{}", resp.message.unwrap_or_default());
    if service.is_none() && !super::wait_for_exit(pid, SHUTDOWN_WAIT) {
        return Err(Error::msg(format!(
            "supervisor (pid {pid}) is still running"
        )));
    }
    Ok(0)
}

pub fn validate(config: Option<&Path>) -> Result<i32> {
    let paths = paths()?;
    let path = super::find_config(config, &paths, false)?;
    let cfg = crate::config::load(&path)?;
    let cron = cfg.services.iter().filter(|s| s.cron.is_some()).count();
    println!("OK: {} services ({cron} cron)", cfg.services.len());
    Ok(0)
}

pub fn purge() -> Result<i32> {
    let paths = paths()?;
    if let Some(pid) = crate::state::running_supervisor(&paths) {
        let _ = client::call(
            &paths,
            &Request::Stop { service: None },
            super::start::LONG_REPLY,
        );
        if !super::wait_for_exit(pid, SHUTDOWN_WAIT) {
            return Err(Error::msg(format!(
                "supervisor (pid {pid}) did not stop; not purging"
            )));
        }
    }
    if paths.dir.exists() {
        crate::supervisor::stop_leftovers(&paths, &[]);
    }
    let kept = super::purge::remove_state(&paths)?;
    if kept.is_empty() {
        println!("Purged {}", paths.dir.display());
    } else {
        println!(
            "Purged {}; kept {} entries sysg did not create: {}",
            paths.dir.display(),
            kept.len(),
            kept.join(", ")
        );
    }
    Ok(0)
}

pub fn logs(service: Option<&str>, lines: usize, follow: bool, kind: LogKind) -> Result<i32> {
    let paths = paths()?;
    let known = services_for_logs(&paths);
    let selected: Vec<(String, bool)> = match service {
        Some(name) => {
            let entry = known.iter().find(|(n, _)| n == name).cloned();
            let has_files = [Stream::Stdout, Stream::Stderr]
                .iter()
                .any(|s| std::fs::symlink_metadata(paths.service_log(name, *s)).is_ok());
            match entry {
                Some(e) => vec![e],
                None if has_files && crate::config::valid_service_name(name) => {
                    vec![(name.to_string(), false)]
                }
                None => return Err(Error::msg(format!("unknown service '{name}'"))),
            }
        }
        None => known,
    };
    let kind = match kind {
        LogKind::Stdout => super::logs::Kind::Stdout,
        LogKind::Stderr => super::logs::Kind::Stderr,
        LogKind::All => super::logs::Kind::All,
    };
    super::logs::refuse_links(&paths.log_dir(), &selected, kind)?;
    // Following ends by itself once the supervisor running now has stopped (its services'
    // last lines are printed first); with none running, it goes on until Ctrl-C.
    let supervisor = crate::state::running_supervisor(&paths);
    let keep_following =
        || supervisor.is_none() || crate::state::running_supervisor(&paths) == supervisor;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    super::logs::show(
        &paths.log_dir(),
        &selected,
        lines,
        kind,
        follow,
        &keep_following,
        &mut out,
    )?;
    Ok(0)
}

/// Every service we know of, and whether it is running: from the supervisor if there is
/// one, else from state.json, else from a config in the current dir.
fn services_for_logs(paths: &crate::paths::Paths) -> Vec<(String, bool)> {
    let running = |s: State| matches!(s, State::Running | State::Stopping);
    if let Ok(resp) = client::call(
        paths,
        &Request::Status { service: None },
        client::REPLY_TIMEOUT,
    ) {
        if let Some(report) = resp.status {
            return report
                .services
                .into_iter()
                .map(|s| (s.name, running(s.status)))
                .collect();
        }
    }
    if let Some(state) = crate::state::StateFile::read(paths) {
        if !state.services.is_empty() {
            return state.services.into_keys().map(|n| (n, false)).collect();
        }
    }
    super::find_config(None, paths, true)
        .ok()
        .and_then(|p| crate::config::load(&p).ok())
        .map(|c| c.services.into_iter().map(|s| (s.name, false)).collect())
        .unwrap_or_default()
}
