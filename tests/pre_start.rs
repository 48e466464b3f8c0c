//! `pre_start` runs before each start; a failing or hung one fails that start, with its
//! exit code and output, and never holds anything else up.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn pre_start_runs_before_each_start() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          web:
            command: "cat ready.txt >> seen.txt; sleep 600"
            pre_start: "echo prepared > ready.txt; echo run >> pre.txt"
        "#,
    );
    let first = w.wait_running_pid("web", None);
    assert!(wait_until(DEADLINE, || w
        .read_proj("seen.txt")
        .is_some_and(|t| t.contains("prepared"))));
    w.run_ok(&["restart", "-s", "web"]);
    w.wait_running_pid("web", Some(first));
    assert!(wait_until(DEADLINE, || w
        .read_proj("pre.txt")
        .is_some_and(|t| t.lines().count() == 2)));
    w.run_ok(&["stop"]);
}

#[test]
fn a_failing_pre_start_fails_the_start_with_its_exit_code_and_output() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          web:
            command: "echo started >> started.txt; sleep 600"
            pre_start: "echo migration failed: no database >&2; exit 3"
          other:
            command: "sleep 600"
        "#,
    );
    w.wait_running_pid("other", None);
    let st = w.wait_status("web", "exited");
    let reason = st["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("pre_start failed (exit code 3: migration failed: no database)"),
        "{st:#}"
    );
    assert!(
        w.read_proj("started.txt").is_none(),
        "the service ran anyway"
    );
    w.run_ok(&["stop"]);
}

#[test]
fn a_hung_pre_start_is_killed_at_its_timeout_and_a_stop_meanwhile_wins() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          web:
            command: "sleep 600"
            pre_start: { command: "sleep 600", timeout: "1s" }
        "#,
    );
    let st = w.wait_status("web", "exited");
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 1s"),
        "{st:#}"
    );
    w.run_ok(&["stop"]);

    // A stop asked while pre_start runs: the service never starts.
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          web:
            command: "echo started >> started.txt; sleep 600"
            pre_start: { command: "sleep 2", timeout: "10s" }
        "#,
    );
    std::thread::sleep(Duration::from_millis(300));
    w.run_ok(&["stop", "-s", "web"]);
    w.wait_status("web", "stopped");
    let never = holds_for(Duration::from_millis(2500), || {
        w.read_proj("started.txt").is_none()
    });
    assert!(
        never,
        "web started after it was stopped\n{}",
        w.diagnostics()
    );
    w.run_ok(&["stop"]);
}
