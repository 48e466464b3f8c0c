//! `sysg stop -s x` is an intent: x stays stopped across reloads and supervisor restarts
//! (state.json keeps it) until `sysg start -s x`, and status says so.

mod common;
use common::*;

fn config(n: u32, x_cmd: &str) -> String {
    format!(
        r#"
        services:
          x:
            command: "{x_cmd}"
          y:
            command: "sleep {n}2"
        "#
    )
}

/// api depends on cache, which depends on db; `extra` adds services.
fn chain(n: u32, extra: &str) -> String {
    format!(
        r#"
        services:
          db:
            command: "sleep {n}1"
          cache:
            command: "sleep {n}2"
            depends_on: [db]
          api:
            command: "sleep {n}3"
            depends_on: [cache]
{extra}
        "#
    )
}

fn says_stopped_by_request(w: &Sysg) -> bool {
    let out = w.run(&["status", "-s", "x"]);
    out.stdout.contains("● x Stopped (by request)")
}

#[test]
fn a_service_stopped_by_request_stays_stopped_until_started() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.start_with(&config(n, &format!("sleep {n}1")));
    let x = w.wait_running_pid("x", None);
    w.wait_running_pid("y", None);
    w.run_ok(&["stop", "-s", "x"]);
    assert!(wait_until(DEADLINE, || exited(x)));
    assert!(says_stopped_by_request(&w), "{}", w.diagnostics());
    let c = cfg.to_str().unwrap();

    // Reloads: unchanged, changed, and --all.
    w.run_ok(&["restart", "-c", c]);
    assert_eq!(w.service_status("x").as_deref(), Some("stopped"));
    std::fs::write(&cfg, dedent(&config(n, &format!("sleep {n}3")))).unwrap();
    let out = w.run_ok(&["restart", "-c", c]);
    assert!(
        out.stdout
            .contains("x: changed (command) -> updated, stays stopped"),
        "{out}"
    );
    assert_eq!(w.service_status("x").as_deref(), Some("stopped"));
    w.run_ok(&["restart", "--all", "-c", c]);
    w.wait_running_pid("y", None);
    assert_eq!(w.service_status("x").as_deref(), Some("stopped"));
    assert!(says_stopped_by_request(&w));

    // A new supervisor keeps it stopped too.
    w.run_ok(&["stop"]);
    let out = w.run(&["status"]);
    assert!(out.stdout.contains("● x Stopped (by request)"), "{out}");
    w.start_daemon(&cfg);
    w.wait_running_pid("y", None);
    assert_eq!(w.service_status("x").as_deref(), Some("stopped"));
    assert!(says_stopped_by_request(&w), "{}", w.diagnostics());
    assert!(processes_exactly(&format!("sleep {n}3")).is_empty());

    // Until it is started by hand: then it runs, and runs after a restart of sysg too.
    w.run_ok(&["start", "-s", "x"]);
    w.wait_running_pid("x", None);
    w.run_ok(&["stop"]);
    w.start_daemon(&cfg);
    w.wait_running_pid("x", None);
    w.run_ok(&["stop"]);
}

#[test]
fn start_of_a_service_starts_its_stopped_dependencies_first_and_stop_names_dependents() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&chain(n, ""));
    let db = w.wait_running_pid("db", None);
    w.wait_running_pid("cache", None);
    w.wait_running_pid("api", None);
    let out = w.run_ok(&["stop", "-s", "db"]);
    assert_eq!(
        out.stdout.trim(),
        "Stopped db; still running without it: cache",
        "{out}"
    );
    assert!(wait_until(DEADLINE, || exited(db)));
    w.run_ok(&["stop", "-s", "cache"]);
    w.run_ok(&["stop", "-s", "api"]);
    let out = w.run_ok(&["start", "-s", "api"]);
    assert_eq!(
        out.stdout.trim(),
        "Started api (after starting db, cache)",
        "{out}"
    );
    w.wait_running_pid("db", Some(db));
    w.wait_running_pid("cache", None);
    w.wait_running_pid("api", None);
    w.run_ok(&["stop"]);
}

#[test]
fn stop_with_dependents_stops_what_depends_on_it_and_keeps_it_stopped() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&chain(
        n,
        &format!("          other:\n            command: \"sleep {n}4\"\n"),
    ));
    let pids: Vec<i32> = ["db", "cache", "api"]
        .iter()
        .map(|s| w.wait_running_pid(s, None))
        .collect();
    let other = w.wait_running_pid("other", None);
    let out = w.run_ok(&["stop", "-s", "db", "--with-dependents"]);
    assert_eq!(out.stdout.trim(), "Stopped db", "{out}");
    for pid in pids {
        assert!(wait_until(DEADLINE, || exited(pid)), "{}", w.diagnostics());
    }
    for name in ["db", "cache", "api"] {
        w.wait_status(name, "stopped");
    }
    assert_eq!(w.service_pid("other"), Some(other));
    let bad = w.run(&["stop", "--with-dependents"]);
    assert_eq!(bad.code, 2, "{bad}");
    w.run_ok(&["stop"]);
}
