//! Signals, the control plane and shutdown: stray signals, a crashed supervisor's
//! leftovers, a stop during boot, clients facing a stopped supervisor, a hook that runs
//! `sysg stop`, and floods of idle connections.

mod common;

use common::*;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

/// Resumes a SIGSTOPped supervisor when the test ends, failed or not, so the world's
/// cleanup can stop it. Declare it after the `Sysg` so it is dropped first.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        kill(self.0, libc::SIGCONT);
    }
}

/// SIGSTOPs the supervisor and waits until the kernel shows it stopped.
fn freeze(w: &Sysg) -> Resume {
    let sup = w.supervisor_pid().expect("supervisor pid");
    let guard = Resume(sup);
    assert!(kill(sup, libc::SIGSTOP));
    assert!(
        wait_until(DEADLINE, || proc_state(sup) == Some('T')),
        "supervisor {sup} did not stop"
    );
    guard
}

/// The `SigIgn:` mask of `pid` from /proc/PID/status.
fn ignored_signals(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

fn one_sleeper(w: &Sysg, n: u32) -> std::path::PathBuf {
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n}"
            stop_timeout: "1s"
        "#
    ))
}

#[test]
fn stray_signals_do_not_kill_the_supervisor_and_services_start_with_default_dispositions() {
    let w = Sysg::new();
    let n = unique_number();
    one_sleeper(&w, n);
    let web = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    assert_ne!(
        ignored_signals(sup),
        Some(0),
        "the supervisor ignores no signal at all"
    );
    // Signals 32 and 33 belong to the C library's threads implementation: sigaction
    // refuses them, so whatever the test runner's environment set there is left as is.
    let reserved = (1u64 << 31) | (1u64 << 32);
    let inherited = ignored_signals(web).expect("service SigIgn") & !reserved;
    assert_eq!(
        inherited, 0,
        "the service inherited ignored signals (mask {inherited:#x})"
    );
    let stray = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPIPE,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSTKFLT,
        libc::SIGPWR,
        libc::SIGQUIT,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    for sig in stray {
        assert!(kill(sup, sig), "cannot send signal {sig}");
    }
    // The supervisor ran after the signals were pending (it answered), so a fatal
    // default action would have ended it by now.
    assert_eq!(w.service_pid("web"), Some(web), "{}", w.diagnostics());
    assert!(alive(sup), "a stray signal killed the supervisor");
    assert!(alive(web), "the service died");
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || exited(sup)));
}

#[test]
fn stop_without_a_supervisor_stops_what_a_crashed_one_left_and_status_says_so() {
    let w = Sysg::new();
    let n = unique_number();
    let sleeper = format!("sleep {n}");
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n} & wait"
            stop_timeout: "1s"
        "#
    ));
    let pid = w.wait_running_pid("web", None);
    assert!(wait_until(DEADLINE, || processes_exactly(&sleeper).len() == 1));
    let left = processes_exactly(&sleeper)[0];
    let sup = w.supervisor_pid().unwrap();
    // What a crashed supervisor leaves is what it had written: wait for that (state
    // files are written at most every so often).
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(
        w.state.join("state.json")
    )
    .ok()
    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    .is_some_and(|j| j["services"]["web"]["pid"] == pid)));
    assert!(kill(sup, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || exited(sup)));
    assert!(
        alive(left),
        "the sleep died with its supervisor: no leftover to test"
    );

    let status = w.run(&["status"]);
    assert_eq!(status.code, 3, "{status}");
    let expected = format!("web Running — left running by a crashed supervisor (pid {sup})");
    assert!(status.stdout.contains(&expected), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&w.run(&["status", "--json"]).stdout).expect("status --json is JSON");
    let web = service_in(&json, "web").expect("web in status");
    assert_eq!(web["pid"], left, "{json:#}");

    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "stopping 1 process(es) left running by a crashed supervisor (pid {sup}): web[{left}]"
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains("Stopped 1 leftover process(es)"),
        "{out}"
    );
    assert!(wait_until(DEADLINE, || !alive(left)), "leftover survived");
    assert!(processes_exactly(&sleeper).is_empty());

    let status = w.run(&["status"]);
    assert_eq!(status.code, 3, "{status}");
    assert!(
        status.stdout.contains("web Stopped — its supervisor"),
        "{status}"
    );
    let again = w.run(&["stop"]);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(again.stdout.trim(), "No supervisor running", "{again}");
}

#[test]
fn stop_of_one_service_without_a_supervisor_stops_only_what_it_left() {
    let w = Sysg::new();
    let n = unique_number();
    let (web_cmd, db_cmd) = (format!("sleep {n}1"), format!("sleep {n}2"));
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n}1 & wait"
          db:
            command: "sleep {n}2 & wait"
        "#
    ));
    w.wait_running_pid("web", None);
    w.wait_running_pid("db", None);
    assert!(wait_until(DEADLINE, || processes_exactly(&web_cmd).len()
        == 1
        && processes_exactly(&db_cmd).len() == 1));
    let (web, db) = (
        processes_exactly(&web_cmd)[0],
        processes_exactly(&db_cmd)[0],
    );
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || exited(sup)));

    let out = w.run(&["stop", "-s", "web"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!("web[{web}]")) && !out.stdout.contains("db["),
        "{out}"
    );
    assert!(
        wait_until(DEADLINE, || !alive(web)),
        "web's leftover survived"
    );
    assert!(alive(db), "stop -s web stopped db's leftover too");
    let again = w.run(&["stop", "-s", "web"]);
    assert_eq!(
        again.stdout.trim(),
        "No supervisor running; no process of web is left",
        "{again}"
    );
    let all = w.run(&["stop"]);
    assert_eq!(all.code, 0, "{all}");
    assert!(
        wait_until(DEADLINE, || !alive(db)),
        "db's leftover survived"
    );
}

#[test]
fn stop_during_a_slow_boot_waits_for_the_boot_and_then_stops() {
    let w = Sysg::new();
    let n = unique_number();
    let sleeper = format!("sleep {n}");
    // The leftover ignores SIGTERM, so the next boot spends its recovery grace on it
    // before binding the socket.
    let cfg = w.start_with(&format!(
        r#"
        services:
          web:
            command: "trap '' TERM; sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("web", None);
    let old = w.supervisor_pid().unwrap();
    assert!(kill(old, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || exited(old)));
    assert!(wait_until(DEADLINE, || processes_exactly(&sleeper).len() == 1));

    let mut boot = w.command(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    boot.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut boot = boot.spawn().unwrap();
    let booting = wait_until(DEADLINE, || {
        w.supervisor_pid().is_some_and(|p| p != old && alive(p))
            && !w.state.join("control.sock").exists()
    });
    assert!(booting, "never saw the new supervisor booting");

    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    assert!(out.stdout.contains("Supervisor shutting down"), "{out}");
    assert!(!out.all().contains("does not answer"), "{out}");
    let mut started = String::new();
    boot.stdout
        .take()
        .unwrap()
        .read_to_string(&mut started)
        .unwrap();
    assert!(boot.wait().unwrap().success(), "start -d failed: {started}");
    assert!(
        wait_until(DEADLINE, || processes_exactly(&sleeper).is_empty()),
        "the service came up after the stop\n{}",
        w.diagnostics()
    );
    assert_eq!(w.run(&["status"]).code, 3, "the supervisor still runs");
}

fn gives_up_on_a_stopped_supervisor(args: &[&str]) {
    let w = Sysg::new();
    one_sleeper(&w, unique_number());
    w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    let _resume = freeze(&w);
    let out = w.run(args);
    assert_eq!(
        out.code, 75,
        "sysg {args:?} against a stopped supervisor\n{out}"
    );
    assert!(
        out.stderr.contains(&format!("supervisor (pid {sup})")),
        "{out}"
    );
    assert!(out.stderr.contains(&format!("kill -CONT {sup}")), "{out}");
}

#[test]
fn stop_gives_up_on_a_stopped_supervisor_with_exit_4() {
    gives_up_on_a_stopped_supervisor(&["stop"]);
}

#[test]
fn stop_one_service_gives_up_on_a_stopped_supervisor_with_exit_4() {
    gives_up_on_a_stopped_supervisor(&["stop", "-s", "web"]);
}

#[test]
fn restart_one_service_gives_up_on_a_stopped_supervisor_with_exit_4() {
    gives_up_on_a_stopped_supervisor(&["restart", "-s", "web"]);
}

#[test]
fn a_hook_that_runs_sysg_stop_during_shutdown_does_not_hold_it_up() {
    let w = Sysg::new();
    let n = unique_number();
    let out = w.proj_file("hook.out");
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n}"
            stop_timeout: "1s"
            hooks:
              on_stop:
                success:
                  command: "{bin} stop > {out} 2>&1; echo rc=$? >> {out}"
                  timeout: "50s"
        "#,
        bin = sysg_bin(),
        out = out.display()
    ));
    w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    let stop = w.run(&["stop"]);
    assert_eq!(stop.code, 0, "{stop}\n{}", w.diagnostics());
    let hook = w.wait_file("hook.out");
    assert!(wait_until(DEADLINE, || w
        .read_proj("hook.out")
        .is_some_and(|t| t.contains("rc="))));
    let hook = w.read_proj("hook.out").unwrap_or(hook);
    assert!(hook.contains("Supervisor shutting down"), "{hook}");
    assert!(hook.contains("rc=0"), "the hook's sysg stop failed: {hook}");
    assert!(exited(sup), "the supervisor outlived `sysg stop`");
    assert!(
        !w.supervisor_log().contains("timed out"),
        "{}",
        w.supervisor_log()
    );
}

/// Connections that never send anything; the supervisor may close any of them.
fn idle_connections(w: &Sysg, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|_| {
            let s = UnixStream::connect(w.state.join("control.sock")).expect("connect");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// How many of `conns` the supervisor has closed.
fn closed_by_peer(conns: &mut [UnixStream]) -> usize {
    conns
        .iter_mut()
        .map(|s| matches!(s.read(&mut [0u8; 64]), Ok(0)))
        .filter(|&closed| closed)
        .count()
}

#[test]
fn idle_connections_are_capped_and_the_oldest_dropped() {
    let w = Sysg::new();
    one_sleeper(&w, unique_number());
    w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    let base = fd_count(sup).unwrap();
    let mut conns = idle_connections(&w, 100);
    assert!(
        wait_until(DEADLINE, || closed_by_peer(&mut conns) >= 36),
        "the supervisor holds on to more than 64 idle clients"
    );
    let held = fd_count(sup).unwrap();
    assert!(
        held <= base + 64,
        "{held} fds held, {base} before the flood"
    );
    let out = w.status_text();
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn an_idle_connection_flood_near_the_fd_limit_leaves_room_to_spawn_and_logs_once() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        services:
          web:
            command: "sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let mut start = Command::new("sh");
    start
        .args(["-c", "ulimit -n 64 && exec \"$0\" start -d -c \"$1\""])
        .arg(sysg_bin())
        .arg(&cfg)
        .current_dir(w.root());
    for (k, v) in w.command(&[]).get_envs() {
        match v {
            Some(v) => start.env(k, v),
            None => start.env_remove(k),
        };
    }
    let out = run_with_limit(start, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    let first = w.wait_running_pid("web", None);

    let mut conns = idle_connections(&w, 150);
    assert!(
        wait_until(DEADLINE, || closed_by_peer(&mut conns) >= 50),
        "idle clients were not dropped\n{}",
        w.diagnostics()
    );
    for _ in 0..3 {
        let status = w.status_text();
        assert_eq!(status.code, 0, "{status}");
    }
    w.run_ok(&["restart", "-s", "web"]);
    let second = w.wait_running_pid("web", Some(first));
    let pids = w.state.join("pid.json");
    assert!(
        wait_until(DEADLINE, || read_json(&pids)["services"]["web"] == second),
        "pid.json not updated under fd pressure\n{}",
        w.diagnostics()
    );
    drop(conns);
    let log = w.supervisor_log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("file descriptors running low"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert!(!log.contains("accept on control socket failed"), "{log}");
}

#[test]
fn state_file_write_errors_are_logged_once_per_outage() {
    let w = Sysg::new();
    one_sleeper(&w, unique_number());
    let mut pid = w.wait_running_pid("web", None);
    let state = w.state.join("state.json");
    assert!(wait_until(DEADLINE, || state.is_file()));
    // A directory where state.json goes: every atomic rename onto it fails.
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    for _ in 0..3 {
        w.run_ok(&["restart", "-s", "web"]);
        pid = w.wait_running_pid("web", Some(pid));
    }
    let failures = |log: &str| {
        log.lines()
            .filter(|l| l.contains("cannot write state.json"))
            .count()
    };
    assert!(
        wait_until(DEADLINE, || failures(&w.supervisor_log()) >= 1),
        "{}",
        w.supervisor_log()
    );
    std::fs::remove_dir(&state).unwrap();
    w.run_ok(&["restart", "-s", "web"]);
    let last = w.wait_running_pid("web", Some(pid));
    assert!(
        wait_until(DEADLINE, || read_json(&state)["services"]["web"]["pid"]
            == last),
        "state.json not written once possible\n{}",
        w.diagnostics()
    );
    let log = w.supervisor_log();
    assert_eq!(failures(&log), 1, "{log}");
    assert!(log.contains("state.json written again"), "{log}");
}

#[test]
fn exit_code_75_is_documented_in_help_readme_and_man_page() {
    let w = Sysg::new();
    let help = w.run_ok(&["--help"]).stdout;
    assert!(
        help.contains("75 try again: the supervisor did not answer"),
        "{help}"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("75 try\nagain: the supervisor did not answer"),
        "README"
    );
    let man = std::fs::read_to_string(root.join("man/sysg.1")).unwrap();
    assert!(man.contains(".B 75\nTry again later"), "man page");
}
