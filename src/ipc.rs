//! Control-socket protocol: one JSON request per line from the client, one JSON reply per
//! line from the supervisor. Shared by both sides so they cannot drift.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest request line the supervisor accepts.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Status of every service, or of one.
    Status { service: Option<String> },
    /// Start one service that is not running.
    Start { service: String },
    /// Stop one service, or (None) everything and shut the supervisor down.
    Stop {
        service: Option<String>,
        /// With a service: stop the running services that depend on it (directly or
        /// not) as well.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        with_dependents: bool,
    },
    /// Restart one service, or (None) reload the config and restart everything.
    Restart {
        service: Option<String>,
        config: Option<PathBuf>,
        /// A reload: say what it would do, change nothing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
        /// A reload that stops every service and starts them all again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    /// Re-exec the supervisor from `binary` (default: its own path), keeping every
    /// service.
    Upgrade { binary: Option<PathBuf> },
    /// Answer once every named service (None: every service but cron jobs) is up,
    /// completed, skipped or stopped by request, once one of them fails, or after
    /// `timeout_ms`.
    WaitUp {
        services: Option<Vec<String>>,
        timeout_ms: u64,
    },
    /// Subscribe: after the reply, one `LifecycleEvent` JSON line per event, until the
    /// supervisor exits or the subscriber falls too far behind.
    Events,
    /// Everything about one service; env values only with `env`.
    Inspect { service: String, env: bool },
    /// Rotate the log files of one service (None: every service) now.
    Rotate { service: Option<String> },
}

/// `sysg inspect`: one service as the supervisor runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspect {
    pub name: String,
    pub kind: String,
    pub status: State,
    pub pid: Option<i32>,
    /// The command as configured (`${VAR}` expanded).
    pub command: String,
    /// What runs: the program and its arguments, or `/bin/sh -c <command>`.
    pub runs: Vec<String>,
    pub working_dir: String,
    /// `user (uid)` and `group (gid)`, when not the supervisor's.
    pub user: Option<String>,
    pub group: Option<u32>,
    pub env_keys: Vec<String>,
    /// With `env`: the values too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<(String, String)>>,
    pub restart_policy: String,
    pub backoff_ms: u64,
    pub max_restarts: Option<u32>,
    pub restart_count: u32,
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
    pub depends_on: Vec<String>,
    pub health_check: Option<String>,
    /// The last exits, newest first.
    pub exits: Vec<ExitRecord>,
    /// The last probe results, newest first.
    pub probes: Vec<ProbeStatus>,
    /// The last run of each hook.
    pub hooks: Vec<HookRun>,
    pub logs: Vec<LogFileInfo>,
    /// RFC 3339, UTC.
    pub next_cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// RFC 3339, UTC.
    pub at: String,
    /// "exit code 1", "signal 9 (KILL)".
    pub exit: String,
    pub uptime_s: f64,
    /// What the policy did: "restart in 1s", "failed: gave up after 5 restarts", ...
    pub then: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// "on_start.success", ...
    pub hook: String,
    /// RFC 3339, UTC, of its start.
    pub at: String,
    /// "exit code 0", "timed out after 30s (killed)", "cannot run: ...".
    pub outcome: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFileInfo {
    pub path: String,
    pub bytes: u64,
}

/// What `sysg events` is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub service: String,
    /// "state" (from -> to), "probe" (a failed health probe), "cron" (fired, skipped).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// How the instance ended ("exit code 1", "signal 9 (KILL)"), on a state event that
    /// follows an exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default)]
    pub restarts: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<StatusReport>>,
    /// The service a failed `WaitUp` is about (its logs are worth showing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect: Option<Box<Inspect>>,
    /// The request could not be taken now (shutting down, reloading): try again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Self {
        Response {
            ok: true,
            message: Some(message.into()),
            ..Default::default()
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Supervisor pid, or None when read from state.json with no supervisor.
    pub supervisor_pid: Option<i32>,
    pub config: Option<PathBuf>,
    pub services: Vec<ServiceStatus>,
    /// What holds services' processes together: cgroup v2, or process groups (why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
}

/// Lifecycle state names exactly as SPEC §6 lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Waiting,
    Running,
    Stopping,
    Exited,
    Failed,
    Backoff,
    Stopped,
    Skipped,
    Idle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// "service" or "cron".
    pub kind: String,
    pub status: State,
    pub pid: Option<i32>,
    /// RFC 3339, UTC, of the current (or last) instance's start.
    pub started_at: Option<String>,
    pub uptime_s: Option<u64>,
    pub restart_count: u32,
    pub max_restarts: Option<u32>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Whether the service has reached "up" (ran 1 s, or passed its health check).
    #[serde(default)]
    pub up: bool,
    /// Milliseconds until an automatic restart (status `backoff`).
    pub restart_in_ms: Option<u64>,
    /// Dependency this service waits for (status `waiting`).
    pub waiting_for: Option<String>,
    /// Why it is failed/waiting/stopped, e.g. "dependency db failed", "gave up after 5 restarts".
    pub reason: Option<String>,
    /// Figures from /proc over the whole process group, only while running.
    pub rss_bytes: Option<u64>,
    pub cpu_s: Option<f64>,
    pub tasks: Option<u32>,
    #[serde(default)]
    pub processes: Vec<ProcessInfo>,
    pub cron: Option<CronStatus>,
    /// Stopped by `sysg stop -s`: it stays stopped (across reloads and supervisor
    /// restarts) until `sysg start -s`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_request: bool,
    /// The last health probe of the current instance, for a service with a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<ProbeStatus>,
    /// What a `notify` service last said with `STATUS=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// The live instance's cgroup, when cgroups are in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupStatus>,
}

/// A live instance's cgroup and what it limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStatus {
    /// As the hierarchy names it: `/sysg.…/api.service/3`.
    pub path: String,
    /// `memory.max` and `pids.max`, where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub healthy: bool,
    /// What the probe said: its last output line, the HTTP status, the connect error.
    pub detail: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronStatus {
    pub expression: String,
    pub timezone: String,
    pub next_run: Option<String>,
    pub history: Vec<CronRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronRun {
    pub started_at: String,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}
