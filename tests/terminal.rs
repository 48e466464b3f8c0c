//! What a user sees at the terminal with little or nothing running: supervisor.log
//! through `logs --supervisor`, a status and logs that say what to do next, and the
//! seed's state files exactly (both log files from the start, no lock left behind).

mod common;
use common::*;

#[test]
fn logs_supervisor_shows_lifecycle_events_and_follows_them() {
    let w = Sysg::new();
    let out = w.run_ok(&["logs", "--supervisor"]);
    assert!(out.stdout.contains("no supervisor.log yet"), "{out}");
    w.start_with("services:\n  api:\n    command: \"sleep 600\"\n");
    w.wait_running_pid("api", None);
    let out = w.run_ok(&["logs", "--supervisor", "-n", "50"]);
    let log = w.root().join("state/supervisor.log");
    assert!(
        out.stdout
            .starts_with(&format!("==> {} <==\n", log.display())),
        "{out}"
    );
    assert!(out.stdout.contains("started api (pid"), "{out}");
    let out = w.run_ok(&["logs", "--supervisor", "-n", "1"]);
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "a header and one line\n{out}"
    );
    // Following ends with the supervisor, after its last lines.
    let follower = w
        .command(&["logs", "--supervisor", "-f", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It follows once it holds the file open.
    let holds = || {
        std::fs::read_dir(format!("/proc/{}/fd", follower.id()))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).ok().as_deref() == Some(log.as_path()))
    };
    assert!(
        wait_until(DEADLINE, holds),
        "the follower never opened {log:?}"
    );
    w.run_ok(&["stop"]);
    let followed = follower.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(text.contains("supervisor stopped"), "{text}");
    // A service's name with it is a usage error.
    assert_eq!(w.run(&["logs", "--supervisor", "api"]).code, 2);
}

#[test]
fn with_nothing_running_status_and_logs_say_what_to_do() {
    let w = Sysg::new();
    let out = w.run(&["status"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout.contains("Start it with: sysg start -d -c FILE"),
        "{out}"
    );
    let out = w.run_ok(&["logs"]);
    assert!(out.stdout.starts_with("No logs to show"), "{out}");
    let cfg = w.start_with("services:\n  api:\n    command: \"sleep 600\"\n");
    w.run_ok(&["stop"]);
    let out = w.run(&["status"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "Start it with: sysg start -d -c {}",
            cfg.display()
        )),
        "{out}"
    );
}

#[test]
fn both_log_files_exist_from_the_start_and_no_lock_is_left_at_exit() {
    let w = Sysg::new();
    // Silent: it never writes a byte.
    w.start_with("services:\n  quiet:\n    command: \"sleep 600\"\n");
    w.wait_running_pid("quiet", None);
    let logs = w.root().join("state/logs");
    for file in ["quiet_stdout.log", "quiet_stderr.log"] {
        let meta = std::fs::metadata(logs.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}\n{}", w.diagnostics()));
        assert_eq!(meta.len(), 0, "{file}");
    }
    let lock = w.root().join("state/pid.json.lock");
    assert!(
        wait_until(DEADLINE, || lock.exists()),
        "pid.json is written under a lock"
    );
    w.run_ok(&["stop"]);
    assert!(
        !lock.exists(),
        "pid.json.lock left behind after a clean stop"
    );
    assert!(w.root().join("state/pid.json").exists());
}

#[test]
fn logs_grep_keeps_the_last_matching_lines_and_follow_prefixes_every_line() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          api:
            command: "sh -c 'for i in 1 2 3 4 5 6; do echo ok $i; echo ERR $i; done; echo bad >&2; exec sleep 600'"
          db:
            command: "sh -c 'echo db ready; exec sleep 600'"
        "#,
    );
    let log = w.root().join("state/logs/api_stderr.log");
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&log)
        .is_ok_and(|t| t.contains("bad"))));
    let out = w.run_ok(&["logs", "api", "--grep", "ERR", "-n", "2", "-k", "stdout"]);
    let body: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("==>"))
        .skip(1)
        .collect();
    assert_eq!(body, ["ERR 5", "ERR 6"], "{out}");
    // Following: every service, every line as `name | `, stderr marked, the snapshot
    // in the same form.
    let mut follower = w
        .command(&["logs", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut got = Vec::new();
    while got.len() < 3 {
        match rx.recv_timeout(DEADLINE) {
            Ok(line) => got.push(line),
            Err(_) => panic!("logs -f printed only {got:?}"),
        }
    }
    got.sort();
    assert_eq!(got, ["api (stderr) | bad", "api | ERR 6", "db | db ready"]);
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || follower
        .try_wait()
        .unwrap()
        .is_some()));
}

#[test]
fn stamped_logs_merge_in_time_order_and_filter_by_time() {
    let w = Sysg::new();
    w.start_with(
        r#"
        logs: { timestamps: true }
        services:
          a:
            command: "sh -c 'echo a1; sleep 0.8; echo a2; sleep 0.8; echo a3; exec sleep 600'"
          b:
            command: "sh -c 'sleep 0.15; echo b1; sleep 0.3; echo b2 >&2; exec sleep 600'"
            logs: { timestamps: false }
          c:
            command: "sh -c 'sleep 0.4; echo c1; sleep 0.8; echo c2 >&2; exec sleep 600'"
        "#,
    );
    let a = w.root().join("state/logs/a_stdout.log");
    let c = w.root().join("state/logs/c_stderr.log");
    assert!(wait_until(DEADLINE, || {
        std::fs::read_to_string(&a).is_ok_and(|t| t.contains("a3"))
            && std::fs::read_to_string(&c).is_ok_and(|t| t.contains("c2"))
    }));
    // Each stored line: `2026-12-02T18:41:28.225Z a1`.
    let text = std::fs::read_to_string(&a).unwrap();
    for line in text.lines() {
        let (stamp, rest) = line.split_at(25);
        assert!(
            stamp.ends_with("Z ") && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.',
            "{line:?}"
        );
        assert!(rest.starts_with('a'), "{line:?}");
    }
    let b = std::fs::read_to_string(w.root().join("state/logs/b_stdout.log")).unwrap();
    assert_eq!(b, "b1\n", "a service may turn stamps off");
    // One list in time order, stamps shown.
    let out = w.run_ok(&["logs", "--timestamps"]).stdout;
    let order: Vec<&str> = out
        .lines()
        .filter_map(|l| l.rsplit(' ').next())
        .filter(|w| ["a1", "a2", "a3", "c1", "c2"].contains(w))
        .collect();
    assert_eq!(order, ["a1", "c1", "a2", "c2", "a3"], "{out}");
    assert!(out.contains("c (stderr) | 20"), "{out}");
    // A time window, stamps hidden.
    let out = w
        .run_ok(&["logs", "--since", "10m", "--no-timestamps", "-n", "2"])
        .stdout;
    assert_eq!(out, "c (stderr) | c2\na | a3\n", "{out}");
    let out = w
        .run_ok(&["logs", "--until", "2000-01-01T00:00:00Z"])
        .stdout;
    assert_eq!(out, "", "{out}");
    assert_eq!(w.run(&["logs", "--since", "soon"]).code, 2);
    w.run_ok(&["stop"]);
}

#[test]
fn logs_rotate_renames_now_and_never_splits_a_line() {
    let w = Sysg::new();
    // `half` writes half a line, waits for `go`, then ends it and writes another.
    w.start_with(
        r#"
        services:
          api:
            command: "sh -c 'echo first; while [ ! -f go1 ]; do sleep 0.05; done; echo second; exec sleep 600'"
          half:
            command: "sh -c 'printf \"begin-\"; while [ ! -f go2 ]; do sleep 0.05; done; echo end; echo next; exec sleep 600'"
        "#,
    );
    let logs = w.root().join("state/logs");
    let read = |f: &str| std::fs::read_to_string(logs.join(f)).unwrap_or_default();
    assert!(wait_until(DEADLINE, || read("api_stdout.log") == "first\n"
        && read("half_stdout.log") == "begin-"));
    let out = w.run_ok(&["logs", "--rotate"]);
    assert_eq!(out.stdout.trim(), "Rotated 2 log file(s)", "{out}");
    assert_eq!(read("api_stdout.log.1"), "first\n");
    std::fs::write(w.proj_file("go1"), "").unwrap();
    std::fs::write(w.proj_file("go2"), "").unwrap();
    assert!(wait_until(DEADLINE, || read("api_stdout.log") == "second\n"));
    // The open line was ended in the old file before it was rotated.
    assert!(wait_until(DEADLINE, || read("half_stdout.log") == "next\n"));
    assert_eq!(read("half_stdout.log.1"), "begin-end\n");
    assert_eq!(w.run(&["logs", "--rotate", "nope"]).code, 1);
    w.run_ok(&["stop"]);
}
