//! How a service's process is set up before exec: `user`, `group`, `umask`, `limits`.

use serde_yaml::Value;

use super::super::units::parse_size;
use super::super::{Limit, RunAs};
use super::{child, Builder, Fields, Seg};
use crate::cgroup;
use crate::sys::users;

/// `limits:` keys, their resource, and whether their values are sizes in bytes.
const LIMITS: &[(&str, u32, bool)] = &[
    ("nofile", libc::RLIMIT_NOFILE, false),
    ("nproc", libc::RLIMIT_NPROC, false),
    ("core", libc::RLIMIT_CORE, true),
    ("memlock", libc::RLIMIT_MEMLOCK, true),
    ("stack", libc::RLIMIT_STACK, true),
    ("cpu", libc::RLIMIT_CPU, false),
];

impl Builder<'_> {
    /// `user:` (a name or a uid) and `group:` (a name or a gid; default the user's
    /// primary group), resolved now: an unknown one is an error here, not at the first
    /// start. A supervisor that is not root can only run services as itself.
    pub(super) fn run_as(&mut self, f: &Fields, at: &dyn Fn(&str) -> Vec<Seg>) -> Option<RunAs> {
        let user = f.get("user").and_then(|v| self.user(v, &at("user")));
        let group = f.get("group").and_then(|v| self.group(v, &at("group")));
        if f.get("user").is_none() && f.get("group").is_none() {
            return None;
        }
        let euid = crate::sys::geteuid();
        let mut run = match user {
            Some(account) => RunAs {
                uid: account.uid,
                gid: account.gid,
                user: Some(account),
            },
            None if f.get("user").is_some() => return None,
            None => RunAs {
                uid: euid,
                gid: crate::sys::getegid(),
                user: None,
            },
        };
        match group {
            Some(gid) => run.gid = gid,
            None if f.get("group").is_some() => return None,
            None => {}
        }
        if euid != 0 && (run.uid != euid || run.gid != crate::sys::getegid()) {
            let key = if run.uid != euid { "user" } else { "group" };
            self.err(
                &at(key),
                format!(
                    "the supervisor runs as uid {euid}, not root: it can only run services as itself"
                ),
            );
            return None;
        }
        Some(run)
    }

    fn user(&mut self, v: &Value, path: &[Seg]) -> Option<users::Account> {
        let found = match v {
            Value::Number(n) => match n.as_u64().and_then(|u| u32::try_from(u).ok()) {
                Some(uid) => users::user_by_uid(uid).map(|a| (a, uid.to_string())),
                None => {
                    self.err(path, format!("not a uid: {n}"));
                    return None;
                }
            },
            Value::String(_) => {
                let name = self.nonempty_string(v, path)?;
                users::user_by_name(&name).map(|a| (a, name))
            }
            _ => {
                self.type_err(path, "a user name or uid", v);
                return None;
            }
        };
        match found {
            Ok((Some(account), _)) => Some(account),
            Ok((None, what)) => {
                self.err(path, format!("unknown user '{what}'"));
                None
            }
            Err(e) => {
                self.err(path, format!("cannot read the user database: {e}"));
                None
            }
        }
    }

    fn group(&mut self, v: &Value, path: &[Seg]) -> Option<u32> {
        let found = match v {
            Value::Number(n) => match n.as_u64().and_then(|u| u32::try_from(u).ok()) {
                Some(gid) => users::group_known(gid).map(|k| (k.then_some(gid), gid.to_string())),
                None => {
                    self.err(path, format!("not a gid: {n}"));
                    return None;
                }
            },
            Value::String(_) => {
                let name = self.nonempty_string(v, path)?;
                users::group_by_name(&name).map(|g| (g, name))
            }
            _ => {
                self.type_err(path, "a group name or gid", v);
                return None;
            }
        };
        match found {
            Ok((Some(gid), _)) => Some(gid),
            Ok((None, what)) => {
                self.err(path, format!("unknown group '{what}'"));
                None
            }
            Err(e) => {
                self.err(path, format!("cannot read the group database: {e}"));
                None
            }
        }
    }

    /// `umask: "027"`: an octal string (a YAML integer would be read as decimal).
    pub(super) fn umask(&mut self, v: &Value, path: &[Seg]) -> Option<u32> {
        let text = match v {
            Value::String(_) => self.nonempty_string(v, path)?,
            _ => {
                self.type_err(path, "an octal string such as \"027\"", v);
                return None;
            }
        };
        match u32::from_str_radix(&text, 8) {
            Ok(mask) if mask <= 0o777 => Some(mask),
            _ => {
                self.err(path, format!("not an octal umask (000 to 777): \"{text}\""));
                None
            }
        }
    }

    /// `limits: { nofile: 4096, core: unlimited, stack: "8MB:16MB", ... }`: each a
    /// value for both limits, or `soft:hard`.
    /// `memory`, `memory_high`, `pids` and a `cpu` in percent are cgroup limits (see
    /// `cgroup_limits`).
    pub(super) fn limits(&mut self, v: &Value, path: &[Seg]) -> (Vec<Limit>, cgroup::Limits) {
        let keys: Vec<&str> = LIMITS.iter().map(|l| l.0).chain(CGROUP_LIMITS).collect();
        let Some(f) = self.fields(v, path, &keys) else {
            return (Vec::new(), cgroup::Limits::default());
        };
        let groups = self.cgroup_limits(&f, path);
        let mut out = Vec::new();
        for &(key, resource, bytes) in LIMITS {
            let Some(v) = f.get(key) else { continue };
            // A share in percent is the cgroup's `cpu.max`, checked there.
            let percent = matches!(v, Value::String(s) if s.trim().ends_with('%'));
            if key == "cpu" && percent {
                continue;
            }
            let at = child(path, key);
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => {
                    self.type_err(&at, "a number, \"unlimited\" or \"soft:hard\"", v);
                    continue;
                }
            };
            let (soft, hard) = text.split_once(':').unwrap_or((&text, &text));
            let parsed = (limit_value(soft, bytes), limit_value(hard, bytes));
            match parsed {
                (Ok(soft), Ok(hard)) if soft <= hard => out.push(Limit {
                    resource,
                    soft,
                    hard,
                }),
                (Ok(_), Ok(_)) => self.err(&at, format!("soft limit above hard limit: \"{text}\"")),
                (Err(e), _) | (_, Err(e)) => self.err(&at, e),
            }
        }
        (out, groups)
    }

    /// `limits: { memory: 512MB, memory_high: 400MB, cpu: "50%", pids: 100 }` (each may
    /// be `max`), checked against the cgroups this supervisor would use: a limit that
    /// cannot be applied is an error now, never silently ignored.
    fn cgroup_limits(&mut self, f: &Fields, path: &[Seg]) -> cgroup::Limits {
        let mut l = cgroup::Limits::default();
        for key in CGROUP_LIMITS {
            let Some(v) = f.get(key) else { continue };
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => continue,
            };
            if key == "cpu" && !text.ends_with('%') {
                continue; // RLIMIT_CPU, in seconds
            }
            let at = child(path, key);
            let parsed = match key {
                "cpu" => cpu_percent(&text).map(|p| l.cpu_percent = Some(p)),
                "pids" => count_or_max(&text).map(|n| l.pids = Some(n)),
                "memory" => bytes_or_max(&text).map(|n| l.memory = Some(n)),
                _ => bytes_or_max(&text).map(|n| l.memory_high = Some(n)),
            };
            if let Err(e) = parsed {
                self.err(&at, e);
            }
        }
        if l.is_empty() {
            return l;
        }
        let host = match cgroup::detect() {
            cgroup::Containment::Cgroup(host) => host,
            cgroup::Containment::Groups(why) => {
                let key = l.needs()[0].0;
                self.err(
                    &child(path, key),
                    format!("needs cgroup v2 containment, which is not in use: {why}"),
                );
                return cgroup::Limits::default();
            }
        };
        for (key, controller) in l.needs() {
            if !host.controllers.iter().any(|c| c == controller) {
                self.err(
                    &child(path, key),
                    format!(
                        "needs the cgroup v2 {controller} controller, which {} does not hand \
                         down (it offers: {})",
                        host.own.display(),
                        if host.controllers.is_empty() {
                            "none".to_string()
                        } else {
                            host.controllers.join(" ")
                        }
                    ),
                );
            }
        }
        l
    }
}

/// `limits:` keys applied through cgroups (`cpu` only with a `%`).
const CGROUP_LIMITS: [&str; 4] = ["memory", "memory_high", "pids", "cpu"];

/// "50%" (half a CPU), "200%" (two CPUs).
fn cpu_percent(text: &str) -> Result<u32, String> {
    match text.trim_end_matches('%').trim().parse::<u32>() {
        Ok(p) if (1..=100_000).contains(&p) => Ok(p),
        _ => Err(format!(
            "expected a share of one CPU such as \"50%\" or \"200%\", got \"{text}\""
        )),
    }
}

fn count_or_max(text: &str) -> Result<u64, String> {
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse()
        .map_err(|_| format!("expected a number or \"max\", got \"{text}\""))
}

fn bytes_or_max(text: &str) -> Result<u64, String> {
    if text == "max" {
        return Ok(u64::MAX);
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    parse_size(text).map_err(|e| format!("{e} (or \"max\")"))
}

/// One limit: a number (a size such as "8MB" where the limit is in bytes) or
/// `unlimited`.
fn limit_value(text: &str, bytes: bool) -> Result<u64, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("infinity") {
        return Ok(libc::RLIM_INFINITY);
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    if bytes {
        return parse_size(text).map_err(|e| format!("{e} (or \"unlimited\")"));
    }
    Err(format!(
        "expected a number or \"unlimited\", got \"{text}\""
    ))
}
