//! Control-socket clients: accept, check the peer's uid, read one JSON line (capped),
//! queue the reply, write it without blocking, hang up. A client that sends nothing
//! useful in time is dropped; nothing a client does can stall the loop.

use crate::ipc::{Request, Response, MAX_REQUEST_BYTES};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

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
        })
    }

    pub fn wants_write(&self) -> bool {
        self.written < self.outbuf.len()
    }

    pub fn on_readable(&mut self) -> ClientEvent {
        if self.answered {
            // Anything after the request line is ignored; EOF just means they are waiting.
            let mut sink = [0u8; 512];
            return match self.stream.read(&mut sink) {
                Ok(0) if !self.wants_write() => ClientEvent::Close,
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
        let mut bytes = serde_json::to_vec(resp).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        bytes.push(b'\n');
        self.outbuf = bytes;
        self.written = 0;
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
        ClientEvent::Close
    }
}
