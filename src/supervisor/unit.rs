//! One configured service as the loop holds it: its spec, its lifecycle (the pure
//! `service::Service`), and what only the loop can know. Owned by the loop only.

use super::cron::CronState;
use super::deps::Standing;
use super::service;
use super::survey::Census;
use crate::config::Service;
use crate::ipc::{CronRun, ServiceStatus};
use crate::procfs::ProcStat;
use crate::state::ServiceRecord;
use std::time::{Instant, SystemTime};

#[derive(Debug)]
pub struct Unit {
    pub cfg: Service,
    pub svc: service::Service,
    /// Kernel start time of the live instance's leader (crash recovery matches it).
    pub start_ticks: Option<u64>,
    /// Schedule and run history of a cron job.
    pub cron: Option<CronState>,
    /// Processes that left an instance without its markers (see `adopt`).
    pub adopted: Vec<super::adopt::Adopted>,
    /// The live instance's group was seen empty after its leader exited: its pgid is
    /// never signalled again (the number may be reused by an unrelated group).
    pub group_empty: bool,
    /// The environment the live instance was started with (a reload compares it).
    pub spawned_env: Option<Vec<(String, String)>>,
    /// A reload changed the spec: taken up when the service is next scheduled, once
    /// the old instance (which stops with the old spec) is gone.
    pub pending_spec: Option<Service>,
    /// Removed by a reload and being stopped; then `removed`: hidden, its name free.
    pub retiring: bool,
    pub removed: bool,
    /// Stopped by `sysg stop -s`: stays stopped across reloads and supervisor restarts
    /// (state.json keeps it) until `sysg start -s` or `restart -s`.
    pub held: bool,
    /// Restarted by a reload: not scheduled until the reload's stops are all over.
    pub reload_hold: bool,
    /// During a rolling restart: what the unit knew of the old instance, put back if
    /// the new one fails (see `rolling`).
    pub rolled_from: Option<super::rolling::RolledFrom>,
    /// A rolling restart fell back to stop-then-start: its reply says so.
    pub roll_fell_back: bool,
    /// `health_check.log`: set once the live instance printed the text.
    pub ready_seen: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The last probe result of the current instance, and when.
    pub last_probe: Option<crate::ipc::ProbeStatus>,
    /// `notify: true`: its socket (made at the first start) and what it said.
    pub notify: Option<super::notify::Notify>,
    /// The cgroups of its instances, when cgroups are in use.
    pub leaves: super::contain::Leaves,
    /// What `inspect` shows: the last exits and probe results (newest last), the last
    /// run of each hook.
    pub exits: std::collections::VecDeque<crate::ipc::ExitRecord>,
    pub probes: std::collections::VecDeque<crate::ipc::ProbeStatus>,
    pub hook_runs: Vec<crate::ipc::HookRun>,
}

impl Unit {
    /// A unit for `cfg`; a cron job starts idle and takes over `history` from state.json.
    pub fn new(cfg: Service, history: Vec<CronRun>) -> Unit {
        let cron = cfg.cron.as_ref().map(|spec| CronState::new(spec, history));
        Unit {
            svc: service::Service::new(&cfg),
            cron,
            cfg,
            start_ticks: None,
            adopted: Vec::new(),
            group_empty: false,
            spawned_env: None,
            pending_spec: None,
            retiring: false,
            removed: false,
            held: false,
            reload_hold: false,
            rolled_from: None,
            roll_fell_back: false,
            ready_seen: None,
            last_probe: None,
            notify: None,
            leaves: Default::default(),
            exits: Default::default(),
            probes: Default::default(),
            hook_runs: Vec::new(),
        }
    }

    pub fn is_cron(&self) -> bool {
        self.cron.is_some()
    }

    /// How this unit stands for the services that depend on it.
    pub fn standing(&self) -> Standing {
        if self.is_cron() || self.svc.satisfies_dependents() {
            Standing::Satisfied
        } else if self.svc.blocks_dependents() {
            Standing::Blocking
        } else {
            Standing::NotYet
        }
    }

    pub fn record(&self) -> ServiceRecord {
        let live = self.svc.live();
        let (exit_code, signal) = super::policy::split(self.svc.last_exit);
        ServiceRecord {
            status: self.svc.state(),
            pid: live.map(|r| r.pid),
            started_at: self.svc.last_started.map(rfc3339),
            restart_count: self.svc.restart_count,
            exit_code,
            signal,
            pgid: live.map(|r| r.group),
            start_ticks: live.and(self.start_ticks),
            reason: self.svc.reason.clone(),
            cron: self.cron.as_ref().map(|c| c.status()),
            stopped_by_request: self.held && self.svc.state() == crate::ipc::State::Stopped,
        }
    }

    /// The status a client sees, without the /proc figures of a live instance: those
    /// are `Live::fill`ed in from a census, off the loop thread.
    pub fn status(&self, now: Instant) -> (ServiceStatus, Option<Live>) {
        let rec = self.record();
        let st = ServiceStatus {
            name: self.cfg.name.clone(),
            kind: if self.cfg.cron.is_some() {
                "cron"
            } else {
                "service"
            }
            .to_string(),
            status: rec.status,
            pid: rec.pid,
            started_at: rec.started_at,
            uptime_s: None,
            restart_count: self.svc.restart_count,
            max_restarts: self.cfg.max_restarts,
            exit_code: rec.exit_code,
            signal: rec.signal,
            up: self.svc.is_up(),
            restart_in_ms: self
                .svc
                .restart_at()
                .map(|at| at.saturating_duration_since(now).as_millis() as u64),
            waiting_for: self.svc.waiting_for().map(str::to_string),
            reason: self.svc.reason.clone(),
            rss_bytes: None,
            cpu_s: None,
            tasks: None,
            processes: Vec::new(),
            cron: rec.cron,
            stopped_by_request: rec.stopped_by_request,
            last_probe: self
                .last_probe
                .clone()
                .filter(|_| self.svc.live().is_some()),
            notify_status: self
                .notify
                .as_ref()
                .and_then(|n| n.status.clone())
                .filter(|_| self.svc.live().is_some()),
            cgroup: None,
        };
        let live = self.svc.live().map(|run| Live {
            leader: run.pid,
            started: run.started,
            leaf: self.leaves.live.clone(),
        });
        (st, live)
    }
}

/// A live instance whose figures a status report still needs.
pub struct Live {
    leader: i32,
    started: Instant,
    leaf: Option<crate::cgroup::Leaf>,
}

impl Live {
    /// In a cgroup: its processes and figures come from there.
    pub fn contained(&self) -> bool {
        self.leaf.is_some()
    }

    /// Uptime, memory, CPU and processes from `census` (one /proc pass for every
    /// service, made only when a client asks): the group and its marked escapees.
    pub fn fill(&self, st: &mut ServiceStatus, census: &Census, now: Instant) {
        let members: Vec<ProcStat> = match &self.leaf {
            Some(leaf) => leaf
                .pids()
                .into_iter()
                .filter_map(crate::procfs::stat)
                .filter(|p| p.state != 'Z')
                .collect(),
            None => census
                .of(&st.name, Some(self.leader))
                .into_iter()
                .cloned()
                .collect(),
        };
        let leader_ticks = members
            .iter()
            .find(|p| p.pid == self.leader)
            .map(|p| p.start_ticks);
        st.uptime_s = Some(uptime_secs(self.started, leader_ticks, now));
        let snap = crate::procfs::summarize(&members);
        st.rss_bytes = Some(snap.rss_bytes);
        st.cpu_s = Some(snap.cpu_s);
        st.tasks = Some(snap.tasks);
        st.processes = snap.processes;
        if let Some(leaf) = &self.leaf {
            // The kernel's own counts: every process that ever ran in it, children
            // included.
            if let Some(usec) = leaf.cpu_usec() {
                st.cpu_s = Some(usec as f64 / 1e6);
            }
            if let Some(bytes) = leaf.memory_bytes() {
                st.rss_bytes = Some(bytes);
            }
            if let Some(n) = leaf.tasks() {
                st.tasks = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            st.cgroup = Some(crate::ipc::CgroupStatus {
                path: leaf.shown.clone(),
                memory_max: leaf.limit("memory.max"),
                pids_max: leaf.limit("pids.max"),
            });
        }
    }
}

/// Uptime from the kernel's start time of the process (DESIGN pitfall 15), falling back
/// to our own clock if /proc cannot say.
fn uptime_secs(started: Instant, leader_ticks: Option<u64>, now: Instant) -> u64 {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64());
    let start = leader_ticks.and_then(crate::procfs::start_unix_from_ticks);
    match (start, wall) {
        (Some(start), Ok(now_wall)) if now_wall >= start => (now_wall - start) as u64,
        _ => now.duration_since(started).as_secs(),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
