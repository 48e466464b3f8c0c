//! On-disk state (SPEC §1, §6): atomic JSON writes, pid.json under its flock, sysg.pid,
//! config_hint. Readers never see half a file: write temp, fsync, rename.

use crate::error::{Error, Result};
use crate::ipc::{CronStatus, State};
use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates the state dir (and logs/) with mode 0700, tightening it if it is looser.
pub fn ensure_dir(paths: &Paths) -> Result<()> {
    for dir in [paths.dir.clone(), paths.log_dir()] {
        fs::create_dir_all(&dir).map_err(|e| Error::io_path("cannot create", &dir, e))?;
        let meta = fs::metadata(&dir).map_err(|e| Error::io_path("cannot stat", &dir, e))?;
        if meta.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io_path("cannot chmod", &dir, e))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file in the same dir, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens (creating, 0600) a file for appending.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
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
}

impl StateFile {
    pub fn read(paths: &Paths) -> Option<StateFile> {
        let text = fs::read(paths.state_json()).ok()?;
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
        fs::read(paths.pid_json())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Rewrites pid.json while holding the flock on pid.json.lock.
    pub fn write(&self, paths: &Paths) -> io::Result<()> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(paths.pid_json_lock())?;
        crate::sys::lock_exclusive(&lock)?;
        let mut bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomic(&paths.pid_json(), &bytes)
    }
}

/// Reads the supervisor pid recorded in sysg.pid, if the file holds one.
pub fn read_pid_file(paths: &Paths) -> Option<i32> {
    fs::read_to_string(paths.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A running supervisor holds an exclusive flock on sysg.pid for its whole life. This
/// asks without writing anything: true when someone holds it.
pub fn supervisor_lock_held(paths: &Paths) -> bool {
    match File::open(paths.pid_file()) {
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

pub fn read_config_hint(paths: &Paths) -> Option<std::path::PathBuf> {
    let text = fs::read_to_string(paths.config_hint()).ok()?;
    let p = text.trim();
    (!p.is_empty()).then(|| std::path::PathBuf::from(p))
}

#[cfg(test)]
mod tests {
    use super::*;

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
