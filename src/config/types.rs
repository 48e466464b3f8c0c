//! The validated configuration: every default applied, every path absolute, every
//! duration parsed. Produced by `config::load`; nothing downstream re-validates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Absolute path of the config file.
    pub path: PathBuf,
    /// Services in the order they appear in the file.
    pub services: Vec<Service>,
}

#[cfg(test)]
impl Config {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub command: String,
    /// Absolute, `${VAR}`-expanded.
    pub working_dir: PathBuf,
    /// Layers applied in order on top of the supervisor's own environment:
    /// root file, root vars, service file, service vars. Files are re-read at every spawn.
    pub env: Vec<EnvSource>,
    pub restart_policy: RestartPolicy,
    pub backoff: Duration,
    pub backoff_max: Option<Duration>,
    pub max_restarts: Option<u32>,
    pub depends_on: Vec<String>,
    pub skip: Option<String>,
    /// A libc signal number (`stop_signal: "TERM"` / `"SIGTERM"` / `"15"`).
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub health_check: Option<HealthCheck>,
    pub hooks: Hooks,
    pub cron: Option<CronSpec>,
    pub logs: LogLimits,
    /// Run a command with no shell syntax as the program itself (`exec: false`: always
    /// through `sh -c`).
    pub exec: bool,
    /// Dependencies listed with `restart: true`: a reload that restarts one of them
    /// restarts this service after it.
    pub restart_with: Vec<String>,
    /// Run before each start of the service (`sh -c`, bounded by its timeout); a
    /// failure fails that start.
    pub pre_start: Option<Hook>,
    pub deployment: Deployment,
    /// `user:` / `group:`: who the service (and its hooks and probes) runs as; None: as
    /// the supervisor.
    pub run_as: Option<RunAs>,
    /// `umask:`, set in the child before exec.
    pub umask: Option<u32>,
    /// `limits:`, set with `setrlimit` in the child before exec.
    pub limits: Vec<Limit>,
    /// `limits:` applied through the instance's cgroup (memory, pids, CPU share).
    pub cgroup_limits: crate::cgroup::Limits,
    /// `notify: true`: the service speaks sd_notify; it is up on `READY=1`.
    pub notify: bool,
    /// `watchdog:` (with `notify`): `WATCHDOG=1` must come at least this often.
    pub watchdog: Option<Duration>,
}

/// The identity a service runs with, resolved at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// The account of `user:` (its name gives the supplementary groups and `USER`,
    /// `HOME`...); None when only `group:` is given.
    pub user: Option<crate::sys::users::Account>,
}

/// One resource limit (`libc::RLIMIT_*`), soft and hard (`RLIM_INFINITY`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// How `restart -s` (and a reload that changes the service) replaces a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Start the new instance beside the old one, stop the old one once the new one is
    /// up and `grace_period` has passed; false: stop, then start.
    pub rolling: bool,
    pub grace_period: Duration,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            rolling: false,
            grace_period: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// Absolute path of a KEY=VALUE file.
    File(PathBuf),
    /// Expanded values, in file order; shared, so the root layer every service inherits
    /// is stored once, not once per service.
    Vars(Arc<Vec<(String, String)>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

// Validated now; read by the runtime once health checks, hooks and cron land.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    /// Keep probing at `interval` once up; `retries` failures in a row make the
    /// instance a failure (unhealthy), handled by the restart policy.
    pub liveness: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Run with `sh -c` in the service's working dir and env; exit 0 = healthy.
    Command(String),
    /// Plain `http://` URL; a 2xx answer = healthy.
    Url(String),
    /// `host:port`; a TCP connect that succeeds = healthy.
    Tcp(String),
    /// Up once a line of the instance's stdout or stderr contains this text.
    Log(String),
}

#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub on_start: HookPair,
    pub on_stop: HookPair,
    pub on_restart: HookPair,
}

// Validated now; read by the runtime once health checks, hooks and cron land.
#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct HookPair {
    pub success: Option<Hook>,
    pub error: Option<Hook>,
}

// Validated now; read by the runtime once health checks, hooks and cron land.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct Hook {
    pub command: String,
    pub timeout: Duration,
}

// Validated now; read by the runtime once health checks, hooks and cron land.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct CronSpec {
    /// The expression as written in the config.
    pub expression: String,
    /// Parsed schedule (5-field expressions get a leading `0` seconds field).
    pub schedule: cron::Schedule,
    pub timezone: Timezone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timezone {
    Local,
    Utc,
    /// An IANA name that exists under the system zoneinfo directory.
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
    /// `logs.timestamps`: each stored line starts with its receive time (RFC 3339, UTC,
    /// milliseconds) and a space.
    pub timestamps: bool,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_size: 50 << 20,
            max_files: 5,
            timestamps: false,
        }
    }
}
