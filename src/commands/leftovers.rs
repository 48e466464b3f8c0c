//! Service processes a crashed supervisor left running, found the way `start` finds them
//! before it starts anything (`supervisor::stop_leftovers`): the pid recorded in pid.json
//! when its kernel start time still matches state.json's record (so a reused pid is never
//! taken for ours), the members of its recorded process group, and every process that
//! carries the service's markers. Used by `stop` and `status` when no supervisor runs.

use crate::paths::Paths;
use crate::state::{PidFile, StateFile};
use std::collections::BTreeMap;

/// The markers every service process carries (set by the supervisor at spawn).
const MARKER_SERVICE: &str = "SYSG_SERVICE";
const MARKER_STATE_DIR: &str = "SYSG_STATE_DIR";

/// Live processes per service name, each list sorted; services without any are absent.
pub fn find(paths: &Paths) -> BTreeMap<String, Vec<i32>> {
    let pids = PidFile::read(paths);
    let state = StateFile::read(paths).unwrap_or_default();
    let alive = |pid: i32| crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z');
    let mut found: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (name, &pid) in &pids.services {
        let Some(rec) = state.services.get(name) else {
            continue;
        };
        let same =
            rec.start_ticks.is_some() && crate::procfs::start_time_ticks(pid) == rec.start_ticks;
        if !same || !alive(pid) {
            continue;
        }
        let list = found.entry(name.clone()).or_default();
        list.push(pid);
        if let Some(pgid) = rec.pgid {
            list.extend(
                crate::procfs::by_group(&[pgid])
                    .remove(&pgid)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| p.state != 'Z')
                    .map(|p| p.pid),
            );
        }
    }
    let mut names: Vec<&str> = pids.services.keys().map(String::as_str).collect();
    names.extend(state.services.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    let dir = paths.dir.to_string_lossy().into_owned();
    for pid in crate::procfs::marked_by_any((MARKER_STATE_DIR, &dir), MARKER_SERVICE, &names) {
        if let Some(name) = service_of(pid).filter(|_| alive(pid)) {
            found.entry(name).or_default().push(pid);
        }
    }
    for list in found.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    found.retain(|_, list| !list.is_empty());
    found
}

/// The value of `pid`'s service marker.
fn service_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARKER_SERVICE}=");
    env.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
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
