//! What is still alive, gathered at most once per loop turn and shared by every service,
//! so that stopping N services costs O(N + processes), not a pass over /proc per service
//! per child exit.
//!
//! Two views, each built on first use in a turn:
//! - `orphans`: our own children that lead no instance and no skip check, by the service
//!   whose markers they carry. Cheap (our children file, one environ read per unknown
//!   child) and enough to find escapees once a group is empty: under a subreaper, the top
//!   of every escaped subtree whose parent died is our child.
//! - `census`: one pass over /proc (one stat each): the live members of every service's
//!   group, and the processes outside those groups that carry a service's markers (their
//!   environ is read only when they descend from us, or from anyone when we could not
//!   become a subreaper).

use crate::procfs::ProcStat;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

#[derive(Default)]
pub struct Survey {
    pub orphans: Option<HashMap<String, Vec<i32>>>,
    pub census: Option<Census>,
    /// The census of an earlier turn and when it was taken: signals sent over many turns
    /// (a stop of thousands of services, in batches) reuse it for a while instead of a
    /// pass over /proc each turn.
    pub recent: Option<(Instant, Census)>,
}

pub struct Census {
    pub taken: Instant,
    /// Live members of the groups asked about, by pgid.
    pub groups: HashMap<i32, Vec<ProcStat>>,
    /// Live processes outside those groups carrying a service's markers.
    pub marked: HashMap<String, Vec<ProcStat>>,
}

impl Census {
    pub fn new() -> Census {
        Census {
            taken: Instant::now(),
            groups: HashMap::new(),
            marked: HashMap::new(),
        }
    }

    /// Every live process of a service: its group's members and its marked escapees
    /// (a postgres whose backends each run in a session of their own), sorted by pid.
    pub fn of(&self, name: &str, group: Option<i32>) -> Vec<&ProcStat> {
        let members = group.and_then(|g| self.groups.get(&g));
        let mut all: Vec<&ProcStat> = members
            .into_iter()
            .flatten()
            .chain(self.marked.get(name).into_iter().flatten())
            .collect();
        all.sort_by_key(|p| p.pid);
        all.dedup_by_key(|p| p.pid);
        all
    }
}

/// What a survey needs to know of the supervisor.
pub struct Known {
    /// Pids leading an instance or a skip check, and those adopted (`adopt`).
    pub leaders: HashSet<i32>,
    /// Process groups of instances and checks.
    pub groups: HashSet<i32>,
    pub state_dir: String,
    pub subreaper: bool,
}

const MARKER_SERVICE: &str = super::MARKER_SERVICE;
const MARKER_STATE_DIR: &str = super::MARKER_STATE_DIR;
const MARKER_AUX: &str = super::children::MARKER_AUX;

impl Survey {
    /// Forget what was seen: processes may have come and gone since.
    pub fn invalidate(&mut self) {
        self.orphans = None;
        if let Some(census) = self.census.take() {
            self.recent = Some((census.taken, census));
        }
    }
}

/// Our direct children that nobody knows as a leader, by service marker.
pub fn take_orphans(known: &Known) -> HashMap<String, Vec<i32>> {
    let mut by_service: HashMap<String, Vec<i32>> = HashMap::new();
    for pid in crate::procfs::children_of_self() {
        if known.leaders.contains(&pid) || !alive(pid) {
            continue;
        }
        if let Some(name) = service_of(pid, known) {
            by_service.entry(name).or_default().push(pid);
        }
    }
    by_service
}

/// One pass over /proc.
pub fn take_census(known: &Known) -> Census {
    let me = crate::sys::getpid();
    let stats = crate::procfs::all_stats();
    let parent: HashMap<i32, i32> = stats.iter().map(|s| (s.pid, s.ppid)).collect();
    let mut ours: HashMap<i32, bool> = HashMap::new();
    let mut census = Census::new();
    for st in stats {
        if st.state == 'Z' || st.pid == me {
            continue;
        }
        if known.groups.contains(&st.pgid) {
            census.groups.entry(st.pgid).or_default().push(st);
            continue;
        }
        if known.subreaper && !descends_from(st.pid, me, &parent, &mut ours) {
            continue;
        }
        if let Some(name) = service_of(st.pid, known) {
            census.marked.entry(name).or_default().push(st);
        }
    }
    census
}

/// The service whose markers `pid` carries (hooks and probes, which carry them too,
/// excepted).
fn service_of(pid: i32, known: &Known) -> Option<String> {
    crate::procfs::marked_value(
        pid,
        (MARKER_STATE_DIR, known.state_dir.as_str()),
        MARKER_SERVICE,
        &[MARKER_AUX],
    )
}

/// Whether `pid` has `root` among its ancestors (memoized along the way).
fn descends_from(
    pid: i32,
    root: i32,
    parent: &HashMap<i32, i32>,
    memo: &mut HashMap<i32, bool>,
) -> bool {
    let mut chain = Vec::new();
    let mut at = pid;
    let found = loop {
        if let Some(&known) = memo.get(&at) {
            break known;
        }
        match parent.get(&at) {
            Some(&p) if p == root => break true,
            Some(&p) if p > 1 && chain.len() < 4096 => {
                chain.push(at);
                at = p;
            }
            // A parent that vanished during the pass (it exited, and its child may be
            // ours by now): counted as ours, so an escapee is never overlooked.
            None if at != pid => break true,
            _ => break false,
        }
    };
    memo.insert(at, found);
    for p in chain {
        memo.insert(p, found);
    }
    found
}

/// Exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z')
}
