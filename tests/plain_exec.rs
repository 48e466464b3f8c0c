//! A command with no shell syntax runs as the program itself (one process, Main PID the
//! program); anything else, or `exec: false`, still goes through `sh -c`.

mod common;
use common::*;

#[test]
fn a_plain_command_is_the_program_itself_and_shell_syntax_keeps_the_shell() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          plain:
            command: "sleep 7{n}1"
          prefixed:
            command: "exec sleep 7{n}2"
          shell:
            command: "sleep 7{n}3 && true"
          forced:
            command: "sleep 7{n}4"
            exec: false
        "#
    ));
    let plain = w.wait_running_pid("plain", None);
    assert_eq!(cmdline(plain), format!("sleep 7{n}1"));
    assert_eq!(
        w.service_processes("plain"),
        vec![plain],
        "one process, no shell"
    );
    let prefixed = w.wait_running_pid("prefixed", None);
    assert_eq!(cmdline(prefixed), format!("sleep 7{n}2"));
    let shell = w.wait_running_pid("shell", None);
    assert_eq!(cmdline(shell), format!("sh -c sleep 7{n}3 && true"));
    let forced = w.wait_running_pid("forced", None);
    assert_eq!(cmdline(forced), format!("sh -c sleep 7{n}4"));

    // The signal reaches the program with no shell between: it dies of it.
    assert!(kill(plain, libc::SIGTERM));
    let st = w.wait_status("plain", "exited");
    assert_eq!(st["signal"], libc::SIGTERM, "{st:#}");
    w.run_ok(&["stop"]);
}

#[test]
fn a_program_that_is_not_on_the_path_is_left_to_the_shell_to_report() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          missing:
            command: "no-such-program-anywhere --flag"
        "#,
    );
    let st = w.wait_status("missing", "exited");
    assert_eq!(st["exit_code"], 127, "{st:#}");
    let err = w.run_ok(&["logs", "-s", "missing", "-k", "stderr"]).stdout;
    assert!(err.contains("not found"), "{err}");
    w.run_ok(&["stop"]);
}

#[test]
fn exec_must_be_a_boolean() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          a:
            command: "sleep 1"
            exec: "no"
        "#,
    );
    let out = w.run(&["start", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("services.a.exec"), "{out}");
}
