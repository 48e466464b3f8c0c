//! Spawning without copying the supervisor: `clone(CLONE_VM | CLONE_VFORK)`, the way
//! `posix_spawn` does it, with the steps services need between clone and exec (a process
//! group, the parent-death signal, default signal dispositions, a working dir, the
//! standard fds). The parent is suspended until the child has called `execve` or exited,
//! so no page tables are copied and the spawn costs about one `execve`.
//!
//! The child runs on its own stack in the parent's memory: it may only make raw
//! syscalls (no allocation, no locks: another thread of the parent may hold them).
//! Everything it needs is prepared here first.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack: it runs a handful of syscalls, then exec replaces it.
const CHILD_STACK: usize = 64 * 1024;

/// What to run, and how.
pub struct Spawn {
    pub program: CString,
    pub argv: Vec<CString>,
    /// `KEY=value` entries.
    pub env: Vec<CString>,
    pub dir: Option<CString>,
    /// Duplicated onto fds 0, 1 and 2.
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// A process group of its own (the child leads it).
    pub process_group: bool,
    /// Sent to the child when the spawning thread dies.
    pub death_signal: Option<i32>,
    /// Who the child runs as.
    pub creds: Option<Creds>,
    pub umask: Option<u32>,
    /// A `cgroup.procs` open for writing: the child moves itself there first, while
    /// it still has the supervisor's credentials.
    pub cgroup_procs: Option<RawFd>,
    /// `(RLIMIT_*, soft, hard)`, set before the credentials change (raising a hard
    /// limit needs root).
    pub limits: Vec<(u32, u64, u64)>,
}

/// A uid, gid and supplementary groups, set in that order: groups, gid, uid.
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Where the child failed, with `errno`.
#[derive(Clone, Copy)]
enum Stage {
    Setup = 1,
    Dir = 2,
    Exec = 3,
    Limits = 4,
    Creds = 5,
    Cgroup = 6,
}

struct Child<'a> {
    spec: &'a Spawn,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    parent: libc::pid_t,
    old_mask: libc::sigset_t,
    last_signal: i32,
    /// Set by a child that failed: stage * 65536 + errno.
    failure: AtomicI32,
}

/// `KEY=value` for `execve`; a NUL inside either part is an error.
pub fn env_entry(key: &OsStr, value: &OsStr) -> io::Result<CString> {
    let mut bytes = key.as_bytes().to_vec();
    bytes.push(b'=');
    bytes.extend_from_slice(value.as_bytes());
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "environment variable {} holds a NUL byte",
                key.to_string_lossy()
            ),
        )
    })
}

/// A C string of `s`; a NUL inside is an error naming `what`.
pub fn c_string(s: impl Into<OsString>, what: &str) -> io::Result<CString> {
    CString::new(s.into().into_vec()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} holds a NUL byte"),
        )
    })
}

/// Starts the child; returns its pid once it has exec'd. A failure before or at exec
/// (no such working dir, no such program) is returned as the error, the child reaped.
pub fn spawn(spec: &Spawn) -> io::Result<i32> {
    for fd in [spec.stdin, spec.stdout, spec.stderr] {
        if fd <= 2 {
            // dup2 onto itself would keep FD_CLOEXEC, and an earlier dup2 could clobber it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "child fds must not be 0, 1 or 2",
            ));
        }
    }
    let argv: Vec<*const libc::c_char> = spec
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = spec
        .env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut stack = vec![0u8; CHILD_STACK];
    // No handler of ours may run in the child, on the parent's memory: every signal is
    // held across the clone, and the child restores the mask after resetting the
    // dispositions.
    // SAFETY: sigset_t is plain data; sigfillset fills it, pthread_sigmask reads `all`
    // and saves the current mask in `old`.
    let old_mask = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    let child = Child {
        spec,
        argv: &argv,
        envp: &envp,
        parent: super::getpid(),
        old_mask,
        last_signal: libc::SIGRTMAX(),
        failure: AtomicI32::new(0),
    };
    // The stack grows down: the child starts at its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    // SAFETY: `child_main` only makes async-signal-safe syscalls on `stack`, which
    // outlives it (CLONE_VFORK suspends us until the child has exec'd or exited), and
    // reads `child`, which lives on our frame for as long.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &child as *const Child as *mut libc::c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &child.old_mask, std::ptr::null_mut());
    }
    drop(stack);
    if pid == -1 {
        return Err(clone_error);
    }
    let failure = child.failure.load(Ordering::SeqCst);
    if failure == 0 {
        return Ok(pid);
    }
    // It has exited already (or is about to): reap it here, so that the loop never sees
    // an unknown child. Another reaper may have been first; that is fine.
    let mut status = 0;
    // SAFETY: waits for our own child; status is a live c_int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let errno = failure & 0xffff;
    let err = io::Error::from_raw_os_error(errno);
    let dir = || {
        spec.dir
            .as_ref()
            .map_or_else(String::new, |d| d.to_string_lossy().into_owned())
    };
    Err(match failure >> 16 {
        s if s == Stage::Dir as i32 && errno == libc::ENOENT => {
            io::Error::new(err.kind(), format!("working_dir {} does not exist", dir()))
        }
        s if s == Stage::Dir as i32 => {
            io::Error::new(err.kind(), format!("working_dir {}: {err}", dir()))
        }
        s if s == Stage::Limits as i32 => {
            io::Error::new(err.kind(), format!("cannot set its limits: {err}"))
        }
        s if s == Stage::Cgroup as i32 => {
            io::Error::new(err.kind(), format!("cannot enter its cgroup: {err}"))
        }
        s if s == Stage::Creds as i32 => {
            io::Error::new(err.kind(), format!("cannot switch to its user: {err}"))
        }
        _ => err,
    })
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Child` the parent keeps alive until we exec or exit.
    let child = unsafe { &*(arg as *const Child) };
    let fail = |stage: Stage| -> libc::c_int {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        child
            .failure
            .store(((stage as i32) << 16) | (errno & 0xffff), Ordering::SeqCst);
        // SAFETY: _exit never returns and runs no atexit handlers of the parent's.
        unsafe { libc::_exit(127) }
    };
    let spec = child.spec;
    // SAFETY: each call is an async-signal-safe syscall on data prepared by the parent.
    unsafe {
        // An ignored signal stays ignored across exec: the supervisor's own choices (and
        // whatever its parent ignored) must not leak into what it starts.
        for sig in 1..=child.last_signal {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        if spec.process_group && libc::setpgid(0, 0) == -1 {
            return fail(Stage::Setup);
        }
        // "0" is the writing process itself.
        if let Some(fd) = spec.cgroup_procs {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return fail(Stage::Cgroup);
            }
        }
        for (from, to) in [(spec.stdin, 0), (spec.stdout, 1), (spec.stderr, 2)] {
            if libc::dup2(from, to) == -1 {
                return fail(Stage::Setup);
            }
        }
        for &(resource, soft, hard) in &spec.limits {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(resource as _, &lim) == -1 {
                return fail(Stage::Limits);
            }
        }
        if let Some(creds) = &spec.creds {
            // Raw syscalls: glibc's setuid and friends would broadcast the change to
            // every thread of "this process", which in a CLONE_VM child are the
            // supervisor's own threads.
            if libc::syscall(
                libc::SYS_setgroups,
                creds.groups.len(),
                creds.groups.as_ptr(),
            ) == -1
                || libc::syscall(libc::SYS_setgid, creds.gid) == -1
                || libc::syscall(libc::SYS_setuid, creds.uid) == -1
            {
                return fail(Stage::Creds);
            }
        }
        if let Some(mask) = spec.umask {
            libc::umask(mask as libc::mode_t);
        }
        // After the credentials: changing them clears the parent-death signal.
        if let Some(sig) = spec.death_signal {
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) == -1 {
                return fail(Stage::Setup);
            }
            // The parent may have died before prctl took effect. (Compare with its pid,
            // not with 1: as a container's init the parent *is* pid 1.)
            if libc::getppid() != child.parent {
                *libc::__errno_location() = libc::ESRCH;
                return fail(Stage::Setup);
            }
        }
        if let Some(dir) = &spec.dir {
            if libc::chdir(dir.as_ptr()) == -1 {
                return fail(Stage::Dir);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &child.old_mask, std::ptr::null_mut());
        libc::execve(
            spec.program.as_ptr(),
            child.argv.as_ptr(),
            child.envp.as_ptr(),
        );
    }
    fail(Stage::Exec)
}

/// `fd` moved above the standard fds if it is one of them (a supervisor started with 0, 1
/// or 2 closed gets those numbers back from pipe and open).
pub fn above_stdio(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own returns a new fd we then own.
    let new = super::check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by fcntl and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}
