//! `sysg start -d --wait` (and `start -s` / `restart -s` with `--wait`): the reply waits
//! until every service asked about is up (healthy where it has a check), completed,
//! skipped or stopped by request; or until one of them fails, named with why; or until
//! the client's timeout. Judged at each settle, so it costs nothing while nothing moves.

use super::reload_up::coming_up;
use super::service::Phase;
use super::{Supervisor, Timer, Unit};
use crate::ipc::Response;
use std::time::Duration;

pub(super) struct UpWaiter {
    pub client: u64,
    units: Vec<usize>,
    gen: u64,
    timeout: Duration,
}

/// How a unit stands for a waiter.
enum Standing {
    Done(&'static str),
    Coming,
    Failed(String),
}

fn standing(u: &Unit) -> Standing {
    if coming_up(u) {
        return Standing::Coming;
    }
    let why = || {
        let reason = u
            .svc
            .reason
            .clone()
            .unwrap_or_else(|| u.svc.phase.name().to_string());
        match u.svc.last_exit {
            Some(exit) if !reason.contains(&exit.describe()) => {
                format!("{reason} ({})", exit.describe())
            }
            _ => reason,
        }
    };
    match &u.svc.phase {
        Phase::Running(inst) if inst.up => Standing::Done("up"),
        Phase::Completed => Standing::Done("completed"),
        Phase::Skipped => Standing::Done("skipped"),
        Phase::Stopped if u.held => Standing::Done("stopped by request"),
        Phase::Exited | Phase::Failed | Phase::Backoff { .. } | Phase::Stopped => {
            Standing::Failed(why())
        }
        // Stopping, or anything else that is neither up nor on its way.
        _ => Standing::Failed(why()),
    }
}

impl Supervisor {
    pub(super) fn wait_up_request(
        &mut self,
        client: u64,
        services: Option<Vec<String>>,
        timeout_ms: u64,
    ) -> Option<Response> {
        let units = match services {
            Some(names) => {
                let mut units = Vec::new();
                for name in names {
                    match self.find(&name) {
                        Ok(i) => units.push(i),
                        Err(e) => return Some(e),
                    }
                }
                units
            }
            None => (0..self.units.len())
                .filter(|&i| !self.units[i].removed && !self.units[i].is_cron())
                .collect(),
        };
        let gen = self.next_gen();
        let timeout = Duration::from_millis(timeout_ms);
        self.timers.after(timeout, Timer::WaitUp(gen));
        self.up_waiters.push(UpWaiter {
            client,
            units,
            gen,
            timeout,
        });
        self.answer_up_waiters();
        None
    }

    pub(super) fn answer_up_waiter_at_deadline(&mut self, gen: u64) {
        if let Some(at) = self.up_waiters.iter().position(|w| w.gen == gen) {
            let w = self.up_waiters.remove(at);
            let late: Vec<String> = w
                .units
                .iter()
                .map(|&i| &self.units[i])
                .filter(|u| matches!(standing(u), Standing::Coming))
                .map(|u| format!("{} ({})", u.cfg.name, u.svc.phase.name()))
                .collect();
            let resp = Response::error(format!(
                "not up within {}s: {}",
                w.timeout.as_secs_f64(),
                late.join(", ")
            ));
            self.reply(w.client, &resp);
        }
    }

    /// Answers each waiter one of whose services failed, or whose services are all up
    /// (or done).
    pub(super) fn answer_up_waiters(&mut self) {
        if self.up_waiters.is_empty() {
            return;
        }
        let mut answers = Vec::new();
        self.up_waiters.retain(|w| {
            let stands: Vec<(&Unit, Standing)> = w
                .units
                .iter()
                .map(|&i| (&self.units[i], standing(&self.units[i])))
                .collect();
            if let Some((u, Standing::Failed(why))) = stands
                .iter()
                .find(|(_, s)| matches!(s, Standing::Failed(_)))
            {
                let mut resp = Response::error(format!("{}: did not come up: {why}", u.cfg.name));
                resp.failed = Some(u.cfg.name.clone());
                answers.push((w.client, resp));
                return false;
            }
            if stands.iter().any(|(_, s)| matches!(s, Standing::Coming)) {
                return true;
            }
            let lines: Vec<String> = stands
                .iter()
                .map(|(u, s)| match s {
                    Standing::Done(how) => format!("{}: {how}", u.cfg.name),
                    _ => String::new(),
                })
                .collect();
            answers.push((w.client, Response::ok(lines.join("\n"))));
            false
        });
        for (client, resp) in answers {
            self.reply(client, &resp);
        }
    }
}
