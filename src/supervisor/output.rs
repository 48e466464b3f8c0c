//! Service output: non-blocking pipe reads appended to `logs/<name>_<stream>.log` as they
//! come (a line without newline too), and in foreground mode echoed to the terminal as
//! `name | line`.
//!
//! A pipe belongs to an instance, not to a service: a restarted service gets new pipes
//! while an escaped grandchild may still hold the old one open, and both keep flowing
//! into the same file until EOF (the file keeps their lines apart, see `logfile`).

use super::logfile::LogFile;
use crate::config::LogLimits;
use crate::paths::{Paths, Stream};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// One read buffer, shared by all pipes: what one read (and one file write) moves.
const READ_BUF: usize = 256 * 1024;

/// At most this much is taken from one pipe per loop turn, so one chatty service cannot
/// starve the others; the rest waits for the next turn.
const TURN_BUDGET: usize = 1024 * 1024;

/// An echoed line longer than this is shown in pieces (the log file keeps it whole).
const MAX_ECHO_PARTIAL: usize = 64 * 1024;

/// A pipe that has had bytes for this many loop turns in a row is streaming: a writer
/// that writes line by line, each write waking the loop for a few lines.
const STREAMING_TURNS: u32 = 3;

/// While a pipe streams and brings less than this per turn, the loop's next wait leaves
/// the pipes alone for `PACE` so the next read takes many lines at once: a wakeup (and
/// its context switches, on both sides) per `PACE` instead of per few lines.
const PACE_BELOW: usize = 64 * 1024;
const PACE: std::time::Duration = std::time::Duration::from_micros(200);

/// A streaming pipe's buffer is grown to this (if the kernel allows), so that a writer
/// is not held back while the loop pauses or is busy elsewhere. Idle pipes keep the
/// default size: the kernel charges pipe buffers to the service's user.
const STREAMING_PIPE: usize = 1024 * 1024;

/// At most this many pipes are grown at a time (16 MiB of pipe buffers at most).
const MAX_GROWN: usize = 16;

static GROWN: AtomicUsize = AtomicUsize::new(0);

static NEXT_PIPE: AtomicU64 = AtomicU64::new(1);

pub struct Pipe {
    pub service: String,
    pub stream: Stream,
    pub file: File,
    /// Tells this pipe's bytes from another's in a shared log file.
    id: u64,
    /// Bytes were lost mid-line in a write error: what follows up to the next newline is
    /// the rest of that line, and is dropped so the file resumes at a line boundary.
    resync: bool,
    /// Foreground echo only: bytes after the last newline, waiting for their line.
    echo_partial: Vec<u8>,
    /// The last loop turn this pipe had bytes in, and how many turns in a row it had.
    last_turn: u64,
    streak: u32,
    /// Growing its buffer was tried (once), and it worked.
    grow_tried: bool,
    grown: bool,
    /// The new instance of a rolling restart: set when it says its address is in use.
    pub watch: Option<Arc<AtomicBool>>,
    /// `health_check.log`: the text that makes the instance up, until it is seen.
    pub ready: Option<ReadyWatch>,
    /// The ready text was seen in this pipe's last read.
    pub ready_hit: bool,
    /// `logs.timestamps`: the next byte stored starts a line (and gets its time).
    at_line_start: bool,
}

/// Looks for `needle` in what an instance writes, across reads (the last
/// `needle.len() - 1` bytes of one read are kept for the next).
#[derive(Debug, Clone)]
pub struct ReadyWatch {
    pub seen: Arc<AtomicBool>,
    pub needle: Arc<[u8]>,
    tail: Vec<u8>,
}

impl ReadyWatch {
    pub fn new(seen: Arc<AtomicBool>, needle: Arc<[u8]>) -> ReadyWatch {
        ReadyWatch {
            seen,
            needle,
            tail: Vec::new(),
        }
    }

    /// Whether `bytes` (after what came before) hold the needle.
    fn finds(&mut self, bytes: &[u8]) -> bool {
        let needle = &*self.needle;
        let keep = needle.len().saturating_sub(1);
        if needle.is_empty() || bytes.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        // The seam: the kept tail and the start of this read (a short read: all of it).
        self.tail.extend_from_slice(&bytes[..bytes.len().min(keep)]);
        if self.tail.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        if bytes.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else {
            let cut = self.tail.len().saturating_sub(keep);
            self.tail.drain(..cut);
        }
        false
    }
}

impl Pipe {
    pub fn new(service: &str, stream: Stream, file: File) -> io::Result<Pipe> {
        crate::sys::set_nonblocking(file.as_raw_fd())?;
        Ok(Pipe {
            service: service.to_string(),
            stream,
            file,
            id: NEXT_PIPE.fetch_add(1, Ordering::Relaxed),
            resync: false,
            echo_partial: Vec::new(),
            last_turn: 0,
            streak: 0,
            grow_tried: false,
            grown: false,
            watch: None,
            ready: None,
            ready_hit: false,
            at_line_start: true,
        })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if self.grown {
            GROWN.fetch_sub(1, Ordering::Relaxed);
        }
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

/// How filling the read buffer ended.
enum Fill {
    /// The buffer is full: the pipe may hold more.
    Full,
    /// The pipe is empty for now (a short read, or EAGAIN).
    Drained,
    /// EOF or a read error.
    Closed,
}

/// A service's two log files, opened on first output.
type Files = [Option<LogFile>; 2];

pub struct Output {
    paths: Paths,
    files: HashMap<String, Files>,
    limits: HashMap<String, LogLimits>,
    echo: bool,
    buf: Vec<u8>,
    /// Loop turns so far (see `end_turn`).
    turn: u64,
    /// A streaming pipe brought little this turn: pause before the next.
    pace: bool,
    /// Reused for stamped lines (`logs.timestamps`): no allocation per chunk.
    stamp_buf: Vec<u8>,
}

impl Output {
    pub fn new(paths: Paths, echo: bool) -> Output {
        Output {
            paths,
            files: HashMap::new(),
            limits: HashMap::new(),
            echo,
            buf: vec![0; READ_BUF],
            turn: 1,
            pace: false,
            stamp_buf: Vec::new(),
        }
    }

    /// Reads what the pipe holds now, up to `TURN_BUDGET`, and stores it: one write per
    /// buffer filled. `Closed` at EOF or error, after the open last line was ended.
    pub fn read(&mut self, pipe: &mut Pipe) -> ReadOutcome {
        let mut taken = 0;
        let end = loop {
            let (filled, end) = fill(&mut pipe.file, &mut self.buf);
            if filled > 0 {
                let buf = std::mem::take(&mut self.buf);
                self.store(pipe, &buf[..filled]);
                self.buf = buf;
            }
            taken += filled;
            match end {
                Fill::Full if taken < TURN_BUDGET => continue,
                other => break other,
            }
        };
        if taken > 0 {
            self.note_streaming(pipe, taken);
        }
        match end {
            Fill::Full => ReadOutcome::Data,
            Fill::Drained if taken > 0 => ReadOutcome::Data,
            Fill::Drained => ReadOutcome::Idle,
            Fill::Closed => {
                self.finish(pipe);
                ReadOutcome::Closed
            }
        }
    }

    /// Counts the turns in a row `pipe` had bytes in; a streaming pipe gets a bigger
    /// buffer, and, while it brings little per turn, the loop paces itself.
    fn note_streaming(&mut self, pipe: &mut Pipe, taken: usize) {
        pipe.streak = if pipe.last_turn + 1 == self.turn {
            pipe.streak.saturating_add(1)
        } else {
            1
        };
        pipe.last_turn = self.turn;
        if pipe.streak < STREAMING_TURNS {
            return;
        }
        if !pipe.grow_tried && GROWN.load(Ordering::Relaxed) < MAX_GROWN {
            pipe.grow_tried = true;
            let fd = pipe.file.as_raw_fd();
            if crate::sys::set_pipe_size(fd, STREAMING_PIPE).is_ok() {
                pipe.grown = true;
                GROWN.fetch_add(1, Ordering::Relaxed);
            }
        }
        if taken < PACE_BELOW {
            self.pace = true;
        }
    }

    /// Called once at the end of every loop turn. After a turn in which a streaming
    /// pipe brought only a few lines, the next wait leaves the pipes alone for `PACE`
    /// (signals, clients and timers are still heard at once) so that the next read takes
    /// many lines with one read and one write. Never when output is idle.
    pub fn end_turn(&mut self) -> Option<std::time::Duration> {
        self.turn += 1;
        std::mem::take(&mut self.pace).then_some(PACE)
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

    /// Writes `chunk` through to the log file (past the rest of a line an error cut),
    /// and echoes it.
    fn store(&mut self, pipe: &mut Pipe, chunk: &[u8]) {
        let mut bytes = chunk;
        if pipe.resync {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    bytes = &bytes[nl + 1..];
                    pipe.resync = false;
                }
                None => bytes = &[],
            }
        }
        if let Some(ready) = pipe.ready.as_mut() {
            if ready.finds(chunk) {
                ready.seen.store(true, Ordering::Relaxed);
                pipe.ready = None;
                pipe.ready_hit = true;
            }
        }
        if let Some(flag) = &pipe.watch {
            if super::rolling::says_addr_in_use(bytes) {
                flag.store(true, Ordering::Relaxed);
            }
        }
        let mut buf = std::mem::take(&mut self.stamp_buf);
        if !bytes.is_empty() && self.stamps(&pipe.service) {
            bytes = stamp_lines(&mut buf, bytes, &mut pipe.at_line_start);
        }
        if !bytes.is_empty() {
            let stored = self.log(&pipe.service, pipe.stream).append(pipe.id, bytes);
            if !stored && bytes.last() != Some(&b'\n') {
                pipe.resync = true;
            }
        }
        self.stamp_buf = buf;
        if self.echo {
            echo(pipe, chunk);
        }
    }

    /// `sysg logs --rotate`: both log files of `service` rotated now (or once their open
    /// line ends); how many had something to rotate.
    pub fn rotate(&mut self, service: &str) -> usize {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .filter(|&s| self.log(service, s).rotate_soon())
            .count()
    }

    /// Both log files of `service`, there from its start on (empty until it writes).
    pub fn create_logs(&mut self, service: &str) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.log(service, stream).create();
        }
    }

    fn finish(&mut self, pipe: &mut Pipe) {
        // The unterminated last line is ended with a newline so it stays off the next
        // instance's first line.
        if let Some(log) = self.existing_log(&pipe.service, pipe.stream) {
            log.end_line(pipe.id);
        }
        if !pipe.echo_partial.is_empty() {
            let last = std::mem::take(&mut pipe.echo_partial);
            echo_lines(&pipe.service, &last);
        }
    }

    /// Whether `service`'s lines are stored with their receive time.
    fn stamps(&self, service: &str) -> bool {
        self.limits.get(service).is_some_and(|l| l.timestamps)
    }

    /// The log file of `service`'s `stream`, created on first use. Looked up by `&str`:
    /// nothing is allocated per chunk.
    fn log(&mut self, service: &str, stream: Stream) -> &mut LogFile {
        if !self.files.contains_key(service) {
            self.files.insert(service.to_string(), [None, None]);
        }
        let limits = self.limits.get(service).copied().unwrap_or_default();
        let paths = &self.paths;
        // Cannot fail: the entry was inserted just above, and only this thread holds
        // `self`. (The entry API would allocate a key for every chunk.)
        let slot = &mut self.files.get_mut(service).expect("inserted above")[slot(stream)];
        slot.get_or_insert_with(|| LogFile::new(paths.service_log(service, stream), limits))
    }

    fn existing_log(&mut self, service: &str, stream: Stream) -> Option<&mut LogFile> {
        self.files.get_mut(service)?[slot(stream)].as_mut()
    }

    /// Rotation limits of a service's files (from its config; changed on reload).
    pub fn set_limits(&mut self, service: &str, limits: LogLimits) {
        self.limits.insert(service.to_string(), limits);
        if let Some(files) = self.files.get_mut(service) {
            for file in files.iter_mut().flatten() {
                file.set_limits(limits);
            }
        }
    }

    /// Closes the log files of services no longer in the config.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.files.retain(|name, _| keep(name));
    }
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// Reads into `buf` until it is full or the pipe has nothing more right now. A short
/// read means the pipe is empty: no further read is spent to hear EAGAIN.
fn fill(file: &mut File, buf: &mut [u8]) -> (usize, Fill) {
    let mut filled = 0;
    loop {
        let want = buf.len() - filled;
        match file.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Fill::Closed),
            Ok(n) => {
                filled += n;
                if filled == buf.len() {
                    return (filled, Fill::Full);
                }
                if n < want {
                    return (filled, Fill::Drained);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (filled, Fill::Drained),
            Err(_) => return (filled, Fill::Closed),
        }
    }
}

/// Echoes the complete lines of `bytes` (after what waited from earlier reads).
fn echo(pipe: &mut Pipe, bytes: &[u8]) {
    let Some(nl) = bytes.iter().rposition(|&b| b == b'\n') else {
        pipe.echo_partial.extend_from_slice(bytes);
        if pipe.echo_partial.len() > MAX_ECHO_PARTIAL {
            let long = std::mem::take(&mut pipe.echo_partial);
            echo_lines(&pipe.service, &long);
        }
        return;
    };
    let (complete, rest) = bytes.split_at(nl + 1);
    if pipe.echo_partial.is_empty() {
        echo_lines(&pipe.service, complete);
    } else {
        let mut joined = std::mem::take(&mut pipe.echo_partial);
        joined.extend_from_slice(complete);
        echo_lines(&pipe.service, &joined);
    }
    pipe.echo_partial.extend_from_slice(rest);
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

/// `bytes` with the receive time (RFC 3339, UTC, milliseconds) and a space before each
/// line that starts in them, built in `buf`. `at_line_start` carries across chunks.
fn stamp_lines<'a>(buf: &'a mut Vec<u8>, bytes: &[u8], at_line_start: &mut bool) -> &'a [u8] {
    let stamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ ")
        .to_string();
    buf.clear();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if *at_line_start {
            buf.extend_from_slice(stamp.as_bytes());
        }
        buf.extend_from_slice(line);
        *at_line_start = line.last() == Some(&b'\n');
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(text: &str) -> ReadyWatch {
        ReadyWatch::new(Arc::new(AtomicBool::new(false)), text.as_bytes().into())
    }

    #[test]
    fn the_ready_text_is_found_in_one_read_or_across_reads() {
        assert!(watch("ready").finds(b"server is ready\n"));
        let mut w = watch("ready");
        assert!(!w.finds(b"server is re"));
        assert!(w.finds(b"ady\n"));
        // Across three short reads.
        let mut w = watch("ready");
        assert!(!w.finds(b"re"));
        assert!(!w.finds(b"a"));
        assert!(w.finds(b"dy"));
        let mut w = watch("ready");
        assert!(!w.finds(b"not yet\n"));
        assert!(!w.finds(b"still not\n"));
    }

    #[test]
    fn stamps_go_before_each_line_that_starts_and_carry_across_chunks() {
        let mut buf = Vec::new();
        let mut start = true;
        let out =
            String::from_utf8(stamp_lines(&mut buf, b"one\ntw", &mut start).to_vec()).unwrap();
        let lines: Vec<&str> = out.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 2, "{out:?}");
        assert!(
            lines[0].ends_with("Z one\n") && lines[0].len() == 25 + 4,
            "{out:?}"
        );
        assert!(lines[1].ends_with("Z tw"), "{out:?}");
        assert!(!start, "the line goes on in the next chunk");
        let out = stamp_lines(&mut buf, b"o\nthree\n", &mut start).to_vec();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("o\n20"),
            "no stamp in the middle of a line: {out:?}"
        );
        assert!(out.ends_with("Z three\n") && start, "{out:?}");
    }
}
