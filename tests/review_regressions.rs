//! One regression test per bug found in review, named after it.

mod common;

use common::*;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn reload_while_a_skip_check_runs_completes_and_stop_still_works() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  sk:\n    command: \"sleep {n}\"\n    skip: \"sleep 3; false\"\n"
    ));
    let out = w.run(&["restart"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        w.supervisor_pid().is_none_or(|p| !alive(p)),
        "supervisor still running"
    );
}

#[test]
fn restart_s_during_a_skip_check_starts_the_service_again() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  sk:\n    command: \"sleep {n}\"\n    skip: \"sleep 2; false\"\n"
    ));
    assert_eq!(w.run(&["restart", "-s", "sk"]).code, 0);
    w.wait_status("sk", "running");
}

#[test]
fn full_restart_waiting_longer_than_the_client_deadline_still_succeeds() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  stubborn:\n    command: \"trap '' TERM; sleep {n} & wait; sleep {n}\"\n    stop_timeout: \"7s\"\n"
    ));
    w.wait_status("stubborn", "running");
    let out = w.run(&["restart"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    assert!(out.stdout.contains("Restarted 1 services"), "{out}");
}

#[test]
fn escaped_processes_of_exited_instances_do_not_survive_stop() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        "services:\n  esc:\n    command: \"setsid sleep {n} & sleep 0.3; exit 1\"\n    restart_policy: on-failure\n    backoff: 100ms\n    max_restarts: 2\n"
    ));
    w.start_daemon(&cfg);
    assert!(
        wait_until(DEADLINE, || w.service_status("esc").as_deref()
            == Some("failed")),
        "{}",
        w.diagnostics()
    );
    let exact = |p: i32| cmdline(p).trim() == format!("sleep {n}");
    assert!(
        live_pids().into_iter().filter(|&p| exact(p)).count() <= 1,
        "escapees piled up across restarts"
    );
    w.run_ok(&["stop"]);
    assert!(
        wait_until(DEADLINE, || !live_pids().into_iter().any(exact)),
        "an escapee survived stop"
    );
}

#[test]
fn a_cron_job_whose_health_check_fails_keeps_firing() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "services:\n  cj:\n    command: \"echo run >> runs.txt; sleep 1\"\n    cron: { expression: \"* * * * * *\" }\n    health_check: { command: \"false\", retries: 1, interval: 100ms }\n",
    );
    w.start_daemon(&cfg);
    assert!(
        wait_until(DEADLINE, || w
            .read_proj("runs.txt")
            .is_some_and(|t| t.lines().count() >= 3)),
        "cron stopped firing after a failed health check\n{}",
        w.diagnostics()
    );
}

#[test]
fn a_spawn_failure_goes_through_the_restart_policy() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "services:\n  flaky:\n    command: \"exit 1\"\n    env: { file: \"maybe.env\" }\n    restart_policy: always\n    backoff: 300ms\n",
    );
    std::fs::write(w.proj_file("maybe.env"), "A=1\n").unwrap();
    w.start_daemon(&cfg);
    // The env file vanishes: spawns fail, but the policy keeps trying...
    std::fs::remove_file(w.proj_file("maybe.env")).unwrap();
    assert!(wait_until(DEADLINE, || w
        .service("flaky")
        .is_some_and(|s| s["restart_count"].as_u64() >= Some(3))));
    assert_ne!(w.service_status("flaky").as_deref(), Some("failed"));
    // ...and succeeds once the file is back.
    std::fs::write(w.proj_file("maybe.env"), "A=1\n").unwrap();
    let before = w
        .service("flaky")
        .map(|s| s["restart_count"].as_u64())
        .unwrap_or_default();
    assert!(wait_until(DEADLINE, || w
        .service("flaky")
        .is_some_and(|s| s["restart_count"].as_u64() > before)));
}
