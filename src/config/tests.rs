//! `load` end to end: real files in a temp dir, the messages users see. Compiled only
//! under #[cfg(test)] (see the `mod tests` declaration in mod.rs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `yaml` from `<tempdir>/systemg.yaml`.
fn load_yaml(yaml: &str) -> (TempDir, Result<Config, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "systemg.yaml", yaml);
    let result = load(&path);
    (dir, result)
}

fn ok(yaml: &str) -> (TempDir, Config) {
    let (dir, result) = load_yaml(yaml);
    match result {
        Ok(config) => (dir, config),
        Err(e) => panic!("expected the config to load, got:\n{e}"),
    }
}

/// The error lines with the `<path>:` prefix removed.
fn errors(yaml: &str) -> Vec<String> {
    let (dir, result) = load_yaml(yaml);
    let prefix = format!("{}:", dir.path().join("systemg.yaml").display());
    match result {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(Error::Config(lines)) => lines
            .into_iter()
            .map(|l| l.strip_prefix(&prefix).map(str::to_string).unwrap_or(l))
            .collect(),
        Err(e) => panic!("expected Error::Config, got {e:?}"),
    }
}

fn built(yaml: &str, dir: &Path) -> Vec<Service> {
    built_with_env(yaml, dir, &build::process_env)
}

/// Like `built`, with `env` for the supervisor's environment.
fn built_with_env(yaml: &str, dir: &Path, env: build::Lookup) -> Vec<Service> {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let (services, problems) = build::build(&value, dir, env);
    let messages: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", display_path(&p.path), p.message))
        .collect();
    assert!(messages.is_empty(), "{messages:?}");
    services
}

#[test]
fn minimal_config_gets_every_default() {
    let (dir, config) = ok("services:\n  api:\n    command: sleep 10\n");
    let canonical_dir = dir.path().canonicalize().unwrap();
    assert_eq!(config.path, canonical_dir.join("systemg.yaml"));
    let api = config.service("api").unwrap();
    assert_eq!(api.command, "sleep 10");
    assert_eq!(api.working_dir, canonical_dir);
    assert!(api.env.is_empty());
    assert_eq!(api.restart_policy, RestartPolicy::Never);
    assert_eq!(api.backoff, Duration::from_secs(1));
    assert_eq!(api.backoff_max, None);
    assert_eq!(api.max_restarts, None);
    assert_eq!(api.stop_signal, libc::SIGTERM);
    assert_eq!(api.stop_timeout, Duration::from_secs(10));
    assert!(api.health_check.is_none() && api.cron.is_none() && api.skip.is_none());
    assert_eq!(
        api.logs,
        LogLimits {
            max_size: 50 * 1024 * 1024,
            max_files: 5,
            timestamps: false,
        }
    );
}

#[test]
fn every_supported_key_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".env", "ROOT_FILE=1\n");
    write(dir.path(), "api.env", "API_FILE=1\n");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let yaml = r#"
version: 1
env: { file: .env, vars: { LOG_LEVEL: info, N: 3, FLAG: true, BASE: "${SYSG_CFG_TEST_UNSET:-/opt}" } }
services:
  db: { command: "postgres" }
  api:
    command: "python3 app.py $PORT"
    working_dir: ./data
    env: { file: api.env, vars: { PORT: "8000", WHERE: "${BASE}/x", LIT: "a$$b $c" } }
    restart_policy: on-failure
    backoff: 500ms
    backoff_max: 1m30s
    max_restarts: 0
    depends_on: [db]
    skip: 'test -n "$CI"'
    stop_signal: SIGINT
    stop_timeout: 0s
"#;
    let config_path = write(dir.path(), "systemg.yaml", yaml);
    let config = load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let base = dir.path().canonicalize().unwrap();
    assert_eq!(
        config
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["db", "api"]
    );
    let api = config.service("api").unwrap();
    assert_eq!(api.command, "python3 app.py $PORT");
    assert_eq!(api.working_dir, base.join("data"));
    let vars = |list: &[(&str, &str)]| {
        EnvSource::Vars(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into(),
        )
    };
    assert_eq!(
        api.env,
        [
            EnvSource::File(base.join(".env")),
            vars(&[
                ("LOG_LEVEL", "info"),
                ("N", "3"),
                ("FLAG", "true"),
                ("BASE", "/opt")
            ]),
            EnvSource::File(base.join("api.env")),
            vars(&[("PORT", "8000"), ("WHERE", "/opt/x"), ("LIT", "a$$b $c")]),
        ]
    );
    assert_eq!(api.environment().unwrap().len(), 9);
    assert_eq!(api.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(api.backoff, Duration::from_millis(500));
    assert_eq!(api.backoff_max, Some(Duration::from_secs(90)));
    assert_eq!(api.max_restarts, Some(0));
    assert_eq!(api.depends_on, ["db"]);
    assert_eq!(api.skip.as_deref(), Some("test -n \"$CI\""));
    assert_eq!(api.stop_signal, libc::SIGINT);
    assert_eq!(api.stop_timeout, Duration::ZERO);
    assert_eq!(config.service("db").unwrap().env.len(), 2);
}

#[test]
fn process_environment_expands_but_root_vars_win() {
    // A stand-in for the supervisor's environment: tests run in parallel threads, and
    // setting the real one would race with every other reader of it.
    let process_env = |name: &str| match name {
        "SUB" | "BOTH" => Some("from-process".to_string()),
        _ => None,
    };
    let yaml = "env:\n  vars:\n    BOTH: from-root\nservices:\n  a:\n    command: x\n    env:\n      vars:\n        P: ${SUB}\n        B: ${BOTH}\n";
    let dir = tempfile::tempdir().unwrap();
    let services = built_with_env(yaml, dir.path(), &process_env);
    let env = services[0].environment().unwrap();
    assert!(env.contains(&("P".to_string(), "from-process".to_string())));
    assert!(env.contains(&("B".to_string(), "from-root".to_string())));
}

#[test]
fn unknown_key_is_located_and_lists_valid_keys() {
    let got = errors("services:\n  api:\n    command: x\n    restart: always\n");
    assert_eq!(
        got,
        ["4:5: services.api.restart: unknown key; valid keys: command, working_dir, env, restart_policy, \
          backoff, backoff_max, max_restarts, depends_on, skip, stop_signal, stop_timeout, health_check, \
          hooks, cron, logs, exec, pre_start, deployment, user, group, umask, limits, notify, watchdog"]
    );
    let got = errors("services: {api: {command: x}}\nextra: 1\n");
    assert_eq!(
        got,
        ["2:1: extra: unknown key; valid keys: version, env, services, logs"]
    );
    let got = errors("env: { vars: {}, varz: {} }\nservices: {api: {command: x}}\n");
    assert_eq!(got, ["1:18: env.varz: unknown key; valid keys: file, vars"]);
}

#[test]
fn missing_empty_and_mistyped_commands() {
    let got = errors("services:\n  a:\n    working_dir: .\n  b:\n    command: \"  \"\n  c:\n    command:\n  d:\n    command: [ls]\n");
    assert_eq!(
        got,
        [
            "2:3: services.a.command: missing required key",
            "5:5: services.b.command: must not be empty",
            "7:5: services.c.command: must not be empty",
            "9:5: services.d.command: expected a string, got a list",
        ]
    );
}

#[test]
fn dependency_problems() {
    let got = errors("services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on:\n      - a\n");
    assert_eq!(
        got,
        ["4:5: services.a.depends_on: dependency cycle: a -> b -> a"]
    );
    let got =
        errors("services:\n  a:\n    command: x\n    depends_on:\n      - a\n      - ghost\n");
    assert_eq!(
        got,
        [
            "5:7: services.a.depends_on[0]: a service cannot depend on itself",
            "6:7: services.a.depends_on[1]: unknown service \"ghost\"",
        ]
    );
}

#[test]
fn every_problem_is_reported_sorted_by_line() {
    let yaml = "\
version: \"2\"
services:
  bad/name:
    command: x
  api:
    command: x
    backoff: 5
    backoff_max: 1m
    stop_timeout: \"1m\"
    restart_policy: sometimes
    max_restarts: -1
    stop_signal: TERMINATE
    depends_on: [nope]
  web:
    command: y
    backoff: 2m
    backoff_max: 1m
";
    let got = errors(yaml);
    assert_eq!(
        got,
        [
            "1:1: version: unsupported version 2; only \"1\" is supported",
            "3:3: services.bad/name: invalid service name \"bad/name\": use 1 to 64 letters, digits, '_', '.' or '-'",
            "7:5: services.api.backoff: expected a duration with a unit such as \"5s\", got the number 5",
            "10:5: services.api.restart_policy: unknown policy \"sometimes\"; valid: never, on-failure, always",
            "11:5: services.api.max_restarts: must be 0 or more, got -1",
            "12:5: services.api.stop_signal: unknown signal \"TERMINATE\"; use a name such as TERM, INT, HUP, QUIT, KILL, USR1, USR2 or its number",
            "13:18: services.api.depends_on[0]: unknown service \"nope\"",
            "17:5: services.web.backoff_max: must not be shorter than backoff (120s)",
        ]
    );
}

#[test]
fn variables_expand_with_defaults_and_unset_is_an_error() {
    let yaml = "env:\n  vars:\n    SUB: data\nservices:\n  a:\n    command: echo ${NOT_EXPANDED}\n    working_dir: ${SYSG_CFG_TEST_NOPE:-.}/${SUB}\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let config = load(&write(dir.path(), "systemg.yaml", yaml)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.services[0].working_dir,
        dir.path().canonicalize().unwrap().join("data")
    );
    assert_eq!(config.services[0].command, "echo ${NOT_EXPANDED}");

    let got =
        errors("services:\n  api:\n    command: x\n    working_dir: ${SYSG_CFG_TEST_FOO}/x\n");
    assert_eq!(
        got,
        ["4:5: services.api.working_dir: variable ${SYSG_CFG_TEST_FOO} is not set"]
    );
    let got = errors(
        "services:\n  api:\n    command: x\n    env: { vars: { A: \"${SYSG_CFG_TEST_FOO\" } }\n",
    );
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("4:20: services.api.env.vars.A: unterminated"),
        "{got:?}"
    );
}

#[test]
fn env_values_must_be_scalars_and_env_files_readable() {
    let got = errors("env:\n  file: missing.env\n  vars:\n    L: [1]\n    \"A B\": x\nservices: {a: {command: x}}\n");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("2:3: env.file: cannot load env file /"),
        "{got:?}"
    );
    assert!(
        got[0].ends_with("missing.env: No such file or directory (os error 2)"),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        "4:5: env.vars.L: expected a string, number or boolean, got a list"
    );
    assert_eq!(got[2], "5:5: env.vars.A B: invalid variable name \"A B\"");
}

#[test]
fn health_check_rules() {
    let got = errors(
        "services:\n  a:\n    command: x\n    health_check: { url: \"https://x/\", retries: 0, interval: 0s }\n  b:\n    command: x\n    health_check: { command: c, url: \"http://x/\" }\n",
    );
    assert_eq!(
        got,
        [
            "4:21: services.a.health_check.url: https is not supported (no TLS); use a command probe such as curl",
            "4:40: services.a.health_check.retries: must be 1 or more, got 0",
            "4:52: services.a.health_check.interval: must be longer than 0s",
            "7:5: services.b.health_check: set only one of command, url",
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let services = built(
        "services:\n  a:\n    command: x\n    health_check:\n      url: http://127.0.0.1:${P:-8000}/health\n",
        dir.path(),
    );
    let check = services[0].health_check.as_ref().unwrap();
    assert_eq!(
        check.probe,
        Probe::Url("http://127.0.0.1:8000/health".into())
    );
    assert_eq!(
        (check.interval, check.timeout, check.retries),
        (Duration::from_secs(1), Duration::from_secs(5), 30)
    );
}

#[test]
fn cron_five_fields_accepted_bad_rejected() {
    ok("services:\n  job:\n    command: x\n    cron:\n      expression: \"*/5 * * * *\"\n      timezone: UTC\n");
    let got = errors("services:\n  job:\n    command: x\n    cron: { expression: \"* * *\", timezone: Mars/Base }\n");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("4:13: services.job.cron.expression: expected 5 fields"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("4:34: services.job.cron.timezone: unknown timezone \"Mars/Base\""),
        "{got:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let services = built(
        "services:\n  job:\n    command: x\n    cron:\n      expression: \"0 9 * * 1-5\"\n",
        dir.path(),
    );
    let cron = services[0].cron.as_ref().unwrap();
    assert_eq!(cron.expression, "0 9 * * 1-5");
    assert_eq!(cron.timezone, Timezone::Local);
}

#[test]
fn logs_and_hooks_are_parsed() {
    let yaml = "logs: { max_size: 10MB }\nservices:\n  a:\n    command: x\n    logs: { max_files: 3 }\n    hooks:\n      on_stop:\n        error: { command: notify, timeout: 5s }\n";
    let dir = tempfile::tempdir().unwrap();
    let a = &built(yaml, dir.path())[0];
    assert_eq!(
        a.logs,
        LogLimits {
            max_size: 10 << 20,
            max_files: 3,
            timestamps: false,
        }
    );
    let hook = a.hooks.on_stop.error.as_ref().unwrap();
    assert_eq!(
        (hook.command.as_str(), hook.timeout),
        ("notify", Duration::from_secs(5))
    );
    assert!(a.hooks.on_start.success.is_none());
    let got = errors("services:\n  a:\n    command: x\n    hooks: { on_boot: {}, on_stop: { error: { timeout: 1s } } }\n    logs: { max_size: 50 }\n");
    assert_eq!(
        got,
        [
            "4:14: services.a.hooks.on_boot: unknown key; valid keys: on_start, on_stop, on_restart",
            "4:38: services.a.hooks.on_stop.error.command: missing required key",
            "5:13: services.a.logs.max_size: expected a size such as \"50MB\", got a number",
        ]
    );
}

#[test]
fn yaml_syntax_errors_use_the_parser_location() {
    let got = errors("services:\n  a:\n    command: [x\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("4:1: invalid YAML: "), "{got:?}");
    assert!(!got[0].contains("at line 4 column 1"), "{got:?}");
    let got = errors("services:\n  a: {command: x}\n  a: {command: y}\n");
    assert_eq!(
        got,
        ["2:3: invalid YAML: services: duplicate entry with key \"a\""]
    );
}

#[test]
fn empty_and_non_mapping_documents() {
    assert_eq!(
        errors(""),
        ["1:1: the config is empty; it needs a `services` mapping"]
    );
    assert_eq!(errors("- a\n"), ["1:1: expected a mapping, got a list"]);
    assert_eq!(
        errors("version: \"1\"\n"),
        ["1:1: services: missing required key"]
    );
    assert_eq!(
        errors("services:\n"),
        ["1:1: services: at least one service is required"]
    );
    assert_eq!(
        errors("services: {}\n"),
        ["1:1: services: at least one service is required"]
    );
}

#[test]
fn unreadable_config_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    match load(&missing) {
        Err(Error::Config(lines)) => {
            assert_eq!(lines.len(), 1);
            assert!(
                lines[0].starts_with(&format!("{}: cannot read config: ", missing.display())),
                "{lines:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_keys_and_anchors_work() {
    let (_dir, config) = ok("services:\n  a: &base\n    command: x\n    restart_policy: always\n  b:\n    <<: *base\n    backoff: 2s\n");
    let b = config.service("b").unwrap();
    assert_eq!(
        (b.restart_policy, b.backoff, b.command.as_str()),
        (RestartPolicy::Always, Duration::from_secs(2), "x")
    );
}

/// The systemg.yaml of the multi-service seed example.
const SEED_EXAMPLE: &str = r#"version: "1"
services:
  py_size:
    command: "python3 py_size.py"
    working_dir: "."
    restart_policy: "always"
    backoff: "5s"
    hooks:
      on_restart:
        error:
          command: "curl -s -X POST https://jsonplaceholder.typicode.com/posts -H 'Content-Type: application/json' -d '{\"message\":\"I goof\\'d\"}'"
          timeout: "10s"
  count_number:
    command: "sh count_number.sh"
    working_dir: "."
    cron:
      expression: "*/10 * * * * *"
    restart_policy: "never"
  echo_lines:
    command: "sh echo_lines.sh"
    working_dir: "."
    restart_policy: "never"
    depends_on:
      - "count_number"
"#;

#[test]
fn seed_example_loads() {
    ok(SEED_EXAMPLE);
    let dir = tempfile::tempdir().unwrap();
    let services = built(SEED_EXAMPLE, dir.path());
    let hook = services[0].hooks.on_restart.error.as_ref().unwrap();
    assert!(
        hook.command.ends_with(r#"-d '{"message":"I goof\'d"}'"#),
        "{}",
        hook.command
    );
    assert_eq!(hook.timeout, Duration::from_secs(10));
    assert_eq!(
        services[1].cron.as_ref().unwrap().expression,
        "*/10 * * * * *"
    );
    assert_eq!(services[2].depends_on, ["count_number"]);
}

#[test]
fn deployment_takes_a_strategy_and_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "services:\n  web:\n    command: x\n    deployment: {strategy: rolling, grace_period: 3s}\n  api:\n    command: x\n";
    let services = built(yaml, dir.path());
    assert!(services[0].deployment.rolling);
    assert_eq!(services[0].deployment.grace_period, Duration::from_secs(3));
    assert_eq!(services[1].deployment, crate::config::Deployment::default());
    let got = errors("services:\n  web:\n    command: x\n    deployment: {strategy: blue-green}\n");
    assert_eq!(
        got,
        ["4:18: services.web.deployment.strategy: unknown strategy 'blue-green' (expected immediate or rolling)"]
    );
}

#[test]
fn cgroup_limits_are_checked_for_form_before_the_host_is_asked() {
    let yaml = "\
services:
  api:
    command: x
    limits:
      memory: lots
      memory_high: -5
      cpu: \"abc%\"
      pids: many
";
    let got = errors(yaml);
    assert_eq!(
        got,
        [
            "5:7: services.api.limits.memory: invalid size \"lots\": expected an integer with a unit (B, KB, MB, GB; 1 KB = 1024 B), e.g. \"50MB\" (or \"max\")",
            "6:7: services.api.limits.memory_high: invalid size \"-5\": expected an integer with a unit (B, KB, MB, GB; 1 KB = 1024 B), e.g. \"50MB\" (or \"max\")",
            "7:7: services.api.limits.cpu: expected a share of one CPU such as \"50%\" or \"200%\", got \"abc%\"",
            "8:7: services.api.limits.pids: expected a number or \"max\", got \"many\"",
        ]
    );
}
