//! Service processes a crashed supervisor left running, found the way `start` finds them
//! before it starts anything (`supervisor::stop_leftovers`): the pid recorded in pid.json
//! when its kernel start time still matches state.json's record (so a reused pid is never
//! taken for ours), the members of its recorded process group, and every process that
//! carries the service's markers. Used by `stop` and `status` when no supervisor runs.

use crate::paths::Paths;
use std::collections::BTreeMap;

/// Live processes per service name, each list sorted; services without any are absent.
pub fn find(paths: &Paths) -> BTreeMap<String, Vec<i32>> {
    let mut found: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (name, pid) in crate::supervisor::find_leftovers(paths, &[]) {
        found.entry(name).or_default().push(pid);
    }
    found
}

/// The pid a crashed supervisor left in sysg.pid (nobody holds its lock any more).
pub fn crashed_supervisor(paths: &Paths) -> Option<i32> {
    if crate::state::supervisor_lock_held(paths) {
        return None;
    }
    crate::state::read_pid_file(paths)
}

/// "left running by a crashed supervisor (pid N)", for `status` and `stop`.
pub fn left_by(crashed: Option<i32>) -> String {
    match crashed {
        Some(pid) => format!("left running by a crashed supervisor (pid {pid})"),
        None => "left running by a crashed supervisor".to_string(),
    }
}

/// `web[123 124], db[200]`
pub fn describe(found: &BTreeMap<String, Vec<i32>>) -> String {
    found
        .iter()
        .map(|(name, pids)| {
            let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
            format!("{name}[{}]", pids.join(" "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
