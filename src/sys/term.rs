//! The terminal for `status --watch`: keys one at a time without echo, given back as
//! they were on drop.

use std::io;

/// Keys come one at a time, unechoed, Ctrl-C as a byte (no signal leaves the terminal
/// in that state); the settings before are put back on drop.
pub struct RawKeys {
    saved: libc::termios,
}

impl RawKeys {
    /// For standard input; an error when it is not a terminal.
    pub fn enable() -> io::Result<RawKeys> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == -1 {
                return Err(io::Error::last_os_error());
            }
            t
        };
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: `raw` is a valid termios derived from the current one.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawKeys { saved })
    }
}

impl Drop for RawKeys {
    fn drop(&mut self) {
        // SAFETY: puts back the termios read in `enable`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

/// Waits up to `ms` for a key on standard input; the bytes read (empty on timeout).
pub fn read_keys(ms: i32) -> Vec<u8> {
    let mut fds = [libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    }];
    if super::poll(&mut fds, ms).unwrap_or(0) == 0 {
        return Vec::new();
    }
    let mut buf = [0u8; 64];
    // SAFETY: reads into a live buffer of its length from fd 0.
    let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return vec![b'q'];
    }
    buf[..n as usize].to_vec()
}
