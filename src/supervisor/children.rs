//! Children of the supervisor. Service processes and skip checks are spawned by the loop
//! thread (`sh -c` in their own process group, stdin from /dev/null, stdout/stderr to
//! pipes the loop reads, the layered environment, and markers that find every descendant
//! later). Hooks and health probes are short-lived children run by worker threads, each
//! bounded by a timeout; a worker registers its child's pid under the registry lock so
//! that the loop, the only reaper, can hand it the exit status, and reports back over a
//! channel, waking the loop with one byte on its self-pipe.

use super::policy::ExitStatus;
use crate::config::Service;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After SIGKILL at a bounded child's timeout, how long its worker still waits for the
/// exit status.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Every process of a service carries `SYSG_SERVICE=<name>` and `SYSG_STATE_DIR=<dir>`;
/// together they identify "ours" even after a `setsid` escape from the group, and the
/// second one makes a `sysg` run inside a service talk to this same supervisor.
pub const MARKER_SERVICE: &str = "SYSG_SERVICE";
pub const MARKER_STATE_DIR: &str = "SYSG_STATE_DIR";

pub struct Spawned {
    pub pid: i32,
    pub stdout: File,
    pub stderr: File,
}

/// Spawns `command` for `svc` with its environment plus `extra`. Only the loop thread
/// may spawn long-lived children: PDEATHSIG is tied to the spawning thread (DESIGN
/// pitfall 1).
pub fn spawn(
    svc: &Service,
    command: &str,
    extra: &[(String, String)],
    state_dir: &Path,
) -> io::Result<Spawned> {
    let env = svc.environment().map_err(io::Error::other)?;
    spawn_with_env(svc, &env, command, extra, state_dir, Spawning::default())
}

/// Spawns the service's own command: the program itself when the command has no shell
/// syntax (and `exec: false` does not ask for the shell), else `sh -c`.
pub fn spawn_service(
    svc: &Service,
    env: &[(String, String)],
    extra: &[(String, String)],
    state_dir: &Path,
    cgroup: Option<&File>,
) -> io::Result<Spawned> {
    let spawn = Spawning {
        plain: svc.exec,
        cgroup: cgroup.map(AsRawFd::as_raw_fd),
    };
    spawn_with_env(svc, env, &svc.command, extra, state_dir, spawn)
}

/// How `spawn_with_env` runs a command: `plain`: the program itself if the command
/// allows; `cgroup`: the `cgroup.procs` the child moves itself into.
#[derive(Default)]
pub struct Spawning {
    pub plain: bool,
    pub cgroup: Option<std::os::fd::RawFd>,
}

/// The uid, gid and supplementary groups (the user's, from the group database, as
/// `initgroups` would set them; only the gid when just `group:` is given).
fn credentials(run: &crate::config::RunAs) -> io::Result<crate::sys::spawn::Creds> {
    let groups = match &run.user {
        Some(account) => crate::sys::users::group_list(&account.name, run.gid)?,
        None => vec![run.gid],
    };
    Ok(crate::sys::spawn::Creds {
        uid: run.uid,
        gid: run.gid,
        groups,
    })
}

/// `spawn` with the service's environment already read (env files can be slow).
pub fn spawn_with_env(
    svc: &Service,
    env: &[(String, String)],
    command: &str,
    extra: &[(String, String)],
    state_dir: &Path,
    how: Spawning,
) -> io::Result<Spawned> {
    use crate::sys::spawn::{self, above_stdio, c_string, env_entry};
    // The supervisor's own environment, less what must not pass on: the daemon
    // handshake, and the hook marker (a supervisor started from a hook must not pass it
    // on, or its services would look like hooks); then the service's, `extra`, markers.
    let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os()
        .filter(|(k, _)| k != super::READY_FD_ENV && k != MARKER_AUX)
        .collect();
    let layered = env
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.as_str(), v.as_str()));
    if let Some(account) = svc.run_as.as_ref().and_then(|r| r.user.as_ref()) {
        // The user's own, as login would set them; the service's env may still say
        // otherwise.
        vars.insert("HOME".into(), account.home.as_str().into());
        vars.insert("USER".into(), account.name.as_str().into());
        vars.insert("LOGNAME".into(), account.name.as_str().into());
        vars.insert("SHELL".into(), account.shell.as_str().into());
    }
    for (k, v) in layered {
        vars.insert(k.into(), v.into());
    }
    vars.insert(MARKER_SERVICE.into(), svc.name.as_str().into());
    vars.insert(MARKER_STATE_DIR.into(), state_dir.as_os_str().to_owned());
    let env = vars
        .iter()
        .map(|(k, v)| env_entry(k, v))
        .collect::<io::Result<Vec<_>>>()?;
    let stdin = above_stdio(File::open("/dev/null")?.into())?;
    let (out_r, out_w) = crate::sys::pipe()?;
    let (err_r, err_w) = crate::sys::pipe()?;
    let (out_w, err_w) = (above_stdio(out_w)?, above_stdio(err_w)?);
    let path = vars.get(OsStr::new("PATH")).and_then(|p| p.to_str());
    let direct = how
        .plain
        .then(|| super::command::plain_words(command))
        .flatten()
        .and_then(|words| {
            let program = super::command::find_program(words[0], path, &svc.working_dir)?;
            Some((program, words))
        });
    let (program, argv) = match direct {
        Some((program, words)) => (
            c_string(program, "the program")?,
            words
                .iter()
                .map(|w| c_string(*w, "the command"))
                .collect::<io::Result<Vec<_>>>()?,
        ),
        None => (
            c_string("/bin/sh", "the shell")?,
            vec![
                c_string("sh", "argv")?,
                c_string("-c", "argv")?,
                c_string(command, "the command")?,
            ],
        ),
    };
    let spec = spawn::Spawn {
        program,
        argv,
        env,
        dir: Some(c_string(svc.working_dir.as_os_str(), "working_dir")?),
        stdin: stdin.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        process_group: true,
        death_signal: Some(libc::SIGTERM),
        creds: svc.run_as.as_ref().map(credentials).transpose()?,
        umask: svc.umask,
        cgroup_procs: how.cgroup,
        limits: svc
            .limits
            .iter()
            .map(|l| (l.resource, l.soft, l.hard))
            .collect(),
    };
    let pid = spawn::spawn(&spec)?;
    Ok(Spawned {
        pid,
        stdout: File::from(out_r),
        stderr: File::from(err_r),
    })
}

/// Set in the environment of hooks and probes: tells their processes apart from the
/// service's own (their value says which: `on_start`, …, or `health_check`).
pub const MARKER_AUX: &str = "SYSG_HOOK";

/// What a worker reports when it is done.
pub enum Done {
    /// A hook ended: how, for `inspect` (None: it could not even be started).
    Hook(Option<(String, crate::ipc::HookRun)>),
    Probe(ProbeResult),
    /// A reload's config, read and validated off the loop thread, for `client`.
    Config {
        client: u64,
        result: Result<crate::config::Config, String>,
        mode: super::reload::Mode,
    },
    /// A `pre_start` run ended.
    PreStart(super::prestart::Outcome),
    /// An upgrade's new binary was asked which handover it reads, and the config read
    /// again: the config, or why the upgrade cannot be.
    UpgradeChecked {
        client: u64,
        binary: PathBuf,
        result: Result<crate::config::Config, String>,
    },
    /// A status report whose /proc figures were gathered off the loop thread.
    /// A status gathered for `client`: the reply still to send, or None when the
    /// worker sent it itself.
    Status {
        client: u64,
        unsent: Option<crate::ipc::Response>,
    },
}

pub struct ProbeResult {
    pub unit: usize,
    pub generation: u64,
    pub healthy: bool,
    pub detail: String,
}

type Registry = Arc<Mutex<HashMap<i32, Sender<ExitStatus>>>>;

/// What a worker thread needs: the registry, its way back, and where state lives.
#[derive(Clone)]
pub struct Link {
    registry: Registry,
    done: Sender<Done>,
    wake: Arc<File>,
    pub state_dir: PathBuf,
}

impl Link {
    /// Spawns `command` for `svc`; the returned receiver gets its exit status.
    pub fn spawn(
        &self,
        svc: &Service,
        command: &str,
        extra: &[(String, String)],
    ) -> io::Result<(Spawned, Receiver<ExitStatus>)> {
        let (tx, rx) = mpsc::channel();
        // Env files are read before taking the lock: the loop waits on it when it reaps.
        let env = svc.environment().map_err(io::Error::other)?;
        let mut reg = self
            .registry
            .lock()
            .map_err(|_| io::Error::other("worker registry poisoned"))?;
        let spawned = spawn_with_env(
            svc,
            &env,
            command,
            extra,
            &self.state_dir,
            Spawning::default(),
        )?;
        reg.insert(spawned.pid, tx);
        Ok((spawned, rx))
    }

    /// Runs `program` with `args` (stdin and stderr /dev/null) and returns what it
    /// printed on stdout and its exit status, or None when it did not end within
    /// `limit` (it is then killed). Registered like a hook, so the loop's reaper hands
    /// its exit here.
    pub fn output_of(
        &self,
        program: &Path,
        args: &[&str],
        limit: std::time::Duration,
    ) -> io::Result<Option<(String, ExitStatus)>> {
        use std::io::Read;
        let (tx, rx) = mpsc::channel();
        let mut child = {
            let mut reg = self
                .registry
                .lock()
                .map_err(|_| io::Error::other("worker registry poisoned"))?;
            let child = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()?;
            reg.insert(child.id() as i32, tx);
            child
        };
        let pid = child.id() as i32;
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            // A short answer: read to its end (the child's exit closes the pipe). One
            // that never ends is bounded by the kill below.
            let reader = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stdout.by_ref().take(4096).read_to_string(&mut text);
                text
            });
            match rx.recv_timeout(limit) {
                Ok(status) => {
                    out = reader.join().unwrap_or_default();
                    return Ok(Some((out, status)));
                }
                Err(_) => {
                    let _ = crate::sys::kill(pid, libc::SIGKILL);
                    let _ = rx.recv_timeout(limit);
                    let _ = reader.join();
                }
            }
        } else if let Ok(status) = rx.recv_timeout(limit) {
            return Ok(Some((out, status)));
        }
        self.forget(pid);
        Ok(None)
    }

    pub fn forget(&self, pid: i32) {
        if let Ok(mut reg) = self.registry.lock() {
            reg.remove(&pid);
        }
    }

    pub fn report(&self, done: Done) {
        let _ = self.done.send(done);
        let _ = (&*self.wake).write(b"w");
    }
}

pub struct Workers {
    link: Link,
    done_rx: Receiver<Done>,
    running: usize,
}

impl Workers {
    pub fn new(wake: File, state_dir: &Path) -> Workers {
        let (done, done_rx) = mpsc::channel();
        let link = Link {
            registry: Arc::default(),
            done,
            wake: Arc::new(wake),
            state_dir: state_dir.to_path_buf(),
        };
        Workers {
            link,
            done_rx,
            running: 0,
        }
    }

    /// Starts `job` on its own thread with a link back to the loop. Hooks are counted
    /// (shutdown waits for them, each bounded by its timeout); probes are not, since a
    /// probe's result means nothing once we are stopping.
    pub fn start(
        &mut self,
        name: String,
        counted: bool,
        job: impl FnOnce(Link) + Send + 'static,
    ) -> io::Result<()> {
        let link = self.link.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || job(link))?;
        if counted {
            self.running += 1;
        }
        Ok(())
    }

    /// Hooks still running (shutdown waits for them; each is bounded by its timeout).
    pub fn running(&self) -> usize {
        self.running
    }

    /// Takes the reports of workers that finished since the last call (hooks are only
    /// counted).
    pub fn collect(&mut self) -> Vec<Done> {
        let mut reports = Vec::new();
        while let Ok(done) = self.done_rx.try_recv() {
            match done {
                Done::Hook(run) => {
                    self.running = self.running.saturating_sub(1);
                    reports.push(Done::Hook(run));
                }
                Done::PreStart(r) => {
                    self.running = self.running.saturating_sub(1);
                    reports.push(Done::PreStart(r));
                }
                other => reports.push(other),
            }
        }
        reports
    }

    /// Whether a worker spawned `pid` (a hook or a probe).
    pub fn owns(&self, pid: i32) -> bool {
        self.link
            .registry
            .lock()
            .is_ok_and(|reg| reg.contains_key(&pid))
    }

    /// Gives a reaped pid to the worker that owns it. False if no worker does.
    pub fn route_exit(&self, pid: i32, status: ExitStatus) -> bool {
        // The spawning worker holds this lock from fork until it has registered the pid,
        // so a process that exits at once is still found here.
        let Ok(reg) = self.link.registry.lock() else {
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
}

/// How a bounded child ended: its status, if the loop handed one over, and whether it
/// was still running at its timeout (then its group was killed).
pub struct Bounded {
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
}

impl Link {
    /// Runs `command` for `svc` until it exits or `timeout` passes: each line of its
    /// output goes to `on_line`, `on_spawn` learns its pid, and its whole process group
    /// is killed when it is done (whatever it left behind goes with it) or timed out.
    pub fn run_bounded(
        &self,
        svc: &Service,
        command: &str,
        extra: &[(String, String)],
        timeout: Duration,
        on_spawn: impl FnOnce(i32),
        on_line: impl FnMut(&str),
    ) -> io::Result<Bounded> {
        let (spawned, rx) = self.spawn(svc, command, extra)?;
        let pid = spawned.pid;
        on_spawn(pid);
        let deadline = Instant::now() + timeout;
        let mut timed_out = !relay_output(spawned.stdout, spawned.stderr, deadline, on_line);
        let mut status = None;
        if !timed_out {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(s) => status = Some(s),
                Err(RecvTimeoutError::Timeout) => timed_out = true,
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
        let _ = crate::sys::killpg(pid, libc::SIGKILL);
        if timed_out {
            status = rx.recv_timeout(KILL_GRACE).ok();
        }
        self.forget(pid);
        Ok(Bounded { status, timed_out })
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
