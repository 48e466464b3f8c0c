//! The command line itself: version, help, usage errors (SPEC §4).

mod common;
use common::*;

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
    for cmd in ["start", "stop", "restart", "status", "logs", "validate", "purge"] {
        assert!(out.stdout.contains(cmd), "--help does not mention {cmd}\n{out}");
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
    // The world's HOME is private; status with no supervisor reports "not running" (3).
    let w = Sysg::new();
    let out = w.run(&["status"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(!w.home.join(".local/share/systemg").exists());
}
