//! The command line itself: version, help, usage errors (SPEC §4).

mod common;
use common::*;
use std::path::PathBuf;

#[test]
fn version_prints_name_and_version() {
    let w = Sysg::new();
    let out = w.run(&["--version"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "sysg 0.1.0", "{out}");
}

#[test]
fn help_lists_every_command() {
    let w = Sysg::new();
    let out = w.run(&["--help"]);
    assert_eq!(out.code, 0, "{out}");
    for cmd in [
        "start", "stop", "restart", "status", "logs", "validate", "purge",
    ] {
        assert!(
            out.stdout.contains(cmd),
            "--help does not mention {cmd}\n{out}"
        );
    }
}

#[test]
fn help_for_one_command_shows_its_usage() {
    let w = Sysg::new();
    let out = w.run(&["help", "stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("sysg stop"), "{out}");
}

#[test]
fn unknown_flag_exits_2_and_names_the_flag() {
    let w = Sysg::new();
    let out = w.run(&["status", "--bogus-flag"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("--bogus-flag"), "{out}");
}

#[test]
fn unknown_command_exits_2_and_names_it() {
    let w = Sysg::new();
    let out = w.run(&["frobnicate"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("frobnicate"), "{out}");
}

#[test]
fn commands_never_touch_the_real_home_state() {
    // Where sysg would keep its state for whoever runs the tests (SPEC §1 order).
    let real: Vec<PathBuf> = [
        std::env::var_os("SYSG_STATE_DIR").map(PathBuf::from),
        std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("systemg")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/systemg")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let existed: Vec<bool> = real.iter().map(|d| d.exists()).collect();

    let w = Sysg::new();
    let n = unique_number();
    let out = w.run(&["status"]);
    assert_eq!(out.code, 3, "no supervisor yet: {out}");
    let cfg = w.start_with(&format!(
        "services:\n  web:\n    command: \"exec sleep {n}\"\n    stop_timeout: \"1s\"\n"
    ));
    w.wait_running_pid("web", None);
    w.run_ok(&["status"]);
    w.run_ok(&["logs", "web"]);
    w.run_ok(&["stop"]);

    // The state went to this world's state dir...
    let hint = std::fs::read_to_string(w.state.join("config_hint")).unwrap_or_default();
    assert_eq!(
        hint.trim(),
        cfg.to_str().unwrap(),
        "config_hint in the world"
    );
    assert!(
        w.state.join("supervisor.log").exists(),
        "no supervisor.log in the world's state dir"
    );
    // ...and none of it to the real one, nor to the world's HOME fallback.
    for (dir, existed) in real.iter().zip(existed) {
        if !existed {
            assert!(!dir.exists(), "{} was created", dir.display());
        }
        let hint = std::fs::read_to_string(dir.join("config_hint")).unwrap_or_default();
        assert!(
            !hint.contains(cfg.to_str().unwrap()),
            "{} names this test's config: {hint}",
            dir.display()
        );
    }
    assert!(!w.home.join(".local/share/systemg").exists());
}

#[test]
fn log_level_is_accepted_on_any_command() {
    let w = Sysg::new();
    let out = w.run(&["--log-level", "debug", "status"]);
    assert_eq!(out.code, 3, "{out}");
    let out = w.run(&["status", "--log-level", "2"]);
    assert_eq!(out.code, 3, "{out}");
    let out = w.run(&["--log-level", "loud", "status"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("loud"), "{out}");
}

#[test]
fn state_dir_falls_back_to_xdg_data_home_then_home() {
    let w = Sysg::new();
    let mut cmd = w.command(&["purge"]);
    cmd.env_remove("SYSG_STATE_DIR");
    let out = run_with_limit(cmd, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.stdout.trim(),
        format!("Purged {}", w.root().join("xdg/systemg").display()),
        "{out}"
    );

    let mut cmd = w.command(&["purge"]);
    cmd.env_remove("SYSG_STATE_DIR").env_remove("XDG_DATA_HOME");
    let out = run_with_limit(cmd, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.stdout.trim(),
        format!("Purged {}", w.home.join(".local/share/systemg").display()),
        "{out}"
    );
}
