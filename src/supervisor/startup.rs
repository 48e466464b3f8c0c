//! Becoming the supervisor: take the sysg.pid lock, clear what a crashed predecessor left
//! (stale files, and its service processes: never two copies of a service), then set up
//! the signal pipe, subreaping and the control socket.

use super::{Signals, Unit, MARKER_SERVICE, MARKER_STATE_DIR};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::logger::{info, warning};
use crate::paths::Paths;
use crate::state::{PidFile, StateFile};
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long recovery waits for a dead supervisor's services to go after SIGTERM.
const RECOVERY_GRACE: Duration = Duration::from_secs(5);

/// What becoming the supervisor yields: the loop is built from these.
pub(super) struct Started {
    /// The flock on sysg.pid, held for the supervisor's lifetime.
    pub pid_lock: File,
    pub signals: Signals,
    pub listener: UnixListener,
    /// The configured services, cron history taken over from state.json.
    pub units: Vec<Unit>,
    pub subreaper: bool,
    pub cgroups: Option<crate::cgroup::Tree>,
    pub containment: String,
}

pub(super) fn start(paths: &Paths, config: &Config, foreground: bool) -> Result<Started> {
    crate::state::ensure_dir(paths)?;
    if foreground {
        crate::terminal::start();
    }
    crate::logger::open(paths.supervisor_log(), foreground)
        .map_err(|e| Error::io_path("cannot open", &paths.supervisor_log(), e))?;
    let pid_lock = take_pid_file(paths)?;
    info!("systemg supervisor starting (pid {})", sys::getpid());
    info!("loading configuration from {}", config.path.display());
    if paths.socket().exists() {
        let _ = std::fs::remove_file(paths.socket());
        info!("Removed stale control.sock");
    }
    let names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
    stop_leftovers(paths, &names, None);
    let (cgroups, containment) = super::contain::open_tree(&paths.dir);
    if let Some(tree) = &cgroups {
        super::contain::clear_tree(tree);
    }

    let subreaper = match sys::set_child_subreaper() {
        Ok(()) => true,
        Err(e) => {
            warning!("cannot become child subreaper ({e}); escaped processes will not be adopted");
            false
        }
    };
    let signals = install_signals()?;
    let listener = bind_socket(paths)?;
    crate::state::write_config_hint(paths, &config.path)
        .map_err(|e| Error::io_path("cannot write", &paths.config_hint(), e))?;
    info!(
        "systemg supervisor listening on {}",
        paths.socket().display()
    );

    // Cron history survives supervisor restarts through state.json.
    let previous = StateFile::read(paths).unwrap_or_default();
    let units: Vec<Unit> = config
        .services
        .iter()
        .map(|svc| {
            let history = previous
                .services
                .get(&svc.name)
                .and_then(|r| r.cron.as_ref())
                .map(|c| c.history.clone())
                .unwrap_or_default();
            let mut unit = Unit::new(svc.clone(), history);
            unit.held = previous
                .services
                .get(&svc.name)
                .is_some_and(|r| r.stopped_by_request);
            unit
        })
        .collect();
    Ok(Started {
        pid_lock,
        signals,
        listener,
        units,
        subreaper,
        cgroups,
        containment,
    })
}

/// Opens sysg.pid and holds an exclusive flock on it for the supervisor's lifetime. A
/// file whose lock nobody holds is stale: its owner died without cleaning up.
fn take_pid_file(paths: &Paths) -> Result<File> {
    let path = paths.pid_file();
    // A supervisor that is just exiting removes sysg.pid after we opened it: the lock we
    // then win is on an unlinked file. Retry until the locked file is the one at `path`.
    for _ in 0..10 {
        let file = lock_pid_file(&path)?;
        let same = |f: &File| {
            use std::os::unix::fs::MetadataExt;
            match (f.metadata(), crate::state_dir::entry(&path)) {
                (Ok(a), Ok(Some(b))) => a.dev() == b.dev && a.ino() == b.ino,
                _ => false,
            }
        };
        if same(&file) {
            return Ok(file);
        }
    }
    Err(Error::msg(format!(
        "{} keeps changing under us; is another supervisor starting?",
        path.display()
    )))
}

fn lock_pid_file(path: &std::path::Path) -> Result<File> {
    // Never through a symlink or a planted hard link (see state_dir::open_rw).
    let mut file =
        crate::state_dir::open_rw(path).map_err(|e| Error::io_path("cannot open", path, e))?;
    let mut old = String::new();
    let _ = file.read_to_string(&mut old);
    if !sys::try_lock_exclusive(&file).map_err(|e| Error::io_path("cannot lock", path, e))? {
        let pid = old.trim();
        return Err(Error::msg(format!(
            "Supervisor already running (pid {}); use 'sysg stop' first or 'sysg restart'",
            if pid.is_empty() { "unknown" } else { pid }
        )));
    }
    if let Ok(pid) = old.trim().parse::<i32>() {
        info!("Removed stale sysg.pid (pid {pid} is not a running supervisor)");
    }
    file.set_len(0)
        .and_then(|_| file.rewind())
        .map_err(|e| Error::io_path("cannot write", path, e))?;
    writeln!(file, "{}", sys::getpid()).map_err(|e| Error::io_path("cannot write", path, e))?;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    Ok(file)
}

/// Service processes a crashed supervisor left running, as (service, pid), sorted: a
/// recorded pid only when its kernel start time still matches the record (a reused pid
/// is never taken for ours), the members of its recorded group, and whatever carries
/// the markers of a service named in pid.json, state.json or `also`. `sysg stop` and
/// `sysg status` find them the same way when no supervisor runs.
pub fn find_leftovers(paths: &Paths, also: &[String]) -> Vec<(String, i32)> {
    let pids = PidFile::read(paths);
    let state = StateFile::read(paths).unwrap_or_default();
    let dir = paths.dir.to_string_lossy().into_owned();
    let mut names: Vec<String> = pids.services.keys().cloned().collect();
    names.extend(state.services.keys().cloned());
    names.extend(also.iter().cloned());
    names.sort();
    names.dedup();

    // One pass over /proc for the groups and one for the markers, whatever the number
    // of services.
    let mut groups: HashMap<i32, String> = HashMap::new();
    let mut targets: Vec<(String, i32)> = Vec::new();
    for name in &names {
        if let (Some(&pid), Some(rec)) = (pids.services.get(name), state.services.get(name)) {
            let same = rec.start_ticks.is_some()
                && crate::procfs::start_time_ticks(pid) == rec.start_ticks;
            let alive = crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z');
            if same && alive {
                targets.push((name.clone(), pid));
            }
            // A leader that died a zombie may still have left its group running.
            if let Some(pgid) = rec.pgid.filter(|_| same) {
                groups.insert(pgid, name.clone());
            }
        }
    }
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let me = sys::getpid();
    for st in crate::procfs::all_stats() {
        if st.pid == me || st.state == 'Z' {
            continue;
        }
        if let Some(name) = groups.get(&st.pgid) {
            targets.push((name.clone(), st.pid));
        } else if let Some(name) =
            crate::procfs::marked_value(st.pid, (MARKER_STATE_DIR, &dir), MARKER_SERVICE, &[])
                .filter(|n| wanted.contains(n.as_str()))
        {
            targets.push((name, st.pid));
        }
    }
    targets.sort();
    targets.dedup();
    targets
}

/// Stops service processes that a crashed supervisor left running. A recorded pid is
/// only signalled when its kernel start time still matches the record, so a reused pid
/// is never hit; escaped descendants are found by their markers.
pub fn stop_leftovers(paths: &Paths, also: &[String], only: Option<&str>) {
    let mut targets = find_leftovers(paths, also);
    if let Some(name) = only {
        targets.retain(|(n, _)| n == name);
    }
    if targets.is_empty() {
        return;
    }
    let msg = format!(
        "stopping {} leftover process(es) of a previous supervisor: {}",
        targets.len(),
        targets
            .iter()
            .map(|(n, p)| format!("{n}[{p}]"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    warning!("{msg}");
    for (_, pid) in &targets {
        let _ = sys::kill(*pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + RECOVERY_GRACE;
    let alive = |pid: i32| crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z');
    while Instant::now() < deadline && targets.iter().any(|(_, p)| alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (name, pid) in &targets {
        if alive(*pid) {
            warning!("{name}: leftover pid {pid} ignored SIGTERM; sending SIGKILL");
            let _ = sys::kill(*pid, libc::SIGKILL);
        }
    }
}

pub(super) fn install_signals() -> Result<Signals> {
    let (read, write) = sys::pipe().map_err(|e| Error::io("cannot create signal pipe", e))?;
    let read = File::from(read);
    let write = File::from(write);
    sys::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&read))
        .map_err(|e| Error::io("signal pipe", e))?;
    sys::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&write))
        .map_err(|e| Error::io("signal pipe", e))?;
    let term = Arc::new(AtomicBool::new(false));
    let int = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let reg = |sig: i32, flag: Option<&Arc<AtomicBool>>| -> Result<()> {
        if let Some(flag) = flag {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .map_err(|e| Error::io("cannot install signal handler", e))?;
        }
        let w = write.try_clone().map_err(|e| Error::io("signal pipe", e))?;
        signal_hook::low_level::pipe::register(sig, w)
            .map_err(|e| Error::io("cannot install signal handler", e))?;
        Ok(())
    };
    reg(libc::SIGCHLD, None)?;
    reg(libc::SIGTERM, Some(&term))?;
    reg(libc::SIGINT, Some(&int))?;
    reg(libc::SIGHUP, Some(&hup))?;
    // A stray `kill -USR1` (or a real-time signal, a SIGPIPE, a SIGXFSZ) must not kill
    // the supervisor and orphan its services. Services get default dispositions back
    // (`sys::configure_child`).
    for sig in sys::stray_signals() {
        sys::ignore_signal(sig).map_err(|e| Error::io("cannot ignore a stray signal", e))?;
    }
    Ok(Signals {
        pipe: read,
        pipe_writer: write,
        term,
        int,
        hup,
    })
}

fn bind_socket(paths: &Paths) -> Result<UnixListener> {
    let path = paths.socket();
    // Bound in the held state dir under umask 0177: never a looser mode, not even for an
    // instant, and never through a symlink.
    let listener = crate::state_dir::bind_socket(&path)
        .map_err(|e| Error::io_path("cannot bind", &path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io_path("cannot configure", &path, e))?;
    Ok(listener)
}
