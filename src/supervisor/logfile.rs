//! One service log file: appended to, and rotated by rename-then-reopen once it passes
//! its size limit, only ever at a line boundary, so no line is split across files.
//! `<name>.log.1` is the newest rotated file; `max_files` of them are kept.

use crate::config::LogLimits;
use crate::logger::error;
use crate::paths::rotated;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

pub struct LogFile {
    path: PathBuf,
    limits: LogLimits,
    file: Option<File>,
    size: u64,
    /// The last byte written was not a newline: rotating now would split a line.
    mid_line: bool,
    /// An error was reported and not yet followed by a success (one report per outage).
    failing: bool,
}

impl LogFile {
    pub fn new(path: PathBuf, limits: LogLimits) -> LogFile {
        LogFile {
            path,
            limits,
            file: None,
            size: 0,
            mid_line: false,
            failing: false,
        }
    }

    pub fn set_limits(&mut self, limits: LogLimits) {
        self.limits = limits;
    }

    /// Appends `bytes`, rotating first when the file is full and at a line boundary.
    /// Failures are logged once per outage; the next write tries again.
    pub fn append(&mut self, mut bytes: &[u8]) {
        if self.size > 0 && self.size + bytes.len() as u64 > self.limits.max_size {
            if self.mid_line {
                // Finish the open line in this file first.
                match bytes.iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        self.write(&bytes[..=nl]);
                        bytes = &bytes[nl + 1..];
                    }
                    None => {
                        self.write(bytes);
                        return;
                    }
                }
            }
            if !bytes.is_empty() && !self.mid_line {
                self.rotate();
            }
        }
        if !bytes.is_empty() {
            self.write(bytes);
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.file.is_none() {
            match crate::state::open_append(&self.path) {
                Ok(f) => {
                    self.size = f.metadata().map_or(0, |m| m.len());
                    self.file = Some(f);
                }
                Err(e) => return self.fail("open", e),
            }
        }
        let Some(f) = self.file.as_mut() else { return };
        match f.write_all(bytes) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                self.mid_line = bytes.last().is_some_and(|&b| b != b'\n');
                if self.failing {
                    self.failing = false;
                    crate::logger::info!("writing {} again", self.path.display());
                }
            }
            Err(e) => {
                // Reopen next time: the file may have been removed, or the disk freed.
                self.file = None;
                self.fail("write", e);
            }
        }
    }

    fn fail(&mut self, what: &str, e: io::Error) {
        if !self.failing {
            error!(
                "cannot {what} {}: {e}; output is dropped until it can be written",
                self.path.display()
            );
            self.failing = true;
        }
    }

    fn rotate(&mut self) {
        // Renames go through the held logs dir and move names, never what a symlink
        // points to.
        use crate::state_dir::{entry, remove, rename};
        self.file = None;
        let keep = self.limits.max_files.max(1);
        let _ = remove(&rotated(&self.path, keep));
        for k in (1..keep).rev() {
            let from = rotated(&self.path, k);
            if entry(&from).is_ok_and(|e| e.is_some()) {
                let _ = rename(&from, &rotated(&self.path, k + 1));
            }
        }
        if let Err(e) = rename(&self.path, &rotated(&self.path, 1)) {
            error!("cannot rotate {}: {e}", self.path.display());
        }
        self.size = 0;
        self.mid_line = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_at_line_boundaries_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a_stdout.log");
        let mut log = LogFile::new(
            path.clone(),
            LogLimits {
                max_size: 20,
                max_files: 2,
            },
        );
        for i in 0..30 {
            // Lines arrive in pieces, as pipe reads cut them.
            let line = format!("line-{i:02}\n");
            let (a, b) = line.as_bytes().split_at(4);
            log.append(a);
            log.append(b);
        }
        let mut all = String::new();
        for p in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
            let text = read(&p);
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{p:?} split a line: {text:?}"
            );
            all.push_str(&text);
        }
        assert!(!rotated(&path, 3).exists());
        let lines: Vec<&str> = all.lines().collect();
        let first: usize = lines[0][5..].parse().unwrap();
        let want: Vec<String> = (first..30).map(|i| format!("line-{i:02}")).collect();
        assert_eq!(
            lines, want,
            "the kept files hold a contiguous tail, in order"
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.log");
        let mut log = LogFile::new(
            path.clone(),
            LogLimits {
                max_size: 8,
                max_files: 3,
            },
        );
        log.append(b"short\n");
        log.append(b"a very long line ");
        log.append(b"that goes on\nnext\n");
        assert_eq!(read(&rotated(&path, 2)), "short\n");
        assert_eq!(read(&rotated(&path, 1)), "a very long line that goes on\n");
        assert_eq!(read(&path), "next\n");
    }

    #[test]
    fn existing_file_size_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, "0123456789\n").unwrap();
        let mut log = LogFile::new(
            path.clone(),
            LogLimits {
                max_size: 12,
                max_files: 1,
            },
        );
        log.append(b"x\n");
        log.append(b"y\n");
        assert_eq!(read(&rotated(&path, 1)), "0123456789\nx\n");
        assert_eq!(read(&path), "y\n");
    }
}
