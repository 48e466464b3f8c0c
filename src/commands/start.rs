//! `start`, `restart` and the detached supervisor entry point.

use super::{find_config, paths};
use crate::client;
use crate::error::{Error, Result};
use crate::ipc::Request;
use crate::logger::Level;
use crate::paths::Paths;
use crate::supervisor::{self, Options, READY_FD_ENV};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long `start -d` waits for the detached supervisor's handshake. Startup includes
/// stopping a crashed predecessor's leftovers, which can take a few seconds.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn start(
    config: Option<&Path>,
    daemonize: bool,
    service: Option<&str>,
    wait: Option<Duration>,
    level: Level,
) -> Result<i32> {
    start_bounded(config, daemonize, service, wait, level)
}

fn start_bounded(
    config: Option<&Path>,
    daemonize: bool,
    service: Option<&str>,
    wait: Option<Duration>,
    level: Level,
) -> Result<i32> {
    let paths = paths()?;
    if let Some(pid) = crate::state::running_supervisor(&paths) {
        let Some(name) = service else {
            return Err(Error::msg(format!(
                "Supervisor already running (pid {pid}); use 'sysg start -s NAME' or 'sysg restart'"
            )));
        };
        let resp = client::call(
            &paths,
            &Request::Start {
                service: name.to_string(),
            },
            client::REPLY_TIMEOUT,
        )?;
        println!("{}", resp.message.unwrap_or_default());
        return match wait {
            Some(t) => wait_up(&paths, Some(vec![name.to_string()]), t),
            None => Ok(0),
        };
    }
    if service.is_some() {
        return Err(Error::msg(
            "No supervisor running; start it with 'sysg start'",
        ));
    }
    let path = find_config(config, &paths, false)?;
    let code = launch(&paths, &path, daemonize, level)?;
    match wait {
        Some(t) if code == 0 => wait_up(&paths, None, t),
        _ => Ok(code),
    }
}

/// `--wait`: until the services (None: all but cron jobs) are up, or one fails (then
/// its last log lines are shown), or `timeout`. Exit 0, or 1.
fn wait_up(paths: &Paths, services: Option<Vec<String>>, timeout: Duration) -> Result<i32> {
    let req = Request::WaitUp {
        services,
        timeout_ms: timeout.as_millis() as u64,
    };
    let (_, resp) = client::request_to(paths, &req, timeout + WAIT_MARGIN)?;
    if resp.ok {
        println!("{}", resp.message.unwrap_or_default());
        return Ok(0);
    }
    eprintln!("sysg: {}", resp.error.unwrap_or_default());
    if let Some(name) = resp.failed {
        let lines = super::logs::last_lines(&paths.log_dir(), &name, FAILED_LINES);
        if lines.is_empty() {
            eprintln!("({name} wrote nothing)");
        } else {
            eprintln!("Last lines of {name}:");
            for line in lines {
                eprintln!("  {line}");
            }
        }
    }
    Ok(1)
}

/// How many of a failed service's last lines `--wait` shows.
const FAILED_LINES: usize = 10;
/// Beyond a `--wait` timeout, for the supervisor's answer to arrive.
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// How a reload (`restart` without `-s`) goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reload {
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Stop every service and start them all again.
    pub all: bool,
    /// `--wait`: `restart -s` returns once the service is up (a reload always waits).
    pub wait: Option<Duration>,
}

pub fn restart(
    config: Option<&Path>,
    daemonize: bool,
    service: Option<&str>,
    reload: Reload,
    level: Level,
) -> Result<i32> {
    restart_bounded(config, daemonize, service, reload, level)
}

fn restart_bounded(
    config: Option<&Path>,
    daemonize: bool,
    service: Option<&str>,
    reload: Reload,
    level: Level,
) -> Result<i32> {
    let paths = paths()?;
    if crate::state::running_supervisor(&paths).is_none() {
        if reload.dry_run {
            return Err(Error::msg("No supervisor running: nothing to reload"));
        }
        if daemonize {
            let path = find_config(config, &paths, true)?;
            let code = launch(&paths, &path, true, level)?;
            return match reload.wait {
                Some(t) if code == 0 => wait_up(&paths, None, t),
                _ => Ok(code),
            };
        }
        return Err(Error::msg(
            "No supervisor running; use 'sysg start' (or 'sysg restart -d')",
        ));
    }
    // The supervisor reads the config again before it acts on a reload: as long as it
    // took here, with a margin.
    let mut reading = std::time::Duration::ZERO;
    let mut coming_up = std::time::Duration::ZERO;
    let req = match service {
        Some(name) => Request::Restart {
            service: Some(name.to_string()),
            config: None,
            dry_run: false,
            all: false,
        },
        None => {
            let path = find_config(config, &paths, true)?;
            // Refuse a broken config here, with the full error list, before touching anything.
            let began = std::time::Instant::now();
            crate::config::load(&path)?;
            reading = began.elapsed() * 3;
            // The reply waits until what the reload started is up (bounded there).
            coming_up = supervisor::RELOAD_UP_WITHIN;
            Request::Restart {
                service: None,
                config: Some(path),
                dry_run: reload.dry_run,
                all: reload.all,
            }
        }
    };
    // Answered once the stop is over and the new instance is spawned (a reload: once
    // what it started is up).
    let bound = super::StopBounds::read(&paths).stop + reading + coming_up;
    let resp = client::call(&paths, &req, bound)?;
    println!("{}", resp.message.unwrap_or_default());
    match (service, reload.wait) {
        (Some(name), Some(t)) => wait_up(&paths, Some(vec![name.to_string()]), t),
        _ => Ok(0),
    }
}

fn launch(paths: &Paths, config_path: &Path, daemonize: bool, level: Level) -> Result<i32> {
    let config = crate::config::load(config_path)?;
    if !daemonize {
        return supervisor::run(
            paths.clone(),
            config,
            Options {
                foreground: true,
                ready: None,
            },
        );
    }
    spawn_daemon(&config.path, level)
}

/// Starts `sysg __supervise` in a new session and waits for its handshake: "ok PID" once
/// the socket is up and the first wave is launched, or the startup error.
fn spawn_daemon(config: &Path, level: Level) -> Result<i32> {
    let (read, write) = crate::sys::pipe().map_err(|e| Error::io("cannot create pipe", e))?;
    let write_fd = std::os::fd::AsRawFd::as_raw_fd(&write);
    crate::sys::clear_cloexec(write_fd).map_err(|e| Error::io("pipe", e))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("sysg")
        .args(["--log-level", level_arg(level), "__supervise", "--config"])
        .arg(config)
        .env(READY_FD_ENV, write_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::sys::configure_child(&mut cmd, None, true);
    let child = cmd
        .spawn()
        .map_err(|e| Error::io("cannot start the supervisor", e))?;
    drop(write);
    let mut read = std::fs::File::from(read);
    let mut answer = String::new();
    let got = read_with_timeout(&mut read, &mut answer, HANDSHAKE_TIMEOUT);
    drop(child);
    let answer = answer.trim();
    if let Some(pid) = answer.strip_prefix("ok ") {
        println!("Supervisor started (pid {pid})");
        return Ok(0);
    }
    if let Some(err) = answer.strip_prefix("error ") {
        return Err(Error::msg(err.to_string()));
    }
    if !got {
        return Err(Error::msg(
            "the supervisor did not report back in time; see supervisor.log",
        ));
    }
    Err(Error::msg(
        "the supervisor exited during startup; see supervisor.log",
    ))
}

fn read_with_timeout(f: &mut std::fs::File, out: &mut String, limit: Duration) -> bool {
    let fd = std::os::fd::AsRawFd::as_raw_fd(f);
    let deadline = std::time::Instant::now() + limit;
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            *out = String::from_utf8_lossy(&buf).into_owned();
            return false;
        }
        let mut fds = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        if crate::sys::poll(&mut fds, left.as_millis().min(i32::MAX as u128) as i32).is_err() {
            break;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match f.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    *out = String::from_utf8_lossy(&buf).into_owned();
    true
}

fn level_arg(level: Level) -> &'static str {
    match level {
        Level::Off => "off",
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// The detached supervisor (`sysg __supervise`), started by `spawn_daemon`.
pub fn supervise(config_path: PathBuf) -> Result<i32> {
    let ready = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .and_then(crate::sys::take_inherited_fd);
    let paths = paths()?;
    let config = match crate::config::load_regular(&config_path) {
        Ok(c) => c,
        Err(e) => {
            if let Some(mut r) = ready {
                use std::io::Write;
                let _ = writeln!(r, "error {e}");
            }
            return Err(e);
        }
    };
    supervisor::run(
        paths,
        config,
        Options {
            foreground: false,
            ready,
        },
    )
}
