//! sd_notify for `notify: true` services, on the loop: each such service gets an abstract
//! datagram socket (`NOTIFY_SOCKET`, made at its first start and kept), messages are read
//! when poll says so, and only those whose sender (SCM_CREDENTIALS) belongs to the live
//! instance count. `READY=1` and `WATCHDOG=1` go to the service's table; `STATUS=` is
//! kept for `status`; `MAINPID=` moves the instance to the process it names; `STOPPING=1` and `RELOADING=1` are logged.

use super::service::Event;
use super::Supervisor;
use crate::logger::{debug, info, warning};
use crate::sys;
use std::os::fd::{AsRawFd, RawFd};

pub struct Notify {
    socket: sys::notify::NotifySocket,
    /// The last `STATUS=`.
    pub status: Option<String>,
    reloading: bool,
}

impl Notify {
    /// Its descriptor and address, for `sysg upgrade`.
    pub fn handed(&self) -> (RawFd, String) {
        (self.socket.fd.as_raw_fd(), self.socket.address.clone())
    }

    /// The socket an upgrade handed over.
    pub fn taken_over(fd: std::os::fd::OwnedFd, address: String) -> Notify {
        Notify {
            socket: sys::notify::NotifySocket { fd, address },
            status: None,
            reloading: false,
        }
    }
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("address", &self.socket.address)
            .finish()
    }
}

impl Supervisor {
    /// What a spawn of unit `i` adds to its environment for sd_notify (nothing without
    /// `notify`); its socket is made on the first call.
    pub(super) fn notify_env(&mut self, i: usize) -> std::io::Result<Vec<(String, String)>> {
        let me = sys::getpid();
        let u = &mut self.units[i];
        if !u.cfg.notify {
            return Ok(Vec::new());
        }
        if u.notify.is_none() {
            let mut tag = [0u8; 6];
            sys::random_bytes(&mut tag)?;
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("sysg/{me}/{hex}/{i}");
            u.notify = Some(Notify {
                socket: sys::notify::bind(&name)?,
                status: None,
                reloading: false,
            });
        }
        let mut env = Vec::new();
        if let Some(n) = &mut u.notify {
            n.status = None;
            env.push(("NOTIFY_SOCKET".to_string(), n.socket.address.clone()));
        }
        if let Some(wd) = u.cfg.watchdog {
            env.push(("WATCHDOG_USEC".to_string(), wd.as_micros().to_string()));
        }
        Ok(env)
    }

    /// The notify sockets to poll, with their units.
    pub(super) fn notify_fds(&self) -> Vec<(usize, RawFd)> {
        self.units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| u.notify.as_ref().map(|n| (i, n.socket.fd.as_raw_fd())))
            .collect()
    }

    /// Reads what unit `i`'s socket holds.
    pub(super) fn on_notify(&mut self, i: usize) {
        loop {
            let Some(fd) = self.units[i]
                .notify
                .as_ref()
                .map(|n| n.socket.fd.as_raw_fd())
            else {
                return;
            };
            let (bytes, pid) = match sys::notify::receive(fd) {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(e) => {
                    debug!("{}: notify socket: {e}", self.units[i].cfg.name);
                    return;
                }
            };
            if !pid.is_some_and(|p| self.belongs(i, p)) {
                debug!(
                    "{}: notify message from pid {pid:?}, not of its instance: ignored",
                    self.units[i].cfg.name
                );
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            for line in text.lines() {
                self.notify_line(i, line);
            }
        }
    }

    /// Whether `pid` is the live instance of unit `i`, in its process group or in its
    /// cgroup.
    fn belongs(&self, i: usize, pid: i32) -> bool {
        let Some(inst) = self.units[i].svc.live() else {
            return false;
        };
        pid == inst.pid
            || crate::procfs::stat(pid).is_some_and(|st| st.pgid == inst.group)
            || self.leaf_pids(i).is_some_and(|pids| pids.contains(&pid))
    }

    /// `MAINPID=`: the named process is the instance's main process from now on (a
    /// daemon whose first process forks and exits), if it is one of the instance's and
    /// will be ours to reap: our child, or one that comes to us (the subreaper) when its
    /// parent exits.
    fn main_pid(&mut self, i: usize, text: &str) {
        let name = self.units[i].cfg.name.clone();
        let Ok(pid) = text.trim().parse::<i32>() else {
            warning!("{name}: MAINPID={text} is not a pid: ignored");
            return;
        };
        let alive = crate::procfs::stat(pid).is_some_and(|s| s.state != 'Z');
        let reapable =
            self.subreaper || crate::procfs::stat(pid).is_some_and(|s| s.ppid == sys::getpid());
        if !(alive && reapable && self.belongs(i, pid)) {
            warning!("{name}: MAINPID={pid} is not a live process of its instance: ignored");
            return;
        }
        self.deliver(i, Event::MainPid { pid });
        if self.units[i].svc.live().is_some_and(|r| r.pid == pid) {
            self.units[i].start_ticks = crate::procfs::start_time_ticks(pid);
            self.pids_dirty = true;
        }
    }

    fn notify_line(&mut self, i: usize, line: &str) {
        let name = self.units[i].cfg.name.clone();
        let Some((key, value)) = line.split_once('=') else {
            return;
        };
        match (key, value) {
            ("READY", "1") => {
                let was_reloading = self.units[i]
                    .notify
                    .as_mut()
                    .is_some_and(|n| std::mem::take(&mut n.reloading));
                if was_reloading {
                    info!("{name}: reloaded (READY=1 after RELOADING=1)");
                }
                self.deliver(i, Event::NotifyReady);
            }
            ("WATCHDOG", "1") => self.deliver(i, Event::WatchdogPing),
            ("STATUS", text) => {
                if let Some(n) = self.units[i].notify.as_mut() {
                    n.status = Some(text.chars().take(200).collect());
                }
            }
            ("STOPPING", "1") => info!("{name}: stopping (STOPPING=1)"),
            ("RELOADING", "1") => {
                if let Some(n) = self.units[i].notify.as_mut() {
                    n.reloading = true;
                }
                info!("{name}: reloading (RELOADING=1)");
            }
            ("MAINPID", pid) => self.main_pid(i, pid),
            _ => {}
        }
    }
}
