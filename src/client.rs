//! The client half of the control socket: connect, send one request line, read one reply.
//! Every wait is bounded: a supervisor that is still starting gets `BOOT_WAIT` to bind its
//! socket, and one that is stopped (SIGSTOP) or wedged gets the caller's timeout, after
//! which the client gives up with exit 75 (`EX_TEMPFAIL`).

use crate::error::{Error, Result};
use crate::ipc::{Request, Response};
use crate::paths::Paths;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Default wait for a reply; stop/restart requests pass a longer one.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client waits for a supervisor that holds the sysg.pid lock but has not
/// bound its socket yet (it is still clearing a crashed predecessor's leftovers): the
/// same bound `start -d` gives the supervisor's handshake.
pub const BOOT_WAIT: Duration = Duration::from_secs(60);

/// How often the socket file is looked for while a supervisor boots.
const BOOT_POLL: Duration = Duration::from_millis(25);

/// An error that means "the supervisor did not answer or finish in time": exit 75
/// (`EX_TEMPFAIL`), worth trying again.
pub fn gave_up(text: String) -> Error {
    Error::TempFail(text)
}

/// Why a live supervisor might not be answering, for the give-up message.
pub fn unresponsive_note(pid: i32) -> String {
    match crate::procfs::stat(pid).map(|s| s.state) {
        Some('T') | Some('t') => {
            format!("it is stopped (SIGSTOP or a debugger); 'kill -CONT {pid}' resumes it")
        }
        _ => "it may be wedged; see supervisor.log".to_string(),
    }
}

/// A supervisor that hung up on us was on its way out (a request that arrives during the
/// last moments of a shutdown is never read): whether it is gone within a second.
fn ended(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if crate::procfs::stat(pid).is_none_or(|s| s.state == 'Z') {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `req` to the running supervisor; returns the reply and the pid of the
/// supervisor that gave it. `Err(NotRunning)` when there is none.
pub fn request_to(paths: &Paths, req: &Request, timeout: Duration) -> Result<(i32, Response)> {
    let (pid, stream) = connect(paths)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| Error::io("socket", e))?;
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("socket", e))?;
    let mut line =
        serde_json::to_vec(req).map_err(|e| Error::msg(format!("cannot encode request: {e}")))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(|e| {
        if timed_out(&e) {
            gave_up(format!(
                "supervisor (pid {pid}) did not take the request within {}s; {}",
                REPLY_TIMEOUT.as_secs(),
                unresponsive_note(pid)
            ))
        } else {
            Error::io("cannot send request to supervisor", e)
        }
    })?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(|e| {
        if timed_out(&e) {
            gave_up(format!(
                "supervisor (pid {pid}) did not answer within {}s; {}",
                timeout.as_secs(),
                unresponsive_note(pid)
            ))
        } else if ended(pid) {
            Error::NotRunning("Supervisor stopped before it answered".into())
        } else {
            Error::io("cannot read supervisor reply", e)
        }
    })?;
    if reply.is_empty() {
        if ended(pid) {
            return Err(Error::NotRunning(
                "Supervisor stopped before it answered".into(),
            ));
        }
        return Err(Error::msg(
            "supervisor closed the connection without a reply",
        ));
    }
    if !reply.ends_with('\n') && ended(pid) {
        // Cut off mid-reply by the supervisor's exit.
        return Err(Error::NotRunning(
            "Supervisor stopped before it answered".into(),
        ));
    }
    let resp = serde_json::from_str(&reply)
        .map_err(|e| Error::msg(format!("malformed reply from supervisor: {e}")))?;
    Ok((pid, resp))
}

/// Sends `req` and keeps the connection: the reply, then a reader of the lines that
/// follow (an events subscription), each as the supervisor sends it.
pub fn subscribe(paths: &Paths, req: &Request) -> Result<(Response, BufReader<UnixStream>)> {
    let (_, stream) = connect(paths)?;
    stream
        .set_write_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("socket", e))?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("socket", e))?;
    let mut line =
        serde_json::to_vec(req).map_err(|e| Error::msg(format!("cannot encode request: {e}")))?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(|e| Error::io("cannot send request to supervisor", e))?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader
        .read_line(&mut reply)
        .map_err(|e| Error::io("cannot read supervisor reply", e))?;
    let resp = serde_json::from_str(&reply)
        .map_err(|e| Error::msg(format!("malformed reply from supervisor: {e}")))?;
    // From here on the lines come when something happens.
    reader
        .get_ref()
        .set_read_timeout(None)
        .map_err(|e| Error::io("socket", e))?;
    Ok((resp, reader))
}

/// Like `request_to`, but a reply with `ok: false` becomes an error.
pub fn call(paths: &Paths, req: &Request, timeout: Duration) -> Result<Response> {
    call_to(paths, req, timeout).map(|(_, resp)| resp)
}

/// `call`, also returning the pid of the supervisor that answered.
pub fn call_to(paths: &Paths, req: &Request, timeout: Duration) -> Result<(i32, Response)> {
    let (pid, resp) = request_to(paths, req, timeout)?;
    if resp.ok {
        Ok((pid, resp))
    } else if resp.busy {
        Err(Error::TempFail(
            resp.error.unwrap_or_else(|| "supervisor busy".into()),
        ))
    } else {
        Err(Error::msg(
            resp.error.unwrap_or_else(|| "request failed".into()),
        ))
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects to the live supervisor's socket. A supervisor that is booting (lock held,
/// socket not bound yet) or exiting (socket already removed) is waited for, up to
/// `BOOT_WAIT`; once it is gone this is `NotRunning`.
fn connect(paths: &Paths) -> Result<(i32, UnixStream)> {
    let sock = paths.socket();
    let deadline = Instant::now() + BOOT_WAIT;
    loop {
        let Some(pid) = crate::state::running_supervisor(paths) else {
            return Err(Error::NotRunning("No supervisor running".into()));
        };
        if sock.exists() {
            match connect_bounded(&sock, REPLY_TIMEOUT) {
                Some(Ok(stream)) => return Ok((pid, stream)),
                Some(Err(e))
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    return Err(Error::msg(format!(
                        "supervisor is running but its socket {} does not answer: {e}",
                        sock.display()
                    )));
                }
                Some(Err(_)) => {}
                None => {
                    return Err(gave_up(format!(
                        "supervisor (pid {pid}) did not accept a connection within {}s; {}",
                        REPLY_TIMEOUT.as_secs(),
                        unresponsive_note(pid)
                    )))
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(gave_up(format!(
                "supervisor (pid {pid}) is still starting: no control socket after {}s; {}",
                BOOT_WAIT.as_secs(),
                unresponsive_note(pid)
            )));
        }
        std::thread::sleep(BOOT_POLL);
    }
}

/// `connect(2)` blocks while the listener's backlog is full (a stopped supervisor with
/// many clients queued), so it runs on a helper thread: `None` if it did not finish in
/// time. The thread is left behind; the client exits soon after giving up.
fn connect_bounded(sock: &Path, limit: Duration) -> Option<io::Result<UnixStream>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = sock.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(&path));
        });
    match spawned {
        Ok(_) => rx.recv_timeout(limit).ok(),
        Err(_) => Some(UnixStream::connect(sock)),
    }
}
