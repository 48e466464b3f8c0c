//! Turns the parsed YAML value into services: every key checked, every default applied,
//! every problem collected (never just the first).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

use super::envfile::{check_env_key, read_env_file};
use super::expand::expand;
use super::graph::{self, Dependencies};
use super::locate::{child, Problem, Seg};
use super::units::{parse_duration, parse_signal, valid_service_name};
use super::{Deployment, EnvSource, Hooks, LogLimits, RestartPolicy, Service};

mod features;
mod process;

pub(super) const TOP_KEYS: &[&str] = &["version", "env", "services", "logs"];
const SERVICE_KEYS: &[&str] = &[
    "command",
    "working_dir",
    "env",
    "restart_policy",
    "backoff",
    "backoff_max",
    "max_restarts",
    "depends_on",
    "skip",
    "stop_signal",
    "stop_timeout",
    "health_check",
    "hooks",
    "cron",
    "logs",
    "exec",
    "pre_start",
    "deployment",
    "user",
    "group",
    "umask",
    "limits",
    "notify",
    "watchdog",
];
const ENV_KEYS: &[&str] = &["file", "vars"];
const HEALTH_KEYS: &[&str] = &[
    "command", "url", "tcp", "log", "interval", "timeout", "retries", "liveness",
];
const HOOKS_KEYS: &[&str] = &["on_start", "on_stop", "on_restart"];
const OUTCOME_KEYS: &[&str] = &["success", "error"];
const HOOK_KEYS: &[&str] = &["command", "timeout"];
const CRON_KEYS: &[&str] = &["expression", "timezone"];
const DEPENDENCY_KEYS: &[&str] = &["name", "restart"];
const LOGS_KEYS: &[&str] = &["max_size", "max_files", "timestamps"];
const DEPLOYMENT_KEYS: &[&str] = &["strategy", "grace_period"];
const POLICIES: &str = "never, on-failure, always";

/// `max_size: "50MB"` means 50 MiB (see `parse_size`), so the default does too.
pub(super) const DEFAULT_LOGS: LogLimits = LogLimits {
    max_size: 50 << 20,
    max_files: 5,
    timestamps: false,
};

/// A service with every default applied; `dir` is the config file's directory.
pub(super) fn defaults(name: &str, dir: &Path) -> Service {
    Service {
        name: name.to_string(),
        command: String::new(),
        working_dir: dir.to_path_buf(),
        env: Vec::new(),
        restart_policy: RestartPolicy::Never,
        backoff: Duration::from_secs(1),
        backoff_max: None,
        max_restarts: None,
        depends_on: Vec::new(),
        skip: None,
        stop_signal: libc::SIGTERM,
        stop_timeout: Duration::from_secs(10),
        health_check: None,
        hooks: Hooks::default(),
        cron: None,
        logs: DEFAULT_LOGS,
        exec: true,
        restart_with: Vec::new(),
        pre_start: None,
        deployment: Deployment::default(),
        run_as: None,
        umask: None,
        limits: Vec::new(),
        cgroup_limits: Default::default(),
        notify: false,
        watchdog: None,
    }
}

/// Where `${VAR}` looks after the root `env.vars`: a name to its value, if set.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The supervisor's own environment, the [`Lookup`] of a real load.
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Builds every service of `root`, `${VAR}` falling back to `env` (see [`process_env`]);
/// the services are only meaningful if no problem was found.
pub(super) fn build(root: &Value, dir: &Path, env: Lookup) -> (Vec<Service>, Vec<Problem>) {
    let mut b = Builder {
        problems: Vec::new(),
        dir,
        root_vars: HashMap::new(),
        env,
    };
    let services = b.top(root);
    (services, b.problems)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Text of a scalar used as a mapping key or an env value.
pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The entries of a checked mapping. Keys set to null (`key:` with nothing after it) count
/// as absent.
struct Fields<'v> {
    entries: Vec<(String, &'v Value)>,
}

impl<'v> Fields<'v> {
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }
}

struct Builder<'a> {
    problems: Vec<Problem>,
    dir: &'a Path,
    /// Root `env.vars`, already expanded: the first place `${VAR}` looks.
    root_vars: HashMap<String, String>,
    /// The second place.
    env: Lookup<'a>,
}

impl Builder<'_> {
    fn err(&mut self, path: &[Seg], message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_vec(),
            message: message.into(),
        });
    }

    fn type_err(&mut self, path: &[Seg], expected: &str, got: &Value) {
        self.err(path, format!("expected {expected}, got {}", kind(got)));
    }

    /// A mapping's entries in file order, keys as text.
    fn entries<'v>(&mut self, v: &'v Value, path: &[Seg]) -> Option<Vec<(String, &'v Value)>> {
        let Value::Mapping(map) = v else {
            self.type_err(path, "a mapping", v);
            return None;
        };
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            match scalar_text(key) {
                Some(text) => out.push((text, value)),
                None => self.err(path, format!("keys must be strings, found {}", kind(key))),
            }
        }
        Some(out)
    }

    /// A mapping whose keys must all be in `valid`.
    fn fields<'v>(&mut self, v: &'v Value, path: &[Seg], valid: &[&str]) -> Option<Fields<'v>> {
        let entries = self.entries(v, path)?;
        for (key, _) in &entries {
            if !valid.contains(&key.as_str()) {
                let message = format!("unknown key; valid keys: {}", valid.join(", "));
                self.err(&child(path, key), message);
            }
        }
        Some(Fields { entries })
    }

    fn string(&mut self, v: &Value, path: &[Seg]) -> Option<String> {
        let Value::String(s) = v else {
            self.type_err(path, "a string", v);
            return None;
        };
        if s.contains('\0') {
            self.err(path, "contains a NUL character");
            return None;
        }
        Some(s.clone())
    }

    fn nonempty_string(&mut self, v: &Value, path: &[Seg]) -> Option<String> {
        let s = self.string(v, path)?;
        if s.trim().is_empty() {
            self.err(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn expanded(&mut self, s: &str, path: &[Seg]) -> Option<String> {
        let result = expand(s, &|name| match self.root_vars.get(name) {
            Some(value) => Some(value.clone()),
            None => (self.env)(name),
        });
        result.map_err(|e| self.err(path, e)).ok()
    }

    /// A `${VAR}`-expanded path made absolute against the config directory.
    fn path(&mut self, v: &Value, path: &[Seg]) -> Option<PathBuf> {
        let raw = self.nonempty_string(v, path)?;
        let text = self.expanded(&raw, path)?;
        if text.is_empty() {
            self.err(path, format!("\"{raw}\" expands to an empty path"));
            return None;
        }
        let joined = self.dir.join(text);
        // Drop `.` components ("./data" → "<dir>/data"); `..` is kept, symlinks make it
        // unsafe to fold lexically.
        Some(
            joined
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect(),
        )
    }

    fn duration(&mut self, v: &Value, path: &[Seg]) -> Option<Duration> {
        match v {
            Value::String(s) => parse_duration(s).map_err(|e| self.err(path, e)).ok(),
            Value::Number(n) => {
                self.err(
                    path,
                    format!("expected a duration with a unit such as \"5s\", got the number {n}"),
                );
                None
            }
            _ => {
                self.type_err(path, "a duration such as \"5s\"", v);
                None
            }
        }
    }

    fn positive_duration(&mut self, v: &Value, path: &[Seg]) -> Option<Duration> {
        let d = self.duration(v, path)?;
        if d.is_zero() {
            self.err(path, "must be longer than 0s");
            return None;
        }
        Some(d)
    }

    fn integer(&mut self, v: &Value, path: &[Seg], min: u32) -> Option<u32> {
        let Value::Number(n) = v else {
            self.type_err(path, "an integer", v);
            return None;
        };
        if let Some(i) = n.as_i64().filter(|&i| i < i64::from(min)) {
            self.err(path, format!("must be {min} or more, got {i}"));
            return None;
        }
        let Some(u) = n.as_u64() else {
            self.err(path, format!("expected an integer, got {n}"));
            return None;
        };
        let out =
            u32::try_from(u).map_err(|_| self.err(path, format!("must be at most {}", u32::MAX)));
        out.ok()
    }

    fn top(&mut self, root: &Value) -> Vec<Service> {
        if root.is_null() {
            self.err(&[], "the config is empty; it needs a `services` mapping");
            return Vec::new();
        }
        let Some(top) = self.fields(root, &[], TOP_KEYS) else {
            return Vec::new();
        };
        if let Some(v) = top.get("version") {
            let ok = match v {
                Value::String(s) => s == "1",
                Value::Number(n) => n.as_u64() == Some(1),
                _ => false,
            };
            if !ok {
                let shown = scalar_text(v).unwrap_or_else(|| kind(v).to_string());
                self.err(
                    &[Seg::Key("version".into())],
                    format!("unsupported version {shown}; only \"1\" is supported"),
                );
            }
        }
        let root_env = match top.get("env") {
            Some(v) => self.env(v, &[Seg::Key("env".into())], true),
            None => Vec::new(),
        };
        let root_logs = match top.get("logs") {
            Some(v) => self.logs(v, &[Seg::Key("logs".into())], DEFAULT_LOGS),
            None => DEFAULT_LOGS,
        };
        let services_path = [Seg::Key("services".into())];
        let Some(v) = top.get("services") else {
            let message = if top.has("services") {
                "at least one service is required"
            } else {
                "missing required key"
            };
            self.err(&services_path, message);
            return Vec::new();
        };
        let Some(entries) = self.entries(v, &services_path) else {
            return Vec::new();
        };
        if entries.is_empty() {
            self.err(&services_path, "at least one service is required");
        }
        let mut services = Vec::new();
        let mut deps = Vec::new();
        // Keys that differ in YAML (`1`, `"1"`) but read as the same name: how many times
        // each name was seen so far, so a repeat is located at its own key.
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        for (name, value) in entries {
            let earlier = seen.entry(name.clone()).or_insert(0);
            *earlier += 1;
            if *earlier > 1 {
                let path = [
                    services_path[0].clone(),
                    Seg::Repeat(name.clone(), *earlier - 1),
                ];
                self.err(&path, format!("duplicate service name \"{name}\""));
                continue;
            }
            let path = child(&services_path, &name);
            if !valid_service_name(&name) {
                let why = "use 1 to 64 letters, digits, '_', '.' or '-'";
                self.err(&path, format!("invalid service name \"{name}\": {why}"));
            }
            let mut service = defaults(&name, self.dir);
            service.env = root_env.clone();
            service.logs = root_logs;
            let listed = self.service(&mut service, value, &path);
            deps.push(Dependencies {
                name: name.clone(),
                listed,
            });
            services.push(service);
        }
        self.problems.extend(graph::check(&deps));
        services
    }

    /// Fills `s` from its mapping; returns `depends_on` entries with their list positions.
    fn service(&mut self, s: &mut Service, v: &Value, path: &[Seg]) -> Vec<(String, usize)> {
        let Some(f) = self.fields(v, path, SERVICE_KEYS) else {
            return Vec::new();
        };
        let at = |key: &str| child(path, key);
        match f.get("command") {
            Some(v) => s.command = self.nonempty_string(v, &at("command")).unwrap_or_default(),
            None if f.has("command") => self.err(&at("command"), "must not be empty"),
            None => self.err(&at("command"), "missing required key"),
        }
        if let Some(v) = f.get("working_dir") {
            if let Some(dir) = self.path(v, &at("working_dir")) {
                if !dir.is_dir() {
                    self.err(
                        &at("working_dir"),
                        format!("{} is not a directory", dir.display()),
                    );
                }
                s.working_dir = dir;
            }
        }
        if let Some(v) = f.get("env") {
            let own = self.env(v, &at("env"), false);
            s.env.extend(own);
        }
        if let Some(v) = f.get("restart_policy") {
            if let Some(text) = self.string(v, &at("restart_policy")) {
                match text.as_str() {
                    "never" => s.restart_policy = RestartPolicy::Never,
                    "on-failure" => s.restart_policy = RestartPolicy::OnFailure,
                    "always" => s.restart_policy = RestartPolicy::Always,
                    _ => self.err(
                        &at("restart_policy"),
                        format!("unknown policy \"{text}\"; valid: {POLICIES}"),
                    ),
                }
            }
        }
        if let Some(d) = f
            .get("backoff")
            .and_then(|v| self.duration(v, &at("backoff")))
        {
            s.backoff = d;
        }
        s.backoff_max = f
            .get("backoff_max")
            .and_then(|v| self.duration(v, &at("backoff_max")));
        if s.backoff_max.is_some_and(|max| max < s.backoff) {
            self.err(
                &at("backoff_max"),
                format!("must not be shorter than backoff ({:?})", s.backoff),
            );
        }
        s.max_restarts = f
            .get("max_restarts")
            .and_then(|v| self.integer(v, &at("max_restarts"), 0));
        let listed = match f.get("depends_on") {
            Some(v) => self.depends_on(v, &at("depends_on"), &mut s.restart_with),
            None => Vec::new(),
        };
        s.depends_on = listed.iter().map(|(name, _)| name.clone()).collect();
        s.skip = f
            .get("skip")
            .and_then(|v| self.nonempty_string(v, &at("skip")));
        if let Some(v) = f.get("stop_signal") {
            if let Some(sig) = self.signal(v, &at("stop_signal")) {
                s.stop_signal = sig;
            }
        }
        if let Some(d) = f
            .get("stop_timeout")
            .and_then(|v| self.duration(v, &at("stop_timeout")))
        {
            s.stop_timeout = d;
        }
        s.health_check = f
            .get("health_check")
            .and_then(|v| self.health_check(v, &at("health_check")));
        if let Some(v) = f.get("hooks") {
            s.hooks = self.hooks(v, &at("hooks"));
        }
        s.cron = f.get("cron").and_then(|v| self.cron(v, &at("cron")));
        s.pre_start = f
            .get("pre_start")
            .and_then(|v| self.pre_start(v, &at("pre_start")));
        s.run_as = self.run_as(&f, &at);
        s.umask = f.get("umask").and_then(|v| self.umask(v, &at("umask")));
        if let Some(v) = f.get("limits") {
            (s.limits, s.cgroup_limits) = self.limits(v, &at("limits"));
        }
        if let Some(v) = f.get("deployment") {
            s.deployment = self.deployment(v, &at("deployment"));
        }
        match f.get("notify") {
            Some(Value::Bool(b)) => s.notify = *b,
            Some(v) => self.type_err(&at("notify"), "a boolean", v),
            None => {}
        }
        s.watchdog = f
            .get("watchdog")
            .and_then(|v| self.positive_duration(v, &at("watchdog")));
        if s.watchdog.is_some() && !s.notify {
            self.err(
                &at("watchdog"),
                "needs notify: true (WATCHDOG=1 comes over sd_notify)",
            );
        }
        match f.get("exec") {
            Some(Value::Bool(b)) => s.exec = *b,
            Some(v) => self.type_err(&at("exec"), "a boolean", v),
            None => {}
        }
        if let Some(v) = f.get("logs") {
            s.logs = self.logs(v, &at("logs"), s.logs);
        }
        listed
    }

    /// `env: { file, vars }` → its layers, file first. Root vars also become the first
    /// source of `${VAR}` expansion; each may use the ones defined before it.
    fn env(&mut self, v: &Value, path: &[Seg], is_root: bool) -> Vec<EnvSource> {
        let Some(f) = self.fields(v, path, ENV_KEYS) else {
            return Vec::new();
        };
        let mut vars = Vec::new();
        if let Some(v) = f.get("vars") {
            let vars_path = child(path, "vars");
            for (key, value) in self.entries(v, &vars_path).unwrap_or_default() {
                let key_path = child(&vars_path, &key);
                if let Err(e) = check_env_key(&key) {
                    self.err(&key_path, e);
                    continue;
                }
                let text = match value {
                    Value::String(s) => self.expanded(s, &key_path),
                    Value::Number(_) | Value::Bool(_) => scalar_text(value),
                    _ => {
                        self.type_err(&key_path, "a string, number or boolean", value);
                        None
                    }
                };
                let Some(text) = text else { continue };
                if text.contains('\0') {
                    self.err(&key_path, "contains a NUL character");
                    continue;
                }
                if is_root {
                    self.root_vars.insert(key.clone(), text.clone());
                }
                vars.push((key, text));
            }
        }
        let mut layers = Vec::new();
        if let Some(v) = f.get("file") {
            let file_path = child(path, "file");
            if let Some(file) = self.path(v, &file_path) {
                match read_env_file(&file) {
                    Ok(_) => layers.push(EnvSource::File(file)),
                    Err(e) => self.err(&file_path, format!("cannot load env file {e}")),
                }
            }
        }
        if f.has("vars") {
            layers.push(EnvSource::Vars(Arc::new(vars)));
        }
        layers
    }

    fn signal(&mut self, v: &Value, path: &[Seg]) -> Option<i32> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.type_err(path, "a signal name such as \"TERM\"", v);
                return None;
            }
        };
        let sig = parse_signal(&text);
        if sig.is_none() {
            let hint = "use a name such as TERM, INT, HUP, QUIT, KILL, USR1, USR2 or its number";
            self.err(path, format!("unknown signal \"{text}\"; {hint}"));
        }
        sig
    }
}
