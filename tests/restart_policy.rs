//! Restart policies (SPEC §3): failures are restarted after the backoff, exit 0 is not,
//! `max_restarts` gives up, `never` leaves the service alone.

mod common;
use common::*;
use std::time::Duration;

fn count_lines(w: &Sysg, file: &str) -> usize {
    w.read_proj(file).map(|t| t.lines().count()).unwrap_or(0)
}

fn restarts_after_sigkill(policy: &str) {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            restart_policy: \"{policy}\"
            backoff: \"100ms\"
            stop_timeout: \"1s\"
        "
    ));
    let first = w.wait_running_pid("web", None);
    let before = w.service("web").unwrap()["restart_count"].as_u64().unwrap();
    assert!(kill(-first, libc::SIGKILL), "cannot kill group {first}");
    let second = w.wait_running_pid("web", Some(first));
    assert!(alive(second));
    let svc = w.service("web").unwrap();
    assert!(
        svc["restart_count"].as_u64().unwrap() > before,
        "restart_count did not grow: {svc:#}"
    );

    // And again: the policy keeps applying.
    assert!(kill(-second, libc::SIGKILL));
    let third = w.wait_running_pid("web", Some(second));
    assert_ne!(third, first);
    let mut state = serde_json::Value::Null;
    let ok = wait_until(DEADLINE, || {
        state = std::fs::read_to_string(w.state.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        state["services"]["web"]["pid"] == third
            && state["services"]["web"]["restart_count"].as_u64() >= Some(2)
    });
    assert!(
        ok,
        "state.json does not record the new pid/restart count: {state:#}"
    );
}

#[test]
fn restart_policy_always_restarts_after_sigkill() {
    restarts_after_sigkill("always");
}

#[test]
fn restart_policy_on_failure_restarts_after_sigkill() {
    restarts_after_sigkill("on-failure");
}

#[test]
fn restart_policy_on_failure_does_not_restart_exit_zero() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          once:
            command: \"echo done >> once.runs\"
            restart_policy: \"on-failure\"
            backoff: \"100ms\"
          keeper:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let svc = w.wait_status("once", "exited");
    assert_eq!(svc["exit_code"], 0, "{svc:#}");
    assert!(
        holds_for(Duration::from_millis(1000), || {
            w.service_status("once").as_deref() == Some("exited")
                && count_lines(&w, "once.runs") == 1
        }),
        "an exit-0 service was restarted\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service("once").unwrap()["restart_count"], 0);
}

#[test]
fn restart_policy_always_does_not_restart_exit_zero() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          once:
            command: \"echo done >> once.runs\"
            restart_policy: \"always\"
            backoff: \"100ms\"
          keeper:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    w.wait_status("once", "exited");
    assert!(
        holds_for(Duration::from_millis(1000), || count_lines(&w, "once.runs")
            == 1),
        "an exit-0 service was restarted\n{}",
        w.diagnostics()
    );
}

#[test]
fn max_restarts_gives_up_after_n_restarts() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          flaky:
            command: \"echo run >> flaky.runs; exit 3\"
            restart_policy: \"on-failure\"
            backoff: \"100ms\"
            max_restarts: 2
          keeper:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let svc = w.wait_status("flaky", "failed");
    assert_eq!(svc["exit_code"], 3, "{svc:#}");
    let text = w.status_text();
    assert!(
        text.stdout
            .contains("● flaky Failed — gave up after 2 restarts"),
        "{text}"
    );
    assert_eq!(
        count_lines(&w, "flaky.runs"),
        3,
        "the command must run exactly N+1 times"
    );
    assert!(
        holds_for(Duration::from_millis(800), || count_lines(&w, "flaky.runs")
            == 3),
        "a failed service was started again\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_status("flaky").as_deref(), Some("failed"));
}

#[test]
fn restart_policy_never_leaves_a_failed_service_exited() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          bad:
            command: \"echo run >> bad.runs; exit 7\"
            backoff: \"100ms\"
          keeper:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let svc = w.wait_status("bad", "exited");
    assert_eq!(svc["exit_code"], 7, "{svc:#}");
    assert!(
        holds_for(Duration::from_millis(800), || count_lines(&w, "bad.runs")
            == 1),
        "a never-policy service was restarted\n{}",
        w.diagnostics()
    );
    let text = w.status_text();
    assert!(text.stdout.contains("● bad Exited (exit code 7)"), "{text}");
}

#[test]
fn failing_service_is_restarted_with_on_failure_until_it_succeeds() {
    // Fails twice, then succeeds: three runs, ends exited 0, never failed.
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          third_time:
            command: \"echo run >> tt.runs; [ $(wc -l < tt.runs) -ge 3 ]\"
            restart_policy: \"on-failure\"
            backoff: \"100ms\"
            max_restarts: 5
          keeper:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let ok = wait_until(DEADLINE, || {
        w.service("third_time")
            .is_some_and(|s| s["status"] == "exited" && s["exit_code"] == 0)
    });
    assert!(ok, "never completed\n{}", w.diagnostics());
    assert_eq!(count_lines(&w, "tt.runs"), 3);
    assert_eq!(w.service("third_time").unwrap()["restart_count"], 2);
}
