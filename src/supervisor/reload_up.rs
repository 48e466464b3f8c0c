//! A reload's reply waits until what it started is up: `sysg restart` then prints the
//! plan and exits non-zero naming every service that did not come up (it exited, failed
//! its health check, is waiting out a restart delay, or is still not up after
//! `RELOAD_UP_WITHIN`).

use super::service::Phase;
use super::{Supervisor, Timer, Unit};
use crate::ipc::Response;
use std::time::Duration;

/// The longest a reload's reply waits for its services to be up.
pub const RELOAD_UP_WITHIN: Duration = Duration::from_secs(60);

pub(super) struct UpWait {
    client: u64,
    /// The plan, and what could not even start.
    text: String,
    failed: Vec<String>,
    units: Vec<usize>,
}

/// Still on its way up: pending, starting, or running but not up yet (a rolling
/// restart's new instance included).
pub(super) fn coming_up(u: &Unit) -> bool {
    let on_the_way = match &u.svc.phase {
        Phase::Pending { .. }
        | Phase::Checking { .. }
        | Phase::PreStarting { .. }
        | Phase::Starting { .. } => true,
        Phase::Running(inst) => !inst.up,
        _ => false,
    };
    on_the_way && !u.removed && !u.is_cron() && !u.held
}

impl Supervisor {
    /// Replies to `client` once every service now on its way up is up or has failed.
    pub(super) fn await_up(&mut self, client: u64, text: String, failed: Vec<String>) {
        if self.reload_up.is_some() {
            // A reload superseded by another: answered with what it has.
            self.answer_up(true);
        }
        let units = (0..self.units.len())
            .filter(|&i| coming_up(&self.units[i]))
            .collect();
        self.reload_up = Some(UpWait {
            client,
            text,
            failed,
            units,
        });
        let gen = self.next_gen();
        self.reload_up_gen = gen;
        self.timers.after(RELOAD_UP_WITHIN, Timer::ReloadUp(gen));
        self.answer_up(false);
    }

    pub(super) fn on_reload_up_deadline(&mut self, gen: u64) {
        if gen == self.reload_up_gen {
            self.answer_up(true);
        }
    }

    /// Answers the waiting reload once nothing it waits for is coming up any more (or,
    /// with `now`, at once).
    pub(super) fn answer_up(&mut self, now: bool) {
        let Some(w) = &self.reload_up else { return };
        if !now && w.units.iter().any(|&i| coming_up(&self.units[i])) {
            return;
        }
        let Some(w) = self.reload_up.take() else {
            return;
        };
        let mut problems = w.failed;
        for &i in &w.units {
            let u = &self.units[i];
            let name = &u.cfg.name;
            let reason = u.svc.reason.as_deref();
            if coming_up(u) {
                problems.push(format!(
                    "{name}: not up after {}s",
                    RELOAD_UP_WITHIN.as_secs()
                ));
            } else if let Some(why) = reason.filter(|r| r.starts_with("rolling restart failed")) {
                problems.push(format!("{name}: {why}"));
            } else if matches!(
                u.svc.phase,
                Phase::Exited | Phase::Failed | Phase::Backoff { .. }
            ) {
                let why = reason.map_or_else(|| u.svc.phase.name().to_string(), str::to_string);
                problems.push(format!("{name}: did not come up ({why})"));
            }
        }
        let mut text = w.text;
        let resp = if problems.is_empty() {
            Response::ok(text)
        } else {
            text.push('\n');
            text.push_str(&problems.join("\n"));
            Response::error(text)
        };
        self.reply(w.client, &resp);
    }
}
