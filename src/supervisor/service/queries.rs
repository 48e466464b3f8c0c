//! What the loop and the status report ask of a service's lifecycle state.

use super::*;

impl Phase {
    /// For the transition log.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Pending { waiting_for: None } => "pending",
            Phase::Pending {
                waiting_for: Some(_),
            } => "waiting",
            Phase::Checking { .. } => "checking",
            Phase::PreStarting { .. } => "pre-start",
            Phase::Starting { .. } => "starting",
            Phase::Running(i) if i.up => "up",
            Phase::Running(_) => "running",
            Phase::Stopping { .. } => "stopping",
            Phase::Backoff { .. } => "backoff",
            Phase::Idle => "idle",
            Phase::Completed => "completed",
            Phase::Exited => "exited",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
            Phase::Skipped => "skipped",
        }
    }
}

impl Service {
    /// A service as configured, before anything happened to it.
    pub fn new(spec: &Spec) -> Service {
        Service {
            // A cron job with a skip check runs the check first, like a service.
            phase: if spec.cron.is_some() && spec.skip.is_none() {
                Phase::Idle
            } else {
                Phase::Pending { waiting_for: None }
            },
            epoch: 0,
            consecutive: 0,
            restart_count: 0,
            last_exit: None,
            last_started: None,
            reason: None,
            spawn_error: None,
            retiring: None,
        }
    }

    /// The state a client sees.
    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Pending { waiting_for: None } => State::Pending,
            Phase::Pending {
                waiting_for: Some(_),
            } => State::Waiting,
            Phase::Checking { .. } | Phase::PreStarting { .. } | Phase::Starting { .. } => {
                State::Pending
            }
            Phase::Running(_) => State::Running,
            Phase::Stopping { .. } => State::Stopping,
            Phase::Backoff { .. } => State::Backoff,
            Phase::Idle => State::Idle,
            Phase::Completed | Phase::Exited => State::Exited,
            Phase::Failed => State::Failed,
            Phase::Stopped => State::Stopped,
            Phase::Skipped => State::Skipped,
        }
    }

    /// The live instance, if its leader has not exited.
    pub fn live(&self) -> Option<&Instance> {
        match &self.phase {
            Phase::Running(inst)
            | Phase::Stopping {
                leader: Leader::Alive(inst),
                ..
            } => Some(inst),
            _ => None,
        }
    }

    /// The process group the instance being run or stopped leads.
    pub fn group(&self) -> Option<i32> {
        match &self.phase {
            Phase::Running(inst)
            | Phase::Stopping {
                leader: Leader::Alive(inst) | Leader::Crashed(inst, _) | Leader::Exited(inst, _),
                ..
            } => Some(inst.group),
            _ => None,
        }
    }

    pub fn check_pid(&self) -> Option<i32> {
        match self.phase {
            Phase::Checking { pid, .. } => pid,
            _ => None,
        }
    }

    /// Whether a stop is looking for marked escapees too (an own exit checks the group).
    pub fn stop_requested(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stopping {
                intent: Some(_),
                ..
            }
        )
    }

    /// A stop whose leader is gone: it is over once nothing of the instance is left.
    pub fn awaits_group(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stopping {
                leader: Leader::Crashed(..) | Leader::Exited(..) | Leader::Strays,
                ..
            }
        )
    }

    /// Has a process (or a skip check) the loop still has to see die.
    pub fn has_processes(&self) -> bool {
        matches!(
            self.phase,
            Phase::Checking { .. }
                | Phase::PreStarting { .. }
                | Phase::Starting { .. }
                | Phase::Running(_)
                | Phase::Stopping { .. }
        )
    }

    /// Can run again without a request: something is scheduled or alive.
    pub fn is_active(&self) -> bool {
        self.has_processes()
            || self.retiring.is_some()
            || matches!(self.phase, Phase::Pending { .. } | Phase::Backoff { .. })
    }

    /// The pid of a rolling restart's old instance, while it lives.
    pub fn retiring_pid(&self) -> Option<i32> {
        self.retiring.as_ref().map(|r| r.inst.pid)
    }

    /// The process group of a rolling restart's old instance, while it lives.
    pub fn retiring_group(&self) -> Option<i32> {
        self.retiring.as_ref().map(|r| r.inst.group)
    }

    /// Whether `restart -s` would roll: the service runs, is up, and no roll is under way.
    pub fn can_roll(&self) -> bool {
        self.is_up() && self.retiring.is_none()
    }

    pub fn is_up(&self) -> bool {
        matches!(&self.phase, Phase::Running(inst) if inst.up)
    }

    /// An instance is running and no stop of it is under way.
    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running(_))
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.phase, Phase::Pending { .. })
    }

    pub fn waiting_for(&self) -> Option<&str> {
        match &self.phase {
            Phase::Pending { waiting_for } => waiting_for.as_deref(),
            _ => None,
        }
    }

    pub fn restart_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Backoff { until } => Some(until),
            _ => None,
        }
    }

    /// Up, done, or skipped: its dependents may start.
    pub fn satisfies_dependents(&self) -> bool {
        self.is_up() || matches!(self.phase, Phase::Completed | Phase::Skipped)
    }

    /// Can never satisfy dependents unless someone starts it again by hand.
    pub fn blocks_dependents(&self) -> bool {
        matches!(self.phase, Phase::Failed | Phase::Stopped | Phase::Exited)
    }
}
