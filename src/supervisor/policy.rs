//! What happens when an instance ends: a pure function of the policy, the exit and the
//! restart history. The loop performs what it returns; tests need no processes.

use crate::config::RestartPolicy;
use std::time::Duration;

/// An instance that stays up this long has proven itself: the consecutive-restart
/// counter and the backoff doubling start over (SPEC §3).
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// As supervisor.log says it: "exit code 3", "SIGKILL".
    pub fn describe(self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exit code {c}"),
            ExitStatus::Signal(s) => crate::config::signal_name(s),
        }
    }

    /// The shell convention: a code as is, a signal as 128 + its number.
    pub fn as_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// An exit as state.json and status report it: (exit code, signal), at most one set.
pub fn split(status: Option<ExitStatus>) -> (Option<i32>, Option<i32>) {
    match status {
        Some(ExitStatus::Code(c)) => (Some(c), None),
        Some(ExitStatus::Signal(s)) => (None, Some(s)),
        None => (None, None),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub backoff: Duration,
    pub backoff_max: Option<Duration>,
    pub max_restarts: Option<u32>,
}

impl Policy {
    pub fn of(svc: &crate::config::Service) -> Policy {
        Policy {
            restart: svc.restart_policy,
            backoff: svc.backoff,
            backoff_max: svc.backoff_max,
            max_restarts: svc.max_restarts,
        }
    }
}

/// Facts about one instance that has just been reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub status: ExitStatus,
    /// Stopped by us because its health check kept failing: a failure whatever the code.
    pub unhealthy: bool,
    pub uptime: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Exited 0: its work is done; never restarted.
    Completed,
    /// Failed and the policy says leave it (`never`).
    Exited,
    /// Failed; run again after `delay`. `consecutive` counts this restart.
    Restart { delay: Duration, consecutive: u32 },
    /// Failed with `max_restarts` used up.
    GiveUp { restarts: u32 },
}

/// `consecutive` is how many automatic restarts in a row preceded this instance.
pub fn after_exit(policy: &Policy, consecutive: u32, ended: &Ended) -> Next {
    if ended.status.success() && !ended.unhealthy {
        return Next::Completed;
    }
    if policy.restart == RestartPolicy::Never {
        return Next::Exited;
    }
    let done = if ended.uptime >= STABLE_AFTER {
        0
    } else {
        consecutive
    };
    if let Some(max) = policy.max_restarts {
        if done >= max {
            return Next::GiveUp { restarts: done };
        }
    }
    Next::Restart {
        delay: backoff_delay(policy, done),
        consecutive: done + 1,
    }
}

/// `backoff`, doubled per earlier consecutive restart when `backoff_max` is set, capped there.
pub fn backoff_delay(policy: &Policy, done: u32) -> Duration {
    let Some(max) = policy.backoff_max else {
        return policy.backoff;
    };
    let factor = 1u32.checked_shl(done.min(31)).unwrap_or(u32::MAX);
    policy.backoff.checked_mul(factor).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(restart: RestartPolicy, max: Option<u32>) -> Policy {
        Policy {
            restart,
            backoff: Duration::from_secs(1),
            backoff_max: None,
            max_restarts: max,
        }
    }

    fn ended(status: ExitStatus, secs: u64) -> Ended {
        Ended {
            status,
            unhealthy: false,
            uptime: Duration::from_secs(secs),
        }
    }

    #[test]
    fn restart_policy_on_failure_does_not_restart_exit_zero() {
        let p = policy(RestartPolicy::OnFailure, None);
        assert_eq!(
            after_exit(&p, 0, &ended(ExitStatus::Code(0), 5)),
            Next::Completed
        );
        let p = policy(RestartPolicy::Always, None);
        assert_eq!(
            after_exit(&p, 0, &ended(ExitStatus::Code(0), 5)),
            Next::Completed
        );
    }

    #[test]
    fn failure_is_restarted_after_backoff() {
        let p = policy(RestartPolicy::OnFailure, None);
        let want = Next::Restart {
            delay: Duration::from_secs(1),
            consecutive: 1,
        };
        assert_eq!(after_exit(&p, 0, &ended(ExitStatus::Code(1), 5)), want);
        assert_eq!(after_exit(&p, 0, &ended(ExitStatus::Signal(9), 5)), want);
    }

    #[test]
    fn never_leaves_a_failure_exited() {
        let p = policy(RestartPolicy::Never, None);
        assert_eq!(
            after_exit(&p, 0, &ended(ExitStatus::Code(3), 0)),
            Next::Exited
        );
    }

    #[test]
    fn an_unhealthy_instance_is_a_failure_even_if_it_exits_zero() {
        let p = policy(RestartPolicy::OnFailure, None);
        let e = Ended {
            status: ExitStatus::Code(0),
            unhealthy: true,
            uptime: Duration::ZERO,
        };
        assert!(matches!(after_exit(&p, 0, &e), Next::Restart { .. }));
        let p = policy(RestartPolicy::Never, None);
        assert_eq!(after_exit(&p, 0, &e), Next::Exited);
    }

    #[test]
    fn max_restarts_allows_n_restarts_then_gives_up() {
        let p = policy(RestartPolicy::Always, Some(2));
        let crash = ended(ExitStatus::Code(1), 2);
        assert!(matches!(
            after_exit(&p, 0, &crash),
            Next::Restart { consecutive: 1, .. }
        ));
        assert!(matches!(
            after_exit(&p, 1, &crash),
            Next::Restart { consecutive: 2, .. }
        ));
        assert_eq!(after_exit(&p, 2, &crash), Next::GiveUp { restarts: 2 });
    }

    #[test]
    fn max_restarts_zero_gives_up_at_first_failure() {
        let p = policy(RestartPolicy::OnFailure, Some(0));
        assert_eq!(
            after_exit(&p, 0, &ended(ExitStatus::Code(1), 0)),
            Next::GiveUp { restarts: 0 }
        );
    }

    #[test]
    fn counter_resets_only_after_a_minute_up() {
        let p = policy(RestartPolicy::Always, Some(1));
        assert_eq!(
            after_exit(&p, 1, &ended(ExitStatus::Code(1), 59)),
            Next::GiveUp { restarts: 1 }
        );
        assert!(matches!(
            after_exit(&p, 1, &ended(ExitStatus::Code(1), 60)),
            Next::Restart { consecutive: 1, .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let p = Policy {
            restart: RestartPolicy::Always,
            backoff: Duration::from_millis(500),
            backoff_max: Some(Duration::from_secs(3)),
            max_restarts: None,
        };
        let delays: Vec<_> = (0..6).map(|n| backoff_delay(&p, n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(backoff_delay(&p, 1000), Duration::from_secs(3));
    }

    #[test]
    fn backoff_without_max_is_constant() {
        let p = policy(RestartPolicy::Always, None);
        assert_eq!(backoff_delay(&p, 7), Duration::from_secs(1));
    }
}
