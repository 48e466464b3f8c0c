//! `sysg restart` without `-s`: the config is read and validated again off the loop (a
//! bad one is refused, nothing touched), then each service's effective spec is compared
//! with the one it runs (`plan`): unchanged ones are left alone (same pid, no hook),
//! changed ones restarted or updated in place, added ones started, removed ones stopped
//! and their death waited for. The reply is the plan, one line a service. `--dry-run`
//! only prints it; `--all` stops everything and starts it all again.
//!
//! Unit indices never change while the supervisor runs (timers, probe results and
//! waiters refer to them): an added service is appended, a removed one stays behind as
//! a hidden tombstone.

use super::children::{Done, Link};
use super::service::{Event, StopIntent};
use super::unit::Unit;
use super::Supervisor;
use super::{deps, plan};
use crate::config::{Config, Service};
use crate::ipc::Response;
use crate::logger::{info, warning};
use std::collections::{BTreeMap, VecDeque};

/// How a reload was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    pub dry_run: bool,
    pub all: bool,
}

/// A reload under way.
pub(super) struct Reloading {
    pub client: u64,
    /// `--all`: the config that replaces every service once all are gone.
    pub all: Option<Config>,
    /// Units being stopped (removed, or changed and restarted): the reply waits for them.
    waiting: Vec<usize>,
    /// Those not signalled yet, by level: dependents stop before what they depend on.
    levels: VecDeque<Vec<(usize, StopIntent)>>,
    /// The plan, sent once they are stopped.
    plan: Vec<String>,
}

impl Supervisor {
    pub(super) fn reload_request(
        &mut self,
        client: u64,
        path: Option<std::path::PathBuf>,
        mode: Mode,
    ) -> Option<Response> {
        if let Some(refused) = self.busy() {
            return Some(refused);
        }
        let path = path.unwrap_or_else(|| self.config.path.clone());
        // A huge or slow config is read and validated on a worker thread: status and
        // everything else keep being answered meanwhile.
        info!("reload: reading {}", path.display());
        let job = move |link: Link| {
            let result = crate::config::load_regular(&path).map_err(|e| e.to_string());
            link.report(Done::Config {
                client,
                result,
                mode,
            });
        };
        if let Err(e) = self.workers.start("config".into(), false, job) {
            return Some(Response::error(format!("cannot read the config: {e}")));
        }
        self.loading = Some(client);
        None
    }

    /// The reload's config is read: refused as a whole if it is bad (nothing touched),
    /// else planned and carried out.
    pub(super) fn on_config_loaded(
        &mut self,
        client: u64,
        result: Result<Config, String>,
        mode: Mode,
    ) {
        if self.loading != Some(client) {
            // Abandoned meanwhile (shutdown), and that client has had its answer.
            return;
        }
        self.loading = None;
        let config = match result {
            Ok(c) => c,
            Err(e) => return self.reply(client, &Response::error(e)),
        };
        if mode.all && !mode.dry_run {
            info!(
                "reloading: stopping all services, then starting from {}",
                config.path.display()
            );
            self.reload = Some(Reloading {
                client,
                all: Some(config),
                waiting: Vec::new(),
                levels: VecDeque::new(),
                plan: Vec::new(),
            });
            for i in 0..self.units.len() {
                self.stop(i, StopIntent::Shutdown);
            }
            self.maybe_finish_reload();
            return;
        }
        let steps = self.plan(&config);
        let lines: Vec<String> = steps.iter().map(|s| s.line()).collect();
        if mode.dry_run {
            return self.reply(client, &Response::ok(lines.join("\n")));
        }
        info!("reloading {}: {}", config.path.display(), lines.join("; "));
        let to_stop = self.carry_out(steps);
        let waiting = to_stop.iter().map(|&(i, _)| i).collect();
        let levels = self.stop_levels(to_stop);
        self.adopt_config(config);
        self.reload = Some(Reloading {
            client,
            all: None,
            waiting,
            levels,
            plan: lines,
        });
        self.maybe_finish_reload();
    }

    /// Whether `config` is what runs: no service added, removed or changed.
    pub(super) fn config_matches(&self, config: &Config) -> bool {
        self.plan(config).iter().all(|step| match step {
            Step::Keep(_, _, diff, _) => diff.is_empty(),
            _ => false,
        })
    }

    /// One step per service of the new config, then one per service it no longer has.
    fn plan(&self, config: &Config) -> Vec<Step> {
        let mut steps = Vec::new();
        for new in &config.services {
            let Some(&i) = self.index.get(&new.name) else {
                steps.push(Step::Add(new.clone()));
                continue;
            };
            let u = &self.units[i];
            let new_env = new.environment().unwrap_or_default();
            let old_env = match &u.spawned_env {
                Some(env) if u.svc.has_processes() => env.clone(),
                _ => u.cfg.environment().unwrap_or_default(),
            };
            let diff = plan::diff(&u.cfg, new, &old_env, &new_env);
            let stays_stopped = u.held;
            steps.push(Step::Keep(i, new.clone(), diff, stays_stopped));
        }
        for (i, u) in self.units.iter().enumerate() {
            if !u.removed && !config.services.iter().any(|s| s.name == u.cfg.name) {
                steps.push(Step::Remove(i, u.cfg.name.clone()));
            }
        }
        // A running service declared with `{ name: db, restart: true }` is restarted
        // after db when db is (and so on down the chain).
        loop {
            let restarted: Vec<String> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Keep(i, new, d, _)
                        if d.restarts() && self.units[*i].svc.has_processes() =>
                    {
                        Some(new.name.clone())
                    }
                    _ => None,
                })
                .collect();
            let mut changed = false;
            for step in &mut steps {
                if let Step::Keep(i, new, d, _) = step {
                    if d.restarts() || !self.units[*i].svc.has_processes() {
                        continue;
                    }
                    if let Some(dep) = new.restart_with.iter().find(|n| restarted.contains(n)) {
                        d.follows = Some(dep.clone());
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        steps
    }

    /// Carries out the plan but for the stops, which it returns (they go by level).
    fn carry_out(&mut self, steps: Vec<Step>) -> Vec<(usize, StopIntent)> {
        let mut waiting = Vec::new();
        for step in steps {
            match step {
                Step::Keep(_, _, diff, _) if diff.is_empty() => {}
                Step::Keep(i, new, diff, _) if !diff.restarts() => {
                    self.units[i].cfg = new;
                }
                Step::Keep(i, new, diff, _)
                    if new.deployment.rolling
                        && diff.follows.is_none()
                        && !self.units[i].held
                        && self.units[i].svc.can_roll() =>
                {
                    // Started beside the old instance, which stops once the new one is up.
                    self.begin_roll(i, Some(new));
                }
                Step::Keep(i, new, _, _) => {
                    let u = &mut self.units[i];
                    if u.held {
                        // Stopped by request: updated, and it stays stopped (a stop still
                        // under way takes the new spec up at its next start).
                        if u.svc.has_processes() {
                            u.pending_spec = Some(new);
                        } else {
                            u.cfg = new;
                        }
                    } else if u.svc.has_processes() {
                        // The old instance stops with its own spec; the new one starts
                        // with the new spec (taken up when it is scheduled).
                        u.pending_spec = Some(new);
                        // Started again once every stop of the reload is over, so it
                        // never starts against a dependency that is about to restart.
                        u.reload_hold = true;
                        waiting.push((i, StopIntent::Restart));
                    } else {
                        u.cfg = new;
                        self.deliver(i, Event::Start);
                    }
                }
                Step::Add(new) => {
                    let above = self.units.iter().map(|u| u.svc.epoch).max().unwrap_or(0) + 1;
                    let mut unit = Unit::new(new, Vec::new());
                    unit.svc.epoch = above;
                    self.index.insert(unit.cfg.name.clone(), self.units.len());
                    self.units.push(unit);
                }
                Step::Remove(i, _) => {
                    self.units[i].retiring = true;
                    waiting.push((i, StopIntent::Shutdown));
                }
            }
        }
        waiting
    }

    /// The reload's stops in reverse dependency order (among themselves: a dependent
    /// stops before what it depends on), as levels.
    fn stop_levels(&self, to_stop: Vec<(usize, StopIntent)>) -> VecDeque<Vec<(usize, StopIntent)>> {
        let local: std::collections::HashMap<&str, usize> = to_stop
            .iter()
            .enumerate()
            .map(|(k, &(i, _))| (self.units[i].cfg.name.as_str(), k))
            .collect();
        let depends: Vec<Vec<usize>> = to_stop
            .iter()
            .map(|&(i, _)| {
                let deps = self.units[i].cfg.depends_on.iter();
                deps.filter_map(|d| local.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut levels: BTreeMap<usize, Vec<(usize, StopIntent)>> = BTreeMap::new();
        for (step, rank) in to_stop.into_iter().zip(deps::stop_ranks(&depends)) {
            levels.entry(rank).or_default().push(step);
        }
        levels.into_values().collect()
    }

    /// The new config's root settings and file take over (services were updated one by
    /// one); its services' order is the order status shows them in.
    fn adopt_config(&mut self, config: Config) {
        self.config = config;
        self.apply_log_limits();
        self.arm_all_cron();
        self.write_config_hint();
        self.state_dirty = true;
        self.pids_dirty = true;
    }

    fn write_config_hint(&self) {
        if let Err(e) = crate::state::write_config_hint(&self.paths, &self.config.path) {
            warning!("cannot write config_hint: {e}");
        }
    }

    pub(super) fn abandon_reload(&mut self) {
        let loading = self.loading.take();
        let reloading = self.reload.take().map(|r| r.client);
        for client in loading.into_iter().chain(reloading) {
            self.reply(
                client,
                &Response::error("reload abandoned: the supervisor is shutting down"),
            );
        }
    }

    /// Once what the reload stops is gone, the reply goes out (and, for `--all`, the new
    /// config's services take the place of the old ones).
    pub(super) fn maybe_finish_reload(&mut self) {
        // The next level of stops once the one signalled before has exited.
        loop {
            let Some(r) = &self.reload else { return };
            let signalled = |i: &usize| !r.levels.iter().flatten().any(|(j, _)| j == i);
            let level_running = r
                .waiting
                .iter()
                .filter(|i| signalled(i))
                .any(|&i| self.units[i].svc.has_processes());
            if level_running {
                break;
            }
            let Some(level) = self.reload.as_mut().and_then(|r| r.levels.pop_front()) else {
                break;
            };
            for (i, intent) in level {
                self.stop(i, intent);
            }
        }
        let Some(r) = &self.reload else { return };
        let busy = match r.all {
            Some(_) => self.units.iter().any(|u| u.svc.has_processes()),
            None => r.waiting.iter().any(|&i| self.units[i].svc.has_processes()),
        };
        if busy {
            return;
        }
        let Some(r) = self.reload.take() else { return };
        match r.all {
            Some(config) => self.replace_all(config, r.client),
            None => {
                for i in r.waiting {
                    self.units[i].reload_hold = false;
                    if self.units[i].retiring {
                        self.retire(i);
                    }
                }
                // Started (or refused to start) now, so that the reply can say so.
                self.schedule();
                let failed: Vec<String> = self
                    .units
                    .iter()
                    .filter(|u| !u.removed)
                    .filter_map(|u| u.svc.spawn_error.clone())
                    .collect();
                self.await_up(r.client, r.plan.join("\n"), failed);
            }
        }
    }

    /// Services stopped by request before (a supervisor restart, a reload with --all)
    /// are stopped again before anything is scheduled.
    pub(super) fn hold_stopped(&mut self) {
        for i in 0..self.units.len() {
            if self.units[i].held {
                info!(
                    "{}: stays stopped (stopped by request)",
                    self.units[i].cfg.name
                );
                self.stop(i, StopIntent::Stop);
            }
        }
    }

    /// A removed service whose processes are gone: hidden from now on, its name free.
    fn retire(&mut self, i: usize) {
        let u = &mut self.units[i];
        u.retiring = false;
        u.removed = true;
        let name = u.cfg.name.clone();
        if self.index.get(&name) == Some(&i) {
            self.index.remove(&name);
        }
        self.output.retain(|n| n != name);
        if !self.retired.contains(&name) {
            self.retired.push(name);
        }
        self.state_dirty = true;
    }

    /// `--all`: every old service is gone; the new config's services take their place.
    fn replace_all(&mut self, config: Config, client: u64) {
        let names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        self.output.retain(|n| names.iter().any(|m| m == n));
        // Stops that ended with the old services are answered before they go.
        self.answer_waiters();
        // Timers and probe results of the old services are keyed by unit index and
        // epoch: the new ones start above every old epoch, so none of those can match.
        let above = self.units.iter().map(|u| u.svc.epoch).max().unwrap_or(0) + 1;
        let mut old: Vec<Unit> = std::mem::take(&mut self.units);
        for u in &old {
            if !names.contains(&u.cfg.name) && !self.retired.contains(&u.cfg.name) {
                self.retired.push(u.cfg.name.clone());
            }
        }
        let held: Vec<bool> = config
            .services
            .iter()
            .map(|svc| {
                old.iter()
                    .any(|u| u.cfg.name == svc.name && !u.removed && u.held)
            })
            .collect();
        self.units = config
            .services
            .iter()
            .map(|svc| {
                let history = old
                    .iter_mut()
                    .find(|u| u.cfg.name == svc.name && !u.removed)
                    .and_then(|u| u.cron.take())
                    .map(|c| c.history.into_iter().collect())
                    .unwrap_or_default();
                let mut unit = Unit::new(svc.clone(), history);
                unit.svc.epoch = above;
                unit
            })
            .collect();
        for (unit, held) in self.units.iter_mut().zip(&held) {
            unit.held = *held;
        }
        self.index = super::index_of(&self.units);
        self.hold_stopped();
        self.waiters.clear();
        self.settled.clear();
        self.first_failure = None;
        self.adopt_config(config);
        self.schedule();
        let n = self.units.len();
        self.await_up(client, format!("Restarted {n} services"), Vec::new());
    }
}

/// What a reload does to one service.
enum Step {
    /// In both configs: unchanged, updated in place, or restarted (per the diff); a
    /// service stopped by request is updated and stays stopped.
    Keep(usize, Service, plan::Diff, bool),
    Add(Service),
    Remove(usize, String),
}

impl Step {
    fn line(&self) -> String {
        match self {
            Step::Keep(_, s, d, _) if d.is_empty() => format!("{}: unchanged", s.name),
            Step::Keep(_, s, d, _) if d.restart.is_empty() && d.follows.is_some() => {
                let dep = d.follows.as_deref().unwrap_or_default();
                format!(
                    "{}: restarted after {dep} (depends_on restart: true)",
                    s.name
                )
            }
            Step::Keep(_, s, d, _) if d.restart.is_empty() => {
                format!("{}: changed ({}) -> applied in place", s.name, d.describe())
            }
            Step::Keep(_, s, d, true) => {
                format!(
                    "{}: changed ({}) -> updated, stays stopped",
                    s.name,
                    d.describe()
                )
            }
            Step::Keep(_, s, d, false) if s.deployment.rolling && d.follows.is_none() => {
                format!(
                    "{}: changed ({}) -> restarted (rolling)",
                    s.name,
                    d.describe()
                )
            }
            Step::Keep(_, s, d, false) => {
                format!("{}: changed ({}) -> restarted", s.name, d.describe())
            }
            Step::Add(s) => format!("{}: added -> started", s.name),
            Step::Remove(_, name) => format!("{name}: removed -> stopped"),
        }
    }
}
