//! `sysg purge`'s removal: only what sysg creates in the state dir, by name and type,
//! through directory fds. A symlink, a directory or a file of another name is left where
//! it is and reported, so a state dir that is (or has become) something else is never
//! emptied, and no link is followed.

use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::state_dir::OpenDir;
use std::ffi::OsStr;
use std::io;

/// Files sysg writes at the top of the state dir.
const STATE_FILES: &[&str] = &[
    "sysg.pid",
    "config_hint",
    "pid.json",
    "pid.json.lock",
    "state.json",
    "supervisor.log",
    "supervisor.log.1",
];

/// An atomic write's temp file left by a crash: `.<file>.<random hex>.tmp`, or the older
/// `.<file>.tmp.<pid>`.
fn is_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    STATE_FILES.iter().any(|f| {
        rest.strip_prefix(f)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|r| {
                let hex = r
                    .strip_suffix(".tmp")
                    .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
                let pid = r
                    .strip_prefix("tmp.")
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                hex || pid
            })
    })
}

/// `<service>_stdout.log`, `<service>_stderr.log` and their rotated `.<k>` copies.
pub fn is_log_name(name: &str) -> bool {
    let base = match name.rsplit_once('.') {
        Some((base, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    };
    ["_stdout.log", "_stderr.log"].iter().any(|suffix| {
        base.strip_suffix(suffix)
            .is_some_and(crate::config::valid_service_name)
    })
}

/// Removes sysg's files, then logs/ and the state dir when nothing else is in them.
/// Returns the entries left in place (relative to the state dir).
pub fn remove_state(paths: &Paths) -> Result<Vec<String>> {
    let dir = &paths.dir;
    let top = match OpenDir::open(dir) {
        Ok(top) => top,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io_path("cannot open", dir, e)),
    };
    let euid = crate::sys::geteuid();
    let owner = top
        .owner()
        .map_err(|e| Error::io_path("cannot stat", dir, e))?;
    if owner != euid {
        return Err(Error::msg(format!(
            "{}: owned by uid {owner}, not by you (uid {euid}); not purging it",
            dir.display()
        )));
    }
    let fail = |what: &str, name: &OsStr, e: io::Error| Error::io_path(what, &dir.join(name), e);
    let mut kept = Vec::new();
    let mut names = top
        .names()
        .map_err(|e| Error::io_path("cannot list", dir, e))?;
    names.sort();
    for name in names {
        let text = name.to_string_lossy().into_owned();
        let entry = top
            .entry(&name)
            .map_err(|e| fail("cannot stat", &name, e))?;
        let ours = if text == "logs" && entry.is_dir() && entry.uid == euid {
            let logs = top.sub(&name).map_err(|e| fail("cannot open", &name, e))?;
            let before = kept.len();
            remove_logs(&logs, &mut kept).map_err(|e| fail("cannot purge", &name, e))?;
            kept.len() == before
        } else if text == "control.sock" {
            entry.is_socket()
        } else {
            (STATE_FILES.contains(&text.as_str()) || is_temp(&text)) && entry.is_file()
        };
        if !ours {
            kept.push(text);
            continue;
        }
        top.remove(&name, entry.is_dir())
            .map_err(|e| fail("cannot remove", &name, e))?;
    }
    if kept.is_empty() {
        std::fs::remove_dir(dir).map_err(|e| Error::io_path("cannot remove", dir, e))?;
    }
    Ok(kept)
}

fn remove_logs(logs: &OpenDir, kept: &mut Vec<String>) -> io::Result<()> {
    let mut names = logs.names()?;
    names.sort();
    for name in names {
        let entry = logs.entry(&name)?;
        if entry.is_file() && is_log_name(&name.to_string_lossy()) {
            logs.remove(&name, false)?;
        } else {
            kept.push(format!("logs/{}", name.to_string_lossy()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sysg_names_count_as_ours() {
        for ours in ["api_stdout.log", "api_stderr.log.3", "a.b-c_stdout.log"] {
            assert!(is_log_name(ours), "{ours}");
        }
        for not in ["api.log", "_stdout.log", "api_stdout.log.x", "notes.txt"] {
            assert!(!is_log_name(not), "{not}");
        }
        assert!(is_temp(".state.json.0a1b2c3d4e5f6789.tmp"));
        assert!(is_temp(".pid.json.tmp.1234"));
        assert!(!is_temp(".bashrc"));
        assert!(!is_temp(".state.json.zz.tmp"));
    }
}
