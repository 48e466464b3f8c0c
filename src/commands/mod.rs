//! One function per subcommand. Each returns the process exit code or an `Error`.

pub mod events;
pub mod inspect;
pub mod leftovers;
pub mod logs;
pub mod manage;
mod purge;
pub mod start;
pub mod status;
pub mod status_view;
pub mod watch;

use crate::error::{Error, Result};
use crate::paths::Paths;
use std::path::{Path, PathBuf};

pub fn paths() -> Result<Paths> {
    Paths::from_env().ok_or_else(|| {
        Error::msg("cannot find a state dir: set HOME, XDG_DATA_HOME or SYSG_STATE_DIR")
    })
}

/// `-c` if given; else `systemg.yaml`, then `sysg.yaml` in the current dir; else (when
/// `use_hint`) the config of the running supervisor.
pub fn find_config(explicit: Option<&Path>, paths: &Paths, use_hint: bool) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(absolute(p));
    }
    for name in ["systemg.yaml", "sysg.yaml"] {
        let p = Path::new(name);
        if p.is_file() {
            return Ok(absolute(p));
        }
    }
    if use_hint {
        if let Some(p) = crate::state::read_config_hint(paths) {
            return Ok(p);
        }
    }
    Err(Error::Config(vec![
        "no config file: pass --config FILE, or create systemg.yaml (or sysg.yaml) in the current directory".into(),
    ]))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Polls `cond` every 20 ms for up to `limit`. True once it holds.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until `pid` has exited, up to `limit`. True if it did.
pub fn wait_for_exit(pid: i32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if !crate::sys::process_exists(pid)
            || crate::procfs::stat(pid).is_some_and(|s| s.state == 'Z')
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Added to the config's stop timeouts for the supervisor's own work (signalling,
/// reaping, sweeping escapees, writing state).
pub const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);
/// The bound when the config in use cannot be read.
pub const STOP_FALLBACK: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a client waits for the supervisor to carry out a stop, from the config the
/// supervisor runs (its `config_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopBounds {
    /// `stop -s`, `restart -s`, `restart`: the `stop_timeout`s of the dependency levels
    /// added up (the longest of each), the longest `pre_start` timeout, and the margin.
    pub stop: std::time::Duration,
    /// `stop`: the supervisor's exit also waits for running hooks, so the longest hook
    /// timeout is added.
    pub shutdown: std::time::Duration,
}

impl StopBounds {
    pub fn read(paths: &Paths) -> StopBounds {
        let config =
            crate::state::read_config_hint(paths).and_then(|p| crate::config::load(&p).ok());
        match config {
            Some(c) => StopBounds::of(&c),
            None => StopBounds {
                stop: STOP_FALLBACK,
                shutdown: STOP_FALLBACK,
            },
        }
    }

    pub fn of(config: &crate::config::Config) -> StopBounds {
        // A stop goes level by level (dependents first), each bounded by the longest
        // stop_timeout in it: the levels add up. A start may first wait for pre_start.
        let index: std::collections::HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let depends: Vec<Vec<usize>> = config
            .services
            .iter()
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut per_level: std::collections::BTreeMap<usize, std::time::Duration> =
            std::collections::BTreeMap::new();
        let ranks = crate::supervisor::deps::stop_ranks(&depends);
        for (s, rank) in config.services.iter().zip(ranks) {
            let longest = per_level.entry(rank).or_default();
            *longest = (*longest).max(s.stop_timeout);
        }
        let pre_start = config
            .services
            .iter()
            .filter_map(|s| s.pre_start.as_ref().map(|h| h.timeout))
            .max()
            .unwrap_or_default();
        let stop = per_level.values().sum::<std::time::Duration>() + pre_start;
        let hook = config
            .services
            .iter()
            .flat_map(|s| [&s.hooks.on_start, &s.hooks.on_stop, &s.hooks.on_restart])
            .flat_map(|pair| [&pair.success, &pair.error])
            .filter_map(|h| h.as_ref().map(|h| h.timeout))
            .max()
            .unwrap_or_default();
        StopBounds {
            stop: stop + STOP_MARGIN,
            shutdown: stop + hook + STOP_MARGIN,
        }
    }
}

/// Whether `pid` is an ancestor of this process: then this is a hook or a service asking
/// its own supervisor, which may be waiting for it, so it must never wait for that
/// supervisor to exit.
pub fn inside_tree_of(pid: i32) -> bool {
    let mut current = crate::sys::getpid();
    for _ in 0..4096 {
        let Some(parent) = crate::procfs::stat(current).map(|s| s.ppid) else {
            return false;
        };
        if parent == pid {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        current = parent;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stop_bounds_add_up_the_dependency_levels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sysg.yaml");
        std::fs::write(
            &path,
            "services:\n  db:\n    command: a\n    stop_timeout: 5s\n  app:\n    command: b\n    \
             stop_timeout: 3s\n    depends_on: [db]\n  lone:\n    command: c\n    \
             stop_timeout: 7s\n    pre_start: { command: d, timeout: 2s }\n",
        )
        .unwrap();
        let config = crate::config::load(&path).unwrap();
        let b = StopBounds::of(&config);
        // Level 0 (app, lone): 7 s; level 1 (db): 5 s; pre_start 2 s; margin 10 s.
        assert_eq!(b.stop, Duration::from_secs(7 + 5 + 2 + 10));
        assert_eq!(b.shutdown, b.stop);
    }
}
