//! sysg as a container's init: `unshare --pid --fork --mount-proc sysg start -c F`.
//! Needs root (or user namespaces) and util-linux's unshare; skipped visibly otherwise.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the supervisor as pid 1 of a new pid namespace; returns the `unshare` child
/// and the supervisor's pid as seen from here.
fn start_as_init(w: &Sysg, yaml: &str) -> (Child, i32) {
    let cfg = w.write_config(yaml);
    let exe = sysg_bin();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", exe, "start", "-c"])
        .arg(&cfg)
        .current_dir(w.root())
        .env("HOME", &w.home)
        .env("SYSG_STATE_DIR", &w.state)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("spawn unshare");
    let outer = child.id() as i32;
    let mut init = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            init = live_pids().into_iter().find(|&p| ppid_of(p) == Some(outer));
            init.is_some() && w.state.join("control.sock").exists()
        }),
        "the supervisor did not come up as init"
    );
    (child, init.unwrap_or_default())
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let mut code = None;
    wait_until(Duration::from_secs(20), || match child.try_wait() {
        Ok(Some(st)) => {
            code = st.code();
            true
        }
        _ => false,
    });
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    code
}

#[test]
fn as_pid_1_orphans_are_reaped_and_sigterm_stops_everything_with_exit_0() {
    if !unshare_works() {
        skip::root_only("unshare --pid --fork --mount-proc is not available here");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    // The inner shell exits at once, orphaning two sleeps that the init must reap.
    let yaml = format!(
        "services:\n  a:\n    command: \"sh -c 'sleep 0.{n} & sleep 0.{n} & exit 0'; sleep {n}\"\n"
    );
    let (mut child, init) = start_as_init(&w, &yaml);
    let sleeper = format!("sleep {n}");
    assert!(wait_until(Duration::from_secs(20), || !processes_matching(
        &sleeper
    )
    .is_empty()));
    let orphan = format!("sleep 0.{n}");
    assert!(
        wait_until(Duration::from_secs(20), || !live_pids()
            .into_iter()
            .any(|p| cmdline(p).trim() == orphan)),
        "orphans did not finish"
    );
    let zombies = || {
        live_pids()
            .into_iter()
            .filter(|&p| ppid_of(p) == Some(init) && proc_state(p) == Some('Z'))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || zombies() == 0),
        "zombies left under init"
    );
    kill(init, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(0), "{}", w.diagnostics());
    assert!(processes_matching(&sleeper).is_empty(), "service survived");
}

#[test]
fn as_pid_1_exit_code_is_the_first_failure() {
    if !unshare_works() {
        skip::root_only("unshare --pid --fork --mount-proc is not available here");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    let yaml = format!(
        "services:\n  bad:\n    command: \"exit 3\"\n  good:\n    command: \"sleep {n}\"\n"
    );
    let (mut child, init) = start_as_init(&w, &yaml);
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(w.state.join("state.json"))
            .is_ok_and(|s| s.contains("\"exit_code\": 3"))
    }));
    kill(init, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(3), "{}", w.diagnostics());
}
