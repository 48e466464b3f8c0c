//! Starting a service process: `sh -c <command>` in its own process group, stdin from
//! /dev/null, stdout/stderr to pipes the loop reads, the layered environment, and the
//! markers that let us find every descendant later.

use crate::config::Service;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

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
    spawn_with_env(svc, &env, command, extra, state_dir)
}

/// `spawn` with the service's environment already read (env files can be slow).
pub fn spawn_with_env(
    svc: &Service,
    env: &[(String, String)],
    command: &str,
    extra: &[(String, String)],
    state_dir: &Path,
) -> io::Result<Spawned> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&svc.working_dir)
        .env_remove(super::READY_FD_ENV)
        // Only hooks and probes carry this (through `extra`); a supervisor started from
        // a hook must not pass it on, or its services would look like hooks.
        .env_remove(super::workers::MARKER_AUX)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .env(MARKER_SERVICE, &svc.name)
        .env(MARKER_STATE_DIR, state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    crate::sys::configure_child(&mut cmd, Some(libc::SIGTERM), false);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound && !svc.working_dir.is_dir() {
            io::Error::new(
                e.kind(),
                format!("working_dir {} does not exist", svc.working_dir.display()),
            )
        } else {
            e
        }
    })?;
    let pid = child.id() as i32;
    // The Child handle is dropped without wait(): the loop is the only reaper.
    let stdout = child
        .stdout
        .take()
        .map(|p| File::from(std::os::fd::OwnedFd::from(p)));
    let stderr = child
        .stderr
        .take()
        .map(|p| File::from(std::os::fd::OwnedFd::from(p)));
    match (stdout, stderr) {
        (Some(stdout), Some(stderr)) => Ok(Spawned {
            pid,
            stdout,
            stderr,
        }),
        _ => Err(io::Error::other("child pipes missing")),
    }
}
