//! `health_check.tcp` (up once a TCP connect succeeds) and `health_check.log` (up once
//! the instance prints a given text): dependents wait for them, and one that never
//! passes fails the start like any other check.

mod common;
use common::*;
use std::net::TcpListener;

/// Waits until `name` is failed or exited with a reason containing `part`; returns it.
fn wait_failed_with(w: &Sysg, name: &str, part: &str) -> String {
    let mut last = None;
    let ok = wait_until(DEADLINE, || {
        last = w.service(name);
        last.as_ref().is_some_and(|s| {
            (s["status"] == "failed" || s["status"] == "exited")
                && s["reason"].as_str().is_some_and(|r| r.contains(part))
        })
    });
    assert!(ok, "{name} did not fail with {part:?}; last: {last:#?}");
    last.unwrap()["reason"].as_str().unwrap().to_string()
}

fn wait_up(w: &Sysg, name: &str) {
    let up = wait_until(DEADLINE, || {
        w.service(name).is_some_and(|s| s["up"] == true)
    });
    assert!(up, "{name} never got up\n{}", w.diagnostics());
}

#[test]
fn a_tcp_check_is_up_once_the_port_accepts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "exec sleep {n}"
            health_check:
              tcp: "127.0.0.1:{port}"
              interval: "100ms"
          api:
            command: "exec sleep {n}"
            depends_on: [db]
        "#
    ));
    wait_up(&w, "db");
    w.wait_running_pid("api", None);
    w.run_ok(&["stop"]);
}

#[test]
fn a_tcp_check_on_a_refusing_port_fails_the_start() {
    // The port is held on 127.0.0.1, so nothing listens on it on 127.0.0.2.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              tcp: "127.0.0.2:{port}"
              interval: "100ms"
              retries: 3
        "#
    ));
    let reason = wait_failed_with(&w, "db", "health check failed 3 times");
    assert!(
        reason.contains(&format!("connect 127.0.0.2:{port}")),
        "{reason}"
    );
    w.run_ok(&["stop"]);
}

#[test]
fn a_log_check_is_up_once_the_text_is_printed() {
    let w = Sysg::new();
    let n = unique_number();
    // The check's interval is long: up comes from the line itself, not from a probe.
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "sleep 0.3; echo booting; echo 'database system is ready to accept connections' >&2; exec sleep {n}"
            health_check:
              log: "ready to accept connections"
              interval: "30s"
              retries: 2
          api:
            command: "exec sleep {n}"
            depends_on: [db]
        "#
    ));
    w.wait_running_pid("api", None);
    let db = w.service("db").unwrap();
    assert_eq!(db["up"], true, "{db:#}");
    w.run_ok(&["stop"]);
}

#[test]
fn a_log_check_that_never_sees_its_text_fails_the_start() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "echo 'still booting'; exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              log: "ready to accept connections"
              interval: "100ms"
              retries: 3
        "#
    ));
    let reason = wait_failed_with(&w, "db", "health check failed 3 times");
    assert!(reason.contains("no output line has contained"), "{reason}");
    w.run_ok(&["stop"]);
}

#[test]
fn health_checks_take_exactly_one_kind() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "services:\n  a:\n    command: x\n    health_check: {tcp: \"localhost\", log: ready}\n  b:\n    command: x\n    health_check: {tcp: \"localhost:0\"}\n",
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    let all = out.all();
    assert!(
        all.contains("services.a.health_check: set only one of tcp, log"),
        "{all}"
    );
    assert!(
        all.contains("services.b.health_check.tcp: expected host:port, got \"localhost:0\""),
        "{all}"
    );
}

#[test]
fn a_liveness_check_restarts_a_hung_service_and_status_shows_the_last_probe() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = Sysg::new();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec python3 -m http.server {port} --bind 127.0.0.1"
            restart_policy: "on-failure"
            backoff: "100ms"
            stop_timeout: "1s"
            health_check:
              url: "http://127.0.0.1:{port}/"
              interval: "100ms"
              timeout: "300ms"
              retries: 5
              liveness: true
        "#
    ));
    wait_up(&w, "web");
    let pid = w.service_pid("web").unwrap();
    // A slow machine may have needed more than one start to get it up.
    let restarts = w.service("web").unwrap()["restart_count"].as_i64().unwrap();
    let text = w.status_text();
    assert!(text.stdout.contains("Health: passing (HTTP 200"), "{text}");
    let probe = w.service("web").unwrap()["last_probe"].clone();
    assert_eq!(probe["healthy"], true, "{probe}");
    // Hung: every request times out from now on.
    assert!(kill(pid, libc::SIGSTOP));
    let replaced = wait_until(DEADLINE, || {
        w.service("web")
            .is_some_and(|s| s["pid"].as_i64().is_some_and(|p| p != pid as i64) && s["up"] == true)
    });
    assert!(
        replaced,
        "the hung instance was not replaced\n{}",
        w.diagnostics()
    );
    w.wait_log_line(&["web: liveness check failed 5 times"]);
    let st = w.service("web").unwrap();
    assert!(st["restart_count"].as_i64().unwrap() > restarts, "{st:#}");
    assert!(!alive(pid), "the hung instance is still there");
    w.run_ok(&["stop"]);
}
