//! `sysg upgrade`: the supervisor execs its binary again at the same pid and every
//! service goes on: same pids, no line lost or split, uptime continuing, cron and a
//! pending backoff still firing. Refused, with the old supervisor going on, when it
//! cannot be handed over.

mod common;
use common::*;
use std::time::Duration;

/// Every line of `path` is the next integer, from wherever it starts.
fn consecutive_lines(path: &std::path::Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut prev: Option<u64> = None;
    let mut bad = Vec::new();
    let mut n = 0;
    for line in text.lines() {
        n += 1;
        match line.parse::<u64>() {
            Ok(v) if prev.is_none_or(|p| v == p + 1) => prev = Some(v),
            _ => bad.push(format!("after {prev:?}: {line:?}")),
        }
    }
    (n, bad)
}

fn pids_and_uptimes(w: &Sysg) -> Vec<(String, Option<i64>, Option<i64>)> {
    let st = w.status_json();
    st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["pid"].as_i64(),
                s["uptime_s"].as_i64(),
            )
        })
        .collect()
}

#[test]
fn an_upgrade_keeps_every_service_every_line_and_every_timer() {
    let w = Sysg::new();
    let n = unique_number();
    // About 100,000 lines a second, block-buffered: the pipe sees lines cut anywhere.
    let writer = "import sys, time\ni = 0\nwhile True:\n    for _ in range(1000):\n        i += 1\n        sys.stdout.write('%d\\n' % i)\n    time.sleep(0.01)\n";
    std::fs::write(w.proj_file("writer.py"), writer).unwrap();
    w.start_with(&format!(
        r#"
        services:
          idle:
            command: "exec sleep {n}"
          writer:
            command: "exec python3 writer.py"
            logs:
              max_size: "1GB"
          tick:
            command: "echo tick >> ticks.txt"
            cron:
              expression: "* * * * * *"
          flaky:
            command: "sleep 0.3; exit 1"
            restart_policy: "on-failure"
            backoff: "2s"
        "#
    ));
    w.wait_running_pid("idle", None);
    w.wait_running_pid("writer", None);
    let up = wait_until(DEADLINE, || {
        w.service("writer").is_some_and(|s| s["up"] == true)
            && w.service("flaky").is_some_and(|s| s["status"] == "backoff")
    });
    assert!(up, "not ready to upgrade\n{}", w.diagnostics());
    let sup = w.supervisor_pid().unwrap();
    let before: Vec<_> = pids_and_uptimes(&w)
        .into_iter()
        .filter(|(name, _, _)| name == "idle" || name == "writer")
        .collect();
    let restarts = w.service("flaky").unwrap()["restart_count"]
        .as_i64()
        .unwrap();

    let mut out = w.run(&["upgrade"]);
    // A run of flaky may be under way (not up yet): that refuses, try again.
    let asked = wait_until(DEADLINE, || {
        if out.code == 0 {
            return true;
        }
        assert!(out.all().contains("cannot upgrade now"), "{out}");
        std::thread::sleep(Duration::from_millis(50));
        out = w.run(&["upgrade"]);
        out.code == 0
    });
    assert!(
        asked,
        "upgrade never went through: {out}\n{}",
        w.diagnostics()
    );
    assert!(
        out.stdout
            .contains(&format!("Upgraded: supervisor pid {sup} now runs")),
        "{out}"
    );
    assert_eq!(w.supervisor_pid(), Some(sup), "not the same pid");
    let after: Vec<_> = pids_and_uptimes(&w)
        .into_iter()
        .filter(|(name, _, _)| name == "idle" || name == "writer")
        .collect();
    for ((name, pid, up0), (_, pid1, up1)) in before.iter().zip(&after) {
        assert_eq!(pid, pid1, "{name} has another pid");
        assert!(
            up1 >= up0,
            "{name}: uptime went back from {up0:?} to {up1:?}"
        );
    }
    w.wait_log_line(&["supervisor upgraded in place", &format!("pid {sup}")]);

    // Cron goes on firing, and the backoff pending at the upgrade fires.
    let ticks = w.count_proj_lines("ticks.txt");
    let fired = wait_until(DEADLINE, || w.count_proj_lines("ticks.txt") >= ticks + 2);
    assert!(fired, "cron stopped firing\n{}", w.diagnostics());
    let retried = wait_until(DEADLINE, || {
        w.service("flaky")
            .and_then(|s| s["restart_count"].as_i64())
            .is_some_and(|c| c > restarts)
    });
    assert!(
        retried,
        "the pending backoff never fired\n{}",
        w.diagnostics()
    );

    w.run_ok(&["stop"]);
    let (lines, bad) = consecutive_lines(&w.root().join("state/logs/writer_stdout.log"));
    assert!(lines > 10_000, "only {lines} lines");
    assert!(
        bad.is_empty(),
        "{} bad lines of {lines}: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(
        w.processes().is_empty(),
        "left running: {:?}",
        w.processes()
    );
}

#[test]
fn an_upgrade_to_a_binary_that_cannot_take_over_changes_nothing() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  a:\n    command: \"exec sleep {n}\"\n"
    ));
    let pid = w.wait_running_pid("a", None);
    let up = wait_until(DEADLINE, || w.service("a").is_some_and(|s| s["up"] == true));
    assert!(up, "{}", w.diagnostics());
    let sup = w.supervisor_pid().unwrap();
    let script = w.proj_file("not-sysg.sh");
    std::fs::write(&script, "#!/bin/sh\necho 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (binary, says) in [
        ("/nonexistent/sysg", "cannot run it"),
        (script.to_str().unwrap(), "not a sysg that can take over"),
    ] {
        let out = w.run(&["upgrade", "--binary", binary]);
        assert_ne!(out.code, 0, "{out}");
        assert!(out.all().contains(says), "{out}");
        assert!(
            out.all().contains("still running the current binary"),
            "{out}"
        );
    }
    assert_eq!(w.supervisor_pid(), Some(sup));
    assert_eq!(w.service_pid("a"), Some(pid));
    w.run_ok(&["stop"]);
}

#[test]
fn an_upgrade_waits_for_services_that_are_not_up_and_for_the_config() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.start_with(&format!(
        r#"
        services:
          slow:
            command: "exec sleep {n}"
            health_check:
              command: "test -f ready"
              interval: "100ms"
        "#
    ));
    w.wait_running_pid("slow", None);
    let out = w.run(&["upgrade"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all()
            .contains("cannot upgrade now: slow is running but not up yet"),
        "{out}"
    );
    std::fs::write(w.proj_file("ready"), "").unwrap();
    let up = wait_until(DEADLINE, || {
        w.service("slow").is_some_and(|s| s["up"] == true)
    });
    assert!(up, "{}", w.diagnostics());
    // The file on disk no longer says what runs.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(&format!("sleep {n}"), &format!("sleep {}", n + 1)),
    )
    .unwrap();
    let out = w.run(&["upgrade"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.all().contains("changed since it was loaded"), "{out}");
    std::fs::write(&cfg, text).unwrap();
    let out = w.run_ok(&["upgrade"]);
    assert!(out.stdout.starts_with("Upgraded"), "{out}");
    w.run_ok(&["stop"]);
}

#[test]
fn an_exec_that_fails_leaves_the_old_supervisor_running_and_says_why() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  a:\n    command: \"exec sleep {n}\"\n"
    ));
    let pid = w.wait_running_pid("a", None);
    let up = wait_until(DEADLINE, || w.service("a").is_some_and(|s| s["up"] == true));
    assert!(up, "{}", w.diagnostics());
    let sup = w.supervisor_pid().unwrap();
    // It passes the check, then is gone when the exec comes.
    let script = w.proj_file("vanishing-sysg.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$1\" = __handover-version ]; then rm -f \"$0\"; echo 'sysg-handover 1'; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = w.run(&["upgrade", "--binary", script.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    let all = out.all();
    assert!(all.contains("still running the current binary"), "{out}");
    assert!(all.contains("No such file"), "{out}");
    w.wait_log_line(&["upgrade to", "failed", "the current supervisor goes on"]);
    assert_eq!(w.supervisor_pid(), Some(sup));
    assert_eq!(w.service_pid("a"), Some(pid));
    // It still works, upgrades included.
    let out = w.run_ok(&["upgrade"]);
    assert!(out.stdout.starts_with("Upgraded"), "{out}");
    w.run_ok(&["stop"]);
    assert!(
        w.processes().is_empty(),
        "left running: {:?}",
        w.processes()
    );
}

#[test]
fn a_stop_under_way_goes_on_across_an_upgrade_with_its_deadline_and_its_asker() {
    let w = Sysg::new();
    let n = unique_number();
    // It ignores SIGTERM: only the SIGKILL at stop_timeout ends it.
    w.start_with(&format!(
        r#"
        services:
          stubborn:
            command: "sh -c 'trap \"\" TERM; exec sleep {n}'"
            stop_timeout: "3s"
          other:
            command: "exec sleep {}"
        "#,
        n + 1
    ));
    w.wait_running_pid("stubborn", None);
    let mut sleeper = Vec::new();
    assert!(wait_until(DEADLINE, || {
        sleeper = processes_exactly(&format!("sleep {n}"));
        sleeper.len() == 1
    }));
    let pid = sleeper[0];
    let up = wait_until(DEADLINE, || {
        w.service("stubborn").is_some_and(|s| s["up"] == true)
            && w.service("other").is_some_and(|s| s["up"] == true)
    });
    assert!(up, "{}", w.diagnostics());
    let sup = w.supervisor_pid().unwrap();
    let asked = std::time::Instant::now();
    let stop = w.command(&["stop", "-s", "stubborn"]).spawn().unwrap();
    assert!(wait_until(DEADLINE, || w
        .service_status("stubborn")
        .is_some_and(|s| s == "stopping")));
    let out = w.run_ok(&["upgrade"]);
    assert!(out.stdout.starts_with("Upgraded"), "{out}");
    assert_eq!(w.supervisor_pid(), Some(sup));
    assert!(alive(pid), "the sleep was killed before its stop_timeout");
    // The asker hears the end of the stop from the new binary.
    let done = stop.wait_with_output().unwrap();
    let waited = asked.elapsed();
    assert!(done.status.success(), "{done:?}\n{}", w.diagnostics());
    assert!(wait_until(DEADLINE, || exited(pid)));
    assert!(
        waited >= Duration::from_millis(2900),
        "the kill came after {waited:?}, before the 3 s stop_timeout"
    );
    assert_eq!(w.service_status("stubborn").as_deref(), Some("stopped"));
    w.wait_log_line(&["stubborn", "SIGKILL"]);
    w.run_ok(&["stop"]);
}

#[test]
fn a_new_binary_that_hangs_on_its_check_blocks_nothing_and_is_refused() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "services:\n  a:\n    command: \"exec sleep {n}\"\n"
    ));
    let pid = w.wait_running_pid("a", None);
    assert!(wait_until(DEADLINE, || w
        .service("a")
        .is_some_and(|s| s["up"] == true)));
    let script = w.proj_file("hanging-sysg.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexec sleep {}\n", n + 7)).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut upgrade = w
        .command(&["upgrade", "--binary", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While the check waits on the new binary, the supervisor answers.
    let hang = format!("sleep {}", n + 7);
    assert!(wait_until(DEADLINE, || !processes_exactly(&hang).is_empty()));
    let status = w.run(&["status"]);
    assert_eq!(status.code, 0, "{status}");
    assert!(
        upgrade.try_wait().unwrap().is_none(),
        "the upgrade was over before status answered"
    );
    let again = w.run(&["upgrade"]);
    assert!(again.all().contains("an upgrade is under way"), "{again}");
    let out = upgrade.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("did not say which handover it reads"),
        "{text}"
    );
    assert_eq!(w.service_pid("a"), Some(pid));
    let out = w.run_ok(&["upgrade"]);
    assert!(out.stdout.starts_with("Upgraded"), "{out}");
    w.run_ok(&["stop"]);
}
