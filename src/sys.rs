//! The only `unsafe` in the crate: thin wrappers over libc calls that std does not offer.
//! Each returns `io::Result` (or a plain value when the call cannot fail).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

pub fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Sends `sig` to one process. `sig == 0` only checks that it exists.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: plain syscall; pid > 0 so it can never address a group or every process.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Sends `sig` to every process of group `pgid`.
pub fn killpg(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: plain syscall; pgid > 1 so it never means "our own group" (0) or init.
    check(unsafe { libc::killpg(pgid, sig) }).map(drop)
}

pub fn process_exists(pid: i32) -> bool {
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

pub fn group_exists(pgid: i32) -> bool {
    match killpg(pgid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

/// Reaps one exited child, if any, without blocking.
pub fn reap_any() -> Option<(i32, WaitStatus)> {
    let mut status: libc::c_int = 0;
    // SAFETY: status points to a live c_int; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let ws = if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        // Stopped/continued are not requested (no WUNTRACED), but keep the reaper total.
        WaitStatus::Signaled(0)
    };
    Some((pid, ws))
}

/// Makes this process adopt orphaned descendants, so escaped grandchildren stay ours to reap.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// Arranges for the child to get `sig` when the thread that spawned it dies, and to start
/// in a new session when `new_session` (daemonizing) instead of only a new group.
pub fn configure_child(cmd: &mut Command, death_signal: Option<i32>, new_session: bool) {
    let parent = getpid();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (prctl, getppid, setsid, _exit-free error returns).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(sig) = death_signal {
                if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect. (Compare with its
                // pid, not with 1: as a container's init the parent *is* pid 1.)
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            if new_session && libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd the caller owns; F_GETFL/F_SETFL take an int.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)).map(drop)
    }
}

pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd the caller owns.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFD))?;
        check(libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC)).map(drop)
    }
}

pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd the caller owns.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFD))?;
        check(libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC)).map(drop)
    }
}

/// `poll(2)` over `fds`; `timeout_ms < 0` blocks until an fd is ready. EINTR counts as
/// "nothing ready" so the caller simply goes round its loop again.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: the pointer and length describe the caller's live slice.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n == -1 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// Non-blocking exclusive lock. `Ok(false)` when another process holds it.
pub fn try_lock_exclusive(fd: &impl AsRawFd) -> io::Result<bool> {
    try_flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)
}

/// Non-blocking shared lock (used to ask "is anyone holding this exclusively?").
pub fn try_lock_shared(fd: &impl AsRawFd) -> io::Result<bool> {
    try_flock(fd.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB)
}

/// Blocking exclusive lock, released when the fd is closed.
pub fn lock_exclusive(fd: &impl AsRawFd) -> io::Result<()> {
    try_flock(fd.as_raw_fd(), libc::LOCK_EX).map(drop)
}

fn try_flock(fd: RawFd, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock on an fd the caller owns.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// The uid of the process at the other end of a Unix socket.
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len point to a properly sized ucred for SO_PEERCRED.
    check(unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(cred.uid)
}

/// Bytes per memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Clock ticks per second, the unit of CPU times in /proc.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Creates a pipe whose both ends are close-on-exec.
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a two-element array as pipe2 requires.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just returned these two fresh descriptors; we own them.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Takes ownership of an fd number inherited from our parent (the daemon handshake
/// pipe), after checking it is open. It is made close-on-exec so services never see it.
pub fn take_inherited_fd(fd: RawFd) -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return None;
    }
    // SAFETY: F_GETFD only queries the descriptor; -1 means it is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return None;
    }
    set_cloexec(fd).ok()?;
    // SAFETY: the fd is open, was passed to us for exactly this purpose, and nothing
    // else in this process refers to it.
    Some(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`); returns the size the kernel set.
pub fn set_pipe_size(fd: RawFd, bytes: usize) -> io::Result<usize> {
    let arg = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and only resizes the pipe behind `fd`; a bad fd
    // or size is reported as an error.
    let granted = check(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, arg) })?;
    Ok(granted as usize)
}
