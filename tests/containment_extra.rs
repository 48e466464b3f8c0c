//! Hardening of SPEC §3 Stopping: "after a stop no process of the service survives",
//! under harder conditions than tests/containment.rs: a service that keeps forking while
//! it is being stopped, daemons that leave both the group and the session, and a leader
//! that exits on its own and leaves a grandchild behind in its group.

mod common;
use common::*;
use std::time::Duration;

fn sleeps(n: u32) -> Vec<i32> {
    processes_exactly(&format!("sleep {n}"))
}

/// Writes `proj/<name>` (dedented shell script).
fn script(w: &Sysg, name: &str, body: &str) {
    std::fs::write(w.proj_file(name), dedent(body)).unwrap();
}

#[test]
fn service_forking_in_a_loop_while_stopped_leaves_nothing() {
    let w = Sysg::new();
    let n = unique_number();
    // The parent ignores TERM (and so do its children, which inherit the disposition)
    // and keeps spawning long sleeps while the stop is under way.
    script(
        &w,
        "forker.sh",
        &format!(
            r#"
            trap '' TERM
            while :; do sleep {n} & sleep 0.01; done
            "#
        ),
    );
    w.start_with(
        r#"
        services:
          forker:
            command: "sh ./forker.sh"
            stop_timeout: "1s"
        "#,
    );
    let started = wait_until(DEADLINE, || sleeps(n).len() >= 10);
    assert!(
        started,
        "forker did not fork: {:?}\n{}",
        sleeps(n),
        w.diagnostics()
    );
    w.run_ok(&["stop"]);
    let gone = wait_until(DEADLINE, || sleeps(n).is_empty());
    assert!(
        gone,
        "{} `sleep {n}` processes survived sysg stop",
        sleeps(n).len()
    );
    assert!(
        holds_for(Duration::from_millis(300), || sleeps(n).is_empty()),
        "new `sleep {n}` processes appeared after the stop"
    );
    assert!(w.processes().is_empty(), "left: {:?}", w.processes());
}

#[test]
fn setsid_double_fork_and_term_ignoring_child_are_gone_after_stop_one() {
    let w = Sysg::new();
    let n = unique_number();
    let (a, b, c) = (n, n + 1, n + 2);
    // a: double-forked into a new session and group (its parent exits at once).
    // b: the same, ignoring TERM.  c: stays in the group, ignoring TERM.
    script(
        &w,
        "daemon.sh",
        &format!(
            r#"
            setsid sh -c 'sleep {a} &' &
            setsid sh -c 'trap "" TERM; sleep {b} &' &
            (trap '' TERM; exec sleep {c}) &
            wait
            while :; do sleep 1; done
            "#
        ),
    );
    w.start_with(
        r#"
        services:
          daemon:
            command: "sh ./daemon.sh"
            stop_timeout: "1s"
          other:
            command: "sleep 100000"
        "#,
    );
    let all = || {
        [a, b, c]
            .iter()
            .flat_map(|&k| sleeps(k))
            .collect::<Vec<_>>()
    };
    let started = wait_until(DEADLINE, || all().len() == 3);
    assert!(
        started,
        "not all three sleeps started: {:?}\n{}",
        all(),
        w.diagnostics()
    );
    // The escapees really did leave the service's group and session.
    let leader = w.wait_running_pid("daemon", None);
    let escaped = sleeps(a)[0];
    assert_ne!(
        pgid_of(escaped),
        pgid_of(leader),
        "sleep {a} did not leave the group"
    );

    w.run_ok(&["stop", "-s", "daemon"]);
    w.wait_status("daemon", "stopped");
    let gone = wait_until(DEADLINE, || all().is_empty());
    assert!(gone, "survived stop -s: {:?}\n{}", all(), w.diagnostics());
    assert!(
        w.service_processes("daemon").is_empty(),
        "left: {:?}",
        w.service_processes("daemon")
    );
    assert_eq!(
        w.service_status("other").as_deref(),
        Some("running"),
        "the other service was touched"
    );
}

/// `(trap '' TERM; exec sleep N) &` then the leader exits 1 after `delay`.
fn leaving_grandchild(w: &Sysg, n: u32, delay: &str) {
    script(
        w,
        "leaver.sh",
        &format!(
            r#"
            (trap '' TERM; exec sleep {n}) &
            sleep {delay}
            exit 1
            "#
        ),
    );
}

#[test]
fn grandchild_left_by_an_exited_leader_is_cleaned_up() {
    let w = Sysg::new();
    let n = unique_number();
    leaving_grandchild(&w, n, "1");
    w.start_with(
        r#"
        services:
          leaver:
            command: "sh ./leaver.sh"
            restart_policy: "never"
            stop_timeout: "1s"
        "#,
    );
    let seen = wait_until(DEADLINE, || !sleeps(n).is_empty());
    assert!(seen, "grandchild never started\n{}", w.diagnostics());
    let st = w.wait_status("leaver", "exited");
    assert_eq!(st["exit_code"], 1, "{st:#}");
    let gone = wait_until(DEADLINE, || sleeps(n).is_empty());
    assert!(
        gone,
        "the grandchild survived its leader's exit: {:?}\n{}",
        sleeps(n),
        w.diagnostics()
    );
    assert!(w.service_processes("leaver").is_empty());
}

#[test]
fn restart_never_runs_beside_the_remains_of_the_previous_instance() {
    let w = Sysg::new();
    let n = unique_number();
    leaving_grandchild(&w, n, "0.3");
    w.start_with(
        r#"
        services:
          leaver:
            command: "sh ./leaver.sh"
            restart_policy: "on-failure"
            backoff: "10ms"
            stop_timeout: "1s"
        "#,
    );
    let seen = wait_until(DEADLINE, || !sleeps(n).is_empty());
    assert!(seen, "grandchild never started\n{}", w.diagnostics());
    let mut most = 0;
    let mut distinct: Vec<i32> = Vec::new();
    let single = holds_for(Duration::from_secs(4), || {
        let now = sleeps(n);
        most = most.max(now.len());
        for p in &now {
            if !distinct.contains(p) {
                distinct.push(*p);
            }
        }
        now.len() <= 1
    });
    assert!(
        single,
        "two instances' grandchildren at once: {:?}\n{}",
        sleeps(n),
        w.diagnostics()
    );
    assert_eq!(
        most,
        1,
        "no grandchild seen during the window: nothing was checked\n{}",
        w.diagnostics()
    );
    assert!(
        distinct.len() >= 2,
        "the window saw no restart's grandchild, only {distinct:?}\n{}",
        w.diagnostics()
    );
    let restarts = w.service("leaver").unwrap()["restart_count"]
        .as_u64()
        .unwrap();
    assert!(restarts >= 1, "never restarted\n{}", w.diagnostics());

    w.run_ok(&["stop", "-s", "leaver"]);
    w.wait_status("leaver", "stopped");
    let gone = wait_until(DEADLINE, || sleeps(n).is_empty());
    assert!(gone, "survived stop -s: {:?}", sleeps(n));
    assert!(w.service_processes("leaver").is_empty());
}

#[test]
fn stop_while_an_exited_leaders_grandchild_is_being_cleaned() {
    let w = Sysg::new();
    let n = unique_number();
    leaving_grandchild(&w, n, "0.5");
    // A long grace: the stop request arrives while the grandchild is still in it.
    w.start_with(
        r#"
        services:
          leaver:
            command: "sh ./leaver.sh"
            restart_policy: "on-failure"
            backoff: "10ms"
            stop_timeout: "4s"
        "#,
    );
    let leader = w.wait_running_pid("leaver", None);
    let orphaned = wait_until(DEADLINE, || !alive(leader) && !sleeps(n).is_empty());
    assert!(
        orphaned,
        "leader did not exit leaving its grandchild\n{}",
        w.diagnostics()
    );
    w.run_ok(&["stop", "-s", "leaver"]);
    w.wait_status("leaver", "stopped");
    let gone = wait_until(DEADLINE, || sleeps(n).is_empty());
    assert!(
        gone,
        "survived stop -s: {:?}\n{}",
        sleeps(n),
        w.diagnostics()
    );
    assert!(
        holds_for(Duration::from_millis(500), || sleeps(n).is_empty()
            && w.service_processes("leaver").is_empty()),
        "the service came back after stop -s\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_status("leaver").as_deref(), Some("stopped"));
}
