//! On-disk state (SPEC §1, §6): atomic JSON writes, pid.json under its flock, sysg.pid,
//! config_hint. Readers never see half a file: write temp, fsync, rename. Every open goes
//! through [`crate::state_dir`], which never follows a symlink.

use crate::error::Result;
use crate::ipc::{CronStatus, State};
use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

/// Creates or checks the state dir (and logs/) and holds it open: see
/// [`crate::state_dir::prepare`] for what is refused.
pub fn ensure_dir(paths: &Paths) -> Result<()> {
    crate::state_dir::prepare(paths)
}

/// Writes `bytes` to `path` atomically (see [`crate::state_dir::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::state_dir::write_atomic(path, bytes)
}

/// Opens (creating, 0600) a file for appending, never through a symlink.
pub fn open_append(path: &Path) -> io::Result<File> {
    crate::state_dir::open_append(path)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub services: BTreeMap<String, ServiceRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub status: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    /// Process group and kernel start time of `pid`, so recovery after a supervisor crash
    /// can prove a recorded pid is still the same process before signalling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronStatus>,
    /// `sysg stop -s`: kept stopped by the next supervisor too, until `sysg start -s`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_request: bool,
}

impl StateFile {
    pub fn read(paths: &Paths) -> Option<StateFile> {
        let text = crate::state_dir::read(&paths.state_json()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn write(&self, paths: &Paths) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&paths.state_json(), &bytes)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidFile {
    pub services: BTreeMap<String, i32>,
}

impl PidFile {
    pub fn read(paths: &Paths) -> PidFile {
        crate::state_dir::read(&paths.pid_json())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Rewrites pid.json while holding the flock on pid.json.lock.
    pub fn write(&self, paths: &Paths) -> io::Result<()> {
        let lock = crate::state_dir::open_rw(&paths.pid_json_lock())?;
        crate::sys::lock_exclusive(&lock)?;
        let mut bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&paths.pid_json(), &bytes)
    }
}

/// Reads the supervisor pid recorded in sysg.pid, if the file holds one.
pub fn read_pid_file(paths: &Paths) -> Option<i32> {
    String::from_utf8(crate::state_dir::read(&paths.pid_file()).ok()?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A running supervisor holds an exclusive flock on sysg.pid for its whole life. This
/// asks without writing anything: true when someone holds it.
pub fn supervisor_lock_held(paths: &Paths) -> bool {
    match crate::state_dir::open_read(&paths.pid_file()) {
        Ok(f) => matches!(crate::sys::try_lock_shared(&f), Ok(false)),
        Err(_) => false,
    }
}

/// The pid of the live supervisor, if there is one.
pub fn running_supervisor(paths: &Paths) -> Option<i32> {
    if !supervisor_lock_held(paths) {
        return None;
    }
    read_pid_file(paths).filter(|&pid| crate::sys::process_exists(pid))
}

/// Records which config the running supervisor uses (`config_hint`, one line).
pub fn write_config_hint(paths: &Paths, config: &std::path::Path) -> std::io::Result<()> {
    write_atomic(
        &paths.config_hint(),
        format!("{}\n", config.display()).as_bytes(),
    )
}

pub fn read_config_hint(paths: &Paths) -> Option<std::path::PathBuf> {
    let text = String::from_utf8(crate::state_dir::read(&paths.config_hint()).ok()?).ok()?;
    let p = text.trim();
    (!p.is_empty()).then(|| std::path::PathBuf::from(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn state_file_round_trips_with_spec_field_names() {
        let mut s = StateFile::default();
        s.services.insert(
            "api".into(),
            ServiceRecord {
                status: State::Running,
                pid: Some(42),
                started_at: Some("2025-12-31T15:30:00Z".into()),
                restart_count: 0,
                exit_code: None,
                signal: None,
                pgid: Some(42),
                start_ticks: Some(7),
                reason: None,
                cron: None,
                stopped_by_request: false,
            },
        );
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["services"]["api"]["status"], "running");
        assert_eq!(v["services"]["api"]["pid"], 42);
        assert!(v["services"]["api"]["exit_code"].is_null());
        let back: StateFile = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn ensure_dir_tightens_mode() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path().join("st"));
        fs::create_dir_all(&paths.dir).unwrap();
        fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&paths).unwrap();
        assert_eq!(
            fs::metadata(&paths.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(paths.log_dir().is_dir());
    }
}
