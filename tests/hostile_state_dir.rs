//! Hardening: a state dir someone else prepared. Planted symlinks and hard links are
//! never written or read through, a state dir (or a dir above it) another user controls
//! is refused before anything is written, `purge` removes only sysg's own files, and text
//! a service controls reaches the operator's terminal with its control characters
//! escaped. Tests that need a second uid (chown to 65534) need root and skip visibly.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

const PRECIOUS: &str = "precious, must not change\n";
const NOBODY: u32 = 65534;

/// A file outside the state dir that a planted link points at.
fn victim(w: &Sysg, name: &str) -> PathBuf {
    let dir = w.root().join("victims");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, PRECIOUS).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn assert_untouched(path: &Path) {
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        PRECIOUS,
        "{} was written through a link",
        path.display()
    );
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn talker(n: u32) -> String {
    format!(
        r#"
        services:
          api:
            command: "echo hello-from-api; exec sleep {n}"
            stop_timeout: "1s"
        "#
    )
}

// ---- 1. who owns the state dir and the dirs above it ----

#[test]
fn a_state_dir_owned_by_another_user_is_refused_and_left_as_it_was() {
    if !is_root() {
        skip::root_only("needs root to chown the state dir to uid 65534");
        return;
    }
    let w = Sysg::new();
    fs::create_dir_all(&w.state).unwrap();
    chmod(&w.state, 0o755);
    chown(&w.state, Some(NOBODY), Some(NOBODY)).unwrap();
    let cfg = w.write_config(&talker(unique_number()));
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "started in a dir owned by uid 65534\n{out}");
    let msg = out.all();
    assert!(
        msg.contains(w.state.to_str().unwrap()) && msg.contains("owned by uid 65534"),
        "the error names neither the dir nor its owner: {msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "not one line: {msg}");
    assert!(
        entries(&w.state).is_empty(),
        "wrote {:?}",
        entries(&w.state)
    );
    assert_eq!(mode_of(&w.state), 0o755, "the refused dir was chmodded");
    assert!(w.processes().is_empty());
}

#[test]
fn a_logs_dir_owned_by_another_user_is_refused() {
    if !is_root() {
        skip::root_only("needs root to chown logs/ to uid 65534");
        return;
    }
    let w = Sysg::new();
    let logs = w.state.join("logs");
    fs::create_dir_all(&logs).unwrap();
    chmod(&w.state, 0o700);
    chown(&logs, Some(NOBODY), Some(NOBODY)).unwrap();
    let cfg = w.write_config(&talker(unique_number()));
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all().contains(logs.to_str().unwrap()),
        "the error does not name logs/: {out}"
    );
    assert!(entries(&logs).is_empty());
    assert!(w.processes().is_empty());
}

#[test]
fn a_parent_dir_others_can_write_is_refused_unless_sticky() {
    if !is_root() {
        skip::root_only("needs root to make a dir owned by uid 65534");
        return;
    }
    let w = Sysg::new();
    let shared = w.root().join("shared");
    fs::create_dir(&shared).unwrap();
    chown(&shared, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&shared, 0o777);
    let state = shared.join("deeper/state");
    let cfg = w.write_config(&talker(unique_number()));
    let mut cmd = w.command(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    cmd.env("SYSG_STATE_DIR", &state);
    let out = run_with_limit(cmd, COMMAND_LIMIT);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all().contains(shared.to_str().unwrap()) && out.all().contains("writable"),
        "the error does not name the writable parent: {out}"
    );
    assert!(
        entries(&shared).is_empty(),
        "created {:?}",
        entries(&shared)
    );

    // With the sticky bit (like /tmp) nobody else can rename our dir away: accepted.
    chmod(&shared, 0o1777);
    let mut cmd = w.command(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    cmd.env("SYSG_STATE_DIR", &state);
    let out = run_with_limit(cmd, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    let mut stop = w.command(&["stop"]);
    stop.env("SYSG_STATE_DIR", &state);
    let out = run_with_limit(stop, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    assert!(state.join("logs").is_dir());
}

#[test]
fn our_own_group_and_world_writable_state_dir_is_tightened() {
    let w = Sysg::new();
    fs::create_dir_all(w.state.join("logs")).unwrap();
    chmod(&w.state, 0o777);
    chmod(&w.state.join("logs"), 0o775);
    w.start_with(&talker(unique_number()));
    w.wait_running_pid("api", None);
    assert_eq!(mode_of(&w.state), 0o700);
    assert_eq!(mode_of(&w.state.join("logs")), 0o700);
    w.run_ok(&["stop"]);
}

// ---- 2. planted links ----

#[test]
fn a_symlinked_pid_file_is_refused_and_its_target_kept() {
    let w = Sysg::new();
    fs::create_dir_all(&w.state).unwrap();
    chmod(&w.state, 0o700);
    let target = victim(&w, "pid-victim");
    symlink(&target, w.state.join("sysg.pid")).unwrap();
    let cfg = w.write_config(&talker(unique_number()));
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all().contains("sysg.pid") && out.all().contains("symbolic link"),
        "{out}"
    );
    assert_untouched(&target);
    assert!(w.processes().is_empty());
}

#[test]
fn symlinked_state_files_and_log_files_are_never_written_through() {
    let w = Sysg::new();
    let logs = w.state.join("logs");
    fs::create_dir_all(&logs).unwrap();
    chmod(&w.state, 0o700);
    chmod(&logs, 0o700);
    let mut planted = Vec::new();
    for name in [
        "pid.json",
        "pid.json.lock",
        "state.json",
        "config_hint",
        "logs/api_stdout.log",
        "logs/api_stderr.log",
    ] {
        let target = victim(&w, &name.replace('/', "-"));
        symlink(&target, w.state.join(name)).unwrap();
        planted.push(target);
    }
    w.start_with(&talker(unique_number()));
    w.wait_running_pid("api", None);
    let st = w.state.join("state.json");
    let replaced = wait_until(DEADLINE, || {
        fs::symlink_metadata(&st).is_ok_and(|m| m.file_type().is_file())
            && fs::read_to_string(&st).is_ok_and(|t| t.contains("\"api\""))
    });
    assert!(replaced, "state.json was not replaced by a file of its own");
    w.run_ok(&["stop"]);
    for target in &planted {
        assert_untouched(target);
    }
    for name in ["logs/api_stdout.log", "logs/api_stderr.log"] {
        let meta = fs::symlink_metadata(w.state.join(name)).unwrap();
        assert!(meta.file_type().is_symlink(), "{name} was replaced");
    }
}

#[test]
fn a_planted_supervisor_log_refuses_the_start_and_is_left_alone() {
    let w = Sysg::new();
    fs::create_dir_all(&w.state).unwrap();
    chmod(&w.state, 0o700);
    // A hard link (same owner, so the kernel allows it), then a symlink.
    for how in ["hard", "soft"] {
        let target = victim(&w, &format!("{how}-victim"));
        let log = w.state.join("supervisor.log");
        let _ = fs::remove_file(&log);
        if how == "hard" {
            fs::hard_link(&target, &log).unwrap();
        } else {
            symlink(&target, &log).unwrap();
        }
        let cfg = w.write_config(&talker(unique_number()));
        let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
        assert_ne!(
            out.code, 0,
            "started with a planted supervisor.log ({how})\n{out}"
        );
        assert!(
            out.stderr.contains("supervisor.log") && out.stderr.lines().count() == 1,
            "{out}"
        );
        assert_untouched(&target);
        assert!(w.supervisor_pid().is_none(), "a supervisor runs anyway");
    }
}

#[test]
fn a_refused_log_file_is_reported_in_supervisor_log() {
    let w = Sysg::new();
    let logs = w.state.join("logs");
    fs::create_dir_all(&logs).unwrap();
    chmod(&w.state, 0o700);
    let target = victim(&w, "log-victim");
    symlink(&target, logs.join("api_stdout.log")).unwrap();
    w.start_with(&talker(unique_number()));
    let name = logs.join("api_stdout.log");
    let reported = wait_until(DEADLINE, || {
        w.supervisor_log()
            .lines()
            .any(|l| l.contains(name.to_str().unwrap()) && l.contains("symbolic link"))
    });
    assert!(
        reported,
        "no refusal in supervisor.log\n{}",
        w.diagnostics()
    );
    w.run_ok(&["stop"]);
    assert_untouched(&target);
}

#[test]
fn a_symlinked_logs_dir_is_refused_before_anything_is_written() {
    let w = Sysg::new();
    fs::create_dir_all(&w.state).unwrap();
    chmod(&w.state, 0o700);
    let elsewhere = w.root().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, w.state.join("logs")).unwrap();
    let cfg = w.write_config(&talker(unique_number()));
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all().contains("logs") && out.all().contains("symbolic link"),
        "{out}"
    );
    assert!(entries(&elsewhere).is_empty(), "{:?}", entries(&elsewhere));
    assert_eq!(entries(&w.state), ["logs"]);
}

#[test]
fn a_symlinked_state_dir_is_refused() {
    let w = Sysg::new();
    let real = w.root().join("real-state");
    fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    symlink(&real, &w.state).unwrap();
    let cfg = w.write_config(&talker(unique_number()));
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.all().contains("symbolic link"), "{out}");
    assert!(entries(&real).is_empty());
}

#[test]
fn logs_refuses_to_read_through_a_symlink() {
    let w = Sysg::new();
    let logs = w.state.join("logs");
    fs::create_dir_all(&logs).unwrap();
    chmod(&w.state, 0o700);
    let secret = victim(&w, "secret");
    symlink(&secret, logs.join("api_stdout.log")).unwrap();
    let out = w.run(&["logs", "api"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(!out.all().contains("precious"), "printed the target: {out}");
    assert!(
        out.stderr.contains("api_stdout.log") && out.stderr.contains("symbolic link"),
        "{out}"
    );

    // A rotated copy that is a link is not read either.
    fs::remove_file(logs.join("api_stdout.log")).unwrap();
    fs::write(logs.join("api_stdout.log"), "current line\n").unwrap();
    symlink(&secret, logs.join("api_stdout.log.1")).unwrap();
    let out = w.run(&["logs", "api", "-n", "10"]);
    assert!(out.stdout.contains("current line"), "{out}");
    assert!(!out.all().contains("precious"), "printed the target: {out}");

    // Nor a logs dir that is a link.
    let other = w.root().join("other-logs");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("api_stdout.log"), PRECIOUS).unwrap();
    fs::remove_dir_all(&logs).unwrap();
    symlink(&other, &logs).unwrap();
    let out = w.run(&["logs", "api"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(!out.all().contains("precious"), "printed the target: {out}");
    assert!(out.stderr.contains("symbolic link"), "{out}");
}

#[test]
fn purge_removes_only_what_sysg_created_and_follows_no_link() {
    let w = Sysg::new();
    w.start_with(&talker(unique_number()));
    w.wait_running_pid("api", None);
    let logs = w.state.join("logs");
    assert!(wait_until(DEADLINE, || logs
        .join("api_stdout.log")
        .exists()));
    w.run_ok(&["stop"]);

    let target = victim(&w, "purge-victim");
    let target_dir = w.root().join("victim-dir");
    fs::create_dir(&target_dir).unwrap();
    fs::write(target_dir.join("api_stdout.log"), PRECIOUS).unwrap();
    symlink(&target, logs.join("api_stdout.log.1")).unwrap();
    symlink(&target_dir, w.state.join("linked-dir")).unwrap();
    fs::write(w.state.join("notes.txt"), "mine\n").unwrap();

    let out = w.run_ok(&["purge"]);
    assert!(out.stdout.contains("kept"), "{out}");
    assert_untouched(&target);
    assert_untouched(&target_dir.join("api_stdout.log"));
    assert_eq!(entries(&w.state), ["linked-dir", "logs", "notes.txt"]);
    assert_eq!(entries(&logs), ["api_stdout.log.1"]);
    assert!(w.processes().is_empty());
}

// ---- 3. text a service controls ----

#[test]
fn status_escapes_control_characters_in_command_lines() {
    let w = Sysg::new();
    let n = unique_number();
    // The shell stays (a command follows the sleep), so its argv is in the tree.
    w.start_with(&format!(
        r#"
        services:
          forger:
            command: "sleep {n}; true '\n● db Running\x1b[2J'"
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("forger", None);
    let both = wait_until(DEADLINE, || {
        w.service("forger")
            .and_then(|s| s["processes"].as_array().map(|p| p.len()))
            .is_some_and(|k| k >= 2)
    });
    assert!(both, "the shell and its sleep never both showed");

    let out = w.run_ok(&["status"]);
    assert!(
        !out.stdout.contains('\x1b'),
        "raw ESC reached the terminal: {out:?}"
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("● db")),
        "a forged status block: {out}"
    );
    assert!(
        out.stdout.contains("\\n● db Running\\x1b[2J"),
        "the command line is not shown escaped: {out}"
    );

    // JSON stays JSON: the raw text, escaped by the encoder.
    let svc = w.service("forger").unwrap();
    let raw = svc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["command"].as_str())
        .any(|c| c.contains("\n● db Running\x1b[2J"));
    assert!(raw, "JSON lost the raw command line: {svc:#}");
    w.run_ok(&["stop"]);
}
