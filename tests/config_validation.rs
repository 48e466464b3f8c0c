//! `sysg validate` (SPEC §2): every error at once, as `path:line:col: key.path: message`,
//! exit 2; a valid config prints `OK: N services (M cron)`.

mod common;
use common::*;
use std::path::Path;

fn validate(w: &Sysg, yaml: &str) -> (std::path::PathBuf, Output) {
    let cfg = w.write_config(yaml);
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    (cfg, out)
}

/// The error line about `key` (`...:LINE:COL: key: message`), checking its shape.
fn error_line<'a>(out: &'a Output, cfg: &Path, key: &str) -> &'a str {
    let needle = format!(": {key}: ");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no error line for {key}\n{out}"));
    let prefix = &line[..line.find(&needle).unwrap()];
    let mut parts = prefix.rsplitn(3, ':');
    let col = parts.next().unwrap();
    let row = parts.next().unwrap_or("");
    let file = parts.next().unwrap_or("");
    assert!(
        col.parse::<u32>().is_ok() && row.parse::<u32>().is_ok(),
        "error line is not path:line:col: key: message: {line}"
    );
    let name = cfg.file_name().unwrap().to_str().unwrap();
    assert!(
        file.ends_with(name),
        "error line does not name the config file: {line}"
    );
    line
}

#[test]
fn valid_config_prints_ok_with_service_count() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        version: "1"
        env:
          vars: { LOG_LEVEL: info }
        services:
          db:
            command: "sleep 1000"
            restart_policy: "always"
            backoff: "100ms"
            stop_timeout: "1m30s"
          api:
            command: "sleep 1000"
            depends_on: ["db"]
            env:
              vars: { PORT: "8000" }
        "#,
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "OK: 2 services (0 cron)", "{out}");
}

#[test]
fn unknown_key_is_reported_with_the_valid_keys() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            restart_polcy: "always"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let line = error_line(&out, &cfg, "services.api.restart_polcy");
    assert!(
        line.contains(":4:5: "),
        "the unknown key is at line 4, column 5: {line}"
    );
    for valid in ["command", "restart_policy", "depends_on"] {
        assert!(
            line.contains(valid),
            "valid keys not listed ({valid})\n{out}"
        );
    }
}

#[test]
fn dependency_cycle_is_printed() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        services:
          a:
            command: "sleep 1000"
            depends_on: ["b"]
          b:
            command: "sleep 1000"
            depends_on: ["a"]
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("a -> b -> a") || out.stderr.contains("b -> a -> b"),
        "cycle not printed\n{out}"
    );
}

#[test]
fn duplicate_names_are_each_reported_at_their_own_key() {
    // YAML itself refuses `a:` twice; `1` and `"1"` are different keys with one name.
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          1: { command: "sleep 1000" }
          true: { command: "sleep 1000" }
          "1": { command: "sleep 1000" }
          'true': { command: "sleep 1000" }
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let shown = cfg.display();
    let want = [
        format!("{shown}:4:3: services.1: duplicate service name \"1\""),
        format!("{shown}:5:3: services.true: duplicate service name \"true\""),
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), want, "{out}");
}

/// A config of `n` services named by number, then a second spelling (`"N"`) of every
/// `step`-th name, and an unknown key in every `step`-th service.
fn numbered(n: usize, step: usize) -> String {
    let mut yaml = String::from("services:\n");
    for i in 0..n {
        match i % step {
            0 => yaml.push_str(&format!("  {i}: {{ command: \"sleep 1\", bogus: 1 }}\n")),
            _ => yaml.push_str(&format!("  {i}: {{ command: \"sleep 1\" }}\n")),
        }
    }
    for i in (0..n).step_by(step) {
        yaml.push_str(&format!("  \"{i}\": {{ command: \"sleep 1\" }}\n"));
    }
    yaml
}

#[test]
fn every_problem_of_a_large_config_is_reported_with_its_position() {
    let (n, step) = (20_000, 400);
    let w = Sysg::new();
    let (cfg, out) = validate(&w, &numbered(n, step));
    assert_eq!(out.code, 2, "{out}");
    let shown = cfg.display();
    // Service i is on line i + 2, its `bogus` key 27 columns after the name's digits.
    let mut want = Vec::new();
    for i in (0..n).step_by(step) {
        let col = 27 + i.to_string().len();
        want.push(format!(
            "{shown}:{}:{col}: services.{i}.bogus: unknown key; valid keys: {}",
            i + 2,
            "command, working_dir, env, restart_policy, backoff, backoff_max, max_restarts, \
             depends_on, skip, stop_signal, stop_timeout, health_check, hooks, cron, logs, exec, pre_start, deployment, user, group, umask, limits, notify, watchdog"
        ));
    }
    for (k, i) in (0..n).step_by(step).enumerate() {
        want.push(format!(
            "{shown}:{}:3: services.{i}: duplicate service name \"{i}\"",
            n + 2 + k
        ));
    }
    let got: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(got.len(), want.len(), "{out}");
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got, want);
    }
}

#[test]
fn bare_integer_duration_is_an_error() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            backoff: "5"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let line = error_line(&out, &cfg, "services.api.backoff");
    assert!(
        line.contains(":4:5: "),
        "backoff is at line 4, column 5: {line}"
    );
    assert!(line.contains("invalid duration \"5\""), "{line}");
}

#[test]
fn unknown_duration_unit_is_an_error() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            stop_timeout: "5x"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let line = error_line(&out, &cfg, "services.api.stop_timeout");
    assert!(line.contains("5x"), "{line}");
}

#[test]
fn unset_variable_in_working_dir_is_named() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            working_dir: "${SYSG_ITEST_SURELY_UNSET_VAR}/app"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let line = error_line(&out, &cfg, "services.api.working_dir");
    assert!(line.contains("SYSG_ITEST_SURELY_UNSET_VAR"), "{line}");
    assert!(!out.stderr.contains("panicked"), "{out}");
}

#[test]
fn variable_with_default_in_working_dir_is_fine() {
    let w = Sysg::new();
    std::fs::create_dir_all(w.proj.join("app")).unwrap();
    let (_, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            working_dir: "${SYSG_ITEST_SURELY_UNSET_VAR:-app}"
        "#,
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "OK: 1 services (0 cron)", "{out}");
}

#[test]
fn empty_command_is_an_error() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: ""
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    error_line(&out, &cfg, "services.api.command");
}

#[test]
fn missing_command_is_an_error() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        services:
          api:
            restart_policy: "always"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("command"), "{out}");
}

#[test]
fn unknown_depends_on_target_is_an_error() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            depends_on: ["nosuchservice"]
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("nosuchservice"))
        .unwrap_or_else(|| panic!("unknown target not named\n{out}"));
    assert!(line.contains("services.api.depends_on"), "{line}");
}

#[test]
fn bad_restart_policy_is_an_error() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          api:
            command: "sleep 1000"
            restart_policy: "sometimes"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    error_line(&out, &cfg, "services.api.restart_policy");
}

#[test]
fn wrong_version_is_an_error() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        version: "2"
        services:
          api:
            command: "sleep 1000"
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("version"), "{out}");
}

#[test]
fn several_errors_are_reported_at_once() {
    let w = Sysg::new();
    let (cfg, out) = validate(
        &w,
        r#"
        services:
          a:
            command: "sleep 1000"
            backoff: "5"
            bogus_key: 1
          b:
            command: ""
            depends_on: ["ghost"]
        "#,
    );
    assert_eq!(out.code, 2, "{out}");
    error_line(&out, &cfg, "services.a.backoff");
    error_line(&out, &cfg, "services.a.bogus_key");
    error_line(&out, &cfg, "services.b.command");
    assert!(out.stderr.contains("ghost"), "{out}");
}

#[test]
fn yaml_syntax_error_is_reported_not_panicked() {
    let w = Sysg::new();
    let (_, out) = validate(&w, "services:\n  api:\n    command: \"sleep 1\n  :: [\n");
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!out.stderr.trim().is_empty(), "{out}");
}

#[test]
fn every_feature_key_of_the_spec_validates() {
    let w = Sysg::new();
    let (_, out) = validate(
        &w,
        r#"
        logs: { max_size: "10MB", max_files: 3 }
        services:
          job:
            command: "echo hi"
            cron:
              expression: "*/10 * * * * *"
              timezone: "UTC"
          web:
            command: "sleep 1000"
            health_check:
              command: "true"
              interval: "500ms"
            hooks:
              on_start:
                success: { command: "true", timeout: "5s" }
            logs: { max_size: "1MB", max_files: 2 }
        "#,
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("OK: 2 services (1 cron)"), "{out}");
}

#[test]
fn start_refuses_an_invalid_config_with_exit_2() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          api:
            command: "sleep 1000"
            backoff: "5"
        "#,
    );
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("services.api.backoff"), "{out}");
    assert!(
        w.processes().is_empty(),
        "a supervisor or service was started"
    );
}

#[test]
fn validate_finds_sysg_yaml_in_the_current_dir() {
    let w = Sysg::new();
    w.write_config(
        r#"
        services:
          api:
            command: "sleep 1000"
        "#,
    );
    let mut cmd = w.command(&["validate"]);
    cmd.current_dir(&w.proj);
    let out = run_with_limit(cmd, COMMAND_LIMIT);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "OK: 1 services (0 cron)", "{out}");
}
