//! A shutdown stops dependents before what they depend on: each level only once the one
//! before it has exited, and nothing waiting for its turn is restarted meanwhile.

mod common;
use common::*;
use std::time::Duration;

/// A service that notes when it is asked to stop and when it is done, taking `linger`
/// seconds in between (a server draining its requests).
fn noting(name: &str, linger: &str, deps: &[&str]) -> String {
    let deps = if deps.is_empty() {
        String::new()
    } else {
        format!("\n            depends_on: [{}]", deps.join(", "))
    };
    format!(
        r#"
          {name}:
            command: "trap 'echo {name}-term >> order.txt; sleep {linger}; echo {name}-exit >> order.txt; exit 0' TERM; while :; do sleep 0.05; done"{deps}"#
    )
}

#[test]
fn stop_goes_dependents_first_each_level_after_the_one_before_has_exited() {
    let w = Sysg::new();
    let yaml = format!(
        "services:{}{}{}{}\n",
        noting("db", "0", &[]),
        noting("cache", "0", &[]),
        noting("app", "0.4", &["db", "cache"]),
        noting("web", "0.4", &["app"]),
    );
    w.start_with(&yaml);
    for name in ["db", "cache", "app", "web"] {
        w.wait_running_pid(name, None);
    }
    // Let each shell reach its loop with the trap set.
    std::thread::sleep(Duration::from_millis(300));
    w.run_ok(&["stop"]);
    let text = w.read_proj("order.txt").unwrap_or_default();
    let order: Vec<&str> = text.lines().collect();
    let at = |what: &str| {
        order
            .iter()
            .position(|l| *l == what)
            .unwrap_or_else(|| panic!("no {what} in {order:?}\n{}", w.diagnostics()))
    };
    assert!(at("web-exit") < at("app-term"), "{order:?}");
    assert!(at("app-exit") < at("db-term"), "{order:?}");
    assert!(at("app-exit") < at("cache-term"), "{order:?}");
    assert_eq!(order.len(), 8, "{order:?}");
    let log = w.supervisor_log();
    assert!(
        log.contains("stopping in 3 levels, dependents first"),
        "{log}"
    );
}

#[test]
fn a_service_that_exits_while_waiting_for_its_level_is_not_restarted() {
    let w = Sysg::new();
    let yaml = format!(
        r#"
        services:
          db:
            command: "sleep 1.2; exit 1"
            restart_policy: "always"
            backoff: "0s"{}
        "#,
        noting("app", "1.5", &["db"]),
    );
    w.start_with(&yaml);
    w.wait_running_pid("app", None);
    std::thread::sleep(Duration::from_millis(300));
    w.run_ok(&["stop"]);
    let log = w.supervisor_log();
    let (_, after) = log
        .split_once("shutting down")
        .unwrap_or_else(|| panic!("no shutdown in the log\n{log}"));
    assert!(
        !after.contains("started db"),
        "db restarted during the shutdown\n{log}"
    );
    let order = w.read_proj("order.txt").unwrap_or_default();
    assert!(order.contains("app-exit"), "{order}\n{log}");
}

#[test]
fn a_reload_stops_what_it_restarts_dependents_first() {
    let w = Sysg::new();
    let yaml = |tick: &str| {
        format!(
            "services:{}{}\n",
            noting("db", "0.3", &[]),
            noting("app", "0.3", &["db"]),
        )
        .replace("sleep 0.05", &format!("sleep {tick}"))
    };
    let cfg = w.start_with(&yaml("0.05"));
    let db = w.wait_running_pid("db", None);
    let app = w.wait_running_pid("app", None);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&cfg, yaml("0.06")).unwrap();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert!(
        out.stdout.contains("db: changed (command) -> restarted"),
        "{out}"
    );
    assert!(
        out.stdout.contains("app: changed (command) -> restarted"),
        "{out}"
    );
    let order = w.read_proj("order.txt").unwrap_or_default();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(
        lines,
        ["app-term", "app-exit", "db-term", "db-exit"],
        "{}",
        w.diagnostics()
    );
    w.wait_running_pid("db", Some(db));
    w.wait_running_pid("app", Some(app));
    w.run_ok(&["stop"]);
}
