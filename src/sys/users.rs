//! The user and group databases, for `user:` and `group:`: `/etc/passwd` and
//! `/etc/group` read directly first (what a container has, and all a statically linked
//! sysg can use: glibc's NSS needs its shared libraries at run time), then, in a
//! dynamically linked build, NSS (`getpwnam_r` and friends) for users from elsewhere
//! (LDAP, sssd). Looked up in the supervisor, never in a spawned child.

use std::ffi::{CStr, CString};
use std::io;

/// A user account, as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Buffer sizes tried in turn for the `_r` calls (ERANGE asks for more).
const BUFFERS: [usize; 4] = [1024, 16 * 1024, 256 * 1024, 4 * 1024 * 1024];

fn text(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a non-null field of a passwd/group record is a NUL-terminated string in
    // the buffer that record was filled into, alive here.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

/// `lookup(record, buffer, len, result)`, retried with bigger buffers on ERANGE.
/// `Ok(None)`: no such entry.
fn lookup<T: Copy, R>(
    mut call: impl FnMut(*mut T, *mut libc::c_char, usize, *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> io::Result<Option<R>> {
    for size in BUFFERS {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: passwd and group are plain C records; zeroed is a valid value, and the
        // call fills it (its pointers into `buf`).
        let mut record: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let rc = call(&mut record, buf.as_mut_ptr(), buf.len(), &mut result);
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(read(&record))),
            libc::ERANGE => continue,
            // "Not found" comes back as one of these from some NSS modules.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::OutOfMemory,
        "user database entry too large",
    ))
}

fn account(pw: &libc::passwd) -> Account {
    Account {
        name: text(pw.pw_name),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        home: text(pw.pw_dir),
        shell: text(pw.pw_shell),
    }
}

fn nss_user_by_name(name: &str) -> io::Result<Option<Account>> {
    let c = c_name(name)?;
    lookup(
        // SAFETY: every pointer is live for the call and the length is the buffer's.
        |pw, buf, len, res| unsafe { libc::getpwnam_r(c.as_ptr(), pw, buf, len, res) },
        account,
    )
}

fn nss_user_by_uid(uid: u32) -> io::Result<Option<Account>> {
    lookup(
        // SAFETY: as above.
        |pw, buf, len, res| unsafe { libc::getpwuid_r(uid, pw, buf, len, res) },
        account,
    )
}

/// The gid of group `name`.
fn nss_group_by_name(name: &str) -> io::Result<Option<u32>> {
    let c = c_name(name)?;
    lookup(
        // SAFETY: as above.
        |gr, buf, len, res| unsafe { libc::getgrnam_r(c.as_ptr(), gr, buf, len, res) },
        |gr: &libc::group| gr.gr_gid,
    )
}

/// Whether group `gid` is in the database.
fn nss_group_known(gid: u32) -> io::Result<bool> {
    let found = lookup(
        // SAFETY: as above.
        |gr, buf, len, res| unsafe { libc::getgrgid_r(gid, gr, buf, len, res) },
        |gr: &libc::group| gr.gr_gid,
    )?;
    Ok(found.is_some())
}

/// Every group `user` is a member of, `gid` included (what `initgroups` would set).
fn nss_group_list(user: &str, gid: u32) -> io::Result<Vec<u32>> {
    let c = c_name(user)?;
    let mut n: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at most that many
        // and sets `count` to the number it has (or needs).
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        if count <= n || n > 65536 {
            return Err(io::Error::other("cannot list the user's groups"));
        }
        n = count;
    }
}

/// glibc's NSS cannot be used from a static binary (it would load libraries of another
/// glibc, or crash): the files are all it reads then.
const NSS: bool = !cfg!(target_feature = "crt-static");

fn file_lines(path: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

fn passwd_entry(f: &[String]) -> Option<Account> {
    Some(Account {
        name: f.first()?.clone(),
        uid: f.get(2)?.parse().ok()?,
        gid: f.get(3)?.parse().ok()?,
        home: f.get(5).cloned().unwrap_or_default(),
        shell: f.get(6).cloned().unwrap_or_default(),
    })
}

fn passwd_find(pred: impl Fn(&Account) -> bool) -> Option<Account> {
    file_lines("/etc/passwd")
        .iter()
        .filter_map(|f| passwd_entry(f))
        .find(|a| pred(a))
}

/// `(name, gid, members)` of every line of /etc/group.
fn groups() -> Vec<(String, u32, Vec<String>)> {
    file_lines("/etc/group")
        .into_iter()
        .filter_map(|f| {
            let gid = f.get(2)?.parse().ok()?;
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.first()?.clone(), gid, members))
        })
        .collect()
}

pub fn user_by_name(name: &str) -> io::Result<Option<Account>> {
    match passwd_find(|a| a.name == name) {
        Some(a) => Ok(Some(a)),
        None if NSS => nss_user_by_name(name),
        None => Ok(None),
    }
}

pub fn user_by_uid(uid: u32) -> io::Result<Option<Account>> {
    match passwd_find(|a| a.uid == uid) {
        Some(a) => Ok(Some(a)),
        None if NSS => nss_user_by_uid(uid),
        None => Ok(None),
    }
}

/// The gid of group `name`.
pub fn group_by_name(name: &str) -> io::Result<Option<u32>> {
    match groups().into_iter().find(|g| g.0 == name) {
        Some(g) => Ok(Some(g.1)),
        None if NSS => nss_group_by_name(name),
        None => Ok(None),
    }
}

/// Whether group `gid` is in the database.
pub fn group_known(gid: u32) -> io::Result<bool> {
    if groups().iter().any(|g| g.1 == gid) {
        return Ok(true);
    }
    if NSS {
        return nss_group_known(gid);
    }
    Ok(false)
}

/// Every group `user` is a member of, `gid` included (what `initgroups` would set).
pub fn group_list(user: &str, gid: u32) -> io::Result<Vec<u32>> {
    if NSS {
        return nss_group_list(user, gid);
    }
    let mut list = vec![gid];
    for (_, g, members) in groups() {
        if members.iter().any(|m| m == user) && !list.contains(&g) {
            list.push(g);
        }
    }
    Ok(list)
}
