//! Service output: non-blocking pipe reads appended to `logs/<name>_<stream>.log`, and
//! in foreground mode echoed to the terminal as `name | line`.
//!
//! A pipe belongs to an instance, not to a service: a restarted service gets new pipes
//! while an escaped grandchild may still hold the old one open, and both keep flowing
//! into the same file until EOF.

use super::logfile::LogFile;
use crate::config::LogLimits;
use crate::paths::{Paths, Stream};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;

/// Bounded read per wake per pipe, so one chatty service cannot starve the others.
const READ_CHUNK: usize = 64 * 1024;

/// A line longer than this is stored in pieces rather than held in memory.
const MAX_PARTIAL: usize = 64 * 1024;

pub struct Pipe {
    pub service: String,
    pub stream: Stream,
    pub file: File,
    /// Bytes after the last newline, waiting for the rest of their line.
    partial: Vec<u8>,
}

impl Pipe {
    pub fn new(service: &str, stream: Stream, file: File) -> io::Result<Pipe> {
        crate::sys::set_nonblocking(file.as_raw_fd())?;
        Ok(Pipe {
            service: service.to_string(),
            stream,
            file,
            partial: Vec::new(),
        })
    }
}

pub enum ReadOutcome {
    /// Bytes were stored; there may be more.
    Data,
    /// Nothing to read right now.
    Idle,
    /// EOF or a read error: the pipe is done.
    Closed,
}

pub struct Output {
    paths: Paths,
    files: HashMap<(String, &'static str), LogFile>,
    limits: HashMap<String, LogLimits>,
    echo: bool,
    buf: Vec<u8>,
}

impl Output {
    pub fn new(paths: Paths, echo: bool) -> Output {
        Output {
            paths,
            files: HashMap::new(),
            limits: HashMap::new(),
            echo,
            buf: vec![0; READ_CHUNK],
        }
    }

    /// Reads what is ready (at most one chunk) and stores it. `Closed` at EOF or error,
    /// after the partial echo line has been flushed.
    pub fn read(&mut self, pipe: &mut Pipe) -> ReadOutcome {
        match pipe.file.read(&mut self.buf) {
            Ok(0) => {
                self.finish(pipe);
                ReadOutcome::Closed
            }
            Ok(n) => {
                let buf = std::mem::take(&mut self.buf);
                self.store(pipe, &buf[..n]);
                self.buf = buf;
                ReadOutcome::Data
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                ReadOutcome::Idle
            }
            Err(_) => {
                self.finish(pipe);
                ReadOutcome::Closed
            }
        }
    }

    /// Reads everything that is buffered in the pipe now. `Closed` if it reached EOF.
    pub fn drain(&mut self, pipe: &mut Pipe) -> ReadOutcome {
        loop {
            match self.read(pipe) {
                ReadOutcome::Data => continue,
                other => return other,
            }
        }
    }

    /// Stores complete lines; the bytes after the last newline wait in the pipe's
    /// buffer for the rest of their line, so output of two instances sharing a file
    /// (an old instance's straggler and a new one) never splices mid-line. A line that
    /// grows past `MAX_PARTIAL` is stored as it is.
    fn store(&mut self, pipe: &mut Pipe, bytes: &[u8]) {
        let Some(nl) = bytes.iter().rposition(|&b| b == b'\n') else {
            pipe.partial.extend_from_slice(bytes);
            if pipe.partial.len() > MAX_PARTIAL {
                let long = std::mem::take(&mut pipe.partial);
                self.emit(pipe, &long, b"\n");
            }
            return;
        };
        let (complete, rest) = bytes.split_at(nl + 1);
        if pipe.partial.is_empty() {
            self.emit(pipe, complete, b"");
        } else {
            let mut joined = std::mem::take(&mut pipe.partial);
            joined.extend_from_slice(complete);
            self.emit(pipe, &joined, b"");
        }
        pipe.partial.extend_from_slice(rest);
    }

    /// Writes whole lines to the log file and the terminal echo; `end` terminates an
    /// unterminated last line.
    fn emit(&mut self, pipe: &Pipe, lines: &[u8], end: &[u8]) {
        if end.is_empty() {
            self.append(&pipe.service, pipe.stream, lines);
        } else {
            let mut owned = Vec::with_capacity(lines.len() + end.len());
            owned.extend_from_slice(lines);
            owned.extend_from_slice(end);
            self.append(&pipe.service, pipe.stream, &owned);
        }
        if self.echo {
            echo_lines(&pipe.service, lines);
        }
    }

    fn finish(&mut self, pipe: &mut Pipe) {
        // The unterminated last line is stored whole, ended with a newline so it stays
        // off the next instance's first line.
        if !pipe.partial.is_empty() {
            let last = std::mem::take(&mut pipe.partial);
            self.emit(pipe, &last, b"\n");
        }
    }

    fn append(&mut self, service: &str, stream: Stream, bytes: &[u8]) {
        let key = (service.to_string(), stream.as_str());
        if !self.files.contains_key(&key) {
            let limits = self.limits.get(service).copied().unwrap_or_default();
            let file = LogFile::new(self.paths.service_log(service, stream), limits);
            self.files.insert(key.clone(), file);
        }
        if let Some(log) = self.files.get_mut(&key) {
            log.append(bytes);
        }
    }

    /// Rotation limits of a service's files (from its config; changed on reload).
    pub fn set_limits(&mut self, service: &str, limits: LogLimits) {
        self.limits.insert(service.to_string(), limits);
        for ((name, _), file) in self.files.iter_mut() {
            if name == service {
                file.set_limits(limits);
            }
        }
    }

    /// Closes the log files of services no longer in the config.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.files.retain(|(name, _), _| keep(name));
    }
}

fn echo_lines(service: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        out.push_str(service);
        out.push_str(" | ");
        out.push_str(line);
        out.push('\n');
    }
    crate::terminal::write(crate::terminal::To::Out, out.into_bytes());
}
