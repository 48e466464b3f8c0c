//! Shutdown in reverse dependency order: what depends on others stops first, and each
//! level only once the level before it has exited (each bounded by its own services'
//! `stop_timeout`), the services of one level in parallel. Everything without a running
//! instance (pending, backing off, exited, a skip check under way) is stopped at once.
//!
//! Signals go out in batches of `STOP_BATCH` a turn, so a stop of thousands of services
//! leaves the control socket answered between batches.

use super::service::StopIntent;
use super::{deps, Supervisor};
use crate::logger::info;
use std::collections::{BTreeMap, VecDeque};

/// Running services signalled in one loop turn at most.
const STOP_BATCH: usize = 128;

/// Names shown when a level's stop is logged; the rest are counted.
const NAMES_SHOWN: usize = 8;

#[derive(Default)]
pub(super) struct Shutdown {
    /// The current level: running services not signalled yet.
    pending: Vec<usize>,
    /// The current level: services signalled, waited for before the next level.
    signalled: Vec<usize>,
    /// The levels after it, in order.
    later: VecDeque<Vec<usize>>,
    /// The last turn stopped at the batch size with work left that needs no wait.
    more_now: bool,
}

impl Shutdown {
    /// Whether this turn stopped at the batch size with services of the level still to
    /// signal: the loop then polls without sleeping.
    pub(super) fn has_batch_left(&self) -> bool {
        self.more_now
    }
}

impl Supervisor {
    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        info!("shutting down");
        self.abandon_reload();
        let depends: Vec<Vec<usize>> = self
            .units
            .iter()
            .map(|u| {
                let known = u.cfg.depends_on.iter();
                known.filter_map(|d| self.index.get(d).copied()).collect()
            })
            .collect();
        let ranks = deps::stop_ranks(&depends);
        let mut levels: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, rank) in ranks.into_iter().enumerate() {
            if self.units[i].svc.is_running() {
                levels.entry(rank).or_default().push(i);
            } else {
                self.stop(i, StopIntent::Shutdown);
            }
        }
        let mut order = Shutdown {
            later: levels.into_values().collect(),
            ..Shutdown::default()
        };
        if order.later.len() > 1 {
            info!("stopping in {} levels, dependents first", order.later.len());
        }
        order.pending = order.later.pop_front().unwrap_or_default();
        self.log_level(&order.pending);
        self.shutdown = Some(order);
        self.advance_shutdown();
    }

    /// Once a turn during a shutdown: services that are no longer running while they wait
    /// for their level are stopped now (an exit meanwhile must not lead to a restart),
    /// the next batch of the current level is signalled, and the next level begins once
    /// the current one has exited.
    pub(super) fn advance_shutdown(&mut self) {
        let Some(mut order) = self.shutdown.take() else {
            return;
        };
        for level in std::iter::once(&mut order.pending).chain(order.later.iter_mut()) {
            let mut i = 0;
            while i < level.len() {
                let u = level[i];
                if self.units[u].svc.is_running() {
                    i += 1;
                } else {
                    level.swap_remove(i);
                    self.stop(u, StopIntent::Shutdown);
                }
            }
        }
        let mut budget = STOP_BATCH;
        loop {
            while budget > 0 {
                let Some(u) = order.pending.pop() else { break };
                self.stop(u, StopIntent::Shutdown);
                order.signalled.push(u);
                budget -= 1;
            }
            let level_over = order.pending.is_empty()
                && order
                    .signalled
                    .iter()
                    .all(|&u| !self.units[u].svc.has_processes());
            if !level_over || budget == 0 {
                order.more_now =
                    !order.pending.is_empty() || (level_over && !order.later.is_empty());
                break;
            }
            match order.later.pop_front() {
                Some(next) => {
                    order.signalled.clear();
                    order.pending = next;
                    self.log_level(&order.pending);
                }
                None => {
                    order.more_now = false;
                    break;
                }
            }
        }
        self.shutdown = Some(order);
    }

    /// A second SIGTERM: whatever waits for its level is stopped now.
    pub(super) fn hurry_shutdown(&mut self) {
        let Some(order) = self.shutdown.take() else {
            return;
        };
        let waiting = order
            .pending
            .into_iter()
            .chain(order.later.into_iter().flatten());
        for u in waiting {
            self.stop(u, StopIntent::Shutdown);
        }
        self.shutdown = Some(Shutdown::default());
    }

    fn log_level(&self, level: &[usize]) {
        if level.is_empty() {
            return;
        }
        let mut names: Vec<&str> = level
            .iter()
            .take(NAMES_SHOWN)
            .map(|&u| self.units[u].cfg.name.as_str())
            .collect();
        names.sort_unstable();
        let more = match level.len().saturating_sub(NAMES_SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        info!("stopping {}{more}", names.join(", "));
    }
}

/// The end of the supervisor.
impl Supervisor {
    /// Whether the loop is done: a shutdown whose services are all gone, or (in the
    /// foreground) nothing that can ever run again.
    pub(super) fn finished(&self) -> bool {
        if self.reload.is_some() || self.loading.is_some() {
            return false;
        }
        // Hooks are bounded by their timeouts, so waiting for them cannot hang shutdown.
        if self.workers.running() > 0 {
            return false;
        }
        if self.shutting_down {
            return !self.units.iter().any(|u| u.svc.has_processes());
        }
        // Foreground: exit once nothing can ever run again.
        self.foreground
            && !self.units.iter().any(|u| u.svc.is_active() || u.is_cron())
            && self.waiters.is_empty()
    }

    /// The supervisor's last acts; returns its exit code.
    pub(super) fn finish(&mut self) -> i32 {
        self.sweep_escapees();
        self.close_tree();
        for pipe in &mut self.pipes {
            self.output.drain(pipe);
        }
        self.flush_clients();
        self.state_dirty = true;
        self.pids_dirty = true;
        self.last_flush = None;
        self.flush_state();
        self.persist.finish();
        let _ = std::fs::remove_file(self.paths.socket());
        let _ = std::fs::remove_file(self.paths.pid_file());
        // A lock file left behind reads as an update that crashed.
        let _ = std::fs::remove_file(self.paths.pid_json_lock());
        let code = if self.shutting_down && !self.pid1 {
            0
        } else {
            self.first_failure.unwrap_or(0)
        };
        info!("supervisor stopped (exit {code})");
        crate::terminal::flush(super::TERMINAL_FLUSH);
        code
    }
}
