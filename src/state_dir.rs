//! A file in the state dir, and nothing else: every open, rename and removal of
//! `sysg.pid`, `pid.json`, `state.json`, `config_hint`, `supervisor.log`, `logs/` and the
//! log files goes through here.
//!
//! The supervisor checks the state dir once, walking from `/` one component at a time
//! ([`prepare`]), and then holds it and its `logs/` open: every later name is resolved
//! relative to those directory fds (`openat`), never again through the path. Names are
//! opened with `O_NOFOLLOW`, so a planted symlink is refused, never written through; a
//! file opened for writing in place must also be a regular file of ours with one link
//! (no planted hard link to someone else's file); a temp file gets an unguessable name
//! and `O_CREAT|O_EXCL`, then replaces its target with `renameat`. A process that never
//! called [`prepare`] (a client such as `sysg logs`) opens the parent directory itself,
//! its last component with `O_NOFOLLOW`.

use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::sys::{self, EntryInfo};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The state dir and its logs/ as checked by [`prepare`], held open.
struct Held {
    dir: PathBuf,
    dir_fd: OwnedFd,
    logs: PathBuf,
    logs_fd: OwnedFd,
}

static HELD: Mutex<Option<Arc<Held>>> = Mutex::new(None);

/// Creates the state dir and its logs/ (mode 0700) or checks the existing ones, then
/// holds both open for every later file operation of this process.
///
/// Refused, with the path named and nothing created past it: the state dir or logs/
/// being a symlink, not a directory, or owned by another uid; a directory on the way
/// there that is writable by other users (without the sticky bit) and not ours; a
/// symlink on the way owned by someone other than us or root. Our own state dir with a
/// looser mode is tightened to 0700.
pub fn prepare(paths: &Paths) -> Result<()> {
    let euid = sys::geteuid();
    let dir_fd = walk(&paths.dir, euid)?;
    let logs = paths.log_dir();
    let logs_fd = step(dir_fd.as_fd(), OsStr::new("logs"), &logs, true, euid)?;
    let held = Held {
        dir: paths.dir.clone(),
        dir_fd,
        logs,
        logs_fd,
    };
    if let Ok(mut slot) = HELD.lock() {
        *slot = Some(Arc::new(held));
    }
    Ok(())
}

fn walk(target: &Path, euid: u32) -> Result<OwnedFd> {
    let root = Path::new("/");
    let mut cur: OwnedFd = File::open(root)
        .map_err(|e| Error::io_path("cannot open", root, e))?
        .into();
    let comps: Vec<Component> = target.components().collect();
    let last = comps
        .iter()
        .rposition(|c| matches!(c, Component::Normal(_)))
        .ok_or_else(|| Error::msg(format!("{} cannot be the state dir", target.display())))?;
    let mut shown = PathBuf::from("/");
    for (i, comp) in comps.iter().enumerate() {
        match comp {
            Component::Normal(name) => {
                shown.push(name);
                cur = step(cur.as_fd(), name, &shown, i == last, euid)?;
            }
            Component::ParentDir => {
                shown.push("..");
                cur = sys::openat(
                    cur.as_fd(),
                    OsStr::new(".."),
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    0,
                )
                .map_err(|e| Error::io_path("cannot open", &shown, e))?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(cur)
}

/// Opens (creating when missing) directory `name` in `parent`; `shown` is its full path
/// for messages. `own` is the state dir or logs/: it must be ours.
fn step(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    own: bool,
    euid: u32,
) -> Result<OwnedFd> {
    let refuse = |why: String| Error::msg(format!("{}: {why}", shown.display()));
    let mut created = false;
    let entry = match sys::lstatat(parent, name) {
        Ok(entry) => entry,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match sys::mkdirat(parent, name, 0o700) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io_path("cannot create", shown, e)),
            }
            sys::lstatat(parent, name).map_err(|e| Error::io_path("cannot stat", shown, e))?
        }
        Err(e) => return Err(Error::io_path("cannot stat", shown, e)),
    };
    let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    if entry.is_symlink() {
        if own {
            return Err(refuse(
                "is a symbolic link; refusing to use it as sysg's state".into(),
            ));
        }
        if entry.uid != euid && entry.uid != 0 {
            return Err(refuse(format!(
                "is a symbolic link owned by uid {}; refusing to follow it",
                entry.uid
            )));
        }
        flags &= !libc::O_NOFOLLOW;
    }
    let fd = sys::openat(parent, name, flags, 0)
        .map_err(|e| Error::io_path("cannot open", shown, explain(e)))?;
    let info = sys::lstatat(fd.as_fd(), OsStr::new("."))
        .map_err(|e| Error::io_path("cannot stat", shown, e))?;
    if (own || created) && info.uid != euid {
        return Err(refuse(format!(
            "is owned by uid {}, not by you (uid {euid}); refusing to use it",
            info.uid
        )));
    }
    let others_write = info.mode & 0o022 != 0 && info.mode & libc::S_ISVTX == 0;
    if !own && others_write && info.uid != euid {
        return Err(refuse(format!(
            "is writable by other users and owned by uid {}, not by you (uid {euid}); refusing to keep the state dir under it",
            info.uid
        )));
    }
    if own && info.mode & 0o777 != 0o700 {
        use std::os::unix::fs::PermissionsExt;
        let file = File::from(fd);
        file.set_permissions(std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io_path("cannot chmod", shown, e))?;
        return Ok(file.into());
    }
    Ok(fd)
}

/// ELOOP from `O_NOFOLLOW` means "the last component is a symlink": say so.
fn explain(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::other("it is a symbolic link; refusing to follow it")
    } else {
        e
    }
}

/// The directory holding `path`, open: the held state dir or logs/ when `path` is in one
/// of them, else opened now (its last component with `O_NOFOLLOW`).
enum ParentDir {
    Held(Arc<Held>, bool),
    Opened(OwnedFd),
}

impl ParentDir {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            ParentDir::Held(held, false) => held.dir_fd.as_fd(),
            ParentDir::Held(held, true) => held.logs_fd.as_fd(),
            ParentDir::Opened(fd) => fd.as_fd(),
        }
    }
}

fn split(path: &Path) -> io::Result<(ParentDir, &OsStr)> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ));
    };
    let held = HELD.lock().ok().and_then(|h| h.clone());
    if let Some(held) = held {
        if parent == held.dir {
            return Ok((ParentDir::Held(held, false), name));
        }
        if parent == held.logs {
            return Ok((ParentDir::Held(held, true), name));
        }
    }
    Ok((ParentDir::Opened(open_dir(parent)?), name))
}

/// Opens directory `dir` without following a symlink at its last component.
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let (Some(up), Some(name)) = (dir.parent(), dir.file_name()) else {
        return File::open(dir).map(OwnedFd::from);
    };
    let up = if up.as_os_str().is_empty() {
        Path::new(".")
    } else {
        up
    };
    let up: OwnedFd = File::open(up)?.into();
    sys::openat(up.as_fd(), name, flags, 0).map_err(|e| {
        // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR (or ELOOP): ask which.
        let link = sys::lstatat(up.as_fd(), name).is_ok_and(|i| i.is_symlink());
        if link {
            io::Error::other(format!(
                "{} is a symbolic link; refusing to follow it",
                dir.display()
            ))
        } else {
            e
        }
    })
}

/// A file about to be written in place must be a regular file of ours with one link.
fn check_writable(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let euid = sys::geteuid();
    if !meta.file_type().is_file() {
        return Err(io::Error::other(
            "not a regular file; refusing to write to it",
        ));
    }
    if meta.uid() != euid {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by you (uid {euid}); refusing to write to it",
            meta.uid()
        )));
    }
    if meta.nlink() > 1 {
        return Err(io::Error::other(format!(
            "it has {} hard links; refusing to write through one",
            meta.nlink()
        )));
    }
    Ok(())
}

fn open_checked(path: &Path, flags: libc::c_int) -> io::Result<File> {
    let (dir, name) = split(path)?;
    let fd = sys::openat(
        dir.fd(),
        name,
        flags | libc::O_NOFOLLOW | libc::O_CREAT,
        0o600,
    )
    .map_err(explain)?;
    let file = File::from(fd);
    check_writable(&file)?;
    Ok(file)
}

/// Opens (creating, 0600) a file for appending.
pub fn open_append(path: &Path) -> io::Result<File> {
    open_checked(path, libc::O_WRONLY | libc::O_APPEND)
}

/// Opens (creating, 0600) a file for reading and writing, without truncating it.
pub fn open_rw(path: &Path) -> io::Result<File> {
    open_checked(path, libc::O_RDWR)
}

/// Opens an existing file for reading: no symlink, regular files only (a FIFO cannot
/// stall the reader), and owned by us or by the owner of its directory.
pub fn open_read(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let (dir, name) = split(path)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = File::from(sys::openat(dir.fd(), name, flags, 0).map_err(explain)?);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file; refusing to read it"));
    }
    let dir_owner = sys::lstatat(dir.fd(), OsStr::new("."))?.uid;
    if meta.uid() != dir_owner && meta.uid() != sys::geteuid() {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by the owner of its directory (uid {dir_owner}); refusing to read it",
            meta.uid()
        )));
    }
    Ok(file)
}

/// The whole of a file read through [`open_read`].
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_read(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically: a fresh temp file with an unguessable name in the
/// same dir (`O_CREAT|O_EXCL|O_NOFOLLOW`, 0600), fsync, then `renameat` over `path`. A
/// symlink at `path` is replaced, never followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = split(path)?;
    let mut noise = [0u8; 8];
    sys::random_bytes(&mut noise)?;
    let hex: String = noise.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = format!(".{}.{hex}.tmp", name.to_string_lossy());
    let tmp = OsStr::new(&tmp);
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let mut file = File::from(sys::openat(dir.fd(), tmp, flags, 0o600)?);
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| sys::renameat(dir.fd(), tmp, dir.fd(), name));
    if result.is_err() {
        let _ = sys::unlinkat(dir.fd(), tmp, false);
    }
    result
}

/// Renames `from` to `to`, both in the same directory; symlinks are moved, not followed.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    if from.parent() != to.parent() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "renames stay within one directory",
        ));
    }
    let (dir, from_name) = split(from)?;
    let to_name = to.file_name().unwrap_or_default();
    sys::renameat(dir.fd(), from_name, dir.fd(), to_name)
}

/// Removes the entry at `path` (a symlink itself, never its target).
pub fn remove(path: &Path) -> io::Result<()> {
    let (dir, name) = split(path)?;
    sys::unlinkat(dir.fd(), name, false)
}

/// What is at `path` itself (not following a symlink), or `None` when nothing is.
pub fn entry(path: &Path) -> io::Result<Option<EntryInfo>> {
    let (dir, name) = split(path)?;
    match sys::lstatat(dir.fd(), name) {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Binds a listening socket at `path` in a directory held open, mode 0600 from the first
/// instant; whatever was at `path` (a stale socket, a planted symlink) is removed first.
/// The bind goes through `/proc/self/fd/N/<name>` so it lands in the directory checked,
/// whatever has become of its path since.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    let (dir, name) = split(path)?;
    match sys::unlinkat(dir.fd(), name, false) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let via = Path::new("/proc/self/fd")
        .join(dir.fd().as_raw_fd().to_string())
        .join(name);
    // sun_path holds 108 bytes; without /proc, fall back to the path itself.
    let target = if via.as_os_str().len() < 100 && Path::new("/proc/self/fd").is_dir() {
        via
    } else {
        path.to_path_buf()
    };
    let old = sys::umask(0o177);
    let bound = UnixListener::bind(&target);
    sys::umask(old);
    bound
}

/// A directory opened without following a symlink at its last component, to take apart
/// what sysg made in it (`sysg purge`): entries are listed, inspected and removed
/// relative to the fd, so a symlink is removed as a name, never followed.
pub struct OpenDir {
    fd: OwnedFd,
}

impl OpenDir {
    pub fn open(path: &Path) -> io::Result<OpenDir> {
        Ok(OpenDir {
            fd: open_dir(path)?,
        })
    }

    /// The subdirectory `name`, refused when it is a symlink.
    pub fn sub(&self, name: &OsStr) -> io::Result<OpenDir> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        Ok(OpenDir {
            fd: sys::openat(self.fd.as_fd(), name, flags, 0)?,
        })
    }

    /// The uid owning the directory itself.
    pub fn owner(&self) -> io::Result<u32> {
        Ok(sys::lstatat(self.fd.as_fd(), OsStr::new("."))?.uid)
    }

    /// Every entry's name, in no particular order.
    pub fn names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        let via = Path::new("/proc/self/fd").join(self.fd.as_raw_fd().to_string());
        std::fs::read_dir(via)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    pub fn entry(&self, name: &OsStr) -> io::Result<EntryInfo> {
        sys::lstatat(self.fd.as_fd(), name)
    }

    pub fn remove(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        sys::unlinkat(self.fd.as_fd(), name, dir)
    }
}

#[cfg(test)]
mod tests;
