//! The one reaper and the facts it gathers: every reaped pid routed to its owner (a
//! service's leader, its skip check, a worker's hook or probe, an orphan), and which
//! processes of a service are still alive — its group, and what carries its markers —
//! from the turn's `Survey`, shared by all services.

use super::children::Done;
use super::policy::ExitStatus;
use super::service::{self, Event};
use super::survey::{self, Census, Known};
use super::{Supervisor, MARKER_SERVICE, MARKER_STATE_DIR};
use crate::logger::{debug, warning};
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Children reaped in one loop turn at most: when thousands exit at once (a stop of every
/// service), the control socket is answered between batches instead of after them all.
const REAP_BATCH: usize = 128;

/// How long a census may serve the signals of later turns.
const RECENT_CENSUS: Duration = Duration::from_millis(500);

impl Supervisor {
    /// Reaps every exited child, then hands workers' results to the services and
    /// finishes stops whose processes are all gone.
    pub(super) fn reap(&mut self) {
        let mut reaped = Vec::new();
        while reaped.len() < REAP_BATCH {
            let Some((pid, ws)) = sys::reap_any() else {
                break;
            };
            let status = match ws {
                sys::WaitStatus::Exited(c) => ExitStatus::Code(c),
                sys::WaitStatus::Signaled(s) => ExitStatus::Signal(s),
            };
            reaped.push((pid, status));
        }
        // More may be waiting: the next turn polls without sleeping and reaps on, after
        // answering whoever asked meanwhile.
        self.reap_pending = reaped.len() == REAP_BATCH;
        self.survey.invalidate();
        if !reaped.is_empty() {
            let owners: HashMap<i32, (usize, bool)> = self
                .units
                .iter()
                .enumerate()
                .flat_map(|(i, u)| {
                    let leader = u.svc.live().map(|r| (r.pid, (i, false)));
                    let check = u.svc.check_pid().map(|p| (p, (i, true)));
                    leader.into_iter().chain(check)
                })
                .collect();
            let retired: HashMap<i32, usize> = self
                .units
                .iter()
                .enumerate()
                .filter_map(|(i, u)| u.svc.retiring_pid().map(|p| (p, i)))
                .collect();
            // Instances whose tree just lost a process (the leader, or one adopted
            // earlier): that process's children are ours now.
            let exited: Vec<usize> = reaped
                .iter()
                .filter_map(|(pid, _)| match owners.get(pid) {
                    // In a cgroup, nothing of an instance can stray.
                    Some(&(i, false)) if self.units[i].leaves.live.is_some() => None,
                    Some(&(i, false)) => Some(i),
                    Some(_) => None,
                    None => self
                        .units
                        .iter()
                        .position(|u| u.adopted.iter().any(|a| a.pid == *pid)),
                })
                .collect();
            self.adopt_strays(&exited);
            for (pid, status) in reaped {
                if let Some(&i) = retired.get(&pid) {
                    self.pids_dirty = true;
                    self.deliver(i, Event::RetiredExited { status });
                    self.retiring_leaf_over(i, false);
                    continue;
                }
                match owners.get(&pid) {
                    Some(&(i, true)) => self.deliver(i, Event::CheckExited { status }),
                    Some(&(i, false)) => {
                        self.pids_dirty = true;
                        if self.roll_addr_in_use(i) {
                            self.deliver(i, Event::AddressInUse);
                        }
                        let survivors = self.survivors(i);
                        let oom = self.oom_kills_since(i);
                        let started = self.units[i].svc.live().map(|r| r.started);
                        self.deliver(i, Event::LeaderExited { status, survivors });
                        self.note_exit(i, status, started);
                        if oom > 0 {
                            self.note_oom(i, oom);
                        }
                    }
                    None if self.workers.route_exit(pid, status) => {}
                    None => debug!("reaped orphan pid {pid} ({})", status.describe()),
                }
            }
        }
        for done in self.workers.collect() {
            match done {
                Done::Probe(r) => {
                    let ev = Event::ProbeResult {
                        healthy: r.healthy,
                        detail: r.detail,
                    };
                    self.deliver_current(r.unit, r.generation, ev);
                }
                Done::Config {
                    client,
                    result,
                    mode,
                } => self.on_config_loaded(client, result, mode),
                Done::PreStart(r) => {
                    let ev = Event::PreStartDone {
                        ok: r.ok,
                        detail: r.detail,
                    };
                    self.deliver_current(r.unit, r.generation, ev);
                }
                Done::Status { client, unsent } => match unsent {
                    Some(resp) => self.reply(client, &resp),
                    None => self.drop_client(client),
                },
                Done::UpgradeChecked {
                    client,
                    binary,
                    result,
                } => self.upgrade_checked(client, binary, result),
                Done::Hook(Some((service, run))) => self.note_hook_run(&service, run),
                Done::Hook(None) => {}
            }
        }
        for i in 0..self.units.len() {
            if self.units[i].svc.awaits_group() && self.survivors(i) == 0 {
                self.deliver(i, Event::GroupGone);
            }
        }
        self.remove_spent_leaves();
    }

    pub(super) fn known(&self) -> Known {
        let mut known = Known {
            leaders: HashSet::new(),
            groups: HashSet::new(),
            state_dir: self.state_dir_text.clone(),
            subreaper: self.subreaper,
        };
        for u in &self.units {
            known.leaders.extend(u.svc.live().map(|r| r.pid));
            // A rolling restart's old instance leads its own group.
            known.leaders.extend(u.svc.retiring_pid());
            known.groups.extend(u.svc.retiring_group());
            known.leaders.extend(u.svc.check_pid());
            known.groups.extend(u.svc.group());
            known.groups.extend(u.svc.check_pid());
            // Counted as adopted, not again as a marked orphan.
            known.leaders.extend(u.adopted.iter().map(|a| a.pid));
            known
                .groups
                .extend(u.adopted.iter().filter(|a| a.leads_group).map(|a| a.pid));
        }
        known
    }

    pub(super) fn census(&mut self) -> &Census {
        if self.survey.census.is_none() {
            let census = survey::take_census(&self.known());
            self.survey.census = Some(census);
        }
        self.survey.census.get_or_insert_with(Census::new)
    }

    /// Escaped processes of service `name` among our own children.
    fn orphans_of(&mut self, name: &str) -> usize {
        if self.survey.orphans.is_none() {
            let orphans = survey::take_orphans(&self.known());
            self.survey.orphans = Some(orphans);
        }
        self.survey
            .orphans
            .as_ref()
            .and_then(|o| o.get(name))
            .map_or(0, Vec::len)
    }

    /// How many processes of unit `i` are still alive, as the table's events need it:
    /// its group (one syscall when it is empty, the usual case) and its escapees. The
    /// group is checked before the escapees: a process leaving the group for us is seen
    /// in one place or the other, never in neither.
    pub(super) fn survivors(&mut self, i: usize) -> usize {
        if let Some(pids) = self.leaf_pids(i) {
            return pids.len();
        }
        // Asked when the leader has just been reaped: whether its group lives on.
        let group = self.group_of(i).filter(|&g| sys::group_exists(g));
        let members = match group {
            Some(pgid) => self.census().groups.get(&pgid).map_or(0, Vec::len),
            None => 0,
        };
        let name = self.units[i].cfg.name.clone();
        let escaped = if self.subreaper && self.children_listed {
            self.orphans_of(&name)
        } else {
            self.marked(i).len()
        };
        members + escaped + self.adopted_alive(i).len()
    }

    /// A worker's result for unit `i`, delivered only if the unit is still in the epoch
    /// the work was started in (a stop or a new instance since makes it moot).
    fn deliver_current(&mut self, i: usize, generation: u64, ev: Event) {
        if self.units.get(i).map(|u| u.svc.epoch) == Some(generation) {
            self.deliver(i, ev);
        }
    }

    /// The process group of unit `i`'s instance, while it may still have members: once
    /// seen empty after the leader exited, never again (the pgid may be reused).
    pub(super) fn group_of(&mut self, i: usize) -> Option<i32> {
        let u = &mut self.units[i];
        let group = u.svc.group().filter(|_| !u.group_empty)?;
        if u.svc.live().is_some() || sys::group_exists(group) {
            return Some(group);
        }
        u.group_empty = true;
        None
    }

    /// Every live process of unit `i` (its group and its marked escapees): what a kill
    /// deadline counts and kills.
    pub(super) fn leftovers(&mut self, i: usize) -> Vec<i32> {
        if let Some(pids) = self.leaf_pids(i) {
            return pids;
        }
        let group = self.group_of(i);
        let mut pids: Vec<i32> = match group {
            Some(pgid) => self
                .census()
                .groups
                .get(&pgid)
                .map(|g| g.iter().map(|p| p.pid).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        pids.extend(self.marked(i));
        pids.extend(self.adopted_alive(i));
        // A leader that left its group and dropped its markers is still ours to kill.
        if let Some(leader) = self.units[i].svc.live().map(|r| r.pid) {
            if survey::alive(leader) {
                pids.push(leader);
            }
        }
        // An adopted process may carry its markers too: each counts once.
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Live processes carrying unit `i`'s markers outside its group.
    pub(super) fn marked(&mut self, i: usize) -> Vec<i32> {
        let name = self.units[i].cfg.name.clone();
        let group = self.units[i].svc.group();
        if let Some(pids) = self.leaf_pids(i) {
            // In a cgroup: its processes outside the group, no markers needed.
            return pids
                .into_iter()
                .filter(|&p| crate::procfs::stat(p).is_some_and(|s| Some(s.pgid) != group))
                .collect();
        }
        self.census()
            .marked
            .get(&name)
            .map(|list| {
                list.iter()
                    .filter(|p| Some(p.pgid) != group)
                    .map(|p| p.pid)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `sig` to every marked process of unit `i` outside its group (the group itself is
    /// signalled as one).
    pub(super) fn signal_marked(&mut self, i: usize, sig: i32) {
        for pid in self.marked_to_signal(i) {
            let _ = sys::kill(pid, sig);
        }
    }

    /// `marked(i)` for a signal: without a census this turn, an earlier one younger than
    /// `RECENT_CENSUS` serves, each of its processes checked to be the same one still (a
    /// reused pid is never signalled). Escapees born since are found by the kill
    /// deadline's fresh count and the final sweep.
    fn marked_to_signal(&mut self, i: usize) -> Vec<i32> {
        if self.units[i].leaves.live.is_some() {
            return self.marked(i);
        }
        let fresh = self.survey.census.is_some();
        let recent = match &self.survey.recent {
            Some((taken, census)) if !fresh && taken.elapsed() < RECENT_CENSUS => census,
            _ => return self.marked(i),
        };
        let group = self.units[i].svc.group();
        recent
            .marked
            .get(&self.units[i].cfg.name)
            .into_iter()
            .flatten()
            .filter(|p| Some(p.pgid) != group)
            .filter(|p| {
                crate::procfs::stat(p.pid)
                    .is_some_and(|now| now.start_ticks == p.start_ticks && now.state != 'Z')
            })
            .map(|p| p.pid)
            .collect()
    }

    /// SIGKILL to unit `i`'s group and to every survivor.
    pub(super) fn kill_all(&mut self, i: usize) {
        if self.kill_leaf(i) {
            return;
        }
        let survivors = self.leftovers(i);
        if let Some(pgid) = self.group_of(i) {
            let _ = sys::killpg(pgid, libc::SIGKILL);
        }
        self.signal_adopted(i, libc::SIGKILL);
        for pid in survivors {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }

    /// A second SIGTERM during shutdown: no more grace for anyone.
    pub(super) fn kill_everything(&mut self) {
        self.hurry_shutdown();
        for i in 0..self.units.len() {
            if self.units[i].svc.stop_requested() {
                self.kill_all(i);
                let epoch = self.units[i].svc.epoch;
                self.timers.after(
                    service::KILL_RECHECK,
                    super::Timer::Unit(i, epoch, service::Timer::Recheck),
                );
            }
        }
    }

    /// Kills what is left once every service has stopped: descendants of hooks and
    /// health probes that left their process group (setsid, double fork) and outlived
    /// them, found by their markers, and any child of ours at all (a descendant that
    /// cleared its environment is still re-parented to us). These never outlive the
    /// supervisor. One pass over /proc.
    pub(super) fn sweep_escapees(&self) {
        let dir = self.state_dir_text.as_str();
        let names: Vec<&str> = self
            .units
            .iter()
            .map(|u| u.cfg.name.as_str())
            .chain(self.retired.iter().map(String::as_str))
            .collect();
        let mut left: Vec<i32> =
            crate::procfs::marked_by_any((MARKER_STATE_DIR, dir), MARKER_SERVICE, &names)
                .into_iter()
                .filter(|&pid| survey::alive(pid))
                .collect();
        for pid in crate::procfs::children_of_self() {
            if survey::alive(pid) && !left.contains(&pid) {
                left.push(pid);
            }
        }
        if left.is_empty() {
            return;
        }
        warning!(
            "killing {} process(es) left after every service stopped (escaped from a hook \
             or probe, or re-parented to us): {left:?}",
            left.len()
        );
        for pid in left {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }
}
