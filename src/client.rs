//! The client half of the control socket: connect, send one request line, read one reply.

use crate::error::{Error, Result};
use crate::ipc::{Request, Response};
use crate::paths::Paths;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Default wait for a reply; stop/restart requests pass a longer one.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `req` to the running supervisor. `Err(NotRunning)` when there is none.
pub fn request(paths: &Paths, req: &Request, timeout: Duration) -> Result<Response> {
    if crate::state::running_supervisor(paths).is_none() {
        return Err(Error::NotRunning("No supervisor running".into()));
    }
    let sock = paths.socket();
    let mut stream = UnixStream::connect(&sock).map_err(|e| {
        Error::msg(format!(
            "supervisor is running but its socket {} does not answer: {e}",
            sock.display()
        ))
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| Error::io("socket", e))?;
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("socket", e))?;
    let mut line =
        serde_json::to_vec(req).map_err(|e| Error::msg(format!("cannot encode request: {e}")))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| Error::io("cannot send request to supervisor", e))?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(|e| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            Error::msg(format!(
                "supervisor did not answer within {}s",
                timeout.as_secs()
            ))
        } else {
            Error::io("cannot read supervisor reply", e)
        }
    })?;
    if reply.is_empty() {
        return Err(Error::msg(
            "supervisor closed the connection without a reply",
        ));
    }
    serde_json::from_str(&reply)
        .map_err(|e| Error::msg(format!("malformed reply from supervisor: {e}")))
}

/// Like `request`, but a reply with `ok: false` becomes an error.
pub fn call(paths: &Paths, req: &Request, timeout: Duration) -> Result<Response> {
    let resp = request(paths, req, timeout)?;
    if resp.ok {
        Ok(resp)
    } else {
        Err(Error::msg(
            resp.error.unwrap_or_else(|| "request failed".into()),
        ))
    }
}
