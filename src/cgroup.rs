//! cgroup v2 containment: each service instance in a cgroup of its own, below one tree
//! per supervisor (`<own cgroup>/sysg.<hash of the state dir>/<name>.service/<n>`).
//! A process cannot leave its cgroup (setsid, a cleared environment and a double fork
//! all stay inside), so a stop ends with one write to `cgroup.kill`, survivors are the
//! lines of `cgroup.procs`, and CPU is the kernel's own count (`cpu.stat`), children
//! included. Memory, pids and CPU limits use the controllers the supervisor's cgroup
//! hands down; which ones that is, is checked when the config is loaded.
//!
//! Used when a cgroup2 file system is mounted (at `/sys/fs/cgroup`, or in the hybrid
//! layout at `/sys/fs/cgroup/unified`) and the supervisor may create cgroups below its
//! own: as root, or in a delegated subtree it owns. `SYSG_CGROUP=off` turns it off.
//! Otherwise services are held by their process group and markers, as before.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `SYSG_CGROUP=off` (or `0`, `no`, `false`): never use cgroups.
pub const SWITCH_ENV: &str = "SYSG_CGROUP";

/// Where the supervisor can make cgroups, and what it can limit there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The cgroup2 mount point.
    pub mount: PathBuf,
    /// The supervisor's own cgroup, as a directory.
    pub own: PathBuf,
    /// Controllers the own cgroup may hand down (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// What holds a service's processes together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    Cgroup(Host),
    /// Process groups, the subreaper and markers; why cgroups are not used.
    Groups(String),
}

impl Containment {
    /// One line for status and supervisor.log.
    pub fn describe(&self) -> String {
        match self {
            Containment::Cgroup(h) => format!(
                "cgroup v2 below {} (controllers: {})",
                h.own.display(),
                if h.controllers.is_empty() {
                    "none".to_string()
                } else {
                    h.controllers.join(" ")
                }
            ),
            Containment::Groups(why) => format!("process groups and markers ({why})"),
        }
    }
}

/// Which containment this process would use.
pub fn detect() -> Containment {
    match detect_host() {
        Ok(h) => Containment::Cgroup(h),
        Err(why) => Containment::Groups(why),
    }
}

fn detect_host() -> Result<Host, String> {
    if let Ok(v) = std::env::var(SWITCH_ENV) {
        if matches!(v.trim(), "off" | "0" | "no" | "false") {
            return Err(format!("turned off by {SWITCH_ENV}={v}"));
        }
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let (root, mount, read_only) =
        cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
    if read_only {
        return Err(format!("{} is mounted read-only", mount.display()));
    }
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own_path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 hierarchy")?;
    let rel = own_path
        .strip_prefix(root.as_str())
        .unwrap_or(own_path)
        .trim_start_matches('/');
    if own_path.contains("(deleted)") {
        return Err("the supervisor's cgroup was removed".into());
    }
    let own = mount.join(rel);
    writable(&own)?;
    let controllers = fs::read_to_string(own.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read {}/cgroup.controllers: {e}", own.display()))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok(Host {
        mount,
        own,
        controllers,
    })
}

/// The first cgroup2 mount in `mountinfo`: (its root within the hierarchy, where it is
/// mounted, whether read-only).
fn cgroup2_mount(mountinfo: &str) -> Option<(String, PathBuf, bool)> {
    mountinfo.lines().find_map(|line| {
        let (head, tail) = line.split_once(" - ")?;
        if tail.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = head.split_whitespace().collect();
        let read_only = f.get(5)?.split(',').any(|o| o == "ro");
        Some((f.get(3)?.to_string(), PathBuf::from(f.get(4)?), read_only))
    })
}

/// Whether we may create cgroups in `dir` and move processes there: root may; anyone
/// else only in a subtree delegated to them (they own it and its `cgroup.procs`).
fn writable(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let euid = crate::sys::geteuid();
    for path in [dir.to_path_buf(), dir.join("cgroup.procs")] {
        let meta =
            fs::metadata(&path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        if euid != 0 && (meta.uid() != euid || meta.mode() & 0o200 == 0) {
            return Err(format!("{} is not delegated to uid {euid}", path.display()));
        }
    }
    Ok(())
}

/// `limits:` that need a cgroup controller. `u64::MAX` stands for `max` (no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `memory.max` in bytes.
    pub memory: Option<u64>,
    /// `memory.high` in bytes.
    pub memory_high: Option<u64>,
    /// `cpu.max` as a share of one CPU, in percent (150: one and a half CPUs).
    pub cpu_percent: Option<u32>,
    /// `pids.max`.
    pub pids: Option<u64>,
}

/// The period `cpu.max` is given for.
const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// (config key, controller) of each limit set.
    pub fn needs(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.memory.is_some() {
            out.push(("memory", "memory"));
        }
        if self.memory_high.is_some() {
            out.push(("memory_high", "memory"));
        }
        if self.cpu_percent.is_some() {
            out.push(("cpu", "cpu"));
        }
        if self.pids.is_some() {
            out.push(("pids", "pids"));
        }
        out
    }

    /// (interface file, value) for each limit set.
    fn files(&self) -> Vec<(&'static str, String)> {
        let bytes = |v: u64| {
            if v == u64::MAX {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        let mut out = Vec::new();
        if let Some(v) = self.memory {
            out.push(("memory.max", bytes(v)));
        }
        if let Some(v) = self.memory_high {
            out.push(("memory.high", bytes(v)));
        }
        if let Some(p) = self.cpu_percent {
            let quota = u64::from(p) * CPU_PERIOD_US / 100;
            out.push(("cpu.max", format!("{} {CPU_PERIOD_US}", quota.max(1000))));
        }
        if let Some(v) = self.pids {
            out.push(("pids.max", bytes(v)));
        }
        out
    }

    fn controllers(&self) -> Vec<&'static str> {
        let mut c: Vec<&'static str> = self.needs().into_iter().map(|n| n.1).collect();
        c.dedup();
        c
    }
}

/// The cgroups of one supervisor: `<own>/sysg.<hash>`.
#[derive(Debug, Clone)]
pub struct Tree {
    pub host: Host,
    pub base: PathBuf,
}

/// The name of the tree for `state_dir`: the same dir always gives the same name, so a
/// supervisor started after a crash finds what its predecessor left.
pub fn tree_name(state_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_dir.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sysg.{:012x}", h & 0xffff_ffff_ffff)
}

impl Tree {
    /// The tree for `state_dir` in `host`, created if missing.
    pub fn open(host: Host, state_dir: &Path) -> io::Result<Tree> {
        let base = host.own.join(tree_name(state_dir));
        make_dir(&base)?;
        Ok(Tree { host, base })
    }

    /// A fresh cgroup for the next instance of service `name`, with `limits` applied,
    /// numbered `at_least` or the next free number above it.
    pub fn new_leaf(&self, name: &str, limits: &Limits, at_least: u64) -> io::Result<Leaf> {
        let service = self.base.join(format!("{name}.service"));
        // The tree too, should it have been removed from outside while empty.
        fs::create_dir_all(&service).map_err(|e| context(e, &service))?;
        let controllers = limits.controllers();
        if !controllers.is_empty() {
            // Each level hands the controllers down to the next.
            for dir in [&self.host.own, &self.base, &service] {
                enable(dir, &controllers)?;
            }
        }
        let mut n = at_least.max(1);
        let mut remade = false;
        let path = loop {
            let path = service.join(n.to_string());
            match fs::create_dir(&path) {
                Ok(()) => break path,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                // Its directory removed from outside just now: once more.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !remade => {
                    remade = true;
                    fs::create_dir_all(&service).map_err(|e| context(e, &service))?;
                }
                Err(e) => return Err(context(e, &path)),
            }
        };
        let leaf = self.leaf(path);
        for (file, value) in limits.files() {
            if let Err(e) = write_file(&leaf.path.join(file), &value) {
                let _ = leaf.remove();
                return Err(e);
            }
        }
        Ok(leaf)
    }

    /// Every instance cgroup in the tree (those a crashed predecessor left included).
    pub fn leaves(&self) -> Vec<Leaf> {
        let mut out = Vec::new();
        for service in subdirs(&self.base) {
            for leaf in subdirs(&service) {
                out.push(self.leaf(leaf));
            }
        }
        out
    }

    /// Removes every empty cgroup of the tree; the tree itself too, once empty, with
    /// `all`.
    pub fn remove_empty(&self, all: bool) {
        for service in subdirs(&self.base) {
            for leaf in subdirs(&service) {
                let _ = fs::remove_dir(leaf);
            }
            let _ = fs::remove_dir(service);
        }
        if all {
            let _ = fs::remove_dir(&self.base);
        }
    }

    /// The cgroup at `path` (one of this tree's: an upgrade hands them over).
    pub fn leaf(&self, path: PathBuf) -> Leaf {
        let shown = match path.strip_prefix(&self.host.mount) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => path.display().to_string(),
        };
        let offers = |c: &str| self.host.controllers.iter().any(|o| o == c);
        Leaf {
            path,
            shown,
            memory: offers("memory"),
            pids: offers("pids"),
        }
    }
}

/// One instance's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub path: PathBuf,
    /// As the cgroup hierarchy names it (`/sysg.…/api.service/1`).
    pub shown: String,
    /// Whether the memory and pids controllers may be on in it (the tree's host offers
    /// them): their files are not looked for otherwise.
    memory: bool,
    pids: bool,
}

impl Leaf {
    /// `cgroup.procs`, opened for the child to write itself into before exec.
    pub fn procs_file(&self) -> io::Result<fs::File> {
        let path = self.path.join("cgroup.procs");
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| context(e, &path))
    }

    /// The live processes in it (zombies are not listed).
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILL to every process in it, at once (`cgroup.kill`, Linux 5.14); on an older
    /// kernel, to each process listed, until none is left.
    pub fn kill(&self) -> io::Result<()> {
        match write_file(&self.path.join("cgroup.kill"), "1") {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.path.exists() => {
                for _ in 0..16 {
                    let pids = self.pids();
                    if pids.is_empty() {
                        break;
                    }
                    for pid in pids {
                        let _ = crate::sys::kill(pid, libc::SIGKILL);
                    }
                }
                Ok(())
            }
            other => other,
        }
    }

    /// CPU time of every process that ran in it, the exited ones included.
    pub fn cpu_usec(&self) -> Option<u64> {
        keyed(&self.path.join("cpu.stat"), "usage_usec")
    }

    /// `memory.current`, where the memory controller is on.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory.then_some(())?;
        single(&self.path.join("memory.current"))
    }

    /// `pids.current`, where the pids controller is on.
    pub fn tasks(&self) -> Option<u64> {
        self.pids.then_some(())?;
        single(&self.path.join("pids.current"))
    }

    /// How many processes the OOM killer took in it (`memory.events`).
    pub fn oom_kills(&self) -> Option<u64> {
        self.memory.then_some(())?;
        keyed(&self.path.join("memory.events"), "oom_kill")
    }

    /// A limit in force (`memory.max`, `pids.max`): None when unlimited or absent.
    pub fn limit(&self, file: &str) -> Option<u64> {
        let on = match file.split_once('.') {
            Some(("memory", _)) => self.memory,
            Some(("pids", _)) => self.pids,
            _ => true,
        };
        on.then_some(())?;
        single(&self.path.join(file))
    }

    /// Removes it; fails (EBUSY) while a process is still in it.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn make_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(context(e, dir)),
        _ => Ok(()),
    }
}

/// Turns `controllers` on for the children of `dir`, unless they are on already.
fn enable(dir: &Path, controllers: &[&str]) -> io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let on = fs::read_to_string(&file).map_err(|e| context(e, &file))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !on.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&file, &missing.join(" "))
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| context(e, path))
}

fn context(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A file holding one number (`max`: None).
fn single(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines: the value of `key`.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    parse_keyed(&text, key)
}

fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_in_a_hybrid_layout() {
        let info = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev shared:10 - cgroup2 cgroup2 rw
33 31 0:28 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu";
        let (root, mount, ro) = cgroup2_mount(info).unwrap();
        assert_eq!(
            (root.as_str(), mount, ro),
            ("/", PathBuf::from("/sys/fs/cgroup/unified"), false)
        );
        let ro_info = "32 31 0:27 /inner /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 ro";
        assert_eq!(
            cgroup2_mount(ro_info),
            Some(("/inner".into(), PathBuf::from("/sys/fs/cgroup"), true))
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw"), None);
    }

    #[test]
    fn limits_become_interface_files() {
        let l = Limits {
            memory: Some(512 << 20),
            memory_high: Some(u64::MAX),
            cpu_percent: Some(50),
            pids: Some(64),
        };
        assert_eq!(
            l.files(),
            vec![
                ("memory.max", "536870912".to_string()),
                ("memory.high", "max".to_string()),
                ("cpu.max", "50000 100000".to_string()),
                ("pids.max", "64".to_string()),
            ]
        );
        assert_eq!(l.controllers(), vec!["memory", "cpu", "pids"]);
        assert!(Limits::default().is_empty());
    }

    #[test]
    fn keyed_files_are_read_by_key() {
        let stat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(parse_keyed(stat, "usage_usec"), Some(1500));
        assert_eq!(parse_keyed(stat, "system_usec"), Some(500));
        assert_eq!(parse_keyed("low 0\noom_kill 2\n", "oom_kill"), Some(2));
        assert_eq!(parse_keyed(stat, "nope"), None);
    }

    #[test]
    fn a_tree_is_named_after_its_state_dir_stably() {
        let a = tree_name(Path::new("/home/a/.local/share/systemg"));
        assert_eq!(a, tree_name(Path::new("/home/a/.local/share/systemg")));
        assert_ne!(a, tree_name(Path::new("/home/b/.local/share/systemg")));
        assert!(a.starts_with("sysg.") && a.len() == 17, "{a}");
    }
}
