//! Control-socket clients: accept, check the peer's uid, read one JSON line (capped),
//! queue the reply, write it without blocking, hang up. A client that sends nothing
//! useful in time is dropped; nothing a client does can stall the loop.

use crate::ipc::{Request, Response, MAX_REQUEST_BYTES};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A client gets this long to send its request line and read its reply (unless it is
/// waiting for a stop or restart to finish).
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

pub struct Client {
    pub id: u64,
    pub stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    written: usize,
    /// A request has been parsed; only the reply remains to be sent.
    pub answered: bool,
    /// The peer shut down its writing side and waits for the reply: not polled for
    /// input any more (a hang-up still shows as POLLHUP).
    pub read_closed: bool,
    /// An events subscriber: kept once its output is written, for more to come.
    pub streaming: bool,
}

pub enum ClientEvent {
    /// Need more input (or output space): keep it.
    Pending,
    /// A complete request to act on.
    Request(Request),
    /// Done or broken: drop it.
    Close,
}

impl Client {
    pub fn new(id: u64, stream: UnixStream) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        Ok(Client {
            id,
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            written: 0,
            answered: false,
            read_closed: false,
            streaming: false,
        })
    }

    /// Queues `line` after what is still unwritten (an events subscriber's next one).
    pub fn push(&mut self, line: &[u8]) {
        if self.written == self.outbuf.len() {
            self.outbuf.clear();
            self.written = 0;
        }
        self.outbuf.extend_from_slice(line);
    }

    /// Bytes queued and not yet written.
    pub fn backlog(&self) -> usize {
        self.outbuf.len() - self.written
    }

    /// What to poll this client for.
    pub fn poll_events(&self) -> i16 {
        let read = if self.read_closed { 0 } else { libc::POLLIN };
        if self.wants_write() {
            read | libc::POLLOUT
        } else {
            read
        }
    }

    pub fn wants_write(&self) -> bool {
        self.written < self.outbuf.len()
    }

    pub fn on_readable(&mut self) -> ClientEvent {
        if self.answered {
            // Anything after the request line is ignored; EOF just means they are waiting.
            let mut sink = [0u8; 512];
            return match self.stream.read(&mut sink) {
                // Half closed, still reading: the reply may come later (a status whose
                // figures are being gathered, a stop being waited for).
                Ok(0) => {
                    self.read_closed = true;
                    ClientEvent::Pending
                }
                Err(e)
                    if e.kind() != io::ErrorKind::WouldBlock
                        && e.kind() != io::ErrorKind::Interrupted =>
                {
                    ClientEvent::Close
                }
                _ => ClientEvent::Pending,
            };
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return ClientEvent::Close,
                Ok(n) => {
                    if let Some(pos) = chunk[..n].iter().position(|&b| b == b'\n') {
                        self.inbuf.extend_from_slice(&chunk[..pos]);
                        return self.parse();
                    }
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.len() > MAX_REQUEST_BYTES {
                        self.reply(&Response::error("request too large (limit 1 MiB)"));
                        return ClientEvent::Pending;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ClientEvent::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ClientEvent::Close,
            }
        }
    }

    fn parse(&mut self) -> ClientEvent {
        let line = std::mem::take(&mut self.inbuf);
        match serde_json::from_slice::<Request>(&line) {
            Ok(req) => {
                self.answered = true;
                ClientEvent::Request(req)
            }
            Err(e) => {
                self.reply(&Response::error(format!("malformed request: {e}")));
                ClientEvent::Pending
            }
        }
    }

    /// Queues the one reply; the client is closed once it has been written.
    pub fn reply(&mut self, resp: &Response) {
        self.answered = true;
        self.outbuf = encode(resp, &self.stream);
        self.written = 0;
    }

    /// A second handle on the connection, for a worker that will write the reply itself
    /// (`send_from_worker`); the client is then answered as far as the loop is concerned.
    pub fn hand_off(&mut self) -> Option<UnixStream> {
        let stream = self.stream.try_clone().ok()?;
        self.answered = true;
        Some(stream)
    }

    /// Writes what the socket takes. `Close` once everything is out, or on error.
    pub fn on_writable(&mut self) -> ClientEvent {
        while self.wants_write() {
            match self.stream.write(&self.outbuf[self.written..]) {
                Ok(0) => return ClientEvent::Close,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ClientEvent::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ClientEvent::Close,
            }
        }
        if self.streaming {
            ClientEvent::Pending
        } else {
            ClientEvent::Close
        }
    }
}

/// Replies above this size ask for a bigger socket send buffer.
const BIG_REPLY: usize = 128 * 1024;

/// How long a worker keeps writing a reply to a client that does not read it.
const WORKER_SEND_WITHIN: Duration = Duration::from_secs(10);

/// One reply line.
fn encode(resp: &Response, stream: &UnixStream) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(resp).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    bytes.push(b'\n');
    if bytes.len() > BIG_REPLY {
        // A status of thousands of services: room for it all in one write if the system
        // allows, instead of a piece per turn. A refusal costs only turns.
        let _ = crate::sys::set_send_buffer(stream, bytes.len());
    }
    bytes
}

/// Writes a reply from a worker thread on a handle from [`Client::hand_off`], so a large
/// reply (a status of thousands of services) does not wait for the loop's turns. The
/// descriptor is shared with the loop's, non-blocking: waits for room with `poll`,
/// bounded. A peer that went away just ends it.
pub fn send_from_worker(stream: &UnixStream, resp: &Response) {
    let bytes = encode(resp, stream);
    let deadline = Instant::now() + WORKER_SEND_WITHIN;
    let mut written = 0;
    while written < bytes.len() {
        match (&*stream).write(&bytes[written..]) {
            Ok(0) => return,
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let mut fds = [libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                if crate::sys::poll_for(&mut fds, Some(left)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Most control clients held at once; one more displaces the oldest idle client.
pub const MAX_CLIENTS: usize = 64;

/// File descriptors below the limit that control clients never take: room to spawn
/// services (pipes, log files) and to write state files.
pub fn fd_reserve(limit: u64) -> u64 {
    (limit / 4).min(32)
}

/// What to do with a connection just accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Only in place of the oldest idle client (refused when there is none).
    DisplaceOldestIdle,
}

/// Whether fd pressure began or ended with this connection: each is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Unchanged,
    Began,
    Ended,
}

/// Admission of control clients. Under fd pressure (an accepted fd inside the reserve,
/// or accept failing with EMFILE) the number of clients is frozen where it stood, so a
/// flood of idle connections only displaces older ones. Pressure ends once a connection
/// lands outside the reserve while the clients are down to a fraction of that number.
#[derive(Debug)]
pub struct Admission {
    cap: usize,
    pressure: bool,
}

impl Admission {
    pub const fn new() -> Admission {
        Admission {
            cap: MAX_CLIENTS,
            pressure: false,
        }
    }

    /// A connection accepted as fd `fd`, with `held` clients already there.
    pub fn on_accept(&mut self, fd: i32, held: usize, limit: Option<u64>) -> (Admit, Pressure) {
        let fd = fd.max(0) as u64;
        let in_reserve = limit.is_some_and(|l| fd >= l.saturating_sub(fd_reserve(l)));
        let mut change = Pressure::Unchanged;
        if self.pressure && !in_reserve && (held == 0 || held * 2 < self.cap) {
            self.pressure = false;
            self.cap = MAX_CLIENTS;
            change = Pressure::Ended;
        }
        if in_reserve {
            if !self.pressure {
                self.pressure = true;
                change = Pressure::Began;
            }
            self.cap = self.cap.min(held.max(1));
        }
        let admit = if held >= self.cap {
            Admit::DisplaceOldestIdle
        } else {
            Admit::Yes
        };
        (admit, change)
    }

    /// accept(2) failed for want of descriptors with `held` clients there. True when
    /// this begins the pressure (log it).
    pub fn on_exhausted(&mut self, held: usize) -> bool {
        self.cap = self.cap.min(held.max(1));
        !std::mem::replace(&mut self.pressure, true)
    }

    #[cfg(test)]
    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_beyond_the_cap_displace_the_oldest_idle() {
        let mut a = Admission::new();
        assert_eq!(a.on_accept(10, 63, Some(1024)).0, Admit::Yes);
        assert_eq!(
            a.on_accept(10, 64, Some(1024)),
            (Admit::DisplaceOldestIdle, Pressure::Unchanged)
        );
    }

    #[test]
    fn an_fd_in_the_reserve_freezes_the_client_count_and_is_reported_once() {
        let mut a = Admission::new();
        assert_eq!(
            a.on_accept(48, 30, Some(64)),
            (Admit::DisplaceOldestIdle, Pressure::Began)
        );
        assert_eq!(a.cap(), 30);
        // Holes left by displaced clients give low fds; the count stays frozen.
        assert_eq!(
            a.on_accept(20, 30, Some(64)),
            (Admit::DisplaceOldestIdle, Pressure::Unchanged)
        );
        assert_eq!(
            a.on_accept(49, 30, Some(64)),
            (Admit::DisplaceOldestIdle, Pressure::Unchanged)
        );
        // Once the flood has drained, pressure ends.
        assert_eq!(a.on_accept(20, 3, Some(64)), (Admit::Yes, Pressure::Ended));
        assert_eq!(a.cap(), MAX_CLIENTS);
    }

    #[test]
    fn accept_failing_for_want_of_fds_is_reported_once() {
        let mut a = Admission::new();
        assert!(a.on_exhausted(5));
        assert!(!a.on_exhausted(5));
        assert_eq!(a.on_accept(7, 5, None).0, Admit::DisplaceOldestIdle);
        assert_eq!(a.on_accept(7, 0, None), (Admit::Yes, Pressure::Ended));
    }
}
