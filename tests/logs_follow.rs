//! `sysg logs -f` (SPEC §4): it streams what a service writes after it started, and ends
//! by itself, exit 0, once the supervisor it was following alongside has stopped.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

/// Kills the follow process if the test fails before it has exited.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The tick numbers in `text`: lines of the log file, or of `logs -f`, which prefixes
/// each with `ticker | ` (the snapshot part and the followed part alike).
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| l.strip_prefix("ticker | ").unwrap_or(l))
        .filter_map(|l| l.trim_end().strip_prefix("tick-")?.parse().ok())
        .collect()
}

#[test]
fn follow_streams_new_lines_and_exits_0_when_the_supervisor_stops() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          ticker:
            command: "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done"
            stop_timeout: "1s"
        "#,
    );
    let log = w.state.join("logs/ticker_stdout.log");
    assert!(
        wait_until(DEADLINE, || !ticks(
            &std::fs::read_to_string(&log).unwrap_or_default()
        )
        .is_empty()),
        "ticker never wrote\n{}",
        w.diagnostics()
    );

    // `-n 1`: the initial tail is exactly one tick line, so any further one was written
    // after `logs -f` had started and reached us by following.
    let mut cmd = w.command(&["logs", "ticker", "-f", "-n", "1", "-k", "stdout"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut follow = Reap(cmd.spawn().expect("cannot run sysg logs -f"));
    let stdout = follow.0.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut text = seen.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    let streamed = wait_until(DEADLINE, || ticks(&seen.lock().unwrap()).len() >= 3);
    assert!(
        streamed,
        "logs -f streamed nothing new:\n{}\n{}",
        seen.lock().unwrap(),
        w.diagnostics()
    );

    w.run_ok(&["stop"]);
    let mut status = None;
    let exited = wait_until(DEADLINE, || {
        status = follow.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(
        exited,
        "logs -f still running after the supervisor stopped; output:\n{}",
        seen.lock().unwrap()
    );
    assert_eq!(status.unwrap().code(), Some(0), "logs -f exit status");
    reader.join().unwrap();

    // Everything up to the service's very last line was printed, in order, once each,
    // all in one form.
    let text = seen.lock().unwrap().clone();
    assert!(
        text.lines().all(|l| l.starts_with("ticker | tick-")),
        "{text}"
    );
    let got = ticks(&text);
    assert!(
        got.windows(2).all(|p| p[1] == p[0] + 1),
        "gap or repeat:\n{text}"
    );
    let written = ticks(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(
        got.last(),
        written.last(),
        "the last line written was not printed:\n{text}"
    );
}
