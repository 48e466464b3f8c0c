//! What a service process sees (SPEC §2, §3): its env, its working dir, its stdin.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

#[test]
fn service_env_has_marker_root_and_service_vars_and_env_files() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(
        w.proj_file("root.env"),
        "# root file\nROOT_FILE_VAR=from-root-file\nOVERRIDDEN=root-file\n",
    )
    .unwrap();
    std::fs::write(
        w.proj_file("svc.env"),
        "# a comment\nFILE_VAR=fromfile\nexport QUOTED=\"quoted value\"\nOVERRIDDEN=svc-file\n",
    )
    .unwrap();
    w.start_with(&format!(
        r#"
        env:
          file: "root.env"
          vars: {{ ROOT_VAR: "root-value" }}
        services:
          envy:
            command: "echo \"$SYSG_SERVICE|$ROOT_VAR|$ROOT_FILE_VAR|$SVC_VAR|$FILE_VAR|$QUOTED|$OVERRIDDEN\" > env.out; exec sleep {n}"
            stop_timeout: "1s"
            env:
              file: "svc.env"
              vars: {{ SVC_VAR: "svc-value" }}
        "#
    ));
    let got = w.wait_file("env.out");
    assert_eq!(
        got.trim(),
        "envy|root-value|from-root-file|svc-value|fromfile|quoted value|svc-file",
        "{}",
        w.diagnostics()
    );
}

#[test]
fn working_dir_defaults_to_the_config_files_directory() {
    let w = Sysg::new();
    let n = unique_number();
    // sysg itself runs from the temp root; the config lives in proj/.
    w.start_with(&format!(
        r#"
        services:
          where:
            command: "pwd -P > pwd.out; exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let got = w.wait_file("pwd.out");
    assert_eq!(got.trim(), w.proj.canonicalize().unwrap().to_str().unwrap());
}

#[test]
fn relative_working_dir_is_relative_to_the_config_file() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::create_dir_all(w.proj.join("sub/dir")).unwrap();
    w.start_with(&format!(
        r#"
        services:
          where:
            command: "pwd -P > pwd.out; exec sleep {n}"
            working_dir: "${{SYSG_ITEST_UNSET_DIR:-sub}}/dir"
            stop_timeout: "1s"
        "#
    ));
    let path = w.proj.join("sub/dir/pwd.out");
    let ok = wait_until(DEADLINE, || {
        std::fs::read_to_string(&path).is_ok_and(|t| !t.is_empty())
    });
    assert!(ok, "pwd.out not written in sub/dir\n{}", w.diagnostics());
    let got = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got.trim(),
        w.proj
            .join("sub/dir")
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap()
    );
}

#[test]
fn service_stdin_is_dev_null() {
    // A foreground supervisor whose own stdin is a pipe that stays open with a line in
    // it: a service that inherited it would read that line and then block.
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        services:
          reader:
            command: "readlink /proc/self/fd/0 > stdin.link; cat > stdin.out; echo eof >> stdin.out; exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    let mut cmd = w.command(&["start", "-c", cfg.to_str().unwrap()]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut sup = cmd.spawn().expect("cannot start a foreground supervisor");
    let mut pipe = sup.stdin.take().unwrap();
    pipe.write_all(b"from the supervisor's stdin\n").unwrap();

    assert_eq!(w.wait_file("stdin.out"), "eof\n", "{}", w.diagnostics());
    assert_eq!(w.wait_file("stdin.link").trim(), "/dev/null");

    w.run_ok(&["stop"]);
    let exited = wait_until(DEADLINE, || sup.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = sup.kill();
    }
    let _ = sup.wait();
    drop(pipe);
    assert!(exited, "the foreground supervisor did not exit after stop");
}

#[test]
fn env_file_is_reread_at_every_spawn() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("svc.env"), "GREETING=first\n").unwrap();
    w.start_with(&format!(
        r#"
        services:
          greeter:
            command: "echo $GREETING >> greet.out; exec sleep {n}"
            stop_timeout: "1s"
            env:
              file: "svc.env"
        "#
    ));
    let old = w.wait_running_pid("greeter", None);
    assert_eq!(w.wait_file("greet.out"), "first\n");
    std::fs::write(w.proj_file("svc.env"), "GREETING=second\n").unwrap();
    w.run_ok(&["restart", "-s", "greeter"]);
    w.wait_running_pid("greeter", Some(old));
    let ok = wait_until(DEADLINE, || {
        w.read_proj("greet.out").as_deref() == Some("first\nsecond\n")
    });
    assert!(ok, "greet.out: {:?}", w.read_proj("greet.out"));
}

#[test]
fn config_variables_come_from_the_starting_environment_but_root_vars_win() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        env:
          vars:
            SYSG_ITEST_BOTH: from-root
        services:
          echoer:
            command: "echo \"$P $B\" > seen.out; exec sleep {n}"
            stop_timeout: "1s"
            env:
              vars:
                P: "${{SYSG_ITEST_ONLY_ENV}}"
                B: "${{SYSG_ITEST_BOTH}}"
        "#
    ));
    let mut start = w.command(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    start
        .env("SYSG_ITEST_ONLY_ENV", "from-env")
        .env("SYSG_ITEST_BOTH", "from-env");
    let out = run_with_limit(start, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    assert_eq!(w.wait_file("seen.out"), "from-env from-root\n");
}
