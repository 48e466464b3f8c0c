//! Lifecycle gaps a black-box suite found: a cron job's skip check, what `restart -s`
//! says of a cron job, and a worker that daemonizes out of its instance.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn a_cron_job_whose_skip_check_exits_zero_never_runs_and_shows_skipped() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          job:
            command: "echo ran >> runs.txt"
            cron:
              expression: "* * * * * *"
            skip: "true"
          other:
            command: "echo ran >> other.txt"
            cron:
              expression: "* * * * * *"
            skip: "false"
        "#,
    );
    w.wait_status("job", "skipped");
    // The job beside it, whose check says "run", proves fires happen meanwhile.
    w.wait_file("other.txt");
    let never = holds_for(Duration::from_millis(2500), || {
        w.read_proj("runs.txt").is_none()
    });
    assert!(never, "a skipped cron job ran\n{}", w.diagnostics());
    assert_eq!(w.service_status("job").as_deref(), Some("skipped"));
    w.run_ok(&["stop"]);
}

#[test]
fn restart_of_a_cron_job_says_it_was_re_armed_and_when_it_runs_next() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          job:
            command: "true"
            cron:
              expression: "0 0 3 * * *"
              timezone: "UTC"
        "#,
    );
    w.wait_status("job", "idle");
    let out = w.run_ok(&["restart", "-s", "job"]);
    let said = out.stdout.trim().to_string();
    assert!(
        said.starts_with("Re-armed job; next run at ") && said.contains("03:00:00"),
        "{said}"
    );
    w.run_ok(&["stop"]);
}

#[test]
fn a_worker_that_daemonizes_is_stopped_with_its_instance_and_said_so() {
    let w = Sysg::new();
    let n = unique_number();
    // The parent exits 0 at once; a grandchild in its own session forks the real
    // daemon a little later.
    w.start_with(&format!(
        r#"
        services:
          forker:
            command: "sh -c '( setsid sh -c \"sleep 0.2; exec sleep {n}\" & ); exit 0'"
            restart_policy: "never"
        "#
    ));
    let daemon = || {
        processes_matching(&format!("sleep {n}"))
            .into_iter()
            .any(|(_, c)| c == format!("sleep {n}"))
    };
    let st = w.wait_status("forker", "exited");
    assert_eq!(st["exit_code"], 0, "{st:#}");
    let gone = wait_until(DEADLINE, || !daemon());
    assert!(
        gone,
        "the daemon outlived its instance\n{}",
        w.diagnostics()
    );
    let stays_gone = holds_for(Duration::from_millis(800), || !daemon());
    assert!(stays_gone, "the daemon came back\n{}", w.diagnostics());
    let reason = w.service("forker").unwrap()["reason"].clone();
    assert!(
        reason
            .as_str()
            .is_some_and(|r| r.contains("leftover process(es) stopped")),
        "status does not say what happened: {reason}"
    );
    assert!(
        w.supervisor_log().contains("leaving"),
        "{}",
        w.supervisor_log()
    );
    w.run_ok(&["stop"]);
}

#[test]
fn status_counts_descendants_that_left_the_group() {
    let w = Sysg::new();
    let (n, m) = (unique_number(), unique_number());
    // Like postgres: the helpers run in sessions of their own.
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "sh -c 'setsid sleep {n} & setsid sleep {n} & sleep {m}'"
        "#
    ));
    let all_three = wait_until(DEADLINE, || {
        w.service("db").is_some_and(|s| {
            let cmds: Vec<String> = s["processes"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["command"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            cmds.iter().filter(|c| **c == format!("sleep {n}")).count() == 2
                && cmds.iter().any(|c| *c == format!("sleep {m}"))
        })
    });
    assert!(
        all_three,
        "status misses processes of db\n{}",
        w.diagnostics()
    );
    let tasks = w.service("db").unwrap()["tasks"].as_u64().unwrap_or(0);
    assert!(
        tasks >= 4,
        "tasks {tasks}: sh, two helpers and the main sleep"
    );
    w.run_ok(&["stop"]);
}
