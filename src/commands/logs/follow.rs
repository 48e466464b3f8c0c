//! `sysg logs -f`: streaming what is appended to the files after the first part.
//!
//! Following polls file sizes every 250 ms rather than using inotify: it costs nothing
//! measurable, needs no `unsafe`, and sees rotation (inode change) and truncation (size
//! below what was read) the same way. Streamed lines carry a `name | ` prefix
//! (`name (stderr) | ` for stderr, the same shape as the foreground supervisor's echo)
//! whenever more than one file is followed; a single followed file streams bare lines.
//! The caller decides when following ends (see [`super::show`]); before it returns,
//! whatever the files still hold is printed, an unterminated last line included.

use crate::paths::Stream;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

pub(super) const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// Bytes read per step from a followed file.
const READ_CHUNK: usize = 64 * 1024;
/// A line longer than this is printed in pieces rather than held back indefinitely.
const MAX_PARTIAL: usize = 64 * 1024;

/// Streams what arrives in `tails`, asking `keep_following` at every poll tick: once it
/// returns false, what the files still hold is printed and this returns.
pub(super) fn follow(
    tails: &mut [Tail],
    prefixed: bool,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        // Asked before reading, so the last read sees everything written before the
        // answer turned false.
        let keep = keep_following();
        for tail in tails.iter_mut() {
            tail.poll(out, prefixed)?;
        }
        if !keep {
            for tail in tails.iter_mut() {
                tail.finish_line(out, prefixed)?;
            }
            return out.flush();
        }
        out.flush()?;
    }
}

/// One followed log file: where we are in it and which file (inode) that position
/// belongs to.
pub(super) struct Tail {
    label: String,
    path: PathBuf,
    file: Option<File>,
    id: (u64, u64),
    offset: u64,
    partial: Vec<u8>,
    /// Which lines are printed, and how.
    look: super::Look,
}

impl Tail {
    pub(super) fn new(name: &str, stream: Stream, path: PathBuf, look: super::Look) -> Tail {
        let label = match stream {
            Stream::Stdout => format!("{name} | "),
            Stream::Stderr => format!("{name} (stderr) | "),
        };
        Tail {
            label,
            path,
            file: None,
            id: (0, 0),
            offset: 0,
            partial: Vec::new(),
            look,
        }
    }

    /// `name | ` (`name (stderr) | `): what each line is prefixed with.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    fn wanted(&self, line: &[u8]) -> bool {
        self.look.matches(line)
    }

    /// `line` without its stamp when they are hidden.
    fn shown<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        match std::str::from_utf8(line) {
            Ok(text) => self.look.shown(text).as_bytes(),
            Err(_) => line,
        }
    }

    /// Continue after what was already shown: the end of the file as it was measured.
    pub(super) fn resume(&mut self, mut file: File, meta: &fs::Metadata) {
        if file.seek(SeekFrom::Start(meta.len())).is_ok() {
            self.id = (meta.dev(), meta.ino());
            self.offset = meta.len();
            self.file = Some(file);
        }
    }

    /// Prints whatever complete lines arrived since the last call. Only write errors are
    /// returned; a log that cannot be read is simply retried next time.
    pub(super) fn poll(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        // The entry itself: a symlink put in place of a log is not followed.
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .filter(|m| m.file_type().is_file());
        if let (Some(meta), true) = (current.as_ref(), self.file.is_some()) {
            if (meta.dev(), meta.ino()) != self.id {
                // Rotated: finish the renamed file through our handle, then switch.
                self.drain(out, prefixed)?;
                self.finish_line(out, prefixed)?;
                self.file = None;
            } else if meta.len() < self.offset {
                // Truncated in place: what follows starts at the beginning again.
                self.finish_line(out, prefixed)?;
                self.offset = 0;
                if let Some(file) = self.file.as_mut() {
                    if file.seek(SeekFrom::Start(0)).is_err() {
                        self.file = None;
                    }
                }
            }
        }
        if self.file.is_none() && current.is_some() {
            if let Ok(file) = crate::state_dir::open_read(&self.path) {
                if let Ok(meta) = file.metadata() {
                    self.id = (meta.dev(), meta.ino());
                    self.offset = 0;
                    self.file = Some(file);
                }
            }
        }
        self.drain(out, prefixed)
    }

    /// Reads up to the size measured now, so a fast writer cannot keep us here forever.
    fn drain(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let result = self.read_new(&mut file, out, prefixed);
        self.file = Some(file);
        result
    }

    fn read_new(&mut self, file: &mut File, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        let end = file.metadata().map_or(self.offset, |m| m.len());
        let mut buf = vec![0u8; READ_CHUNK];
        while self.offset < end {
            let want = buf.len().min((end - self.offset) as usize);
            match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => {
                    self.offset += k as u64;
                    self.emit(&buf[..k], out, prefixed)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn emit(&mut self, mut bytes: &[u8], out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        while let Some(i) = bytes.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&bytes[..=i]);
            bytes = &bytes[i + 1..];
            let line = std::mem::take(&mut self.partial);
            if self.wanted(&line) {
                if prefixed {
                    out.write_all(self.label.as_bytes())?;
                }
                out.write_all(self.shown(&line))?;
            }
            self.partial = line;
            self.partial.clear();
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() >= MAX_PARTIAL {
            self.finish_line(out, prefixed)?;
        }
        Ok(())
    }

    /// Prints a held-back unterminated line as a line of its own.
    fn finish_line(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        if !self.wanted(&self.partial) {
            self.partial.clear();
            return Ok(());
        }
        if prefixed {
            out.write_all(self.label.as_bytes())?;
        }
        let partial = std::mem::take(&mut self.partial);
        out.write_all(self.shown(&partial))?;
        self.partial = partial;
        self.partial.clear();
        out.write_all(b"\n")
    }
}
