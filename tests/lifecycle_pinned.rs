//! The service lifecycle seen from outside (SPEC §3), for the cells of the state table
//! no other test pins: backoff doubling, hooks on a failed spawn and on a signal the
//! supervisor did not send, per-run hooks of cron jobs, a health probe that hangs, and a
//! foreground supervisor that ends by itself with the first failure's code.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A YAML (single-quoted) hook command that appends
/// `service|hook|outcome|exit code|pid` to `file`.
fn record_hook(file: &Path) -> String {
    format!(
        "'echo \"$SYSG_SERVICE|$SYSG_HOOK|$SYSG_OUTCOME|$SYSG_EXIT_CODE|$SYSG_PID\" >> {}'",
        file.display()
    )
}

/// The lines `record_hook` wrote, split into their five fields.
fn hook_records(file: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() == 5)
        .collect()
}

/// A YAML (single-quoted) hook command, run in the service's dir, that saves its whole
/// environment as `<hook>.<outcome>.env` (written aside, then renamed, so a reader never
/// sees half of it) and appends `<hook>.<outcome>` to `fired.txt`.
fn env_hook() -> String {
    "'n=$SYSG_HOOK.$SYSG_OUTCOME; env > $n.$$.tmp && mv $n.$$.tmp $n.env; echo $n >> fired.txt'"
        .to_string()
}

/// `KEY=VALUE` lines of an env file written by `env_hook`.
fn read_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn backoff_doubles_after_each_consecutive_failure_up_to_backoff_max() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          flappy:
            command: \"date +%s.%N >> starts.txt; exit 1\"
            restart_policy: \"always\"
            backoff: \"300ms\"
            backoff_max: \"2400ms\"
            max_restarts: 5
        ",
    );
    let svc = w.wait_status("flappy", "failed");
    assert_eq!(
        svc["reason"],
        "gave up after 5 restarts",
        "{svc:#}\n{}",
        w.diagnostics()
    );

    // What the supervisor says it waits: doubled each time, then held at the cap.
    let announced: Vec<u64> = w
        .supervisor_log()
        .lines()
        .filter_map(|l| l.split_once("flappy: restarting in ").map(|(_, r)| r))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        announced,
        [300, 600, 1200, 2400, 2400],
        "{}",
        w.diagnostics()
    );

    // What it actually does: the gaps between consecutive spawns.
    let starts: Vec<f64> = w
        .read_proj("starts.txt")
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().expect("a date +%s.%N timestamp"))
        .collect();
    assert_eq!(starts.len(), 6, "5 restarts are 6 runs: {starts:?}");
    let gaps: Vec<f64> = starts.windows(2).map(|p| p[1] - p[0]).collect();
    let wanted = [0.3, 0.6, 1.2, 2.4, 2.4];
    for (gap, want) in gaps.iter().zip(wanted) {
        // A timer never fires early; a loaded machine only makes gaps longer.
        assert!(
            *gap >= want * 0.9,
            "a gap of {gap:.3}s is shorter than the {want}s backoff: {gaps:?}"
        );
    }
    for i in 0..3 {
        assert!(
            gaps[i + 1] > gaps[i] * 1.25,
            "gap {} ({:.3}s) did not grow from gap {} ({:.3}s): {gaps:?}",
            i + 1,
            gaps[i + 1],
            i,
            gaps[i]
        );
    }
    assert!(
        gaps[4] < gaps[3] * 1.5,
        "the delay grew past backoff_max: {gaps:?}"
    );
}

#[test]
fn a_spawn_failure_from_a_missing_working_dir_is_reported_and_retried_by_policy() {
    let w = Sysg::new();
    let n = unique_number();
    let wd = w.proj.join("wd");
    std::fs::create_dir(&wd).unwrap();
    w.start_with(&format!(
        "
        services:
          web:
            command: \"exec sleep {n}\"
            working_dir: \"wd\"
            restart_policy: \"on-failure\"
            backoff: \"300ms\"
            stop_timeout: \"1s\"
        "
    ));
    let first = w.wait_running_pid("web", None);

    // The dir goes away under the running service: its next spawn cannot chdir there.
    std::fs::remove_dir(&wd).unwrap();
    let out = w.run(&["restart", "-s", "web"]);
    assert_eq!(
        out.code, 1,
        "restart -s must report the failed spawn\n{out}"
    );
    assert!(
        out.all().contains("cannot start web")
            && out
                .all()
                .contains(&format!("{} does not exist", wd.display())),
        "{out}"
    );
    w.wait_log_line(&["web: cannot start: working_dir", "does not exist"]);
    let mut last = None;
    let ok = wait_until(DEADLINE, || {
        last = w.service("web");
        last.as_ref().is_some_and(|s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("cannot start: working_dir"))
        })
    });
    assert!(
        ok,
        "no spawn failure in status: {last:#?}\n{}",
        w.diagnostics()
    );
    assert!(
        processes_exactly(&format!("sleep {n}")).is_empty(),
        "the old instance survived its restart"
    );

    // A failed spawn is a failure like an exit before up: on-failure tries again.
    let ok = wait_until(DEADLINE, || {
        w.supervisor_log()
            .matches("web: cannot start: working_dir")
            .count()
            >= 2
    });
    assert!(ok, "the failed spawn was not retried\n{}", w.diagnostics());
    assert!(
        w.service("web").unwrap()["restart_count"].as_u64() >= Some(1),
        "{}",
        w.diagnostics()
    );

    // And once the dir is back, a retry succeeds.
    std::fs::create_dir(&wd).unwrap();
    let second = w.wait_running_pid("web", Some(first));
    assert_eq!(
        std::fs::read_link(format!("/proc/{second}/cwd")).ok(),
        Some(wd.clone()),
        "the new instance does not run in its working_dir"
    );
}

#[test]
fn on_start_error_fires_when_the_spawn_fails() {
    let w = Sysg::new();
    let n = unique_number();
    let wd = w.proj.join("wd");
    std::fs::create_dir(&wd).unwrap();
    let hooks = w.root().join("hooks.txt");
    w.start_with(&format!(
        "
        services:
          web:
            command: \"exec sleep {n}\"
            working_dir: \"wd\"
            restart_policy: \"never\"
            stop_timeout: \"1s\"
            hooks:
              on_start:
                error:
                  command: {rec}
        ",
        rec = record_hook(&hooks)
    ));
    w.wait_running_pid("web", None);
    std::fs::remove_dir(&wd).unwrap();
    let out = w.run(&["restart", "-s", "web"]);
    assert_eq!(out.code, 1, "{out}");
    w.wait_log_line(&["web: cannot start: working_dir"]);

    let mut lines = Vec::new();
    let ok = wait_until(DEADLINE, || {
        lines = hook_records(&hooks);
        !lines.is_empty()
    });
    assert!(
        ok,
        "on_start.error never ran for the failed spawn\n{}",
        w.diagnostics()
    );
    let line = &lines[0];
    assert_eq!(line[..3], ["web", "on_start", "error"], "{lines:?}");
    assert_eq!(line[4], "", "no process, so no SYSG_PID: {lines:?}");
    assert!(
        holds_for(Duration::from_millis(500), || hook_records(&hooks).len()
            == 1),
        "on_start.error fired more than once: {:?}",
        hook_records(&hooks)
    );
}

#[test]
fn on_stop_error_fires_with_exit_code_137_after_a_sigkill_from_outside() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          victim:
            command: \"exec sleep {n}\"
            restart_policy: \"never\"
            stop_timeout: \"1s\"
            hooks:
              on_start:
                success:
                  command: {hook}
                error:
                  command: {hook}
              on_stop:
                success:
                  command: {hook}
                error:
                  command: {hook}
        ",
        hook = env_hook()
    ));
    let pid = w.wait_running_pid("victim", None);
    // Up first, so the kill is a crash of a running service, not a failed start.
    w.wait_file("on_start.success.env");

    assert!(kill(-pid, libc::SIGKILL), "cannot kill group {pid}");
    w.wait_file("on_stop.error.env");
    let env = read_env(&w.proj_file("on_stop.error.env"));
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("SYSG_EXIT_CODE"), Some("137"), "{env:#?}");
    assert_eq!(get("SYSG_HOOK"), Some("on_stop"), "{env:#?}");
    assert_eq!(get("SYSG_OUTCOME"), Some("error"), "{env:#?}");
    assert_eq!(get("SYSG_SERVICE"), Some("victim"), "{env:#?}");
    assert_eq!(get("SYSG_PID"), Some(pid.to_string().as_str()), "{env:#?}");

    let svc = w.wait_status("victim", "exited");
    assert_eq!(svc["signal"], 9, "{svc:#}");
    w.wait_log_line(&["victim exited (SIGKILL)"]);
    // The env file is renamed into place before the hook appends to fired.txt.
    let fired = || {
        let text = w.read_proj("fired.txt").unwrap_or_default();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert!(wait_until(DEADLINE, || fired().len() >= 2), "{:?}", fired());
    assert!(
        holds_for(Duration::from_secs(1), || fired()
            == ["on_start.success", "on_stop.error"]),
        "hooks fired: {:?}\n{}",
        w.read_proj("fired.txt"),
        w.diagnostics()
    );
    assert!(
        w.service_processes("victim").is_empty(),
        "restarted under policy never"
    );
}

#[test]
fn every_cron_run_fires_its_own_hooks() {
    let w = Sysg::new();
    let hooks = w.root().join("hooks.txt");
    let rec = record_hook(&hooks);
    let job = |name: &str, body: &str| {
        format!(
            "
          {name}:
            command: \"echo $$ >> {name}.runs; {body}\"
            cron:
              expression: \"* * * * * *\"
            hooks:
              on_start:
                success:
                  command: {rec}
                error:
                  command: {rec}
              on_stop:
                success:
                  command: {rec}
                error:
                  command: {rec}"
        )
    };
    w.start_with(&format!(
        "
        services:{}{}{}
        ",
        job("quick", "exit 0"),
        job("broken", "exit 4"),
        // Outlives the 1 s up rule: up, then done.
        job("slow", "sleep 1.6"),
    ));

    // Each job's first three runs, by the pid each wrote (its SYSG_PID).
    let runs = |name: &str| -> Vec<String> {
        let mut pids = Vec::new();
        let ok = wait_until(DEADLINE, || {
            pids = w
                .read_proj(&format!("{name}.runs"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            pids.len() >= 3
        });
        assert!(ok, "{name} ran {} times\n{}", pids.len(), w.diagnostics());
        pids.truncate(3);
        pids
    };
    // What each run must fire, as `hook.outcome:SYSG_EXIT_CODE`.
    let expected = [
        ("quick", vec!["on_stop.success:0"]),
        ("broken", vec!["on_start.error:4", "on_stop.error:4"]),
        ("slow", vec!["on_start.success:", "on_stop.success:0"]),
    ];
    let mut checked = Vec::new();
    for (name, want) in &expected {
        for pid in runs(name) {
            checked.push((*name, pid, want));
        }
    }
    let fired = |name: &str, pid: &str| -> Vec<String> {
        let mut got: Vec<String> = hook_records(&hooks)
            .into_iter()
            .filter(|f| f[0] == name && f[4] == pid)
            .map(|f| format!("{}.{}:{}", f[1], f[2], f[3]))
            .collect();
        got.sort();
        got
    };
    let all_fired = || {
        checked
            .iter()
            .all(|(name, pid, want)| fired(name, pid).len() >= want.len())
    };
    assert!(
        wait_until(DEADLINE, all_fired),
        "hooks missing; fired: {:#?}\n{}",
        hook_records(&hooks),
        w.diagnostics()
    );
    for (name, pid, want) in &checked {
        assert_eq!(&fired(name, pid), *want, "hooks of {name} run {pid}");
    }
    // The runs' exit codes are recorded like their hooks saw them.
    let history = w.cron_history("broken");
    assert!(
        history
            .iter()
            .filter(|r| r["exit_code"].is_number())
            .all(|r| r["exit_code"] == 4),
        "{history:#?}"
    );
}

#[test]
fn a_health_check_that_hangs_past_its_timeout_is_a_failed_attempt_and_is_killed() {
    let w = Sysg::new();
    let n = unique_number();
    let m = unique_number();
    w.start_with(&format!(
        "
        services:
          api:
            command: \"echo $$ >> starts.txt; exec sleep {n}\"
            restart_policy: \"on-failure\"
            backoff: \"200ms\"
            max_restarts: 1
            stop_timeout: \"1s\"
            health_check:
              command: \"echo $$ >> probes.txt; sleep {m}; true\"
              interval: \"100ms\"
              timeout: \"1s\"
              retries: 2
        "
    ));
    let svc = w.wait_status("api", "failed");
    assert_eq!(svc["reason"], "gave up after 1 restart", "{svc:#}");
    w.wait_log_line(&[
        "api: health check failed 2 times, last: timed out after 1000ms",
        "stopping it",
    ]);
    // Two instances (one restart), each stopped after two attempts that both hung.
    assert_eq!(w.count_proj_lines("starts.txt"), 2, "{}", w.diagnostics());
    let probes: Vec<i32> = w
        .read_proj("probes.txt")
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(probes.len(), 4, "{probes:?}\n{}", w.diagnostics());
    assert_eq!(
        w.supervisor_log()
            .matches("health check failed 2 times, last: timed out after 1000ms")
            .count(),
        2,
        "{}",
        w.diagnostics()
    );

    // Neither a hung probe nor what it started outlives its timeout, not even as a zombie.
    let sleeper = format!("sleep {m}");
    let gone = |pid: i32| match proc_state(pid) {
        None => true,
        // A reused pid: alive, but no longer the probe.
        Some(s) => s != 'Z' && !cmdline(pid).contains(&format!("probes.txt; {sleeper}")),
    };
    let ok = wait_until(DEADLINE, || {
        processes_exactly(&sleeper).is_empty() && probes.iter().all(|&p| gone(p))
    });
    assert!(
        ok,
        "probe processes left: sleepers {:?}, probes {:?}",
        processes_exactly(&sleeper),
        probes
            .iter()
            .map(|&p| (p, proc_state(p)))
            .collect::<Vec<_>>()
    );
    assert!(
        w.service_processes("api").is_empty(),
        "{:?}",
        w.service_processes("api")
    );
}

#[test]
fn foreground_supervisor_ends_by_itself_with_the_first_failures_exit_code() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "
        services:
          bad:
            command: \"exit 3\"
            restart_policy: \"never\"
          good:
            command: \"echo all-good\"
          later:
            command: \"sleep 1; echo later-done; exit 5\"
            restart_policy: \"never\"
        ",
    );
    let out = run_with_limit(w.command(&["start", "-c", cfg.to_str().unwrap()]), DEADLINE);
    assert_eq!(out.code, 3, "{out}\n{}", w.diagnostics());
    // It waited for the service that was still running, and recorded every end.
    assert!(out.all().contains("good | all-good"), "{out}");
    assert!(out.all().contains("later | later-done"), "{out}");
    let state = w.state_json();
    let svc = |name: &str| state["services"][name].clone();
    assert_eq!(svc("bad")["exit_code"], 3, "{state:#}");
    assert_eq!(svc("good")["exit_code"], 0, "{state:#}");
    assert_eq!(svc("later")["exit_code"], 5, "{state:#}");
    assert!(
        w.supervisor_log().contains("supervisor stopped (exit 3)"),
        "{}",
        w.supervisor_log()
    );
    assert!(!w.state.join("sysg.pid").exists(), "sysg.pid left behind");
    assert!(!w.state.join("control.sock").exists(), "socket left behind");
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
}
