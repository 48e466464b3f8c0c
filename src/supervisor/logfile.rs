//! One service log file: appended to, and rotated by rename-then-reopen once it passes
//! its size limit, only ever at a line boundary, so no line is split across files and a
//! file holds at most `max_size` plus one line. `<name>.log.1` is the newest rotated
//! file; `max_files` of them are kept.
//!
//! Several writers (pipes) may share one file: an old instance's straggler and the new
//! instance, a skip check and its service. Bytes are written as they come, a line
//! without newline too; when one writer's line is still open and another writes, a
//! newline ends the open line first, so writers never splice. After a write error the
//! line it cut is ended the same way once writing works again.

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
    /// The writer whose bytes were written last; `None` after an error, when the open
    /// line (if any) belongs to nobody and is ended before anything else is written.
    writer: Option<u64>,
    /// An error was reported and not yet followed by a success (one report per outage).
    failing: bool,
    /// `sysg logs --rotate` came while a line was open: rotate once it ends.
    rotate_asked: bool,
}

impl LogFile {
    pub fn new(path: PathBuf, limits: LogLimits) -> LogFile {
        LogFile {
            path,
            limits,
            file: None,
            size: 0,
            mid_line: false,
            writer: None,
            failing: false,
            rotate_asked: false,
        }
    }

    /// `sysg logs --rotate`: rotates now, or (a line is open) once that line ends, so no
    /// line is split. False when there is nothing to rotate (no file, or an empty one).
    pub fn rotate_soon(&mut self) -> bool {
        let on_disk = std::fs::symlink_metadata(&self.path).map_or(0, |m| m.len());
        if on_disk == 0 && self.size == 0 {
            return false;
        }
        if self.mid_line {
            self.rotate_asked = true;
        } else {
            self.rotate();
        }
        true
    }

    /// Creates the file if it is missing, without keeping it open (most services'
    /// stderr stays empty: no descriptor is held for it).
    pub fn create(&mut self) {
        if self.file.is_some() {
            return;
        }
        if let Err(e) = crate::state::open_append(&self.path) {
            self.fail("create", e);
        }
    }

    pub fn set_limits(&mut self, limits: LogLimits) {
        self.limits = limits;
    }

    /// Appends `writer`'s `bytes`, rotating between lines whenever the next whole line
    /// would not fit. Returns false if some of the bytes could not be written: they are
    /// dropped (the error is logged once per outage) and the next call tries again.
    pub fn append(&mut self, writer: u64, mut bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        if self.file.is_none() && !self.open() {
            return false;
        }
        if self.mid_line && self.writer != Some(writer) {
            // Someone else's line is open (or an error cut it): end it here.
            if !self.put(b"\n") {
                return false;
            }
        }
        self.writer = Some(writer);
        if self.rotate_asked {
            let cut = if self.mid_line {
                bytes.iter().position(|&b| b == b'\n').map(|nl| nl + 1)
            } else {
                Some(0)
            };
            if let Some(cut) = cut {
                let (here, rest) = bytes.split_at(cut);
                if !here.is_empty() && !self.put(here) {
                    return false;
                }
                self.rotate_asked = false;
                self.rotate();
                if rest.is_empty() {
                    return true;
                }
                if !self.open() {
                    return false;
                }
                bytes = rest;
            }
        }
        loop {
            let room = self.limits.max_size.saturating_sub(self.size);
            if bytes.len() as u64 <= room {
                return self.put(bytes);
            }
            if self.mid_line || self.size == 0 {
                // The open line is finished here, and so is a first line longer than
                // the limit: the one line a file may exceed `max_size` by.
                let cut = bytes
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |nl| nl + 1);
                let (here, rest) = bytes.split_at(cut);
                if !self.put(here) {
                    return false;
                }
                bytes = rest;
                if bytes.is_empty() {
                    return true;
                }
                continue;
            }
            // The whole lines that still fit go here, the rest to a fresh file.
            let fit = &bytes[..room as usize];
            let cut = fit.iter().rposition(|&b| b == b'\n').map_or(0, |nl| nl + 1);
            let (here, rest) = bytes.split_at(cut);
            if !here.is_empty() && !self.put(here) {
                return false;
            }
            self.rotate();
            if self.file.is_none() && !self.open() {
                return false;
            }
            bytes = rest;
        }
    }

    /// `writer` is done (its pipe closed): its unterminated last line is ended, so the
    /// next writer starts on a line of its own.
    pub fn end_line(&mut self, writer: u64) {
        if self.mid_line && self.writer == Some(writer) {
            self.put(b"\n");
        }
    }

    fn open(&mut self) -> bool {
        match crate::state::open_append(&self.path) {
            Ok(f) => {
                let size = f.metadata().map_or(0, |m| m.len());
                if size != self.size {
                    // Not the file last written to (new, or changed by someone else):
                    // taken to end at a line boundary.
                    self.mid_line = false;
                }
                self.size = size;
                self.file = Some(f);
                true
            }
            Err(e) => {
                self.fail("open", e);
                false
            }
        }
    }

    /// One write of `bytes` (more if the kernel takes them in parts). What it took is
    /// counted; on an error the rest is dropped and the file is reopened next time.
    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.file.is_none() && !self.open() {
            return false;
        }
        let Some(f) = self.file.as_mut() else {
            return false;
        };
        let mut done = 0;
        let result = loop {
            if done == bytes.len() {
                break Ok(());
            }
            match f.write(&bytes[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if done > 0 {
            self.size += done as u64;
            self.mid_line = bytes[done - 1] != b'\n';
        }
        match result {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    crate::logger::info!(
                        "writing {} again; output in between was dropped, and a line it \
                         cut is ended there",
                        self.path.display()
                    );
                }
                true
            }
            Err(e) => {
                // Reopen next time: the file may have been removed, or the disk freed.
                self.file = None;
                self.writer = None;
                self.fail("write", e);
                false
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
                timestamps: false,
            },
        );
        for i in 0..30 {
            // Lines arrive in pieces, as pipe reads cut them.
            let line = format!("line-{i:02}\n");
            let (a, b) = line.as_bytes().split_at(4);
            log.append(1, a);
            log.append(1, b);
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
                timestamps: false,
            },
        );
        log.append(1, b"short\n");
        log.append(1, b"a very long line ");
        log.append(1, b"that goes on\nnext\n");
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
                timestamps: false,
            },
        );
        log.append(1, b"x\n");
        log.append(1, b"y\n");
        assert_eq!(read(&rotated(&path, 1)), "0123456789\n");
        assert_eq!(read(&path), "x\ny\n");
    }

    #[test]
    fn many_lines_in_one_append_still_rotate_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let limits = LogLimits {
            max_size: 30,
            max_files: 9,
            timestamps: false,
        };
        let mut log = LogFile::new(path.clone(), limits);
        let text: String = (0..40)
            .map(|i| format!("{i:04}-{}\n", "x".repeat(i % 7)))
            .collect();
        assert!(log.append(1, text.as_bytes()));
        let mut all = String::new();
        for p in (1..=9)
            .rev()
            .map(|k| rotated(&path, k))
            .chain([path.clone()])
        {
            let t = read(&p);
            let longest = t.lines().map(|l| l.len() + 1).max().unwrap_or(0);
            assert!(t.len() as u64 <= 30 + longest as u64, "{p:?}: {t:?}");
            assert!(t.is_empty() || t.ends_with('\n'), "{p:?}: {t:?}");
            all.push_str(&t);
        }
        assert!(
            text.ends_with(&all),
            "the kept files are not the tail: {all:?}"
        );
    }

    #[test]
    fn another_writer_never_continues_an_open_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.log");
        let mut log = LogFile::new(path.clone(), LogLimits::default());
        log.append(1, b"prompt> ");
        assert_eq!(read(&path), "prompt> ", "an open line is written at once");
        log.append(1, b"yes\nhalf");
        log.append(2, b"other\n");
        log.end_line(1);
        log.append(2, b"more");
        log.end_line(1);
        log.end_line(2);
        assert_eq!(read(&path), "prompt> yes\nhalf\nother\nmore\n");
    }
}
