//! `stop`, `validate`, `purge`, `upgrade`, and the glue of `logs`.

use super::paths;
use crate::cli::LogKind;
use crate::client;
use crate::error::{Error, Result};
use crate::ipc::{Request, State};
use crate::paths::Stream;
use std::path::Path;
use std::time::Duration;

/// How long `stop` waits for a supervisor whose sysg.pid lock is held but whose pid is
/// not written yet (it is taking the lock this instant).
const LOCK_RACE: Duration = Duration::from_secs(5);

pub fn stop(service: Option<&str>, with_dependents: bool) -> Result<i32> {
    stop_bounded(service, with_dependents)
}

fn stop_bounded(service: Option<&str>, with_dependents: bool) -> Result<i32> {
    let paths = paths()?;
    if crate::state::running_supervisor(&paths).is_none() {
        return stop_without_supervisor(&paths, service, with_dependents);
    }
    let bounds = super::StopBounds::read(&paths);
    let req = Request::Stop {
        service: service.map(str::to_string),
        with_dependents,
    };
    // A full stop is acknowledged at once; one service is answered once it has stopped.
    let reply_wait = match service {
        Some(_) => bounds.stop,
        None => client::REPLY_TIMEOUT,
    };
    let (pid, resp) = match client::call_to(&paths, &req, reply_wait) {
        Err(Error::NotRunning(_)) => {
            return stop_without_supervisor(&paths, service, with_dependents)
        }
        other => other?,
    };
    println!("{}", resp.message.unwrap_or_default());
    if service.is_some() {
        return Ok(0);
    }
    // Run by a hook or a service of this supervisor: it may be waiting for us, so
    // waiting for it to exit would only hold its shutdown up until the hook timeout.
    if super::inside_tree_of(pid) {
        return Ok(0);
    }
    if !super::wait_for_exit(pid, bounds.shutdown) {
        return Err(client::gave_up(format!(
            "supervisor (pid {pid}) is still running {}s after it was told to stop; {}",
            bounds.shutdown.as_secs(),
            client::unresponsive_note(pid)
        )));
    }
    Ok(0)
}

/// No supervisor answers. One that is just taking the sysg.pid lock is waited for; with
/// none, service processes a crashed supervisor left running are stopped, under that
/// lock so no supervisor starts meanwhile.
fn stop_without_supervisor(
    paths: &crate::paths::Paths,
    service: Option<&str>,
    with_dependents: bool,
) -> Result<i32> {
    if !paths.dir.is_dir() {
        println!("No supervisor running");
        return Ok(0);
    }
    let Some(_lock) = take_supervisor_lock(paths)? else {
        let up = super::wait_until(LOCK_RACE, || {
            crate::state::running_supervisor(paths).is_some()
        });
        if up {
            return stop_bounded(service, with_dependents);
        }
        return Err(client::gave_up(format!(
            "another sysg holds {} but no supervisor answers",
            paths.pid_file().display()
        )));
    };
    let mut found = super::leftovers::find(paths);
    if let Some(name) = service {
        found.retain(|n, _| n == name);
    }
    if found.is_empty() {
        match service {
            Some(name) => println!("No supervisor running; no process of {name} is left"),
            None => println!("No supervisor running"),
        }
        return Ok(0);
    }
    // We hold the lock now, so sysg.pid names the supervisor that crashed.
    let crashed = crate::state::read_pid_file(paths);
    let count: usize = found.values().map(Vec::len).sum();
    println!(
        "No supervisor running; stopping {count} process(es) {}: {}",
        super::leftovers::left_by(crashed),
        super::leftovers::describe(&found)
    );
    crate::supervisor::stop_leftovers(paths, &[], service);
    let still = || {
        let mut left = super::leftovers::find(paths);
        if let Some(name) = service {
            left.retain(|n, _| n == name);
        }
        left
    };
    let gone = super::wait_until(Duration::from_secs(2), || still().is_empty());
    if !gone {
        return Err(Error::msg(format!(
            "could not stop every leftover process: {}",
            super::leftovers::describe(&still())
        )));
    }
    if service.is_none() {
        let _ = std::fs::remove_file(paths.socket());
    }
    println!("Stopped {count} leftover process(es)");
    Ok(0)
}

/// The sysg.pid flock, if nobody holds it (the file is created if missing).
fn take_supervisor_lock(paths: &crate::paths::Paths) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = paths.pid_file();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io_path("cannot open", &path, e))?;
    let got = crate::sys::try_lock_exclusive(&file)
        .map_err(|e| Error::io_path("cannot lock", &path, e))?;
    Ok(got.then_some(file))
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
    purge_bounded()
}

fn purge_bounded() -> Result<i32> {
    let paths = paths()?;
    if let Some(pid) = crate::state::running_supervisor(&paths) {
        if super::inside_tree_of(pid) {
            return Err(Error::msg(
                "cannot purge from a hook or service of the running supervisor: it would wait for its own parent",
            ));
        }
        let bounds = super::StopBounds::read(&paths);
        let _ = client::call(
            &paths,
            &Request::Stop {
                service: None,
                with_dependents: false,
            },
            client::REPLY_TIMEOUT,
        );
        if !super::wait_for_exit(pid, bounds.shutdown) {
            return Err(client::gave_up(format!(
                "supervisor (pid {pid}) did not stop within {}s; not purging; {}",
                bounds.shutdown.as_secs(),
                client::unresponsive_note(pid)
            )));
        }
    }
    if paths.dir.exists() {
        crate::supervisor::stop_leftovers(&paths, &[], None);
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

pub fn logs(
    service: Option<&str>,
    lines: usize,
    follow: bool,
    kind: LogKind,
    view: &crate::cli::LogView,
) -> Result<i32> {
    let look = super::logs::look_of(view)?;
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
        None if known.is_empty() => {
            println!(
                "No logs to show: no supervisor runs, and no state or config names a service \
                 here (start one with 'sysg start -d -c FILE')"
            );
            return Ok(0);
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
        look,
        &keep_following,
        &mut out,
    )?;
    Ok(0)
}

/// `sysg logs --rotate [NAME]`: the running supervisor rotates the files now.
pub fn rotate(service: Option<&str>) -> Result<i32> {
    let paths = paths()?;
    let req = Request::Rotate {
        service: service.map(str::to_string),
    };
    let resp = client::call(&paths, &req, client::REPLY_TIMEOUT)?;
    println!("{}", resp.message.unwrap_or_default());
    Ok(0)
}

/// `sysg logs --supervisor [-n N] [-f] [--grep TEXT]`.
pub fn supervisor_log(lines: usize, follow: bool, view: &crate::cli::LogView) -> Result<i32> {
    let look = super::logs::look_of(view)?;
    let paths = paths()?;
    let supervisor = crate::state::running_supervisor(&paths);
    let keep_following =
        || supervisor.is_none() || crate::state::running_supervisor(&paths) == supervisor;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    super::logs::show_supervisor(
        &paths.supervisor_log(),
        lines,
        follow,
        look,
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

/// How long `upgrade` waits for its answer: the checks, the exec, and the new binary
/// taking over.
const UPGRADE_WITHIN: Duration = Duration::from_secs(30);

pub fn upgrade(binary: Option<&Path>) -> Result<i32> {
    let paths = paths()?;
    // Relative to where the command runs, not to the supervisor's cwd.
    let binary = match binary {
        Some(b) => {
            Some(std::path::absolute(b).map_err(|e| Error::io_path("cannot resolve", b, e))?)
        }
        None => None,
    };
    let resp = client::call(&paths, &Request::Upgrade { binary }, UPGRADE_WITHIN)?;
    if let Some(msg) = resp.message {
        println!("{msg}");
    }
    Ok(0)
}
