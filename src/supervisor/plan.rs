//! PURE: what a reload does to one service, from its running spec and the new one. A
//! change to what the process *is* (command, working dir, resolved environment, the
//! shell switch, the health probe's target, the cron schedule) needs a restart; any
//! other change (log limits, hooks, restart policy and backoff, stop signal and timeout,
//! probe timing, skip check, dependencies) is applied in place.

use crate::config::Service;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// The changes between two specs of one service, by config key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Keys whose change needs the process restarted (`env KEY` per variable).
    pub restart: Vec<String>,
    /// Keys applied without touching the process.
    pub in_place: Vec<String>,
    /// Restarted after this dependency, which the reload restarts (`restart: true`).
    pub follows: Option<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.in_place.is_empty() && self.follows.is_none()
    }

    /// Whether the process has to be restarted.
    pub fn restarts(&self) -> bool {
        !self.restart.is_empty() || self.follows.is_some()
    }

    /// `command, env API_KEY, logs`: every change, restart ones first.
    pub fn describe(&self) -> String {
        let all: Vec<&str> = self
            .restart
            .iter()
            .chain(&self.in_place)
            .map(String::as_str)
            .collect();
        all.join(", ")
    }
}

fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// What changed from `old` (running with `old_env`) to `new` (which would get `new_env`).
pub fn diff(
    old: &Service,
    new: &Service,
    old_env: &[(String, String)],
    new_env: &[(String, String)],
) -> Diff {
    let mut d = Diff::default();
    let mut restart = |key: &str, changed: bool| {
        if changed {
            d.restart.push(key.to_string());
        }
    };
    restart("command", old.command != new.command);
    restart("working_dir", old.working_dir != new.working_dir);
    restart("exec", old.exec != new.exec);
    restart("user", old.run_as != new.run_as);
    restart("umask", old.umask != new.umask);
    restart(
        "limits",
        old.limits != new.limits || old.cgroup_limits != new.cgroup_limits,
    );
    restart("notify", old.notify != new.notify);
    restart("watchdog", old.watchdog != new.watchdog);
    let probe = |s: &Service| s.health_check.as_ref().map(|h| format!("{:?}", h.probe));
    restart("health_check", probe(old) != probe(new));
    restart("cron", !same(&old.cron, &new.cron));
    d.restart.extend(env_changes(old_env, new_env));
    let mut in_place = |key: &str, changed: bool| {
        if changed {
            d.in_place.push(key.to_string());
        }
    };
    in_place("restart_policy", old.restart_policy != new.restart_policy);
    in_place("backoff", old.backoff != new.backoff);
    in_place("backoff_max", old.backoff_max != new.backoff_max);
    in_place("max_restarts", old.max_restarts != new.max_restarts);
    in_place(
        "depends_on",
        old.depends_on != new.depends_on || old.restart_with != new.restart_with,
    );
    in_place("skip", old.skip != new.skip);
    in_place("stop_signal", old.stop_signal != new.stop_signal);
    in_place("stop_timeout", old.stop_timeout != new.stop_timeout);
    let timing = |s: &Service| {
        s.health_check
            .as_ref()
            .map(|h| (h.interval, h.timeout, h.retries))
    };
    in_place(
        "health_check timing",
        probe(old) == probe(new) && timing(old) != timing(new),
    );
    in_place("hooks", !same(&old.hooks, &new.hooks));
    in_place("pre_start", !same(&old.pre_start, &new.pre_start));
    in_place("logs", old.logs != new.logs);
    in_place("deployment", old.deployment != new.deployment);
    d
}

/// `env KEY` for every variable added, removed or changed (values are never shown).
fn env_changes(old: &[(String, String)], new: &[(String, String)]) -> Vec<String> {
    let old: BTreeMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new: BTreeMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut keys: Vec<&str> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(v))
        .map(|(k, _)| *k)
        .chain(new.keys().filter(|k| !old.contains_key(*k)).copied())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().map(|k| format!("env {k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLimits;
    use std::time::Duration;

    fn service(command: &str) -> Service {
        // A directory of its own: the tests of this module run in parallel.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sysg.yaml");
        std::fs::write(
            &path,
            format!("services:\n  a:\n    command: {command:?}\n"),
        )
        .unwrap();
        let cfg = crate::config::load(&path).unwrap();
        cfg.services.into_iter().next().unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_same_spec_is_no_change() {
        let a = service("sleep 1");
        assert!(diff(&a, &a.clone(), &env(&[("A", "1")]), &env(&[("A", "1")])).is_empty());
    }

    #[test]
    fn what_the_process_is_needs_a_restart() {
        let a = service("sleep 1");
        let mut b = a.clone();
        b.command = "sleep 2".into();
        let d = diff(
            &a,
            &b,
            &env(&[("A", "1"), ("B", "x")]),
            &env(&[("A", "2"), ("C", "y")]),
        );
        assert_eq!(d.restart, ["command", "env A", "env B", "env C"]);
        assert!(d.in_place.is_empty());
        assert_eq!(d.describe(), "command, env A, env B, env C");
    }

    #[test]
    fn limits_hooks_and_policy_apply_in_place() {
        let a = service("sleep 1");
        let mut b = a.clone();
        b.logs = LogLimits {
            max_size: 1 << 20,
            max_files: 2,
            timestamps: false,
        };
        b.backoff = Duration::from_secs(7);
        b.stop_timeout = Duration::from_secs(3);
        let d = diff(&a, &b, &[], &[]);
        assert!(d.restart.is_empty(), "{d:?}");
        assert_eq!(d.in_place, ["backoff", "stop_timeout", "logs"]);
    }
}
