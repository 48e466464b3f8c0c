//! The only `unsafe` in the crate (here and in `spawn`): thin wrappers over libc calls
//! that std does not offer.
//! Each returns `io::Result` (or a plain value when the call cannot fail).

pub mod exec;
pub mod notify;
pub mod spawn;
pub mod term;
pub mod users;

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
    let last_signal = libc::SIGRTMAX();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (sigaction, prctl, getppid, setsid, _exit-free error returns).
    unsafe {
        cmd.pre_exec(move || {
            // An ignored signal stays ignored across exec: the supervisor's own choices
            // (and whatever its parent ignored) must not leak into what it starts.
            reset_signal_dispositions(last_signal);
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

/// `poll` with a timeout finer than a millisecond (`ppoll`); None waits forever.
pub fn poll_for(
    fds: &mut [libc::pollfd],
    timeout: Option<std::time::Duration>,
) -> io::Result<usize> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the pointer and length describe the caller's live slice; `ts_ptr` is null
    // or points at `ts`, alive for the call; a null signal mask leaves the mask alone.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
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

/// Asks for a send buffer of `bytes` on a socket (the kernel caps it at
/// `net.core.wmem_max`), so a large reply leaves in fewer loop turns.
pub fn set_send_buffer(stream: &UnixStream, bytes: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: size is a live c_int and its length is passed with it.
    check(unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
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

/// Signals whose default action ends the process (signal(7)) and that the supervisor has
/// no use for, the real-time ones included. Not listed: SIGKILL and SIGSTOP (they cannot
/// be caught), SIGTERM/SIGINT/SIGHUP/SIGCHLD (the supervisor handles them), and the
/// fault signals a bug raises synchronously (SEGV, BUS, ILL, FPE, ABRT, SYS, TRAP).
pub fn stray_signals() -> Vec<i32> {
    let mut sigs = vec![
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPIPE,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSTKFLT,
        libc::SIGPWR,
        libc::SIGQUIT,
    ];
    sigs.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    sigs
}

/// Sets `sig` to be ignored (SIG_IGN).
pub fn ignore_signal(sig: i32) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN)
}

fn set_disposition(sig: i32, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags); the handler
    // is SIG_IGN or SIG_DFL, never a function pointer, and the old action is not read.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        check(libc::sigaction(sig, &action, std::ptr::null_mut())).map(drop)
    }
}

/// Every catchable signal back to its default action, for a child between fork and
/// exec. Only sigaction is called, which is async-signal-safe; signals the C library
/// reserves for itself refuse the change, which is ignored.
fn reset_signal_dispositions(last_signal: i32) {
    for sig in 1..=last_signal {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            let _ = set_disposition(sig, libc::SIG_DFL);
        }
    }
}

/// The soft limit on open file descriptors, `None` when unlimited or unknown.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a live rlimit the call fills in.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }).ok()?;
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The effective gid.
pub fn getegid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// The effective uid: the owner of every file this process creates.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A path component as a C string; a NUL inside is an error, never a truncated name.
fn c_name(name: &std::ffi::OsStr) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name contains a NUL byte"))
}

/// `openat(2)`: `name` relative to the directory `dir`. `O_CLOEXEC` is always added.
pub fn openat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let name = c_name(name)?;
    loop {
        // SAFETY: `name` is a live NUL-terminated string; `dir` is a borrowed open fd.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: openat just returned this fresh descriptor; nothing else owns it.
            return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `mkdirat(2)`: creates directory `name` in `dir` with `mode` (less the umask).
pub fn mkdirat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: u32,
) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `name` is a live NUL-terminated string; `dir` is a borrowed open fd.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `unlinkat(2)`: removes `name` from `dir` (a symlink itself, never its target);
/// `remove_dir` removes an empty directory instead.
pub fn unlinkat(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    remove_dir: bool,
) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is a live NUL-terminated string; `dir` is a borrowed open fd.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat(2)` within or between two directories held open. A symlink at `to` is
/// replaced, never followed.
pub fn renameat(
    from_dir: std::os::fd::BorrowedFd<'_>,
    from: &std::ffi::OsStr,
    to_dir: std::os::fd::BorrowedFd<'_>,
    to: &std::ffi::OsStr,
) -> io::Result<()> {
    let from = c_name(from)?;
    let to = c_name(to)?;
    // SAFETY: both names are live NUL-terminated strings; both dirs are borrowed open fds.
    check(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
        )
    })
    .map(drop)
}

/// What `fstatat(2)` says about an entry, without following it when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    /// `st_mode`: type bits and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

impl EntryInfo {
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    pub fn is_socket(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW`: the entry `name` in `dir` itself.
// The stat field types differ between targets (st_nlink is u32 on some).
#[allow(clippy::unnecessary_cast)]
pub fn lstatat(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<EntryInfo> {
    let name = c_name(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points to writable memory the size of a stat; `name` is NUL-terminated.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled in the whole struct.
    let st = unsafe { st.assume_init() };
    Ok(EntryInfo {
        mode: st.st_mode,
        uid: st.st_uid,
        nlink: st.st_nlink as u64,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    })
}

/// Fills `buf` from the kernel's random pool (for unguessable temp file names).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the pointer and length describe the live, writable tail of `buf`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`); returns the size the kernel set.
pub fn set_pipe_size(fd: RawFd, bytes: usize) -> io::Result<usize> {
    let arg = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and only resizes the pipe behind `fd`; a bad fd
    // or size is reported as an error.
    let granted = check(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, arg) })?;
    Ok(granted as usize)
}
