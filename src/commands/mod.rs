//! One function per subcommand. Each returns the process exit code or an `Error`.

pub mod logs;
pub mod manage;
mod purge;
pub mod start;
pub mod status;
pub mod status_view;

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
