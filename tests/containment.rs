//! After a stop no process of the service survives (SPEC §3): double forks, `setsid`
//! escapes and children that ignore the stop signal are all gone.

mod common;
use common::*;

fn survivors(n: u32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for k in 0..3 {
        let want = format!("sleep {}", n + k);
        found.extend(
            live_pids()
                .into_iter()
                .map(|p| (p, cmdline(p)))
                .filter(|(_, c)| *c == want),
        );
    }
    found
}

fn escaping_service(n: u32) -> String {
    let (a, b, c) = (n, n + 1, n + 2);
    format!(
        r#"
        services:
          escaper:
            command: "sleep {a} & setsid sh -c 'sleep {b} & sleep {c}' & wait"
            stop_timeout: "1s"
        "#
    )
}

fn wait_all_started(w: &Sysg, n: u32) {
    let ok = wait_until(DEADLINE, || survivors(n).len() == 3);
    assert!(
        ok,
        "not all three sleeps started: {:?}\n{}",
        survivors(n),
        w.diagnostics()
    );
}

#[test]
fn supervisor_stop_kills_escaped_descendants() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&escaping_service(n));
    wait_all_started(&w, n);
    w.run_ok(&["stop"]);
    let left = survivors(n);
    assert!(left.is_empty(), "processes survived sysg stop: {left:?}");
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
}

#[test]
fn stopping_one_service_kills_its_escaped_descendants() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&escaping_service(n));
    wait_all_started(&w, n);
    w.run_ok(&["stop", "-s", "escaper"]);
    w.wait_status("escaper", "stopped");
    let ok = wait_until(DEADLINE, || survivors(n).is_empty());
    assert!(ok, "processes survived stop -s: {:?}", survivors(n));
    assert!(w.service_processes("escaper").is_empty());
}

#[test]
fn restart_leaves_a_single_copy_of_an_escaping_service() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&escaping_service(n));
    wait_all_started(&w, n);
    let old = w.wait_running_pid("escaper", None);
    w.run_ok(&["restart", "-s", "escaper"]);
    w.wait_running_pid("escaper", Some(old));
    let ok = wait_until(DEADLINE, || survivors(n).len() == 3);
    assert!(
        ok,
        "expected exactly one set of three sleeps: {:?}",
        survivors(n)
    );
    assert!(
        holds_for(std::time::Duration::from_millis(300), || survivors(n).len()
            == 3),
        "extra copies: {:?}",
        survivors(n)
    );
}

#[test]
fn child_ignoring_sigterm_is_killed_after_stop_timeout() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          stubborn:
            command: "trap '' TERM; sleep {n} & sleep {m} & wait; wait; wait"
            stop_timeout: "1s"
        "#,
        m = n + 1
    ));
    let ok = wait_until(DEADLINE, || survivors(n).len() == 2);
    assert!(
        ok,
        "sleeps not started: {:?}\n{}",
        survivors(n),
        w.diagnostics()
    );
    w.run_ok(&["stop"]);
    assert!(
        survivors(n).is_empty(),
        "processes survived: {:?}",
        survivors(n)
    );
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
}

#[test]
fn main_process_ignoring_sigterm_is_killed_on_stop_one() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          stubborn:
            command: "trap '' TERM; while :; do sleep 0.1; done; echo {n}"
            stop_timeout: "1s"
        "#
    ));
    let pid = w.wait_running_pid("stubborn", None);
    w.run_ok(&["stop", "-s", "stubborn"]);
    w.wait_status("stubborn", "stopped");
    let ok = wait_until(DEADLINE, || {
        !alive(pid) && w.service_processes("stubborn").is_empty()
    });
    assert!(
        ok,
        "stubborn survived: {:?}",
        w.service_processes("stubborn")
    );
}
