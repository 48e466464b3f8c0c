//! `notify: true` (sd_notify): the service is up on `READY=1` from its own processes,
//! `STATUS=` shows in status, and with `watchdog` a service that stops sending
//! `WATCHDOG=1` is restarted as a failure. Messages from other processes are ignored.

mod common;
use common::*;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Says it is starting, READY=1 once `go` exists, then pings the watchdog every 100 ms
/// until `hang` exists.
const NOTIFIER: &str = r#"
import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def say(msg):
    s.sendto(msg.encode(), addr)
say("STATUS=warming up")
while not os.path.exists("go"):
    time.sleep(0.05)
say("READY=1\nSTATUS=serving")
while True:
    if not os.path.exists("hang"):
        say("WATCHDOG=1")
    time.sleep(0.1)
"#;

#[test]
fn up_on_ready_status_shown_and_a_silent_watchdog_restarts_it() {
    let w = Sysg::new();
    std::fs::write(w.proj_file("notifier.py"), NOTIFIER).unwrap();
    w.start_with(
        r#"
        services:
          db:
            command: "exec python3 notifier.py"
            notify: true
            watchdog: "1s"
            restart_policy: "on-failure"
            backoff: "100ms"
            stop_timeout: "1s"
          api:
            command: "exec sleep 100000"
            depends_on: [db]
        "#,
    );
    let pid = w.wait_running_pid("db", None);
    let warming = wait_until(DEADLINE, || {
        w.service("db")
            .is_some_and(|s| s["notify_status"] == "warming up")
    });
    assert!(warming, "{}", w.diagnostics());
    // Not up without READY=1, however long it runs: api waits.
    assert!(
        holds_for(Duration::from_millis(1500), || {
            w.service("db").is_some_and(|s| s["up"] == false)
                && w.service("api").is_some_and(|s| s["status"] == "waiting")
        }),
        "{}",
        w.diagnostics()
    );

    // A process that is not the service's cannot make it ready.
    let env = environ(pid);
    let address = env
        .iter()
        .find_map(|e| e.strip_prefix("NOTIFY_SOCKET=@"))
        .expect("NOTIFY_SOCKET in the service's environment")
        .to_string();
    let forger = UnixDatagram::unbound().unwrap();
    let to = SocketAddr::from_abstract_name(address.as_bytes()).unwrap();
    forger.send_to_addr(b"READY=1\nSTATUS=forged", &to).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let db = w.service("db").unwrap();
    assert_eq!(db["up"], false, "{db:#}");
    assert_eq!(db["notify_status"], "warming up", "{db:#}");

    std::fs::write(w.proj_file("go"), "").unwrap();
    w.wait_running_pid("api", None);
    let db = w.service("db").unwrap();
    assert_eq!(db["up"], true, "{db:#}");
    assert_eq!(db["notify_status"], "serving", "{db:#}");
    assert!(w.status_text().stdout.contains("Status: \"serving\""));
    // Pinging: still the same instance well past the watchdog period, an upgrade (the
    // socket handed over) included.
    let api_up = wait_until(DEADLINE, || {
        w.service("api").is_some_and(|s| s["up"] == true)
    });
    assert!(api_up, "{}", w.diagnostics());
    let out = w.run_ok(&["upgrade"]);
    assert!(out.stdout.starts_with("Upgraded"), "{out}");
    assert_eq!(
        w.service("db").unwrap()["notify_status"],
        "serving",
        "kept across it"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.service_pid("db"), Some(pid));
    let status = wait_until(DEADLINE, || {
        w.service("db").is_some_and(|s| s["up"] == true)
    });
    assert!(status, "{}", w.diagnostics());

    std::fs::write(w.proj_file("hang"), "").unwrap();
    w.wait_log_line(&["db: watchdog timeout"]);
    let replaced = w.wait_running_pid("db", Some(pid));
    assert_ne!(replaced, pid);
    assert!(w.service("db").unwrap()["restart_count"].as_i64() >= Some(1));
    w.run_ok(&["stop"]);
}

#[test]
fn watchdog_needs_notify() {
    let w = Sysg::new();
    let cfg = w.write_config("services:\n  a:\n    command: x\n    watchdog: 5s\n");
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all()
            .contains("services.a.watchdog: needs notify: true"),
        "{out}"
    );
}

#[test]
fn systemd_notify_makes_a_service_ready() {
    let Some(tool) = find_program("systemd-notify") else {
        skip::host_dependent("systemd-notify is not installed");
        return;
    };
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          a:
            command: "sleep 0.2; {tool} --ready --status=via-systemd-notify; exec sleep {n}"
            notify: true
        "#,
        tool = tool.display()
    ));
    let up = wait_until(DEADLINE, || w.service("a").is_some_and(|s| s["up"] == true));
    assert!(up, "{}", w.diagnostics());
    assert_eq!(
        w.service("a").unwrap()["notify_status"],
        "via-systemd-notify"
    );
    w.run_ok(&["stop"]);
}

/// A daemon in the old style: the process sysg starts forks, the child says
/// `MAINPID=<itself>` and `READY=1`, and the parent exits 0.
const FORKING: &str = r#"
import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
if os.fork() > 0:
    # The parent waits until the child is announced, then leaves.
    while not os.path.exists("announced"):
        time.sleep(0.02)
    os._exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(("MAINPID=%d\nREADY=1" % os.getpid()).encode(), addr)
open("daemon.pid.tmp", "w").write(str(os.getpid()))
os.rename("daemon.pid.tmp", "daemon.pid")
open("announced", "w").close()
while True:
    time.sleep(1)
"#;

#[test]
fn mainpid_moves_the_instance_to_the_process_it_names() {
    let w = Sysg::new();
    std::fs::write(w.proj_file("forking.py"), FORKING).unwrap();
    w.start_with(
        r#"
        services:
          legacy:
            command: "python3 forking.py"
            notify: true
            restart_policy: "on-failure"
            backoff: "100ms"
        "#,
    );
    let first = w.wait_running_pid("legacy", None);
    let daemon: i32 = w.wait_file("daemon.pid").trim().parse().unwrap();
    assert_ne!(daemon, first);
    // The first process exits 0; the instance lives on as the daemon, up.
    assert!(wait_until(DEADLINE, || exited(first)));
    let moved = wait_until(DEADLINE, || {
        w.service("legacy")
            .is_some_and(|s| s["pid"] == daemon && s["up"] == true && s["status"] == "running")
    });
    assert!(moved, "{}", w.diagnostics());
    assert!(
        holds_for(Duration::from_millis(500), || w
            .service("legacy")
            .is_some_and(
                |s| s["status"] == "running" && s["restart_count"] == 0
            )),
        "the first process's exit was taken for the instance's\n{}",
        w.diagnostics()
    );
    assert!(w
        .run_ok(&["status", "-s", "legacy"])
        .stdout
        .contains(&format!("Main PID: {daemon}")));
    w.wait_log_line(&["legacy: main process is now pid", "MAINPID="]);
    // The daemon's death is the instance's: a failure, restarted by the policy.
    std::fs::remove_file(w.proj_file("announced")).unwrap();
    std::fs::remove_file(w.proj_file("daemon.pid")).unwrap();
    kill(daemon, libc::SIGKILL);
    let again: i32 = w.wait_file("daemon.pid").trim().parse().unwrap();
    assert_ne!(again, daemon);
    let restarted = wait_until(DEADLINE, || {
        w.service("legacy")
            .is_some_and(|s| s["pid"] == again && s["restart_count"] == 1)
    });
    assert!(restarted, "{}", w.diagnostics());
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || exited(again)));
}
