//! Files the supervisor reads on its loop thread (env files at every spawn, the config on
//! a reload) are refused when they are not regular files: a FIFO with no writer must not
//! block the loop, and the error names the file.
mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo {} failed", path.display());
}

#[test]
fn validate_refuses_a_fifo_env_file_at_once() {
    let w = Sysg::new();
    mkfifo(&w.proj_file("svc.env"));
    let cfg = w.write_config(
        r#"
        services:
          api:
            command: "sleep 1"
            env:
              file: "svc.env"
        "#,
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("svc.env") && out.stderr.contains("not a regular file"),
        "error does not name the file and the reason\n{out}"
    );
}

#[test]
fn an_env_file_turned_fifo_fails_the_spawn_and_the_supervisor_keeps_answering() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("svc.env"), "GREETING=hi\n").unwrap();
    w.start_with(&format!(
        r#"
        services:
          greeter:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            env:
              file: "svc.env"
          other:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let old = w.wait_running_pid("greeter", None);
    let other = w.wait_running_pid("other", None);
    std::fs::remove_file(w.proj_file("svc.env")).unwrap();
    mkfifo(&w.proj_file("svc.env"));

    let out = w.run(&["restart", "-s", "greeter"]);
    assert_eq!(out.code, 1, "a restart that cannot spawn must fail\n{out}");
    assert!(
        out.stderr.contains("cannot start greeter") && out.stderr.contains("not a regular file"),
        "{out}"
    );
    let failed = wait_until(DEADLINE, || {
        w.service("greeter").is_some_and(|s| {
            s["status"] != "running"
                && s["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("not a regular file"))
        })
    });
    assert!(
        failed,
        "greeter's failure does not say why\n{}",
        w.diagnostics()
    );
    assert!(!alive(old), "the old greeter survived its restart");
    // The loop is not stuck: status answers and the other service is untouched.
    assert_eq!(w.service_pid("other"), Some(other), "{}", w.diagnostics());
    assert_eq!(w.service_status("other").as_deref(), Some("running"));
}

#[test]
fn a_reload_from_a_fifo_is_refused_without_touching_anything() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          api:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let pid = w.wait_running_pid("api", None);
    let fifo = w.proj_file("next.yaml");
    mkfifo(&fifo);

    // The CLI reads the file itself first (and would wait for a writer, as any program
    // does), so send the request the way it would, straight to the socket.
    let mut s = UnixStream::connect(w.state.join("control.sock")).expect("connect");
    s.set_read_timeout(Some(COMMAND_LIMIT)).unwrap();
    let req = serde_json::json!({"cmd": "restart", "service": null, "config": fifo});
    writeln!(s, "{req}").unwrap();
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .expect("no reply: the supervisor is stuck on the FIFO");
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("reply is JSON");
    assert_eq!(reply["ok"], false, "{reply}");
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("next.yaml") && error.contains("not a regular file"),
        "{reply}"
    );
    assert!(
        holds_for(Duration::from_millis(500), || alive(pid)),
        "api was stopped by a refused reload"
    );
    assert_eq!(w.service_pid("api"), Some(pid), "{}", w.diagnostics());
}
