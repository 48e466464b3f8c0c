//! The loop's side of cgroup containment (`crate::cgroup`): a fresh cgroup for each
//! instance, what is alive in one, killing one, and removing those that are empty. A
//! unit without cgroups is held by its process group and markers instead (`reaper`).

use super::Supervisor;
use crate::cgroup::{Leaf, Tree};
use crate::logger::{info, warning};
use std::io;
use std::time::{Duration, Instant};

/// The cgroups of one unit's instances.
#[derive(Debug, Default)]
pub struct Leaves {
    /// The live (or last) instance's.
    pub live: Option<Leaf>,
    /// The old instance's, during a rolling restart.
    pub retiring: Option<Leaf>,
    /// Instances over: removed once empty.
    pub spent: Vec<Leaf>,
    /// OOM kills in the live cgroup already reported.
    pub oom_seen: u64,
    /// The number of the last instance's cgroup: the next one's is higher.
    pub number: u64,
}

/// How long the supervisor waits, at the start and at the end, for killed processes
/// to leave their cgroups before removing them.
const EMPTY_WAIT: Duration = Duration::from_secs(2);

/// The cgroup tree of the supervisor for `state_dir`, when cgroups are in use (said in
/// supervisor.log either way). What a crashed predecessor left running in it is
/// killed: never two copies of a service.
/// Also says which containment is in use, for status.
pub(super) fn open_tree(state_dir: &std::path::Path) -> (Option<Tree>, String) {
    let containment = crate::cgroup::detect();
    let (tree, said) = match containment {
        crate::cgroup::Containment::Cgroup(host) => match Tree::open(host, state_dir) {
            Ok(tree) => {
                let said = format!(
                    "cgroup v2 ({}; controllers: {})",
                    tree.base.display(),
                    match tree.host.controllers.join(" ") {
                        c if c.is_empty() => "none".to_string(),
                        c => c,
                    }
                );
                (Some(tree), said)
            }
            Err(e) => (
                None,
                crate::cgroup::Containment::Groups(format!("cannot create a cgroup tree: {e}"))
                    .describe(),
            ),
        },
        other => (None, other.describe()),
    };
    info!("containment: {said}");
    (tree, said)
}

/// Kills whatever still runs in `tree` (a crashed supervisor's services), then removes
/// the empty cgroups.
pub(super) fn clear_tree(tree: &Tree) {
    let left: Vec<(Leaf, Vec<i32>)> = tree
        .leaves()
        .into_iter()
        .map(|l| {
            let pids = l.pids();
            (l, pids)
        })
        .filter(|(_, pids)| !pids.is_empty())
        .collect();
    for (leaf, pids) in &left {
        warning!(
            "killing {} leftover process(es) in {}: {pids:?}",
            pids.len(),
            leaf.shown
        );
        if let Err(e) = leaf.kill() {
            warning!("cannot kill {}: {e}", leaf.shown);
        }
    }
    wait_empty(left.iter().map(|(l, _)| l));
    tree.remove_empty(false);
}

fn wait_empty<'a>(leaves: impl Iterator<Item = &'a Leaf> + Clone) {
    let deadline = Instant::now() + EMPTY_WAIT;
    while Instant::now() < deadline && leaves.clone().any(|l| !l.pids().is_empty()) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Supervisor {
    /// A cgroup for the instance of unit `i` about to start (None without cgroups). The
    /// one before it is removed once empty, or, during a rolling restart, is the old
    /// instance's until that has gone.
    pub(super) fn new_leaf(&mut self, i: usize) -> io::Result<Option<Leaf>> {
        let Some(tree) = &self.cgroups else {
            return Ok(None);
        };
        let u = &mut self.units[i];
        let leaves = &mut u.leaves;
        let leaf = tree.new_leaf(&u.cfg.name, &u.cfg.cgroup_limits, leaves.number + 1)?;
        leaves.number = leaf
            .path
            .file_name()
            .and_then(|n| n.to_str()?.parse().ok())
            .unwrap_or(leaves.number + 1);
        if u.svc.retiring.is_some() && leaves.retiring.is_none() {
            leaves.retiring = leaves.live.take();
        }
        if let Some(old) = leaves.live.replace(leaf.clone()) {
            leaves.spent.push(old);
        }
        leaves.oom_seen = 0;
        Ok(Some(leaf))
    }

    /// The live processes of unit `i`'s instance, when it has a cgroup.
    pub(super) fn leaf_pids(&self, i: usize) -> Option<Vec<i32>> {
        self.units[i].leaves.live.as_ref().map(Leaf::pids)
    }

    /// Kills unit `i`'s instance's cgroup; whether it has one.
    pub(super) fn kill_leaf(&self, i: usize) -> bool {
        let Some(leaf) = &self.units[i].leaves.live else {
            return false;
        };
        if let Err(e) = leaf.kill() {
            warning!("{}: {e}", self.units[i].cfg.name);
        }
        true
    }

    /// `sig` to the processes of unit `i`'s old instance outside its group (SIGKILL:
    /// the whole cgroup).
    pub(super) fn signal_retiring_leaf(&self, i: usize, group: i32, sig: i32) {
        let Some(leaf) = &self.units[i].leaves.retiring else {
            return;
        };
        if sig == libc::SIGKILL {
            let _ = leaf.kill();
            return;
        }
        for pid in leaf.pids() {
            if crate::procfs::stat(pid).is_some_and(|s| s.pgid != group) {
                let _ = crate::sys::kill(pid, sig);
            }
        }
    }

    /// A rolling restart's old instance is gone (`done`) or is the instance again.
    pub(super) fn retiring_leaf_over(&mut self, i: usize, reinstated: bool) {
        let leaves = &mut self.units[i].leaves;
        let Some(old) = leaves.retiring.take() else {
            return;
        };
        if reinstated {
            if let Some(new) = leaves.live.replace(old) {
                leaves.spent.push(new);
            }
        } else {
            leaves.spent.push(old);
        }
    }

    /// Processes of unit `i`'s instance the OOM killer took since last asked
    /// (`memory.events`, where the memory controller is on).
    pub(super) fn oom_kills_since(&mut self, i: usize) -> u64 {
        let leaves = &mut self.units[i].leaves;
        let Some(now) = leaves.live.as_ref().and_then(Leaf::oom_kills) else {
            return 0;
        };
        let new = now.saturating_sub(leaves.oom_seen);
        leaves.oom_seen = now;
        new
    }

    /// Says that unit `i`'s instance ended with `n` OOM kills, in supervisor.log and in
    /// status.
    pub(super) fn note_oom(&mut self, i: usize, n: u64) {
        let u = &mut self.units[i];
        let limit = u
            .leaves
            .live
            .as_ref()
            .and_then(|l| l.limit("memory.max"))
            .map_or_else(String::new, |m| format!(" (memory.max {m} bytes)"));
        let why = format!("killed by the OOM killer{limit}");
        warning!("{}: {n} process(es) {why}", u.cfg.name);
        u.svc.reason = Some(why);
        self.state_dirty = true;
    }

    /// Removes the cgroups of instances that are over and empty.
    pub(super) fn remove_spent_leaves(&mut self) {
        for u in &mut self.units {
            let over = !u.svc.has_processes() && u.svc.retiring.is_none();
            if over && u.leaves.live.as_ref().is_some_and(|l| l.pids().is_empty()) {
                u.leaves.spent.extend(u.leaves.live.take());
            }
            u.leaves.spent.retain(|l| l.remove().is_err());
        }
    }

    /// At exit: kills what is left in the tree, removes it.
    pub(super) fn close_tree(&mut self) {
        let Some(tree) = self.cgroups.take() else {
            return;
        };
        let left: Vec<Leaf> = tree
            .leaves()
            .into_iter()
            .filter(|l| !l.pids().is_empty())
            .collect();
        if !left.is_empty() {
            warning!(
                "killing what is left in {} cgroup(s) after every service stopped",
                left.len()
            );
            for leaf in &left {
                let _ = leaf.kill();
            }
            wait_empty(left.iter());
        }
        tree.remove_empty(true);
    }
}
