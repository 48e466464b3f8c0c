//! What a foreground supervisor prints: service lines on stdout (`name | line`) and its
//! own log lines on stderr. One thread does the writing, from a bounded queue, so a
//! terminal that stops reading (Ctrl-S, a paused pager, a stuck log collector) never
//! blocks the loop. When the queue is full, lines are left out of the echo only (the
//! log files have every one of them) and a note on stderr says how many.
//!
//! Before `start`, and if its thread cannot be started, writes go straight out.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Bytes waiting for the terminal before further lines are left out.
const MAX_QUEUED: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Out,
    Err,
}

struct Queue {
    started: bool,
    chunks: VecDeque<(To, Vec<u8>)>,
    bytes: usize,
    /// Lines left out since the last note.
    dropped: u64,
    /// The writer holds a chunk it took off the queue.
    writing: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    started: false,
    chunks: VecDeque::new(),
    bytes: 0,
    dropped: 0,
    writing: false,
});
/// Signalled when a chunk is queued (for the writer) and when one is written (for `flush`).
static CHANGED: Condvar = Condvar::new();

fn queue() -> MutexGuard<'static, Queue> {
    // The lock guards plain data; a panic elsewhere cannot leave it half-changed.
    QUEUE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the writer thread. Until then (or if it cannot start) writes are direct.
pub fn start() {
    let spawned = std::thread::Builder::new()
        .name("terminal".into())
        .spawn(writer);
    if spawned.is_ok() {
        queue().started = true;
    }
}

/// Queues `bytes` (whole lines) for stdout or stderr; leaves them out if the terminal is
/// more than [`MAX_QUEUED`] bytes behind.
pub fn write(to: To, bytes: Vec<u8>) {
    let mut q = queue();
    if !q.started {
        drop(q);
        write_out(to, &bytes);
        return;
    }
    // An empty queue takes any chunk (one pipe read's lines, prefixed: a few MiB at
    // most), so only a terminal that is really behind loses lines.
    if q.bytes > 0 && q.bytes + bytes.len() > MAX_QUEUED {
        q.dropped += lines_in(&bytes);
        CHANGED.notify_all();
        return;
    }
    q.bytes += bytes.len();
    q.chunks.push_back((to, bytes));
    CHANGED.notify_all();
}

/// Waits until everything queued is written, at most `limit` (a terminal that does not
/// read must not keep the supervisor from exiting). True if all was written.
pub fn flush(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut q = queue();
    while q.started && (!q.chunks.is_empty() || q.writing || q.dropped > 0) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        q = match CHANGED.wait_timeout(q, left) {
            Ok((q, _)) => q,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    true
}

fn writer() {
    loop {
        let (chunk, dropped) = {
            let mut q = queue();
            while q.chunks.is_empty() && q.dropped == 0 {
                q = match CHANGED.wait(q) {
                    Ok(q) => q,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            let chunk = q.chunks.pop_front();
            if let Some((_, bytes)) = &chunk {
                q.bytes -= bytes.len();
            }
            // The note goes out once the backlog before it has been written.
            let dropped = if q.chunks.is_empty() {
                std::mem::take(&mut q.dropped)
            } else {
                0
            };
            q.writing = true;
            (chunk, dropped)
        };
        if let Some((to, bytes)) = chunk {
            write_out(to, &bytes);
        }
        if dropped > 0 {
            let note = format!(
                "sysg: {dropped} line(s) not shown here: the terminal was not reading \
                 (the log files have them all)\n"
            );
            write_out(To::Err, note.as_bytes());
        }
        queue().writing = false;
        CHANGED.notify_all();
    }
}

fn write_out(to: To, bytes: &[u8]) {
    // A closed or broken terminal is not the supervisor's problem: the logs have it all.
    let _ = match to {
        To::Out => io::stdout().lock().write_all(bytes),
        To::Err => io::stderr().lock().write_all(bytes),
    };
}

fn lines_in(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count().max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_of_a_dropped_chunk() {
        assert_eq!(lines_in(b"a\nb\n"), 2);
        assert_eq!(lines_in(b"no newline"), 1);
    }
}
