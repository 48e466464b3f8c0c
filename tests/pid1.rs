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

/// Children of `parent` that are zombies (`live_pids` leaves these out).
fn zombie_children(parent: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| ppid_of(p) == Some(parent) && proc_state(p) == Some('Z'))
        .collect()
}

#[test]
fn as_pid_1_orphans_are_reaped_and_sigterm_stops_everything_with_exit_0() {
    if !unshare_works() {
        skip::root_only("unshare --pid --fork --mount-proc is not available here");
        return;
    }
    let w = Sysg::new();
    let (n, m) = (unique_number(), unique_number());
    // The inner shell exits at once, orphaning two sleeps: init inherits them.
    let yaml = format!(
        "services:\n  a:\n    command: \"sh -c 'sleep {m} & sleep {m} & exit 0'; sleep {n}\"\n"
    );
    let (mut child, init) = start_as_init(&w, &yaml);
    let orphan = format!("sleep {m}");
    let mut orphans = Vec::new();
    let adopted = wait_until(DEADLINE, || {
        orphans = processes_exactly(&orphan);
        orphans.len() == 2 && orphans.iter().all(|&p| ppid_of(p) == Some(init))
    });
    assert!(
        adopted,
        "init ({init}) did not inherit two orphans: {:?}\n{}",
        orphans.iter().map(|&p| (p, ppid_of(p))).collect::<Vec<_>>(),
        w.diagnostics()
    );
    // The orphans die; init has to reap each one, or it stays a zombie in /proc.
    for &p in &orphans {
        assert!(kill(p, libc::SIGKILL), "cannot kill orphan {p}");
    }
    let reaped = wait_until(DEADLINE, || {
        orphans
            .iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert!(
        reaped,
        "orphans not reaped: {:?}\n{}",
        orphans
            .iter()
            .map(|&p| (p, proc_state(p)))
            .collect::<Vec<_>>(),
        w.diagnostics()
    );
    assert!(
        wait_until(DEADLINE, || zombie_children(init).is_empty()),
        "zombies left under init: {:?}",
        zombie_children(init)
    );
    let sleeper = format!("sleep {n}");
    assert!(!processes_exactly(&sleeper).is_empty(), "the service died");
    kill(init, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(0), "{}", w.diagnostics());
    assert!(processes_matching(&sleeper).is_empty(), "service survived");
}

#[test]
fn as_pid_1_sigint_stops_every_service_with_exit_0() {
    if !unshare_works() {
        eprintln!("skipped: unshare --pid --fork --mount-proc is not available here");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    // `a` says when it got its stop signal: proof it was stopped, not just torn down
    // with the namespace.
    let yaml = format!(
        "services:\n  a:\n    command: \"trap 'echo a > a.stopped; exit 0' TERM; sleep {n} & wait\"\n  b:\n    command: \"exec sleep {n}\"\n"
    );
    let (mut child, init) = start_as_init(&w, &yaml);
    let sleeper = format!("sleep {n}");
    assert!(
        wait_until(DEADLINE, || processes_exactly(&sleeper).len() == 2),
        "both services never ran\n{}",
        w.diagnostics()
    );
    kill(init, libc::SIGINT);
    assert_eq!(wait_exit(&mut child), Some(0), "{}", w.diagnostics());
    assert_eq!(
        w.read_proj("a.stopped").as_deref(),
        Some("a\n"),
        "a was not sent its stop signal\n{}",
        w.supervisor_log()
    );
    assert!(processes_exactly(&sleeper).is_empty(), "a service survived");
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

#[test]
fn as_pid_1_an_upgrade_keeps_the_pid_and_the_services() {
    if !unshare_works() {
        skip::root_only("unshare --pid --fork --mount-proc is not available here");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    let yaml = format!("services:\n  a:\n    command: \"exec sleep {n}\"\n");
    let (mut child, init) = start_as_init(&w, &yaml);
    let up = wait_until(DEADLINE, || w.service("a").is_some_and(|s| s["up"] == true));
    assert!(up, "{}", w.diagnostics());
    let before = w.service_pid("a");
    let sleeper = format!("sleep {n}");
    let outside = processes_exactly(&sleeper);
    let out = w.run_ok(&["upgrade"]);
    // Inside its namespace the supervisor is pid 1.
    assert!(
        out.stdout.contains("Upgraded: supervisor pid 1 now runs"),
        "{out}"
    );
    assert!(alive(init), "init is gone");
    assert_eq!(w.service_pid("a"), before, "the service has another pid");
    assert_eq!(processes_exactly(&sleeper), outside);
    assert_eq!(ppid_of(outside[0]), Some(init), "no longer init's child");
    kill(init, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child), Some(0), "{}", w.diagnostics());
    assert!(processes_matching(&sleeper).is_empty(), "service survived");
}
