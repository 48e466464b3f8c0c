//! The man pages and shell completions stay in step with the command line: every command
//! of `sysg --help` and every flag of `sysg help <cmd>` is in man/sysg.1, every config key
//! is in man/systemg.yaml.5, the completion scripts name every command, and both pages
//! render without a warning from man(1) when it is installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs sysg with a private, empty state dir and HOME so nothing real is touched.
fn sysg(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let bin = std::env::var("SYSG_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sysg").into());
    Command::new(bin)
        .args(args)
        .env("HOME", home.path())
        .env("SYSG_STATE_DIR", home.path().join("state"))
        .env_remove("XDG_DATA_HOME")
        .env("NO_COLOR", "1")
        .output()
        .expect("run sysg")
}

fn stdout_of(args: &[&str]) -> String {
    let out = sysg(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sysg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The page as plain text: roff escapes for dashes, fonts, zero-width marks and quotes
/// replaced by what they print.
fn man_text(name: &str) -> String {
    let path = root().join("man").join(name);
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut text = raw
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\e", "\\")
        .replace("\\(dq", "\"")
        .replace("\\(aq", "'")
        .replace("\\ ", " ")
        .replace("\\c", "");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

/// Commands listed under "Commands:" in `sysg --help`.
fn commands_from_help() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(commands.len() >= 8, "no commands found in --help:\n{help}");
    commands
}

/// Flags (`-c`, `--config`, ...) on the option lines of a help text, i.e. lines whose
/// first word starts with a dash.
fn flags_in(help: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let synopsis = line.split("  ").next().unwrap_or(line);
        for word in synopsis.split([' ', ',']) {
            if word.starts_with('-') {
                flags.push(word.to_string());
            }
        }
    }
    flags
}

/// The text of the `.SS` subsection of sysg.1 whose title starts with `command`, up to
/// the next subsection or section.
fn command_section<'t>(man: &'t str, command: &str) -> Option<&'t str> {
    man.split("\n.SS ")
        .skip(1)
        .map(|section| section.split("\n.SH ").next().unwrap_or(section))
        .find(|section| {
            let title = section.lines().next().unwrap_or("").trim_matches('"');
            title == command || title.starts_with(&format!("{command} "))
        })
}

/// The tag lines of the `.TP` items of a piece of roff: where options are documented.
fn item_tags(section: &str) -> String {
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].trim() == ".TP")
        .map(|pair| pair[1])
        .collect::<Vec<_>>()
        .join("\n")
}

/// `word` occurs in `text` and is not just the start of a longer flag (`-s` vs `-sx`).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '-'));
        boundary(before) && boundary(after)
    })
}

#[test]
fn every_command_and_flag_is_in_sysg_1() {
    let man = man_text("sysg.1");
    let mut missing = Vec::new();
    for command in commands_from_help() {
        let Some(section) = command_section(&man, &command) else {
            missing.push(format!("section for command '{command}'"));
            continue;
        };
        let tags = item_tags(section);
        for flag in flags_in(&stdout_of(&["help", &command])) {
            if !has_word(&tags, &flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    let global_tags = command_section(&man, "Global").map(item_tags);
    let global_tags = global_tags.expect("a .SS \"Global options\" section in sysg.1");
    for flag in flags_in(&stdout_of(&["--help"])) {
        if !has_word(&global_tags, &flag) {
            missing.push(format!("global {flag}"));
        }
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "CONFIGURATION",
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        let plain = format!("\n.SH {section}\n");
        let quoted = format!("\n.SH \"{section}\"\n");
        if !man.contains(&plain) && !man.contains(&quoted) {
            missing.push(format!("section .SH {section}"));
        }
    }
    for word in [
        "SYSG_STATE_DIR",
        "XDG_DATA_HOME",
        "HOME",
        "NO_COLOR",
        "SYSG_SERVICE",
        "SYSG_HOOK",
        "SYSG_OUTCOME",
        "SYSG_EXIT_CODE",
        "SYSG_PID",
        "sysg.pid",
        "control.sock",
        "config_hint",
        "pid.json",
        "pid.json.lock",
        "state.json",
        "supervisor.log",
        "_stdout.log",
        "_stderr.log",
    ] {
        if !man.contains(word) {
            missing.push(format!("'{word}'"));
        }
    }
    assert!(missing.is_empty(), "man/sysg.1 lacks: {missing:#?}");
}

/// Every key of the configuration format (SPEC §2, plus the top-level `logs`).
const CONFIG_KEYS: &[&str] = &[
    "version",
    "env",
    "file",
    "vars",
    "logs",
    "services",
    "command",
    "working_dir",
    "restart_policy",
    "never",
    "on-failure",
    "always",
    "backoff",
    "backoff_max",
    "max_restarts",
    "depends_on",
    "skip",
    "stop_signal",
    "stop_timeout",
    "health_check",
    "url",
    "interval",
    "timeout",
    "retries",
    "hooks",
    "on_start",
    "on_stop",
    "on_restart",
    "success",
    "error",
    "cron",
    "expression",
    "timezone",
    "max_size",
    "max_files",
];

#[test]
fn every_config_key_is_in_systemg_yaml_5() {
    let man = man_text("systemg.yaml.5");
    let missing: Vec<&str> = CONFIG_KEYS
        .iter()
        .copied()
        .filter(|key| !has_word(&man, key))
        .collect();
    assert!(missing.is_empty(), "man/systemg.yaml.5 lacks: {missing:?}");
    // The short key list in sysg(1) covers them too.
    let short = man_text("sysg.1");
    let missing: Vec<&str> = CONFIG_KEYS
        .iter()
        .copied()
        .filter(|key| !has_word(&short, key))
        .collect();
    assert!(
        missing.is_empty(),
        "man/sysg.1 CONFIGURATION lacks: {missing:?}"
    );
}

#[test]
fn completions_name_every_command() {
    let commands = commands_from_help();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for command in &commands {
            assert!(
                has_word(&script, command),
                "{shell} completions lack '{command}'"
            );
        }
        for command in &commands {
            for flag in flags_in(&stdout_of(&["help", command])) {
                let long = flag.trim_start_matches('-');
                assert!(
                    script.contains(long),
                    "{shell} completions lack {command} {flag}"
                );
            }
        }
    }
}

#[test]
fn bash_completion_is_valid_bash() {
    let script = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sysg.bash");
    std::fs::write(&path, script).expect("write script");
    match Command::new("bash").arg("-n").arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => common::skip::root_only(&format!("bash not runnable ({e})")),
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = sysg(&["completions", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = sysg(&["completions"]);
    assert_eq!(out.status.code(), Some(2));
}

fn man_available() -> bool {
    Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn man_warnings(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run man");
    assert!(out.status.success(), "man -l {page:?} failed");
    assert!(!out.stdout.is_empty(), "man -l {page:?} printed nothing");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn man_pages_render_without_warnings() {
    if !man_available() {
        common::skip::root_only("man(1) is not installed (man-db, groff-base)");
        return;
    }
    for page in ["sysg.1", "systemg.yaml.5"] {
        let warnings = man_warnings(&root().join("man").join(page));
        assert!(warnings.is_empty(), "man --warnings {page}:\n{warnings}");
    }
}
