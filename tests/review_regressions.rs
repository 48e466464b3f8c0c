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
    let (n, m) = (unique_number(), unique_number());
    // The first skip check never answers by itself within the test (only the
    // supervisor's own limit would end it); the one after the restart says "run" at once.
    w.start_with(&format!(
        "services:\n  sk:\n    command: \"sleep {n}\"\n    skip: \"[ -e skip.once ] && exit 1; touch skip.once; exec sleep {m}\"\n"
    ));
    let check = format!("sleep {m}");
    assert!(
        wait_until(DEADLINE, || processes_exactly(&check).len() == 1),
        "the first skip check never ran\n{}",
        w.diagnostics()
    );
    assert_eq!(w.run(&["restart", "-s", "sk"]).code, 0);
    w.wait_status("sk", "running");
    let service = format!("sleep {n}");
    assert!(
        wait_until(DEADLINE, || processes_exactly(&check).is_empty()),
        "the first skip check survived the restart\n{}",
        w.diagnostics()
    );
    assert!(
        holds_for(Duration::from_secs(1), || processes_exactly(&service).len()
            == 1),
        "not exactly one instance: {:?}\n{}",
        processes_exactly(&service),
        w.diagnostics()
    );
}

#[test]
fn full_restart_waiting_longer_than_the_client_deadline_still_succeeds() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  stubborn:\n    command: \"trap '' TERM; sleep {n} & wait; sleep {n}\"\n    stop_timeout: \"7s\"\n"
    ));
    w.wait_status("stubborn", "running");
    let out = w.run(&["restart", "--all"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    assert!(out.stdout.contains("Restarted 1 services"), "{out}");
}

#[test]
fn escaped_processes_of_exited_instances_do_not_survive_stop() {
    let w = Sysg::new();
    let n = unique_number();
    // The first instance waits until the test has seen its escapee; later ones exit
    // at once.
    let cfg = w.write_config(&format!(
        "services:\n  esc:\n    command: \"setsid sleep {n} & while [ ! -e seen ]; do sleep 0.05; done; exit 1\"\n    restart_policy: on-failure\n    backoff: 100ms\n    max_restarts: 2\n"
    ));
    w.start_daemon(&cfg);
    let exact = |p: i32| cmdline(p).trim() == format!("sleep {n}");
    let mut seen: Vec<i32> = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            seen = live_pids().into_iter().filter(|&p| exact(p)).collect();
            !seen.is_empty()
        }),
        "the first instance's escapee never ran\n{}",
        w.diagnostics()
    );
    std::fs::write(w.proj_file("seen"), "").unwrap();
    let mut most = 0;
    assert!(
        wait_until(DEADLINE, || {
            let now = live_pids().into_iter().filter(|&p| exact(p)).count();
            most = most.max(now);
            w.service_status("esc").as_deref() == Some("failed")
        }),
        "{}",
        w.diagnostics()
    );
    assert!(
        most <= 1,
        "escapees piled up across restarts ({most} at once)"
    );
    w.run_ok(&["stop"]);
    assert!(
        wait_until(DEADLINE, || !live_pids().into_iter().any(exact)),
        "an escapee survived stop: {:?}",
        live_pids()
            .into_iter()
            .filter(|&p| exact(p))
            .collect::<Vec<_>>()
    );
    for p in seen {
        assert!(!alive(p), "the first escapee {p} survived stop");
    }
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
        "services:\n  flaky:\n    command: \"echo run >> runs.txt; exit 1\"\n    env: { file: \"maybe.env\" }\n    restart_policy: always\n    backoff: 300ms\n",
    );
    std::fs::write(w.proj_file("maybe.env"), "A=1\n").unwrap();
    w.start_daemon(&cfg);
    let runs = w.proj_file("runs.txt");
    assert!(
        wait_until(DEADLINE, || runs.exists()),
        "the service never ran\n{}",
        w.diagnostics()
    );
    let restarts = || {
        w.service("flaky")
            .and_then(|s| s["restart_count"].as_u64())
            .unwrap_or(0)
    };
    // The env file vanishes: spawns fail, but the policy keeps trying...
    std::fs::remove_file(w.proj_file("maybe.env")).unwrap();
    // Two restarts on, an instance spawned before the file went has ended.
    let gone = restarts();
    assert!(wait_until(DEADLINE, || restarts() >= gone + 2));
    std::fs::remove_file(&runs).unwrap();
    let after = restarts();
    assert!(
        wait_until(DEADLINE, || restarts() >= after + 3),
        "the policy stopped retrying\n{}",
        w.diagnostics()
    );
    assert!(
        !runs.exists(),
        "the service ran while its env file was missing\n{}",
        w.diagnostics()
    );
    assert_ne!(w.service_status("flaky").as_deref(), Some("failed"));
    // ...and succeeds once the file is back.
    std::fs::write(w.proj_file("maybe.env"), "A=1\n").unwrap();
    assert!(
        wait_until(DEADLINE, || runs.exists()),
        "the service did not run again once its env file was back\n{}",
        w.diagnostics()
    );
}
