//! A foreground supervisor whose terminal stops reading keeps supervising: every line
//! still reaches the log files, status and restarts answer, and the echo leaves lines out
//! (saying how many) instead of blocking.
mod common;

use common::*;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

const LINES: usize = 200_000;

/// Waits for the foreground supervisor to exit, failing the test after DEADLINE.
fn wait_exit(child: &mut std::process::Child) {
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the supervisor did not exit");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_terminal_that_stops_reading_does_not_stall_the_supervisor() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        services:
          chatty:
            command: "seq 1 {LINES}; exec sleep {n}"
            stop_timeout: "1s"
          other:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    // Nobody reads the supervisor's stdout for now: its pipe fills after 64 KiB.
    let mut child = w
        .command(&["start", "-c", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sysg in the foreground");

    let log = w.state.join("logs").join("chatty_stdout.log");
    let all_logged = wait_until(DEADLINE, || count_lines_in(&log) == LINES);
    assert!(
        all_logged,
        "{} of {LINES} lines logged while the terminal was not reading\n{}",
        count_lines_in(&log),
        w.diagnostics()
    );
    let other = w.wait_running_pid("other", None);
    w.run_ok(&["restart", "-s", "other"]);
    w.wait_running_pid("other", Some(other));

    // Now the terminal reads again: the backlog and the note come out.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    w.run_ok(&["stop"]);
    wait_exit(&mut child);
    let shown = reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    let shown_lines = shown.lines().filter(|l| l.starts_with("chatty | ")).count();
    assert!(
        shown.starts_with("chatty | 1\n"),
        "{}",
        &shown[..200.min(shown.len())]
    );
    let note = stderr
        .lines()
        .find(|l| l.contains("line(s) not shown here"))
        .unwrap_or_else(|| panic!("no note about left-out lines on stderr:\n{stderr}"));
    let dropped: usize = note
        .trim_start_matches("sysg: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {note:?}"));
    assert!(dropped > 0, "{note}");
    assert_eq!(
        shown_lines + dropped,
        LINES,
        "shown + left out must be every line ({shown_lines} + {dropped})"
    );
}

/// A terminal that keeps up sees every line, even when one read of the service's pipe
/// becomes a large echo (many short lines, a long service name).
#[test]
fn a_reading_terminal_gets_every_line() {
    let w = Sysg::new();
    let name = "a_very_long_service_name_for_testing_the_echo";
    let cfg = w.write_config(&format!(
        r#"
        services:
          {name}:
            command: "head -c 65536 /dev/zero | tr '\\000' '\\n'"
        "#
    ));
    let out_path = w.root().join("echo.out");
    let err_path = w.root().join("echo.err");
    let mut child = w
        .command(&["start", "-c", cfg.to_str().unwrap(), "--log-level", "off"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start sysg in the foreground");
    // With nothing left to run, a foreground supervisor exits by itself.
    wait_exit(&mut child);
    let shown = std::fs::read_to_string(&out_path).unwrap();
    let prefix = format!("{name} | ");
    assert_eq!(
        shown
            .lines()
            .filter(|l| *l == prefix.trim_end() || *l == prefix)
            .count(),
        65536,
        "not every line was echoed"
    );
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(!err.contains("not shown"), "{err}");
}
