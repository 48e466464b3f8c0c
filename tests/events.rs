//! `sysg events`: each lifecycle transition pushed to subscribers as it happens, in
//! order: a crash and restart cycle, a failed probe, a cron fire, a hook run; `--json` one object a
//! line; the subscription ends with the supervisor.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;

/// `sysg events` (with `args`) running; its lines arrive on the receiver.
fn subscribe(w: &Sysg, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    let mut child = w.command(&all).stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until one satisfies `last` (inclusive), within the deadline.
fn until(rx: &mpsc::Receiver<String>, last: impl Fn(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = last(&line);
                got.push(line);
                if done {
                    return got;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no such line came; got:\n{}", got.join("\n"));
}

#[test]
fn a_crash_and_restart_cycle_is_told_in_order() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          flaky:
            command: "sh -c 'test -f crashed && exec sleep 600; touch crashed; sleep 1.2; exit 3'"
            restart_policy: "on-failure"
            backoff: "100ms"
        "#,
    );
    let (mut child, rx) = subscribe(&w, &["--json"]);
    let events: Vec<Value> = until(&rx, |l| {
        l.contains(r#""from":"running","to":"up""#) && l.contains("restarts\":1")
    })
    .iter()
    .map(|l| serde_json::from_str(l).expect("a JSON line"))
    .collect();
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e["service"] == "flaky" && e["kind"] == "state")
        .map(|e| {
            format!(
                "{}->{}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap()
            )
        })
        .collect();
    let tail: Vec<&str> = steps.iter().map(String::as_str).rev().take(4).collect();
    assert_eq!(
        tail,
        [
            "running->up",
            "starting->running",
            "backoff->starting",
            "up->backoff"
        ],
        "{steps:?}"
    );
    let crash = events.iter().find(|e| e["to"] == "backoff").unwrap();
    assert_eq!(crash["exit"], "exit code 3", "{crash}");
    assert!(crash["time"].as_str().unwrap().ends_with('Z'));
    // The subscription ends with the supervisor.
    w.run_ok(&["stop"]);
    let ended = wait_until(DEADLINE, || child.try_wait().unwrap().is_some());
    assert!(ended, "sysg events outlived the supervisor");
}

#[test]
fn failed_probes_and_cron_fires_are_told_as_text() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          web:
            command: "sleep 600"
            health_check:
              command: "echo not yet; false"
              interval: "200ms"
              retries: 1000
          tick:
            command: "true"
            cron: { expression: "* * * * * *" }
          hooked:
            command: "sleep 600"
            hooks:
              on_start:
                success: { command: "true" }
        "#,
    );
    let (mut child, rx) = subscribe(&w, &[]);
    // Each of these comes, in whatever order the clock gives them.
    let wanted = [
        " web probe failed",
        " tick cron fired",
        " hooked hook on_start.success: exit code 0 in ",
    ];
    let seen = std::cell::RefCell::new(Vec::new());
    let lines = until(&rx, |l| {
        let mut seen = seen.borrow_mut();
        seen.extend(wanted.iter().filter(|w| l.contains(**w)).copied());
        wanted.iter().all(|w| seen.contains(w))
    });
    let probe = lines.iter().find(|l| l.contains(wanted[0])).unwrap();
    // `HH:MM:SS.mmm web probe failed: ...`
    assert_eq!(probe.as_bytes()[2], b':', "{probe}");
    assert_eq!(probe.as_bytes()[8], b'.', "{probe}");
    let hook = lines.iter().find(|l| l.contains(wanted[2])).unwrap();
    assert!(hook.ends_with("ms"), "{hook}");
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || child.try_wait().unwrap().is_some()));
}

#[test]
fn events_without_a_supervisor_say_so() {
    let w = Sysg::new();
    let out = w.run(&["events"]);
    assert_ne!(out.code, 0);
    assert!(out.all().contains("No supervisor running"), "{out}");
}
