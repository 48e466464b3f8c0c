//! The optional blocks of a service: `health_check`, `hooks`, `cron`, `logs`, `deployment`
//! and `depends_on`.

use std::collections::HashSet;
use std::time::Duration;

use serde_yaml::Value;

use super::super::schedule::{parse_cron, parse_timezone};
use super::super::units::parse_size;
use super::super::{
    CronSpec, Deployment, HealthCheck, Hook, HookPair, Hooks, LogLimits, Probe, Timezone,
};
use super::{
    child, Builder, Seg, CRON_KEYS, DEPENDENCY_KEYS, DEPLOYMENT_KEYS, HEALTH_KEYS, HOOKS_KEYS,
    HOOK_KEYS, LOGS_KEYS, OUTCOME_KEYS,
};

/// The most rotated files a service may keep.
const MAX_LOG_FILES: u32 = 1000;

impl Builder<'_> {
    pub(super) fn health_check(&mut self, v: &Value, path: &[Seg]) -> Option<HealthCheck> {
        let f = self.fields(v, path, HEALTH_KEYS)?;
        let at = |key: &str| child(path, key);
        let kinds: Vec<&str> = ["command", "url", "tcp", "log"]
            .into_iter()
            .filter(|k| f.get(k).is_some())
            .collect();
        let probe = match kinds.as_slice() {
            [] => {
                self.err(path, "needs one of command, url, tcp, log");
                None
            }
            [kind] => {
                let (v, p) = (f.get(kind)?, at(kind));
                match *kind {
                    "command" => self.nonempty_string(v, &p).map(Probe::Command),
                    "url" => self.url(v, &p).map(Probe::Url),
                    "tcp" => self.tcp_target(v, &p).map(Probe::Tcp),
                    _ => self.nonempty_string(v, &p).map(Probe::Log),
                }
            }
            several => {
                self.err(path, format!("set only one of {}", several.join(", ")));
                None
            }
        };
        let interval = f.get("interval").map_or(Some(Duration::from_secs(1)), |v| {
            self.positive_duration(v, &at("interval"))
        });
        let timeout = f.get("timeout").map_or(Some(Duration::from_secs(5)), |v| {
            self.positive_duration(v, &at("timeout"))
        });
        let retries = f
            .get("retries")
            .map_or(Some(30), |v| self.integer(v, &at("retries"), 1));
        let liveness = match f.get("liveness") {
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.type_err(&at("liveness"), "a boolean", v);
                false
            }
            None => false,
        };
        if liveness && matches!(probe, Some(Probe::Log(_))) {
            self.err(
                &at("liveness"),
                "a log check says when a service is ready, not whether it still is: use command, url or tcp",
            );
        }
        Some(HealthCheck {
            probe: probe?,
            interval: interval?,
            timeout: timeout?,
            retries: retries?,
            liveness,
        })
    }

    /// `host:port` (`[v6]:port` for an IPv6 literal).
    fn tcp_target(&mut self, v: &Value, path: &[Seg]) -> Option<String> {
        let raw = self.nonempty_string(v, path)?;
        let target = self.expanded(&raw, path)?;
        let port = target
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(p))) if !host.is_empty() && p > 0 => Some(target),
            _ => {
                self.err(path, format!("expected host:port, got \"{target}\""));
                None
            }
        }
    }

    fn url(&mut self, v: &Value, path: &[Seg]) -> Option<String> {
        let raw = self.nonempty_string(v, path)?;
        let url = self.expanded(&raw, path)?;
        if url.starts_with("https://") {
            self.err(
                path,
                "https is not supported (no TLS); use a command probe such as curl",
            );
            return None;
        }
        match url.strip_prefix("http://") {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Some(url),
            Some(_) => {
                self.err(path, format!("\"{url}\" has no host"));
                None
            }
            None => {
                self.err(path, format!("\"{url}\" must start with http://"));
                None
            }
        }
    }

    pub(super) fn hooks(&mut self, v: &Value, path: &[Seg]) -> Hooks {
        let mut hooks = Hooks::default();
        let Some(f) = self.fields(v, path, HOOKS_KEYS) else {
            return hooks;
        };
        for (event, pair) in [
            ("on_start", &mut hooks.on_start),
            ("on_stop", &mut hooks.on_stop),
            ("on_restart", &mut hooks.on_restart),
        ] {
            let Some(v) = f.get(event) else { continue };
            let event_path = child(path, event);
            let Some(outcomes) = self.fields(v, &event_path, OUTCOME_KEYS) else {
                continue;
            };
            *pair = HookPair {
                success: outcomes
                    .get("success")
                    .and_then(|v| self.hook(v, &child(&event_path, "success"))),
                error: outcomes
                    .get("error")
                    .and_then(|v| self.hook(v, &child(&event_path, "error"))),
            };
        }
        hooks
    }

    /// `pre_start: "cmd"` or `{ command, timeout }` (timeout default 30 s).
    pub(super) fn pre_start(&mut self, v: &Value, path: &[Seg]) -> Option<Hook> {
        match v {
            Value::String(_) => Some(Hook {
                command: self.nonempty_string(v, path)?,
                timeout: Duration::from_secs(30),
            }),
            _ => self.hook(v, path),
        }
    }

    fn hook(&mut self, v: &Value, path: &[Seg]) -> Option<Hook> {
        let f = self.fields(v, path, HOOK_KEYS)?;
        let command = match f.get("command") {
            Some(c) => self.nonempty_string(c, &child(path, "command")),
            None => {
                self.err(&child(path, "command"), "missing required key");
                None
            }
        };
        let timeout = f.get("timeout").map_or(Some(Duration::from_secs(30)), |v| {
            self.positive_duration(v, &child(path, "timeout"))
        });
        Some(Hook {
            command: command?,
            timeout: timeout?,
        })
    }

    pub(super) fn cron(&mut self, v: &Value, path: &[Seg]) -> Option<CronSpec> {
        let f = self.fields(v, path, CRON_KEYS)?;
        let expr_path = child(path, "expression");
        let parsed = match f.get("expression") {
            Some(v) => {
                self.string(v, &expr_path)
                    .and_then(|expression| match parse_cron(&expression) {
                        Ok(schedule) => Some((expression, schedule)),
                        Err(e) => {
                            self.err(&expr_path, e);
                            None
                        }
                    })
            }
            None => {
                self.err(&expr_path, "missing required key");
                None
            }
        };
        let timezone = match f.get("timezone") {
            None => Some(Timezone::Local),
            Some(v) => {
                let tz_path = child(path, "timezone");
                self.string(v, &tz_path).and_then(|name| {
                    parse_timezone(&name)
                        .map_err(|e| self.err(&tz_path, e))
                        .ok()
                })
            }
        };
        let (expression, schedule) = parsed?;
        Some(CronSpec {
            expression,
            schedule,
            timezone: timezone?,
        })
    }

    /// `logs: { max_size, max_files, timestamps }`; keys not given keep `base` (the
    /// top-level `logs`).
    pub(super) fn logs(&mut self, v: &Value, path: &[Seg], base: LogLimits) -> LogLimits {
        let mut limits = base;
        let Some(f) = self.fields(v, path, LOGS_KEYS) else {
            return limits;
        };
        if let Some(v) = f.get("max_size") {
            let size_path = child(path, "max_size");
            match v {
                Value::String(s) => match parse_size(s) {
                    Ok(0) => self.err(&size_path, "must be larger than 0B"),
                    Ok(size) => limits.max_size = size,
                    Err(e) => self.err(&size_path, e),
                },
                _ => self.type_err(&size_path, "a size such as \"50MB\"", v),
            }
        }
        match f.get("timestamps") {
            Some(Value::Bool(b)) => limits.timestamps = *b,
            Some(v) => self.type_err(&child(path, "timestamps"), "a boolean", v),
            None => {}
        }
        let files_path = child(path, "max_files");
        if let Some(n) = f
            .get("max_files")
            .and_then(|v| self.integer(v, &files_path, 1))
        {
            // Each rotation renames every kept file: keep that bounded.
            if n > MAX_LOG_FILES {
                self.err(
                    &files_path,
                    format!("must be at most {MAX_LOG_FILES}, got {n}"),
                );
            } else {
                limits.max_files = n;
            }
        }
        limits
    }

    /// `deployment: { strategy: immediate | rolling, grace_period }` (grace default 5 s).
    pub(super) fn deployment(&mut self, v: &Value, path: &[Seg]) -> Deployment {
        let mut d = Deployment::default();
        let Some(f) = self.fields(v, path, DEPLOYMENT_KEYS) else {
            return d;
        };
        if let Some(v) = f.get("strategy") {
            let strategy_path = child(path, "strategy");
            match self.string(v, &strategy_path).as_deref() {
                Some("immediate") => d.rolling = false,
                Some("rolling") => d.rolling = true,
                Some(other) => self.err(
                    &strategy_path,
                    format!("unknown strategy '{other}' (expected immediate or rolling)"),
                ),
                None => {}
            }
        }
        if let Some(g) = f
            .get("grace_period")
            .and_then(|v| self.duration(v, &child(path, "grace_period")))
        {
            d.grace_period = g;
        }
        d
    }

    /// Entries are names, or `{ name, restart: true }` to be restarted after that
    /// dependency when a reload restarts it (its names go to `restarts`).
    pub(super) fn depends_on(
        &mut self,
        v: &Value,
        path: &[Seg],
        restarts: &mut Vec<String>,
    ) -> Vec<(String, usize)> {
        let Value::Sequence(items) = v else {
            self.type_err(path, "a list of service names", v);
            return Vec::new();
        };
        let mut out: Vec<(String, usize)> = Vec::new();
        let mut listed = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let mut item_path = path.to_vec();
            item_path.push(Seg::Index(i));
            let (name, restart) = match item {
                Value::Mapping(_) => {
                    let Some(f) = self.fields(item, &item_path, DEPENDENCY_KEYS) else {
                        continue;
                    };
                    let restart = match f.get("restart") {
                        Some(Value::Bool(b)) => *b,
                        Some(v) => {
                            self.type_err(&child(&item_path, "restart"), "a boolean", v);
                            false
                        }
                        None => false,
                    };
                    let name = match f.get("name") {
                        Some(v) => self.string(v, &child(&item_path, "name")),
                        None => {
                            self.err(&child(&item_path, "name"), "missing required key");
                            None
                        }
                    };
                    let Some(name) = name else { continue };
                    (name, restart)
                }
                _ => {
                    let Some(name) = self.string(item, &item_path) else {
                        continue;
                    };
                    (name, false)
                }
            };
            if !listed.insert(name.clone()) {
                self.err(&item_path, format!("\"{name}\" is listed twice"));
                continue;
            }
            if restart {
                restarts.push(name.clone());
            }
            out.push((name, i));
        }
        out
    }
}
