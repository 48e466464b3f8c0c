//! The seed's multi-service playground (examples/multi-service), time-compressed: a cron
//! job counting into lines.txt, a worker mirroring it into echo.txt, and a Python
//! service that crashes once, is restarted (firing a broken-quoting on_restart.error
//! hook), and then exits 0 for good (SPEC §3, the seed example).

mod common;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

/// The compressed scenario takes ~10 s; leave room for a loaded box.
const SCENARIO: Duration = Duration::from_secs(45);

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/multi-service")
}

/// `text` with every `(from, to)` applied; each `from` must occur.
fn substitute(file: &str, text: &str, subs: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (from, to) in subs {
        assert!(
            out.contains(from),
            "{file}: {from:?} not found; the example changed, update this test"
        );
        out = out.replace(from, to);
    }
    out
}

fn copy_compressed(w: &Sysg, file: &str, subs: &[(&str, &str)]) {
    let text = std::fs::read_to_string(example_dir().join(file)).unwrap();
    std::fs::write(w.proj.join(file), substitute(file, &text, subs)).unwrap();
}

fn have_python3(w: &Sysg) -> bool {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "python3 -c 'import sys; sys.exit(0)'"])
        .env("HOME", &w.home);
    run_with_limit(cmd, Duration::from_secs(30)).code == 0
}

fn log_of(w: &Sysg, name: &str) -> String {
    ["stdout", "stderr"]
        .iter()
        .map(|k| std::fs::read_to_string(w.state.join(format!("logs/{name}_{k}.log"))))
        .filter_map(Result::ok)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_config_validates_unmodified() {
    let w = Sysg::new();
    let cfg = example_dir().join("systemg.yaml");
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("OK: 3 services (1 cron)"), "{out}");
}

#[test]
fn multi_service_playground_time_compressed() {
    let w = Sysg::new();
    if !have_python3(&w) {
        skip::root_only("python3 is not available");
        return;
    }
    copy_compressed(&w, "count_number.sh", &[("120", "8")]);
    copy_compressed(&w, "echo_lines.sh", &[("120", "8"), ("sleep 5", "sleep 1")]);
    copy_compressed(
        &w,
        "py_size.py",
        &[
            ("PRINT_INTERVAL_SECONDS = 10", "PRINT_INTERVAL_SECONDS = 1"),
            ("FAILURE_AFTER_SECONDS = 60", "FAILURE_AFTER_SECONDS = 3"),
            ("EXIT_AFTER_SECONDS = 120", "EXIT_AFTER_SECONDS = 8"),
        ],
    );
    // Same config, cron every 2 s and a 1 s backoff; the curl hook is kept verbatim.
    let yaml = std::fs::read_to_string(example_dir().join("systemg.yaml")).unwrap();
    let yaml = substitute(
        "systemg.yaml",
        &yaml,
        &[
            ("backoff: \"5s\"", "backoff: \"1s\""),
            ("\"*/10 * * * * *\"", "\"*/2 * * * * *\""),
        ],
    );
    assert!(yaml.contains("I goof"), "the curl hook is gone");
    let cfg = w.proj.join("systemg.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    w.start_daemon(&cfg);

    // echo_lines depends on the cron job, which imposes no wait.
    w.wait_running_pid("echo_lines", None);
    let first_py = w.wait_running_pid("py_size", None);

    // The cron job counts into lines.txt: 1, 2, ...
    let ok = wait_until(SCENARIO, || {
        w.read_proj("lines.txt")
            .is_some_and(|t| t.contains("The number is 2"))
    });
    assert!(
        ok,
        "lines.txt: {:?}\n{}",
        w.read_proj("lines.txt"),
        w.diagnostics()
    );
    let lines = w.read_proj("lines.txt").unwrap();
    for (i, line) in lines.lines().enumerate() {
        assert_eq!(line, format!("The number is {}", i + 1), "{lines}");
    }

    // echo_lines mirrors the newest line into echo.txt.
    let ok = wait_until(SCENARIO, || {
        w.read_proj("echo.txt")
            .is_some_and(|t| t.contains("The last line is: The number is "))
    });
    assert!(
        ok,
        "echo.txt: {:?}\n{}",
        w.read_proj("echo.txt"),
        w.diagnostics()
    );

    // py_size crashes once and is restarted.
    let ok = wait_until(SCENARIO, || {
        log_of(&w, "py_size").contains("simulated failure")
    });
    assert!(
        ok,
        "py_size never crashed; its logs: {}\n{}",
        log_of(&w, "py_size"),
        w.diagnostics()
    );
    let mut svc = None;
    let ok = wait_until(SCENARIO, || {
        svc = w.service("py_size");
        svc.as_ref()
            .is_some_and(|s| s["restart_count"].as_u64() >= Some(1))
    });
    assert!(
        ok,
        "py_size was not restarted: {svc:#?}\n{}",
        w.diagnostics()
    );

    // The broken curl hook ran at the failure and was logged as failing.
    let mut hook_line = None;
    let ok = wait_until(SCENARIO, || {
        hook_line = w
            .supervisor_log()
            .lines()
            .find(|l| {
                l.contains("py_size on_restart.error")
                    && l.contains("exit")
                    && !l.contains("started (pid")
            })
            .map(str::to_string);
        hook_line.is_some()
    });
    assert!(
        ok,
        "no on_restart.error hook result in supervisor.log\n{}",
        w.diagnostics()
    );
    let hook_line = hook_line.unwrap();
    let code: Option<i64> = hook_line
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .and_then(|s| s.parse().ok());
    assert!(
        code.is_some_and(|c| c != 0),
        "the broken hook should fail with a non-zero exit: {hook_line}"
    );

    // The second run exits 0 at the end of its window and stays exited.
    let mut svc = None;
    let ok = wait_until(SCENARIO, || {
        svc = w.service("py_size");
        svc.as_ref()
            .is_some_and(|s| s["status"] == "exited" && s["exit_code"] == 0)
    });
    assert!(
        ok,
        "py_size did not finish with exit 0: {svc:#?}\nlogs: {}\n{}",
        log_of(&w, "py_size"),
        w.diagnostics()
    );
    let svc = svc.unwrap();
    let restarts = svc["restart_count"].as_u64().unwrap();
    assert!(restarts >= 1, "{svc:#}");
    assert!(
        log_of(&w, "py_size").contains("completed monitoring window"),
        "{}",
        log_of(&w, "py_size")
    );
    assert_ne!(
        w.state_json()["services"]["py_size"]["pid"],
        first_py,
        "state.json still has the crashed instance"
    );
    assert!(
        holds_for(Duration::from_secs(2), || {
            w.service("py_size").is_some_and(|s| {
                s["status"] == "exited" && s["restart_count"].as_u64() == Some(restarts)
            })
        }),
        "py_size was restarted after exiting 0\n{}",
        w.diagnostics()
    );

    // echo_lines exits 0 at the end of its window.
    let mut echo = None;
    let ok = wait_until(SCENARIO, || {
        echo = w.service("echo_lines");
        echo.as_ref()
            .is_some_and(|s| s["status"] == "exited" && s["exit_code"] == 0)
    });
    assert!(
        ok,
        "echo_lines did not exit 0: {echo:#?}\n{}",
        w.diagnostics()
    );
    assert!(
        log_of(&w, "echo_lines").contains("echo_lines exiting after 8 seconds."),
        "{}",
        log_of(&w, "echo_lines")
    );

    let status = w.status_ok();
    assert!(status.contains("● [cron] count_number - "), "{status}");
    assert!(status.contains(" | exit 0"), "{status}");
}
