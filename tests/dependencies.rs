//! Start order (SPEC §3): dependents wait for their dependencies to be up or completed,
//! are not started when a dependency fails, and `skip` counts as up.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn dependent_starts_after_its_dependency_is_running() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          b:
            command: "if [ -e a.marker ]; then echo yes > b.result; else echo no > b.result; fi; exec sleep {n}"
            depends_on: ["a"]
            stop_timeout: "1s"
          a:
            command: "touch a.marker; exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    assert_eq!(
        w.wait_file("b.result").trim(),
        "yes",
        "b started before a was up"
    );
    w.wait_running_pid("a", None);
    w.wait_running_pid("b", None);
}

#[test]
fn independent_services_start_in_parallel() {
    // c is up only once d runs and d only once c runs (their health checks): if starting
    // one waited for the other to be up, neither would ever be, and e never starts.
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          c:
            command: "touch c.m; exec sleep {n}"
            stop_timeout: "1s"
            health_check: {{ command: "test -e d.m", interval: "100ms", retries: 200 }}
          d:
            command: "touch d.m; exec sleep {n}"
            stop_timeout: "1s"
            health_check: {{ command: "test -e c.m", interval: "100ms", retries: 200 }}
          e:
            command: "touch e.ran; exec sleep {n}"
            depends_on: ["c", "d"]
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("e", None);
    assert!(
        wait_until(DEADLINE, || w.proj_file("e.ran").exists()),
        "e did not run\n{}",
        w.diagnostics()
    );
    for name in ["c", "d"] {
        let s = w.service(name).unwrap();
        assert_eq!(s["status"], "running", "{s:#}");
        assert_eq!(s["up"], true, "{s:#}");
    }
}

#[test]
fn a_dependency_that_fails_before_one_second_blocks_its_dependent() {
    // Running is not up: a exits 1 after 0.3 s, before the 1 s up rule holds, so that is
    // a failed start and b must never start.
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "sleep 0.3; exit 1"
          b:
            command: "touch b.ran; exec sleep {n}"
            depends_on: ["a"]
            stop_timeout: "1s"
        "#
    ));
    let ok = wait_until(DEADLINE, || {
        w.service("b").is_some_and(|s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("dependency a failed"))
        })
    });
    assert!(
        ok,
        "b does not report its failed dependency\n{}",
        w.diagnostics()
    );
    let a = w.service("a").unwrap();
    assert_eq!(a["exit_code"], 1, "{a:#}");
    assert!(
        holds_for(Duration::from_secs(1), || !w.proj_file("b.ran").exists()
            && w.service_processes("b").is_empty()),
        "b started although a failed before it was up\n{}",
        w.diagnostics()
    );
}

#[test]
fn failed_dependency_blocks_its_dependents() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "exit 1"
            restart_policy: "never"
          b:
            command: "touch b.ran; exec sleep {n}"
            depends_on: ["a"]
            stop_timeout: "1s"
          c:
            command: "touch c.ran; exec sleep {n}"
            depends_on: ["b"]
            stop_timeout: "1s"
          other:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let ok = wait_until(DEADLINE, || {
        w.service("b").is_some_and(|s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("dependency a failed"))
        })
    });
    assert!(
        ok,
        "b does not report its failed dependency\n{}",
        w.diagnostics()
    );
    let text = w.status_text();
    assert!(text.stdout.contains("dependency a failed"), "{text}");
    assert!(!w.proj_file("b.ran").exists(), "b ran although a failed");
    assert!(!w.proj_file("c.ran").exists(), "c ran although b never did");
    // An unrelated service is not affected.
    w.wait_running_pid("other", None);
    assert!(
        holds_for(Duration::from_millis(500), || !w
            .proj_file("b.ran")
            .exists()),
        "b started later\n{}",
        w.diagnostics()
    );
}

#[test]
fn completed_dependency_lets_the_dependent_start() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          migrate:
            command: "echo migrated > migrate.out"
          app:
            command: "cat migrate.out > app.saw; exec sleep {n}"
            depends_on: ["migrate"]
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("app", None);
    assert_eq!(w.wait_file("app.saw").trim(), "migrated");
    let m = w.service("migrate").unwrap();
    assert_eq!(m["status"], "exited", "{m:#}");
    assert_eq!(m["exit_code"], 0, "{m:#}");
}

#[test]
fn skipped_service_never_runs_and_its_dependents_start() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "touch a.ran; exec sleep {n}"
            skip: "true"
          b:
            command: "touch b.ran; exec sleep {n}"
            depends_on: ["a"]
            stop_timeout: "1s"
        "#
    ));
    w.wait_status("a", "skipped");
    w.wait_running_pid("b", None);
    assert!(
        wait_until(DEADLINE, || w.proj_file("b.ran").exists()),
        "b did not run"
    );
    let text = w.status_text();
    assert!(text.stdout.contains("● a Skipped"), "{text}");
    assert!(
        !w.proj_file("a.ran").exists(),
        "a skipped service ran its command"
    );
}

#[test]
fn skip_check_that_fails_lets_the_service_run() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "touch a.ran; exec sleep {n}"
            skip: "test -n \"$SYSG_ITEST_NOT_SET_EVER\""
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("a", None);
    let ok = wait_until(DEADLINE, || w.proj_file("a.ran").exists());
    assert!(ok, "a did not run\n{}", w.diagnostics());
}

#[test]
fn crash_of_a_running_dependency_does_not_touch_dependents() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "exec sleep {n}"
            stop_timeout: "1s"
          b:
            command: "exec sleep {n}"
            depends_on: ["a"]
            stop_timeout: "1s"
        "#
    ));
    let a = w.wait_running_pid("a", None);
    let b = w.wait_running_pid("b", None);
    assert!(kill(-a, libc::SIGKILL));
    w.wait_status("a", "exited");
    assert!(
        holds_for(Duration::from_millis(500), || w.service_pid("b") == Some(b)
            && alive(b)),
        "b was touched by a's crash\n{}",
        w.diagnostics()
    );
}
