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
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

/// Bounded read per wake per pipe, so one chatty service cannot starve the others.
const READ_CHUNK: usize = 64 * 1024;

pub struct Pipe {
    pub service: String,
    pub stream: Stream,
    pub file: File,
    /// Bytes after the last newline, held for the terminal echo only.
    partial: Vec<u8>,
    /// The last byte stored, to end an unterminated last line when the pipe closes.
    last: Option<u8>,
}

impl Pipe {
    pub fn new(service: &str, stream: Stream, file: File) -> io::Result<Pipe> {
        crate::sys::set_nonblocking(file.as_raw_fd())?;
        Ok(Pipe {
            service: service.to_string(),
            stream,
            file,
            partial: Vec::new(),
            last: None,
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

    fn store(&mut self, pipe: &mut Pipe, bytes: &[u8]) {
        self.append(&pipe.service, pipe.stream, bytes);
        pipe.last = bytes.last().copied().or(pipe.last);
        if self.echo {
            pipe.partial.extend_from_slice(bytes);
            if let Some(last_nl) = pipe.partial.iter().rposition(|&b| b == b'\n') {
                let rest = pipe.partial.split_off(last_nl + 1);
                let complete = std::mem::replace(&mut pipe.partial, rest);
                echo_lines(&pipe.service, &complete);
            }
        }
    }

    fn finish(&mut self, pipe: &mut Pipe) {
        // Keep the unterminated last line whole, and off the next instance's first line.
        if pipe.last.is_some_and(|b| b != b'\n') {
            self.append(&pipe.service, pipe.stream, b"\n");
            pipe.last = Some(b'\n');
        }
        if self.echo && !pipe.partial.is_empty() {
            let mut last = std::mem::take(&mut pipe.partial);
            last.push(b'\n');
            echo_lines(&pipe.service, &last);
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
    let _ = io::stdout().lock().write_all(out.as_bytes());
}
