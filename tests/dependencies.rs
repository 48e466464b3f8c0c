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
    // Each waits for the other's marker: only concurrent starts let both finish.
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          c:
            command: "touch c.m; i=0; while [ ! -e d.m ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; [ -e d.m ] && echo ok > c.res; exec sleep {n}"
            stop_timeout: "1s"
          d:
            command: "touch d.m; i=0; while [ ! -e c.m ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; [ -e c.m ] && echo ok > d.res; exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    assert_eq!(w.wait_file("c.res").trim(), "ok");
    assert_eq!(w.wait_file("d.res").trim(), "ok");
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
