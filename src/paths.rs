//! Where state lives (SPEC §1) and the name of every file in the state dir.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    /// `$SYSG_STATE_DIR`, else `$XDG_DATA_HOME/systemg`, else `$HOME/.local/share/systemg`.
    pub fn from_env() -> Option<Paths> {
        let non_empty = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = non_empty("SYSG_STATE_DIR")
            .or_else(|| non_empty("XDG_DATA_HOME").map(|d| d.join("systemg")))
            .or_else(|| non_empty("HOME").map(|h| h.join(".local/share/systemg")))?;
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().ok()?.join(dir)
        };
        Some(Paths { dir })
    }

    #[cfg(test)]
    pub fn new(dir: impl Into<PathBuf>) -> Paths {
        Paths { dir: dir.into() }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("sysg.pid")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    pub fn config_hint(&self) -> PathBuf {
        self.dir.join("config_hint")
    }
    pub fn pid_json(&self) -> PathBuf {
        self.dir.join("pid.json")
    }
    pub fn pid_json_lock(&self) -> PathBuf {
        self.dir.join("pid.json.lock")
    }
    pub fn state_json(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn service_log(&self, service: &str, stream: Stream) -> PathBuf {
        service_log(&self.log_dir(), service, stream)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

pub fn service_log(log_dir: &Path, service: &str, stream: Stream) -> PathBuf {
    log_dir.join(format!("{service}_{}.log", stream.as_str()))
}

/// `<path>.<k>`: the k-th newest rotated copy of a log, `.1` being the newest. The
/// supervisor's writer names them and `sysg logs` reads them back, both through this.
pub fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_copies_add_their_number_after_the_log_name() {
        let current = Paths::new("/s").service_log("api", Stream::Stderr);
        assert_eq!(current, Path::new("/s/logs/api_stderr.log"));
        assert_eq!(rotated(&current, 1), Path::new("/s/logs/api_stderr.log.1"));
        assert_eq!(
            rotated(&current, 12),
            Path::new("/s/logs/api_stderr.log.12")
        );
    }
}
