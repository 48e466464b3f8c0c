//! What `sysg upgrade` needs of the kernel: a sealed memfd for the handover, a signal
//! mask that survives the exec, and the exec itself.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// A memfd holding `bytes`, sealed against any change, read from its start. Not
/// close-on-exec: it is for the program about to be exec'd.
pub fn sealed_memfd(name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new fd.
    let fd = super::check(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_ALLOW_SEALING) })?;
    // SAFETY: `fd` was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let fd = OwnedFd::from(file);
    use std::os::fd::AsRawFd;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl and lseek on the fd we own.
    unsafe {
        super::check(libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals))?;
        if libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Blocks `signals`; returns the mask to restore. Kept across exec, so what arrives
/// meanwhile waits for the new program's handlers.
pub fn block_signals(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, filled by sigemptyset/sigaddset; the old mask is
    // written into `old`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

pub fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid sigset_t.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// Unblocks `signals` (what `block_signals` held across an exec).
pub fn unblock_signals(signals: &[i32]) {
    // SAFETY: as in `block_signals`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Replaces this process with `program` run with `args` and the current environment.
/// Returns only on failure.
pub fn exec(program: &std::path::Path, args: &[&str]) -> io::Error {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = CString::new(program.as_os_str().as_bytes()) else {
        return io::Error::from(io::ErrorKind::InvalidInput);
    };
    let Ok(argv) = args
        .iter()
        .map(|a| CString::new(*a))
        .collect::<Result<Vec<_>, _>>()
    else {
        return io::Error::from(io::ErrorKind::InvalidInput);
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `path` and every `argv` entry are NUL-terminated and alive for the call;
    // `ptrs` ends with a null pointer. execv uses the current `environ`.
    unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// The whole content of an inherited descriptor, read from offset 0 without taking it
/// over (it stays open, and where it was).
pub fn read_from_start(fd: std::os::fd::RawFd) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length; pread does not move the offset.
        let n = unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                out.len() as libc::off_t,
            )
        };
        match n {
            0 => return Ok(out),
            n if n > 0 => out.extend_from_slice(&buf[..n as usize]),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}
