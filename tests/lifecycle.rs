//! Starting, inspecting and stopping the supervisor and single services (SPEC §1, §3, §4).

mod common;
use common::*;

fn sleeper(name: &str) -> String {
    format!(
        "
        services:
          {name}:
            command: \"sleep {}\"
            stop_timeout: \"1s\"
        ",
        unique_number()
    )
}

#[test]
fn daemon_start_reports_pid_and_creates_the_state_files() {
    let w = Sysg::new();
    let cfg = w.write_config(&sleeper("web"));
    let out = w.start_daemon(&cfg);
    let pid = w.supervisor_pid().expect("sysg.pid holds a pid");
    assert_eq!(
        out.stdout.trim(),
        format!("Supervisor started (pid {pid})"),
        "{out}"
    );
    assert!(alive(pid), "supervisor {pid} is not running");

    assert_eq!(mode_of(&w.state), 0o700, "state dir mode");
    let sock = w.state.join("control.sock");
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket());
    }
    assert_eq!(mode_of(&sock), 0o600, "control.sock mode");
    let pid_text = std::fs::read_to_string(w.state.join("sysg.pid")).unwrap();
    assert_eq!(pid_text, format!("{pid}\n"));
    let hint = std::fs::read_to_string(w.state.join("config_hint")).unwrap();
    assert_eq!(hint.trim(), cfg.to_str().unwrap());
    assert!(w.state.join("supervisor.log").is_file());
    assert!(w.state.join("logs").is_dir());

    w.wait_running_pid("web", None);
    let ok = wait_until(DEADLINE, || {
        let pids: serde_json::Value = std::fs::read_to_string(w.state.join("pid.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let state: serde_json::Value = std::fs::read_to_string(w.state.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        pids["services"]["web"].is_i64() && state["services"]["web"]["status"] == "running"
    });
    assert!(
        ok,
        "pid.json / state.json do not record web as running\n{}",
        w.diagnostics()
    );
    for f in ["pid.json", "state.json"] {
        assert_eq!(mode_of(&w.state.join(f)), 0o600, "{f} mode");
    }
}

#[test]
fn status_shows_a_running_service_with_its_main_pid() {
    let w = Sysg::new();
    w.start_with(&sleeper("web"));
    let pid = w.wait_running_pid("web", None);
    let out = w.status_text();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("● web Running"), "{out}");
    assert!(out.stdout.contains(&format!("Main PID: {pid}")), "{out}");
    assert!(
        !out.stdout.contains('\x1b'),
        "colour with NO_COLOR and no TTY\n{out}"
    );
}

#[test]
fn status_json_lists_every_service() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          one:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
          two:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    w.wait_running_pid("one", None);
    w.wait_running_pid("two", None);
    let v = w.status_json();
    let names: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"one") && names.contains(&"two"), "{v:#}");
    assert_eq!(names.len(), 2, "{v:#}");
}

#[test]
fn stop_shuts_the_supervisor_down_and_removes_pid_and_socket() {
    let w = Sysg::new();
    w.start_with(&sleeper("web"));
    let service_pid = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();

    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Supervisor shutting down"), "{out}");
    // `stop` returns only after the supervisor has exited.
    assert!(
        !alive(sup),
        "supervisor {sup} still alive after stop returned"
    );
    assert!(!w.state.join("sysg.pid").exists(), "sysg.pid left behind");
    assert!(
        !w.state.join("control.sock").exists(),
        "control.sock left behind"
    );
    assert!(
        !alive(service_pid),
        "service {service_pid} survived the stop"
    );
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
    assert!(w.state.join("config_hint").exists(), "config_hint is kept");
}

#[test]
fn second_stop_says_no_supervisor_running() {
    let w = Sysg::new();
    w.start_with(&sleeper("web"));
    w.run_ok(&["stop"]);
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("No supervisor running"), "{out}");
}

#[test]
fn stop_without_any_supervisor_ever_is_fine() {
    let w = Sysg::new();
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("No supervisor running"), "{out}");
}

#[test]
fn status_without_supervisor_exits_3_and_shows_last_known_state() {
    let w = Sysg::new();
    w.start_with(&sleeper("web"));
    w.wait_running_pid("web", None);
    w.run_ok(&["stop"]);
    let out = w.status_text();
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.all().contains("web"),
        "last known state should list web\n{out}"
    );
    let json = w.run(&["status", "--json"]);
    assert_eq!(json.code, 3, "{json}");
    let v: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("status --json is JSON even when stopped");
    assert!(service_in(&v, "web").is_some(), "{v:#}");
}

#[test]
fn starting_twice_fails_with_already_running() {
    let w = Sysg::new();
    let cfg = w.write_config(&sleeper("web"));
    w.start_daemon(&cfg);
    let first = w.supervisor_pid().unwrap();
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.all().to_lowercase().contains("already running"),
        "{out}"
    );
    assert_eq!(
        w.supervisor_pid(),
        Some(first),
        "the running supervisor was replaced"
    );
    assert!(alive(first));
}

#[test]
fn foreground_start_echoes_output_and_exits_when_nothing_can_run() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          alpha:
            command: "echo hello-from-alpha"
          beta:
            command: "echo first-beta; echo second-beta"
        "#,
    );
    let out = run_with_limit(
        w.command(&["start", "-c", cfg.to_str().unwrap()]),
        COMMAND_LIMIT,
    );
    assert_eq!(out.code, 0, "{out}");
    let text = out.all();
    assert!(text.contains("alpha | hello-from-alpha"), "{out}");
    assert!(text.contains("beta | first-beta"), "{out}");
    assert!(text.contains("beta | second-beta"), "{out}");
    let first = text.find("beta | first-beta").unwrap();
    let second = text.find("beta | second-beta").unwrap();
    assert!(first < second, "lines out of order\n{out}");
    assert!(
        !w.state.join("sysg.pid").exists(),
        "foreground supervisor left sysg.pid"
    );
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
}

#[test]
fn foreground_start_stops_on_sigterm_and_exits_0() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let mut cmd = w.command(&["start", "-c", cfg.to_str().unwrap()]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let ok = wait_until(DEADLINE, || !w.service_processes("web").is_empty());
    assert!(ok, "service never started\n{}", w.diagnostics());
    kill(child.id() as i32, libc::SIGTERM);
    let mut status = None;
    let ok = wait_until(DEADLINE, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ok {
        let _ = child.kill();
        let _ = child.wait();
        panic!("foreground supervisor ignored SIGTERM\n{}", w.diagnostics());
    }
    assert_eq!(status.unwrap().code(), Some(0), "exit status after SIGTERM");
    assert!(w.service_processes("web").is_empty(), "service survived");
}

#[test]
fn stop_one_service_leaves_the_others_running() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          a:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            restart_policy: \"always\"
            backoff: \"100ms\"
          b:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let a_pid = w.wait_running_pid("a", None);
    let b_pid = w.wait_running_pid("b", None);

    let out = w.run(&["stop", "-s", "a"]);
    assert_eq!(out.code, 0, "{out}");
    w.wait_status("a", "stopped");
    assert!(!alive(a_pid), "a's process {a_pid} survived stop -s");
    assert!(w.service_processes("a").is_empty(), "a has processes left");
    let text = w.status_text();
    assert!(text.stdout.contains("● a Stopped"), "{text}");
    assert_eq!(w.service_pid("b"), Some(b_pid), "b was disturbed");
    assert_eq!(w.service_status("b").as_deref(), Some("running"));
    assert!(
        w.supervisor_pid().is_some_and(alive),
        "supervisor went away"
    );
    // A service stopped on request is not restarted, even with restart_policy always.
    assert!(
        holds_for(std::time::Duration::from_millis(800), || w
            .service_status("a")
            .as_deref()
            == Some("stopped")),
        "a was restarted after stop -s\n{}",
        w.diagnostics()
    );
}

#[test]
fn start_one_service_after_stopping_it() {
    let w = Sysg::new();
    w.start_with(&sleeper("a"));
    let old = w.wait_running_pid("a", None);
    w.run_ok(&["stop", "-s", "a"]);
    w.wait_status("a", "stopped");
    let out = w.run(&["start", "-s", "a"]);
    assert_eq!(out.code, 0, "{out}");
    let new = w.wait_running_pid("a", Some(old));
    assert!(alive(new));
}

#[test]
fn restart_one_service_gives_it_a_new_pid() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          a:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
          b:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let old = w.wait_running_pid("a", None);
    let b_pid = w.wait_running_pid("b", None);
    let out = w.run(&["restart", "-s", "a"]);
    assert_eq!(out.code, 0, "{out}");
    let new = w.wait_running_pid("a", Some(old));
    assert_ne!(new, old);
    assert!(!alive(old), "old instance {old} survived the restart");
    assert_eq!(
        w.service_processes("a")
            .iter()
            .filter(|&&p| pgid_of(p) == Some(new))
            .count(),
        w.service_processes("a").len()
    );
    assert_eq!(w.service_pid("b"), Some(b_pid), "b was disturbed");
}

#[test]
fn unknown_service_in_stop_is_an_error() {
    let w = Sysg::new();
    w.start_with(&sleeper("a"));
    let out = w.run(&["stop", "-s", "nosuch"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.all().contains("nosuch"), "{out}");
    assert!(w.supervisor_pid().is_some_and(alive));
}

#[test]
fn restart_rereads_the_config_starts_what_was_added_and_keeps_the_rest() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.start_with(&format!(
        "
        services:
          a:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let old = w.wait_running_pid("a", None);
    w.write_config(&format!(
        "
        services:
          a:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
          c:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    let out = w.run(&["restart", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    w.wait_running_pid("c", None);
    assert_eq!(
        w.service_pid("a"),
        Some(old),
        "an unchanged service was bounced"
    );
    // --all bounces everything, as a reload used to.
    let out = w.run(&["restart", "--all", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    w.wait_running_pid("a", Some(old));
    assert!(!alive(old));
}

#[test]
fn status_of_one_service() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          one:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
          two:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
        "
    ));
    w.wait_running_pid("one", None);
    let out = w.run(&["status", "-s", "two"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("● two "), "{out}");
    assert!(!out.stdout.contains("● one "), "{out}");
}

#[test]
fn sigterm_to_a_daemon_supervisor_stops_everything() {
    let w = Sysg::new();
    w.start_with(&sleeper("web"));
    let service = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGTERM));
    let ok = wait_until(DEADLINE, || !alive(sup));
    assert!(ok, "supervisor ignored SIGTERM\n{}", w.diagnostics());
    assert!(
        !alive(service),
        "service survived the supervisor's shutdown"
    );
    assert!(
        !w.state.join("sysg.pid").exists(),
        "sysg.pid left after clean shutdown"
    );
    assert!(
        !w.state.join("control.sock").exists(),
        "control.sock left after clean shutdown"
    );
}

#[test]
fn restart_with_daemonize_starts_a_supervisor_when_none_runs() {
    let w = Sysg::new();
    let cfg = w.write_config(&sleeper("web"));
    let out = w.run(&["restart", "-d", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Supervisor started (pid"), "{out}");
    w.wait_running_pid("web", None);
}

#[test]
fn custom_stop_signal_is_sent_to_the_group() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          polite:
            command: "trap 'echo got-int > sig.out; exit 0' INT; while :; do sleep 0.1; done"
            stop_signal: "INT"
            stop_timeout: "10s"
        "#,
    );
    w.wait_running_pid("polite", None);
    w.run_ok(&["stop", "-s", "polite"]);
    w.wait_status("polite", "stopped");
    assert_eq!(w.wait_file("sig.out").trim(), "got-int");
}
