//! What `sysg upgrade` hands from the running supervisor to the binary it execs, at the
//! same pid: the services' state, and the descriptors kept open across the exec (output
//! pipes, the control socket, the sysg.pid lock, the asking client). Written as JSON into
//! a sealed memfd whose number is the new process's argument.

use super::policy::ExitStatus;
use crate::ipc::CronRun;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The format this binary writes and reads. A binary that reads another says so before
/// the old one execs it (`sysg __handover-version`), and the upgrade is refused.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Handover {
    pub version: u32,
    pub config: PathBuf,
    pub foreground: bool,
    pub subreaper: bool,
    pub first_failure: Option<i32>,
    pub listener_fd: i32,
    pub lock_fd: i32,
    /// The `sysg upgrade` client, answered by the new binary once it runs.
    pub client_fd: Option<i32>,
    pub units: Vec<UnitState>,
    pub pipes: Vec<PipeState>,
    /// The sd_notify sockets of `notify` services: (service, fd, NOTIFY_SOCKET value).
    #[serde(default)]
    pub notify: Vec<(String, i32, String)>,
    /// Their last `STATUS=`: (service, text).
    #[serde(default)]
    pub notify_status: Vec<(String, String)>,
    /// Clients waiting for a stop or restart of one service to be over.
    #[serde(default)]
    pub waiters: Vec<WaiterState>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WaiterState {
    pub fd: i32,
    pub service: String,
    /// `restart -s` (else `stop -s`).
    pub restart: bool,
}

/// The instance of a stopping service, as far as it goes.
#[derive(Debug, Serialize, Deserialize)]
pub struct StopLeader {
    /// "alive", "exited" (reaped during the stop) or "crashed" (exited on its own).
    pub state: String,
    pub pid: i32,
    pub group: i32,
    pub running_ms: u64,
    pub restarted: bool,
    pub exit: Option<Exit>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UnitState {
    pub name: String,
    pub phase: PhaseState,
    pub consecutive: u32,
    pub restart_count: u32,
    pub last_exit: Option<Exit>,
    /// Unix time in milliseconds.
    pub last_started_ms: Option<u64>,
    pub reason: Option<String>,
    pub held: bool,
    pub start_ticks: Option<u64>,
    pub spawned_env: Option<Vec<(String, String)>>,
    pub cron_history: Vec<CronRun>,
    /// The live instance's cgroup, when cgroups are in use.
    #[serde(default)]
    pub cgroup: Option<std::path::PathBuf>,
    /// Processes adopted by the instance (see `adopt`): pid, start time, leads a group.
    #[serde(default)]
    pub adopted: Vec<(i32, u64, bool)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum PhaseState {
    /// An instance that is up (an upgrade waits for those that are not).
    Running {
        pid: i32,
        /// Its process group, when not led by `pid` (`MAINPID=` moved it).
        #[serde(default)]
        group: Option<i32>,
        /// How long it has been running: its `started` is rebuilt from this.
        running_ms: u64,
        restarted: bool,
        cron_key: Option<String>,
    },
    /// Being stopped: its deadline (SIGKILL, or the look after it) re-armed with what
    /// is left of it.
    Stopping {
        leader: StopLeader,
        /// "stop", "restart", "unhealthy", or None (cleaning up after the leader exited
        /// on its own).
        intent: Option<String>,
        kill_in_ms: Option<u64>,
        recheck_in_ms: Option<u64>,
    },
    /// Waiting out the restart delay: re-armed with what is left of it.
    Backoff {
        remaining_ms: u64,
    },
    Idle,
    Completed,
    Exited,
    Failed,
    Stopped,
    Skipped,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Exit {
        match s {
            ExitStatus::Code(c) => Exit::Code(c),
            ExitStatus::Signal(s) => Exit::Signal(s),
        }
    }
}

impl From<Exit> for ExitStatus {
    fn from(e: Exit) -> ExitStatus {
        match e {
            Exit::Code(c) => ExitStatus::Code(c),
            Exit::Signal(s) => ExitStatus::Signal(s),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PipeState {
    pub service: String,
    pub stderr: bool,
    pub fd: i32,
}
