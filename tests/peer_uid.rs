//! Hardening of SPEC §5: the control socket checks the peer's uid with SO_PEERCRED (same
//! uid or root). Even when the socket's file permissions let another user connect, that
//! user gets no answer, the refusal is logged, and the owner is still served.
//!
//! Needs root, the user `nobody` and `setpriv`; skipped with a message otherwise.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn nobody_exists() -> bool {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("nobody:") && l.split(':').nth(2) == Some("65534"))
}

/// `setpriv` prefix that runs a program as nobody, with no supplementary groups.
fn as_nobody(setpriv: &Path, program: &Path) -> Command {
    let mut cmd = Command::new(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/tmp")
        .env("NO_COLOR", "1");
    cmd
}

/// Whether nobody can execute `path` (every parent dir searchable).
fn nobody_can_run(setpriv: &Path, path: &Path) -> bool {
    let mut cmd = as_nobody(setpriv, Path::new("/bin/sh"));
    cmd.arg("-c").arg("test -x \"$1\"").arg("sh").arg(path);
    cmd.output().is_ok_and(|o| o.status.success())
}

const CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT-FAILED", e)
    sys.exit(0)
print("CONNECTED")
try:
    s.sendall(b'{"cmd":"status","service":null}\n')
except OSError as e:
    print("SEND-FAILED", e)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    print("EOF")
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("RESET", e)
print("REPLY", repr(data))
"#;

#[test]
fn another_uid_is_refused_and_the_owner_still_served() {
    if !is_root() {
        skip::root_only("needs root (to act as another user)");
        return;
    }
    if !nobody_exists() {
        skip::root_only("needs the user nobody (uid 65534)");
        return;
    }
    let Some(setpriv) = find_program("setpriv") else {
        skip::root_only("needs setpriv (util-linux)");
        return;
    };
    let python: Option<PathBuf> = ["/usr/bin/python3", "/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());

    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          svc:
            command: "sleep {n}"
        "#
    ));
    w.wait_running_pid("svc", None);
    let sup = w.supervisor_pid().expect("supervisor pid");
    let sock = w.state.join("control.sock");

    // Open the way to the socket for another uid: only SO_PEERCRED stands in between.
    chmod(&w.root(), 0o755);
    chmod(&w.state, 0o755);
    chmod(&sock, 0o666);
    chmod(&w.state.join("sysg.pid"), 0o644);

    let mut probed = false;
    let mut socket_reached = false;
    if let Some(py) = python.as_deref().filter(|p| nobody_can_run(&setpriv, p)) {
        let mut cmd = as_nobody(&setpriv, py);
        cmd.arg("-c").arg(CLIENT).arg(&sock);
        let out = run_with_limit(cmd, COMMAND_LIMIT);
        eprintln!("python client as nobody:\n{out}");
        assert!(
            out.stdout.contains("CONNECTED"),
            "nobody could not even connect, the test proves nothing\n{out}"
        );
        assert!(
            out.stdout.contains("REPLY b''"),
            "the supervisor answered uid 65534\n{out}"
        );
        assert!(
            !out.stdout.contains("TIMEOUT"),
            "the connection was left open\n{out}"
        );
        probed = true;
        socket_reached = true;
    } else {
        eprintln!("note: no python3 usable by nobody; probing with sysg only");
    }

    if nobody_can_run(&setpriv, Path::new(sysg_bin())) {
        let mut cmd = as_nobody(&setpriv, Path::new(sysg_bin()));
        cmd.arg("status").env("SYSG_STATE_DIR", &w.state);
        let out = run_with_limit(cmd, COMMAND_LIMIT);
        eprintln!("sysg status as nobody:\n{out}");
        assert_ne!(out.code, 0, "sysg status as nobody succeeded\n{out}");
        assert!(
            !out.stdout.contains("● svc Running"),
            "nobody got the status\n{out}"
        );
        probed = true;
        socket_reached |= !out.all().contains("No supervisor running");
    } else {
        eprintln!("note: nobody cannot execute {}", sysg_bin());
    }
    if !probed {
        skip::root_only("neither /usr/bin/python3 nor sysg can be run as nobody");
        return;
    }

    if socket_reached {
        let logged = wait_until(DEADLINE, || {
            w.supervisor_log()
                .contains(&format!("refused control connection from uid {NOBODY}"))
        });
        assert!(
            logged,
            "supervisor.log does not record the refusal\n{}",
            w.diagnostics()
        );
    }

    // The owner is still served.
    assert!(alive(sup), "the supervisor died");
    let out = w.status_text();
    assert_eq!(out.code, 0, "root's status failed\n{out}");
    assert!(out.stdout.contains("● svc Running"), "{out}");
    w.run_ok(&["stop"]);
    assert!(w.processes().is_empty(), "left: {:?}", w.processes());
}
