//! Read-only helpers over `/proc`: what a process is, which group it belongs to, what it
//! costs. Every call reads the files afresh (no caching, no background sampling), so a
//! process can vanish between two calls: everything returns `Option` or skips it.

use crate::ipc::ProcessInfo;
#[cfg(test)]
use std::collections::HashSet;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Longest command line kept for display; the rest is replaced by `...`.
const CMDLINE_MAX_CHARS: usize = 200;

/// The fields of `/proc/<pid>/stat` that sysg uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// Executable name as the kernel keeps it (at most 15 bytes), shown for zombies and
    /// kernel threads, which have no command line.
    pub comm: String,
    pub ppid: i32,
    pub pgid: i32,
    pub state: char,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u32,
    pub start_ticks: u64,
    pub rss_pages: u64,
}

/// Figures summed over a set of processes, for `status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSnapshot {
    pub rss_bytes: u64,
    pub cpu_s: f64,
    pub tasks: u32,
    /// In the order of the pids asked for; `status` arranges them as a tree.
    pub processes: Vec<ProcessInfo>,
}

pub fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let raw = read_proc_file(&format!("/proc/{pid}/stat"), false)?;
    let text = String::from_utf8(raw).ok()?;
    parse_stat(&text)
}

/// Parses one `/proc/<pid>/stat` line. `comm` may hold spaces and `)` (a process can name
/// itself anything), so the fields after it start at the *last* `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    // Field 3 (state) is index 0 here; field k is index k - 3.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |k: usize| rest.get(k - 3).copied();
    let num = |k: usize| field(k).and_then(|s| s.parse::<u64>().ok());
    let int = |k: usize| field(k).and_then(|s| s.parse::<i32>().ok());
    Some(ProcStat {
        pid,
        comm,
        state: field(3)?.chars().next()?,
        ppid: int(4)?,
        pgid: int(5)?,
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        num_threads: num(20)?.try_into().ok()?,
        start_ticks: num(22)?,
        // rss is signed in the kernel's format; a negative value would be a kernel bug.
        rss_pages: field(24)?.parse::<i64>().ok()?.max(0) as u64,
    })
}

/// Start time in clock ticks after boot (stat field 22). Together with the pid it
/// identifies a process: a reused pid has a later start time.
pub fn start_time_ticks(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_ticks)
}

/// The command line with its NUL separators turned into spaces, at most ~200 chars.
/// None for kernel threads and zombies (empty cmdline) and for processes that are gone.
pub fn cmdline(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    let raw = read_proc_file(&format!("/proc/{pid}/cmdline"), false)?;
    let joined: String = String::from_utf8_lossy(&raw).replace('\0', " ");
    let trimmed = joined.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() > CMDLINE_MAX_CHARS {
        let cut: String = trimmed.chars().take(CMDLINE_MAX_CHARS - 3).collect();
        return Some(format!("{cut}..."));
    }
    Some(trimmed.to_string())
}

/// Whether the process's initial environment has a `key=` entry at all; unreadable ones
/// (other users' processes, vanished pids) count as "no".
pub fn has_env_key(pid: i32, key: &str) -> bool {
    with_environ(pid, |env| env_values(env, key).next().is_some())
}

/// Whether the process's initial environment holds exactly `KEY=value`. Unreadable
/// environments (other users' processes, vanished pids) count as "no".
#[cfg(test)]
pub fn environ_has(pid: i32, key: &str, value: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    let Some(raw) = read_proc_file(&format!("/proc/{pid}/environ"), true) else {
        return false;
    };
    let wanted = format!("{key}={value}");
    raw.split(|b| *b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// The whole of a small /proc file. `fs::read` also stats the file for a size hint
/// (always 0 here) and reads once more to see the end; a status of 2,000 services reads
/// thousands of these, so the first read goes into a buffer that usually holds it all.
/// With `whole`, it reads on to the end whatever the first read returned (environ, where
/// a short read would hide the markers at its end).
fn read_proc_file(path: &str, whole: bool) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut file = fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() && !whole {
                    // procfs hands over a stat record in one read when it fits.
                    break;
                }
                if len == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    Some(buf)
}

/// Every pid currently listed in `/proc`, in directory order.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .collect()
}

/// Every live process (except this one) whose environment holds `marker` and, for `key`,
/// one of `values`, sorted by pid: the processes of many services in one pass.
pub fn marked_by_any(marker: (&str, &str), key: &str, values: &[&str]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            with_environ(pid, |env| {
                env_values(env, marker.0).any(|v| v == marker.1.as_bytes())
                    && env_values(env, key).any(|v| values.iter().any(|w| w.as_bytes() == v))
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The value of `key` in `pid`'s initial environment, if that environment holds `marker`
/// and none of the `unless` keys: which service a process belongs to, in one read.
pub fn marked_value(pid: i32, marker: (&str, &str), key: &str, unless: &[&str]) -> Option<String> {
    let raw = read_proc_file(&format!("/proc/{pid}/environ"), true)?;
    let entries: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let marked = env_values(&entries, marker.0).any(|v| v == marker.1.as_bytes());
    if !marked
        || unless
            .iter()
            .any(|k| env_values(&entries, k).next().is_some())
    {
        return None;
    }
    let value = env_values(&entries, key).next()?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// Every process in `/proc` (this one included), one stat read each.
pub fn all_stats() -> Vec<ProcStat> {
    let pids = all_pids();
    let mut out: Vec<Option<ProcStat>> = vec![None; pids.len()];
    for_each_spread(&mut out, |i, slot| *slot = stat(pids[i]));
    out.into_iter().flatten().collect()
}

/// Below this many items, [`for_each_spread`] stays on the calling thread.
const SPREAD_MIN: usize = 256;

/// Runs `f(index, item)` on every item, on up to four threads when there are many: a
/// /proc pass is a few thousand small reads, each a system call that waits on the kernel,
/// and on a machine with 2,000 processes it is most of what a `status` costs.
pub fn for_each_spread<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    // Asked once: the answer reads cgroup files.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    });
    if items.len() < SPREAD_MIN || threads < 2 {
        items.iter_mut().enumerate().for_each(|(i, t)| f(i, t));
        return;
    }
    // More chunks than threads, taken in turn, so a slow chunk does not hold the rest; a
    // thread that cannot be created leaves its chunks to the others and to this one.
    let chunk = items.len().div_ceil(threads * 4);
    let parts: Vec<Mutex<&mut [T]>> = items.chunks_mut(chunk).map(Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        let Some(part) = parts.get(c) else { break };
        let mut part = part.lock().unwrap_or_else(|e| e.into_inner());
        for (j, t) in part.iter_mut().enumerate() {
            f(c * chunk + j, t);
        }
    };
    let work = &work;
    std::thread::scope(|scope| {
        for _ in 1..threads {
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
}

/// `test` on the `KEY=value` entries of `pid`'s initial environment; false if unreadable.
fn with_environ(pid: i32, test: impl FnOnce(&[&[u8]]) -> bool) -> bool {
    let Some(raw) = read_proc_file(&format!("/proc/{pid}/environ"), true) else {
        return false;
    };
    let entries: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    test(&entries)
}

/// The values of every `key=` entry: a duplicated key matches on any of its copies, since
/// which one a program sees depends on the program.
fn env_values<'a, 'k>(
    entries: &'k [&'a [u8]],
    key: &'k str,
) -> impl Iterator<Item = &'a [u8]> + 'k {
    let key = key.as_bytes();
    entries
        .iter()
        .filter(move |e| e.len() > key.len() && e.starts_with(key) && e[key.len()] == b'=')
        .map(move |e| &e[key.len() + 1..])
}

/// Whether the kernel offers `/proc/<pid>/task/<tid>/children` (CONFIG_PROC_CHILDREN).
pub fn children_listed() -> bool {
    let tid = std::process::id();
    fs::metadata(format!("/proc/self/task/{tid}/children")).is_ok()
}

/// This process's direct children (every thread's), e.g. orphans adopted as subreaper.
/// Empty if the kernel does not offer /proc/.../children.
pub fn children_of_self() -> Vec<i32> {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = tasks
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Memory, CPU time and threads summed over `pids` (those still alive), and what each
/// process is.
#[cfg(test)]
pub fn snapshot(pids: &[i32]) -> GroupSnapshot {
    let mut seen = HashSet::new();
    let stats: Vec<ProcStat> = pids
        .iter()
        .filter(|pid| seen.insert(**pid))
        .filter_map(|pid| stat(*pid))
        .collect();
    summarize(&stats)
}

/// `snapshot` of processes already read (e.g. by a census): no second stat read.
pub fn summarize(stats: &[ProcStat]) -> GroupSnapshot {
    let page = crate::sys::page_size();
    let ticks = crate::sys::clock_ticks().max(1) as f64;
    let mut snap = GroupSnapshot::default();
    for st in stats {
        snap.rss_bytes = snap
            .rss_bytes
            .saturating_add(st.rss_pages.saturating_mul(page));
        snap.cpu_s += (st.utime_ticks + st.stime_ticks) as f64 / ticks;
        snap.tasks = snap.tasks.saturating_add(st.num_threads);
    }
    snap.processes = stats
        .iter()
        .map(|st| ProcessInfo {
            pid: st.pid,
            ppid: st.ppid,
            command: cmdline(st.pid).unwrap_or_else(|| format!("[{}]", st.comm)),
        })
        .collect();
    snap
}

/// Boot time as Unix seconds (`btime` in `/proc/stat`), read once: it does not change.
pub fn boot_time_secs() -> Option<u64> {
    static BTIME: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BTIME.get_or_init(|| {
        let text = fs::read_to_string("/proc/stat").ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// When the process started, as Unix seconds with sub-second precision (tick-granular).
#[cfg(test)]
pub fn process_start_unix(pid: i32) -> Option<f64> {
    start_unix_from_ticks(start_time_ticks(pid)?)
}

/// A kernel start time (ticks since boot) as Unix seconds.
pub fn start_unix_from_ticks(ticks: u64) -> Option<f64> {
    let btime = boot_time_secs()?;
    Some(btime as f64 + ticks as f64 / crate::sys::clock_ticks().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    struct Reaped(Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper(marker: &str) -> Reaped {
        let child = Command::new("sleep")
            .arg("30")
            .env("SYSG_SERVICE", marker)
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        // exec may not have happened yet: wait until the cmdline is sleep's.
        for _ in 0..200 {
            if cmdline(pid).is_some_and(|c| c.starts_with("sleep")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Reaped(child)
    }

    fn me() -> i32 {
        std::process::id() as i32
    }

    #[test]
    fn parse_stat_splits_at_the_last_paren() {
        let line = "1234 ((a) b)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 \
                    5 0 98765 12345678 321 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1\n";
        let st = parse_stat(line).expect("parses");
        assert_eq!(st.pid, 1234);
        assert_eq!(st.comm, "(a) b)");
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.pgid, 1234);
        assert_eq!(st.utime_ticks, 7);
        assert_eq!(st.stime_ticks, 3);
        assert_eq!(st.num_threads, 5);
        assert_eq!(st.start_ticks, 98765);
        assert_eq!(st.rss_pages, 321);
    }

    #[test]
    fn parse_stat_rejects_garbage() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("12 x) S (1 2"), None);
    }

    #[test]
    fn stat_of_self_matches_this_process() {
        let st = stat(me()).expect("own stat");
        assert_eq!(st.pid, me());
        assert!(st.num_threads >= 1);
        assert!(st.rss_pages > 0);
        assert!(matches!(st.state, 'R' | 'S' | 'D'));
        assert_eq!(start_time_ticks(me()), Some(st.start_ticks));
        assert!(stat(0).is_none() && stat(-5).is_none());
    }

    #[test]
    fn cmdline_of_self_and_children() {
        let own = cmdline(me()).expect("own cmdline");
        assert!(!own.contains('\0'));
        assert!(own.chars().count() <= CMDLINE_MAX_CHARS);
        let child = sleeper("procfs-cmdline-test");
        assert_eq!(cmdline(child.0.id() as i32).as_deref(), Some("sleep 30"));
        assert_eq!(cmdline(i32::MAX), None);
    }

    #[test]
    fn child_is_found_by_group_marker_and_parent() {
        let marker = format!("procfs-test-{}", me());
        let child = sleeper(&marker);
        let pid = child.0.id() as i32;
        let st = stat(pid).expect("child stat");
        assert_eq!(st.ppid, me());
        assert_eq!(st.pgid, pid);
        // Where the kernel lists children, our child is among them.
        assert!(!children_listed() || children_of_self().contains(&pid));
        assert!(environ_has(pid, "SYSG_SERVICE", &marker));
        assert!(!environ_has(pid, "SYSG_SERVICE", "other"));
        assert!(!environ_has(pid, "SYSG_SERVIC", &marker));
        assert!(all_pids().contains(&pid));
        let members: Vec<ProcStat> = all_stats().into_iter().filter(|s| s.pgid == pid).collect();
        assert_eq!(members.iter().map(|m| m.pid).collect::<Vec<_>>(), vec![pid]);
        assert!(all_stats().iter().any(|s| s.pid == pid));
        assert_eq!(
            marked_value(pid, ("SYSG_SERVICE", &marker), "SYSG_SERVICE", &[]),
            Some(marker.clone())
        );
        assert_eq!(
            marked_value(
                pid,
                ("SYSG_SERVICE", &marker),
                "SYSG_SERVICE",
                &["SYSG_SERVICE"]
            ),
            None
        );
        assert_eq!(
            marked_value(pid, ("SYSG_SERVICE", "other"), "SYSG_SERVICE", &[]),
            None
        );
        assert_eq!(marked_value(pid, ("SYSG_SERVICE", &marker), "X", &[]), None);
        // One pass for several names: the marker must match and the key be one of them.
        let dir = format!("/state/{marker}");
        assert!(
            marked_by_any(("SYSG_SERVICE", &marker), "SYSG_SERVICE", &["a", &marker])
                .contains(&pid)
        );
        assert!(
            !marked_by_any(("SYSG_SERVICE", &marker), "SYSG_SERVICE", &["a", "b"]).contains(&pid)
        );
        assert!(
            !marked_by_any(("SYSG_STATE_DIR", &dir), "SYSG_SERVICE", &[&marker]).contains(&pid)
        );
        assert!(!marked_by_any(("SYSG_SERVICE", &marker), "SYSG_HOOK", &[&marker]).contains(&pid));
    }

    #[test]
    fn snapshot_sums_over_each_live_process_once() {
        let child = sleeper("procfs-snapshot-test");
        let pid = child.0.id() as i32;
        let snap = snapshot(&[pid, me(), pid, i32::MAX]);
        assert_eq!(snap.processes.len(), 2);
        assert_eq!(snap.processes[0].pid, pid);
        assert_eq!(snap.processes[0].ppid, me());
        assert_eq!(snap.processes[0].command, "sleep 30");
        assert_eq!(snap.processes[1].pid, me());
        assert!(snap.tasks >= 2);
        assert!(snap.rss_bytes >= 2 * crate::sys::page_size());
        assert!(snap.cpu_s >= 0.0);
    }

    #[test]
    fn start_time_is_after_boot_and_not_in_the_future() {
        let boot = boot_time_secs().expect("btime");
        let start = process_start_unix(me()).expect("start");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        assert!(start >= boot as f64);
        assert!(start <= now + 1.0, "start {start} now {now}");
    }
}
