//! The datagram socket a `notify: true` service sends sd_notify messages to (abstract
//! namespace, so nothing is left on disk), with the sender's pid from SCM_CREDENTIALS.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A bound notify socket and the `NOTIFY_SOCKET` value that names it (`@name`).
pub struct NotifySocket {
    pub fd: OwnedFd,
    pub address: String,
}

/// Binds an abstract datagram socket called `name` (at most 100 bytes) that receives
/// the sender's credentials with every message.
pub fn bind(name: &str) -> io::Result<NotifySocket> {
    if name.len() > 100 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "notify socket name too long",
        ));
    }
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = super::check(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; zeroed is valid and the abstract name starts
    // after the leading NUL of sun_path.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    let one: libc::c_int = 1;
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes; `one` a live c_int.
    unsafe {
        super::check(libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        ))?;
        super::check(libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
    }
    Ok(NotifySocket {
        fd,
        address: format!("@{name}"),
    })
}

/// One waiting message and its sender's pid; `Ok(None)` when none is waiting.
pub fn receive(fd: RawFd) -> io::Result<Option<(Vec<u8>, Option<i32>)>> {
    let mut buf = vec![0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // Room for one SCM_CREDENTIALS message, 8-aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; zeroed is valid, and the pointers set below stay
    // alive for the recvmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` describes live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    let mut pid = None;
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled, within
    // msg_controllen; a credentials message holds a ucred.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
            {
                let cred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::ucred);
                pid = Some(cred.pid);
            } else if (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                // Passed descriptors (FDSTORE) are not kept: close them.
                let data = libc::CMSG_DATA(cmsg) as *const libc::c_int;
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for k in 0..count {
                    libc::close(std::ptr::read_unaligned(data.add(k)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Some((buf, pid)))
}
