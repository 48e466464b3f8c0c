//! Service output capture (SPEC §3 Logs) and `sysg logs` (SPEC §4).

mod common;
use common::*;

const THOUSAND_LINES: &str =
    "i=1; while [ $i -le 1000 ]; do echo line$i; i=$((i+1)); done; printf 'last-no-newline'";

fn expected_thousand() -> String {
    let mut s = String::new();
    for i in 1..=1000 {
        s.push_str(&format!("line{i}\n"));
    }
    s.push_str("last-no-newline");
    s
}

/// The log holds `want` exactly; the supervisor may terminate an unterminated last line with
/// one `\n` when the pipe closes, so the next instance's output starts on its own line.
fn log_is(got: &str, want: &str) -> bool {
    got == want || got.strip_suffix('\n') == Some(want)
}

fn start_chatty(w: &Sysg) {
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          chatty:
            command: "{THOUSAND_LINES}; echo err-line-1 >&2; printf 'err-partial' >&2"
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_status("chatty", "exited");
}

#[test]
fn every_stdout_line_reaches_the_log_in_order_with_the_partial_last_line() {
    let w = Sysg::new();
    start_chatty(&w);
    let path = w.state.join("logs/chatty_stdout.log");
    let want = expected_thousand();
    let mut got = String::new();
    let ok = wait_until(DEADLINE, || {
        got = std::fs::read_to_string(&path).unwrap_or_default();
        log_is(&got, &want)
    });
    assert!(
        ok,
        "stdout log differs: {} bytes vs {} expected; tail: {:?}",
        got.len(),
        want.len(),
        &got[got.len().saturating_sub(80)..]
    );
    assert_eq!(mode_of(&path), 0o600, "log file mode");
}

#[test]
fn stderr_goes_to_its_own_log() {
    let w = Sysg::new();
    start_chatty(&w);
    let err = w.state.join("logs/chatty_stderr.log");
    let mut got = String::new();
    let ok = wait_until(DEADLINE, || {
        got = std::fs::read_to_string(&err).unwrap_or_default();
        log_is(&got, "err-line-1\nerr-partial")
    });
    assert!(ok, "stderr log: {got:?}");
    let out = std::fs::read_to_string(w.state.join("logs/chatty_stdout.log")).unwrap();
    assert!(!out.contains("err-line-1"), "stderr leaked into stdout log");
}

#[test]
fn output_is_appended_across_restarts() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          twice:
            command: "echo run-{n}; echo x >> twice.runs; [ $(wc -l < twice.runs) -ge 2 ]"
            restart_policy: "on-failure"
            backoff: "100ms"
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let path = w.state.join("logs/twice_stdout.log");
    let line = format!("run-{n}\n");
    let ok = wait_until(DEADLINE, || {
        std::fs::read_to_string(&path).unwrap_or_default() == format!("{line}{line}")
    });
    assert!(
        ok,
        "log after two runs: {:?}\n{}",
        std::fs::read_to_string(&path).unwrap_or_default(),
        w.diagnostics()
    );
}

#[test]
fn logs_command_shows_header_and_last_lines() {
    let w = Sysg::new();
    start_chatty(&w);
    let path = w.state.join("logs/chatty_stdout.log");
    let want = expected_thousand();
    assert!(wait_until(DEADLINE, || log_is(
        &std::fs::read_to_string(&path).unwrap_or_default(),
        &want
    )));

    let out = w.run(&["logs", "chatty", "-n", "5", "-k", "stdout"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("chatty"), "{out}");
    let header = format!("==> {} <==", path.display());
    assert!(out.stdout.contains(&header), "no '{header}' line\n{out}");
    let lines: Vec<&str> = out.stdout.lines().map(str::trim_end).collect();
    for l in [
        "line997",
        "line998",
        "line999",
        "line1000",
        "last-no-newline",
    ] {
        assert!(lines.contains(&l), "{l} missing\n{out}");
    }
    assert!(
        !lines.contains(&"line996"),
        "more than 5 lines shown\n{out}"
    );
    let pos: Vec<usize> = ["line997", "line1000", "last-no-newline"]
        .iter()
        .map(|l| lines.iter().position(|x| x == l).unwrap())
        .collect();
    assert!(
        pos[0] < pos[1] && pos[1] < pos[2],
        "lines out of order\n{out}"
    );
}

#[test]
fn logs_command_without_kind_shows_both_files() {
    let w = Sysg::new();
    start_chatty(&w);
    let err = w.state.join("logs/chatty_stderr.log");
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("err-partial")));
    let out = w.run(&["logs", "chatty", "-n", "2"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!("==> {} <==", err.display())),
        "{out}"
    );
    assert!(out.stdout.contains("err-line-1"), "{out}");
    assert!(out.stdout.contains("last-no-newline"), "{out}");
}

#[test]
fn logs_work_without_a_supervisor() {
    let w = Sysg::new();
    start_chatty(&w);
    let path = w.state.join("logs/chatty_stdout.log");
    let want = expected_thousand();
    assert!(wait_until(DEADLINE, || log_is(
        &std::fs::read_to_string(&path).unwrap_or_default(),
        &want
    )));
    w.run_ok(&["stop"]);
    let out = w.run(&["logs", "chatty", "-n", "1", "-k", "stdout"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("last-no-newline"), "{out}");
}

#[test]
fn logs_of_unknown_service_exits_1() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let out = w.run(&["logs", "nosuch"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("nosuch"), "{out}");
}
