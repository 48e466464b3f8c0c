//! Many services at once, and the supervisor's loop staying free while it works for them:
//! a stop of many services ends with every process gone, a reload's config is read off
//! the loop, and the final sweep finds descendants that no marker names.

mod common;
use common::*;
use std::fmt::Write as _;
use std::time::Duration;

#[test]
fn stopping_three_hundred_services_leaves_no_process_behind() {
    let w = Sysg::new();
    let base = unique_number();
    let mut yaml = String::from("services:\n");
    for i in 0..300 {
        // Half of them leave a child in their group, a quarter one that escaped it.
        let command = match i % 4 {
            0 | 1 => format!("sleep {}", base + i),
            2 => format!("sh -c 'sleep {} & wait'", base + i),
            _ => format!("sh -c 'setsid sleep {} & wait'", base + i),
        };
        writeln!(yaml, "  s{i}:\n    command: \"{command}\"").unwrap();
    }
    let cfg = w.write_config(&yaml);
    w.start_daemon(&cfg);
    let mine = |pid: &i32| {
        cmdline(*pid)
            .strip_prefix("sleep ")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| (base..base + 300).contains(&n))
    };
    let all_up = wait_until(Duration::from_secs(60), || {
        live_pids().iter().filter(|p| mine(p)).count() == 300
    });
    assert!(all_up, "not every service came up\n{}", w.diagnostics());
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    let gone = wait_until(DEADLINE, || !live_pids().iter().any(mine));
    let left: Vec<i32> = live_pids().into_iter().filter(mine).collect();
    assert!(gone, "survivors after stop: {left:?}\n{}", w.diagnostics());
}

#[test]
fn a_reload_being_read_never_blocks_status() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.start_with(&format!(
        r#"
        services:
          a:
            command: "sleep {n}"
        "#
    ));
    let pid = w.wait_running_pid("a", None);
    // As large as the loader takes, and wrong only for the supervisor: its last line
    // names a variable that only the reloading client has (the client validates the file
    // before sending it). Reading and validating it takes a while; then it is refused as
    // a whole.
    let mut big = String::from("services:\n");
    let mut i = 0;
    while big.len() < (1 << 20) {
        writeln!(big, "  s{i}: {{command: x}}").unwrap();
        i += 1;
    }
    // (Commands go to sh verbatim; working_dir is expanded by the loader.)
    // A name no environment has but the reloading client's.
    let var = format!("SYSG_TEST_CLIENT_ONLY_{}", unique_number());
    writeln!(big, "  last: {{command: x, working_dir: \"/${{{var}}}\"}}").unwrap();
    let big_path = w.proj_file("big.yaml");
    std::fs::write(&big_path, big).unwrap();

    let sup = w.supervisor_pid().expect("supervisor pid");
    let loading = || {
        std::fs::read_dir(format!("/proc/{sup}/task"))
            .map(|tasks| {
                tasks.flatten().any(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "config")
                })
            })
            .unwrap_or(false)
    };
    let mut reload = w.command(&["restart", "-c", big_path.to_str().unwrap()]);
    reload
        .env(&var, "tmp")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let reload = reload.spawn().expect("spawn reload");
    let reading = wait_until(COMMAND_LIMIT, loading);
    assert!(
        reading,
        "the supervisor never read the config\n{}",
        w.diagnostics()
    );
    let status = w.run(&["status", "--json"]);
    let still_reading = loading();
    assert_eq!(status.code, 0, "status failed during the reload: {status}");
    assert!(
        still_reading,
        "the config was read before status answered: this cannot show that status did \
         not wait for it"
    );
    let done = reload.wait_with_output().expect("reload output");
    assert_ne!(done.status.code(), Some(0), "a bad config was taken");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains(&var), "{stderr}");
    assert_eq!(w.service_pid("a"), Some(pid), "a bad config touched a");
    assert_eq!(
        std::fs::read_to_string(w.state.join("config_hint"))
            .unwrap()
            .trim(),
        cfg.to_str().unwrap()
    );
    w.run_ok(&["stop"]);
}

#[test]
fn a_descendant_that_cleared_its_environment_does_not_outlive_the_supervisor() {
    let w = Sysg::new();
    let (n, m) = (unique_number(), unique_number());
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "sh -c 'env -i setsid sleep {n} & sleep {m}'"
        "#
    ));
    let found = |exact: &str| {
        processes_matching(exact)
            .into_iter()
            .filter(|(_, c)| c == exact)
            .map(|(pid, _)| pid)
            .collect::<Vec<_>>()
    };
    let seen = wait_until(DEADLINE, || !found(&format!("sleep {n}")).is_empty());
    assert!(
        seen,
        "the cleared-env descendant never ran\n{}",
        w.diagnostics()
    );
    let escapee = found(&format!("sleep {n}"))[0];
    assert!(
        !environ(escapee).iter().any(|e| e.starts_with("SYSG_")),
        "the descendant still carries markers: the test proves nothing"
    );
    w.run_ok(&["stop"]);
    let gone = wait_until(DEADLINE, || !alive(escapee));
    assert!(
        gone,
        "pid {escapee} outlived the supervisor\n{}",
        w.diagnostics()
    );
}

#[test]
fn status_during_a_stop_answers_or_says_the_supervisor_stopped() {
    let w = Sysg::new();
    let base = unique_number();
    let mut yaml = String::from("services:\n");
    for i in 0..200 {
        writeln!(yaml, "  s{i}:\n    command: \"sleep {}\"", base + i).unwrap();
    }
    let cfg = w.write_config(&yaml);
    w.start_daemon(&cfg);
    let up = wait_until(Duration::from_secs(60), || {
        w.status_json()["services"]
            .as_array()
            .is_some_and(|s| s.iter().filter(|s| s["status"] == "running").count() == 200)
    });
    assert!(up, "not every service came up\n{}", w.diagnostics());
    let mut stop = w.command(&["stop"]);
    stop.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut stop = stop.spawn().expect("spawn stop");
    let mut asked = 0;
    loop {
        let out = w.run(&["status", "--json"]);
        asked += 1;
        assert!(
            out.code == 0 || out.code == 3,
            "status during a stop failed (ask {asked}): {out}"
        );
        if stop.try_wait().expect("try_wait").is_some() && out.code == 3 {
            break;
        }
        assert!(asked < 2000, "the stop never ended\n{}", w.diagnostics());
    }
    assert_eq!(stop.wait().unwrap().code(), Some(0));
}

#[test]
fn a_status_of_four_hundred_services_is_whole_and_names_each_process() {
    // Enough services for the /proc pass to be spread over threads and for the reply
    // (well over 128 KB) to be written by the worker that gathered it.
    let w = Sysg::new();
    let base = unique_number();
    let mut yaml = String::from("services:\n");
    for i in 0..400 {
        writeln!(yaml, "  s{i}:\n    command: \"sleep {}\"", base + i).unwrap();
    }
    let cfg = w.write_config(&yaml);
    w.start_daemon(&cfg);
    let up = wait_until(Duration::from_secs(60), || {
        w.status_json()["services"]
            .as_array()
            .is_some_and(|s| s.iter().filter(|s| s["status"] == "running").count() == 400)
    });
    assert!(up, "not every service came up\n{}", w.diagnostics());
    let out = w.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.len() > 128 * 1024,
        "a small report: {} bytes",
        out.stdout.len()
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("status --json");
    let services = doc["services"].as_array().expect("services");
    assert_eq!(services.len(), 400);
    for s in services {
        let i: u32 = s["name"].as_str().unwrap()[1..].parse().unwrap();
        let procs = s["processes"].as_array().expect("processes");
        let pid = s["pid"].as_i64().expect("pid");
        let leader = procs.iter().find(|p| p["pid"].as_i64() == Some(pid));
        assert_eq!(
            leader.and_then(|p| p["command"].as_str()),
            Some(format!("sleep {}", base + i).as_str()),
            "{s}"
        );
    }
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
}
