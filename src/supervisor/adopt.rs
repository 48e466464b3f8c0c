//! Processes that left an instance without a trace: a daemon that forks, calls `setsid`
//! and overwrites its own environment (nginx without `daemon off;` rewrites its title over
//! `/proc/PID/environ`, so the service markers are gone). As the subreaper we are given
//! such a process when its parent exits: it becomes our child, unknown to us. One that is
//! our child when an instance's leader is reaped, started after that leader and carries no
//! markers, is taken to be that instance's: it counts as a survivor, is signalled and
//! killed with the instance, its own process group too (a daemon's workers).
//!
//! Each adopted process is remembered with its kernel start time, and every use checks it
//! again, so a pid reused by an unrelated process is never signalled.

use super::children::MARKER_AUX;
use super::{Supervisor, MARKER_SERVICE, MARKER_STATE_DIR};
use crate::logger::info;
use crate::sys;
use std::collections::HashSet;

/// A process adopted by a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    pub pid: i32,
    pub start_ticks: u64,
    /// It leads a process group of its own (its workers are in it).
    pub leads_group: bool,
}

impl Adopted {
    /// `sig` to it, or to the group it leads.
    fn signal(&self, sig: i32) {
        let _ = if self.leads_group {
            sys::killpg(self.pid, sig)
        } else {
            sys::kill(self.pid, sig)
        };
    }

    /// Still the same process, and not a zombie.
    fn alive(&self) -> bool {
        crate::procfs::stat(self.pid)
            .is_some_and(|s| s.start_ticks == self.start_ticks && s.state != 'Z')
    }
}

impl Supervisor {
    /// After reaping: our children nobody knows of are given to the instances that just
    /// lost a process (`exited`, by unit: the leader, or an adopted one whose children
    /// came to us in turn), each to the latest one started before it.
    pub(super) fn adopt_strays(&mut self, exited: &[usize]) {
        if exited.is_empty() || !self.subreaper || !self.children_listed {
            return;
        }
        let known = self.known();
        let adopted: HashSet<i32> = self
            .units
            .iter()
            .flat_map(|u| u.adopted.iter().map(|a| a.pid))
            .collect();
        let claimed = |pid: i32| {
            known.leaders.contains(&pid) || adopted.contains(&pid) || self.workers.owns(pid)
        };
        let mut found = Vec::new();
        for pid in crate::procfs::children_of_self() {
            // A hook's or a probe's escapee is swept at exit, not taken for a service's.
            if claimed(pid) || crate::procfs::has_env_key(pid, MARKER_AUX) {
                continue;
            }
            let Some(st) = crate::procfs::stat(pid).filter(|s| s.state != 'Z') else {
                continue;
            };
            // Its markers, if it still has them, say whose it is (a daemon may be
            // overwriting them right now: read once, here).
            let marked = crate::procfs::marked_value(
                pid,
                (MARKER_STATE_DIR, known.state_dir.as_str()),
                MARKER_SERVICE,
                &[],
            );
            let owner = exited
                .iter()
                .copied()
                .filter(|&i| marked.as_ref().is_none_or(|m| *m == self.units[i].cfg.name))
                .filter_map(|i| Some((i, self.units[i].start_ticks?)))
                .filter(|&(_, started)| started <= st.start_ticks)
                .max_by_key(|&(_, started)| started)
                .map(|(i, _)| i);
            if let Some(i) = owner {
                found.push((i, st, marked.is_some()));
            }
        }
        for (i, st, marked) in found {
            let command = crate::procfs::cmdline(st.pid).unwrap_or_else(|| st.comm.clone());
            let how = if marked {
                "left the instance"
            } else {
                "left the instance without its markers"
            };
            info!(
                "{}: pid {} ({}) {how}; stopped with it",
                self.units[i].cfg.name,
                st.pid,
                crate::commands::status_view::escape_control(&command)
            );
            let adopted = Adopted {
                pid: st.pid,
                start_ticks: st.start_ticks,
                leads_group: st.pgid == st.pid,
            };
            self.units[i].adopted.push(adopted);
            // Adopted from an instance already being stopped: its signal is due now (a
            // running instance's exit is about to be handled, and signals it).
            if !self.units[i].svc.is_running() {
                adopted.signal(self.units[i].cfg.stop_signal);
            }
        }
    }

    /// Unit `i`'s adopted processes still alive (the dead are forgotten), with the members
    /// of the groups they lead.
    pub(super) fn adopted_alive(&mut self, i: usize) -> Vec<i32> {
        self.units[i].adopted.retain(Adopted::alive);
        let adopted = self.units[i].adopted.clone();
        let mut pids: Vec<i32> = adopted.iter().map(|a| a.pid).collect();
        for a in adopted.iter().filter(|a| a.leads_group) {
            if let Some(members) = self.census().groups.get(&a.pid) {
                pids.extend(members.iter().map(|p| p.pid).filter(|p| *p != a.pid));
            }
        }
        pids
    }

    /// `sig` to unit `i`'s adopted processes and the groups they lead.
    pub(super) fn signal_adopted(&mut self, i: usize, sig: i32) {
        self.units[i].adopted.retain(Adopted::alive);
        for a in &self.units[i].adopted {
            a.signal(sig);
        }
    }
}
