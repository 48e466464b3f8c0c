//! The one reaper and the facts it gathers: every reaped pid routed to its owner (a
//! service's leader, its skip check, a worker's hook or probe, an orphan), and which
//! processes of a service are still alive — its group, and what carries its markers.

use super::children::MARKER_AUX;
use super::policy::ExitStatus;
use super::service::{self, Event};
use super::{Supervisor, MARKER_SERVICE, MARKER_STATE_DIR};
use crate::logger::{debug, warning};
use crate::sys;

impl Supervisor {
    /// Reaps every exited child, then hands workers' results to the services and
    /// finishes stops whose processes are all gone.
    pub(super) fn reap(&mut self) {
        while let Some((pid, ws)) = sys::reap_any() {
            let status = match ws {
                sys::WaitStatus::Exited(c) => ExitStatus::Code(c),
                sys::WaitStatus::Signaled(s) => ExitStatus::Signal(s),
            };
            self.on_reaped(pid, status);
        }
        for r in self.workers.collect() {
            if self
                .units
                .get(r.unit)
                .is_some_and(|u| u.svc.epoch == r.generation)
            {
                let ev = Event::ProbeResult {
                    healthy: r.healthy,
                    detail: r.detail,
                };
                self.deliver(r.unit, ev);
            }
        }
        for i in 0..self.units.len() {
            if self.units[i].svc.awaits_group() && self.leftovers(i).is_empty() {
                self.deliver(i, Event::GroupGone);
            }
        }
    }

    fn on_reaped(&mut self, pid: i32, status: ExitStatus) {
        let owner = self.units.iter().position(|u| {
            u.svc.live().is_some_and(|r| r.pid == pid) || u.svc.check_pid() == Some(pid)
        });
        match owner {
            Some(i) if self.units[i].svc.check_pid() == Some(pid) => {
                self.deliver(i, Event::CheckExited { status });
            }
            Some(i) => {
                self.pids_dirty = true;
                let survivors = self.leftovers(i).len();
                self.deliver(i, Event::LeaderExited { status, survivors });
            }
            None if self.workers.route_exit(pid, status) => {}
            None => debug!("reaped orphan pid {pid} ({})", status.describe()),
        }
    }

    /// Processes of unit `i` still alive: members of its current group, and when a stop
    /// was requested, anything carrying its markers (escaped via setsid or a double
    /// fork). After an exit on its own only the group and our own children are checked:
    /// one syscall when the group is empty, which keeps a crash-restart cycle cheap;
    /// escaped processes are still found by the next stop.
    pub(super) fn leftovers(&self, i: usize) -> Vec<i32> {
        let u = &self.units[i];
        let mut pids = Vec::new();
        if let Some(pgid) = u.svc.group() {
            if sys::group_exists(pgid) {
                pids.extend(
                    crate::procfs::group_members(pgid)
                        .iter()
                        .filter(|p| p.state != 'Z')
                        .map(|p| p.pid),
                );
            }
        }
        if u.svc.stop_requested() || u.svc.group().is_none() {
            for pid in self.marked(i) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            return pids;
        }
        // Escaped descendants whose parent has died were re-parented to us: our own
        // children are few, so only those not known as someone's leader are read.
        let known = |pid: i32| {
            self.units.iter().any(|u| {
                u.svc.live().is_some_and(|r| r.pid == pid) || u.svc.check_pid() == Some(pid)
            })
        };
        let dir = self.paths.dir.to_string_lossy();
        let markers = [
            (MARKER_SERVICE, u.cfg.name.as_str()),
            (MARKER_STATE_DIR, &*dir),
        ];
        for pid in crate::procfs::children_of_self() {
            if !known(pid)
                && !pids.contains(&pid)
                && crate::procfs::environ_matches(pid, &markers, &[MARKER_AUX])
                && alive(pid)
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// Live processes carrying unit `i`'s markers, its skip check aside. One /proc pass.
    pub(super) fn marked(&self, i: usize) -> Vec<i32> {
        let dir = self.paths.dir.to_string_lossy();
        let check = self.units[i].svc.check_pid();
        let markers = [
            (MARKER_SERVICE, self.units[i].cfg.name.as_str()),
            (MARKER_STATE_DIR, &dir),
        ];
        // Hooks carry the service's markers too, but run on their own clock.
        crate::procfs::marked_processes(&markers, &[MARKER_AUX])
            .into_iter()
            .filter(|&pid| Some(pid) != check && alive(pid))
            .collect()
    }

    /// `sig` to every marked process of unit `i` outside its group (the group itself is
    /// signalled as one).
    pub(super) fn signal_marked(&self, i: usize, sig: i32) {
        let pgid = self.units[i].svc.group();
        for pid in self.marked(i) {
            if crate::procfs::stat(pid).map(|s| s.pgid) != pgid {
                let _ = sys::kill(pid, sig);
            }
        }
    }

    /// SIGKILL to unit `i`'s group and to every survivor.
    pub(super) fn kill_all(&mut self, i: usize) {
        let survivors = self.leftovers(i);
        if let Some(pgid) = self.units[i].svc.group() {
            let _ = sys::killpg(pgid, libc::SIGKILL);
        }
        for pid in survivors {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }

    /// A second SIGTERM during shutdown: no more grace for anyone.
    pub(super) fn kill_everything(&mut self) {
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

    /// Kills what is left carrying a service's markers once every service has stopped:
    /// descendants of hooks and health probes that left their process group (setsid,
    /// double fork) and outlived them. Their group died with them; these never outlive
    /// the supervisor. One pass over /proc.
    pub(super) fn sweep_escapees(&self) {
        let dir = self.paths.dir.to_string_lossy();
        let names: Vec<&str> = self
            .units
            .iter()
            .map(|u| u.cfg.name.as_str())
            .chain(self.retired.iter().map(String::as_str))
            .collect();
        let left: Vec<i32> =
            crate::procfs::marked_by_any((MARKER_STATE_DIR, &dir), MARKER_SERVICE, &names)
                .into_iter()
                .filter(|&pid| alive(pid))
                .collect();
        if left.is_empty() {
            return;
        }
        warning!(
            "killing {} process(es) still carrying a service's markers after every \
             service stopped (escaped from a hook or probe): {left:?}",
            left.len()
        );
        for pid in left {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }
}

/// Exists and is not a zombie.
fn alive(pid: i32) -> bool {
    crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}
