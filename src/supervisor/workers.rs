//! Short-lived worker threads (hooks, health probes) and their link to the loop. A worker
//! that spawns a process registers its pid under the registry lock, so the loop, the only
//! reaper, can always hand it the exit status; a worker reports back over a channel and
//! wakes the loop with one byte on its self-pipe.

use super::policy::ExitStatus;
use super::spawn::{self, Spawned};
use crate::config::Service;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Set in the environment of hooks and probes: tells their processes apart from the
/// service's own (their value says which: `on_start`, …, or `health_check`).
pub const MARKER_AUX: &str = "SYSG_HOOK";

/// What a worker reports when it is done.
pub enum Done {
    Hook,
    Probe(ProbeResult),
}

pub struct ProbeResult {
    pub unit: usize,
    pub generation: u64,
    pub healthy: bool,
    pub detail: String,
}

type Registry = Arc<Mutex<HashMap<i32, Sender<ExitStatus>>>>;

/// What a worker thread needs: the registry, its way back, and where state lives.
#[derive(Clone)]
pub struct Link {
    registry: Registry,
    done: Sender<Done>,
    wake: Arc<File>,
    pub state_dir: PathBuf,
}

impl Link {
    /// Spawns `command` for `svc`; the returned receiver gets its exit status.
    pub fn spawn(
        &self,
        svc: &Service,
        command: &str,
        extra: &[(String, String)],
    ) -> io::Result<(Spawned, Receiver<ExitStatus>)> {
        let (tx, rx) = mpsc::channel();
        // Env files are read before taking the lock: the loop waits on it when it reaps.
        let env = svc.environment().map_err(io::Error::other)?;
        let mut reg = self
            .registry
            .lock()
            .map_err(|_| io::Error::other("worker registry poisoned"))?;
        let spawned = spawn::spawn_with_env(svc, &env, command, extra, &self.state_dir)?;
        reg.insert(spawned.pid, tx);
        Ok((spawned, rx))
    }

    pub fn forget(&self, pid: i32) {
        if let Ok(mut reg) = self.registry.lock() {
            reg.remove(&pid);
        }
    }

    pub fn report(&self, done: Done) {
        let _ = self.done.send(done);
        let _ = (&*self.wake).write(b"w");
    }
}

pub struct Workers {
    link: Link,
    done_rx: Receiver<Done>,
    running: usize,
}

impl Workers {
    pub fn new(wake: File, state_dir: &Path) -> Workers {
        let (done, done_rx) = mpsc::channel();
        let link = Link {
            registry: Arc::default(),
            done,
            wake: Arc::new(wake),
            state_dir: state_dir.to_path_buf(),
        };
        Workers {
            link,
            done_rx,
            running: 0,
        }
    }

    /// Starts `job` on its own thread with a link back to the loop. Hooks are counted
    /// (shutdown waits for them, each bounded by its timeout); probes are not, since a
    /// probe's result means nothing once we are stopping.
    pub fn start(
        &mut self,
        name: String,
        counted: bool,
        job: impl FnOnce(Link) + Send + 'static,
    ) -> io::Result<()> {
        let link = self.link.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || job(link))?;
        if counted {
            self.running += 1;
        }
        Ok(())
    }

    /// Hooks still running (shutdown waits for them; each is bounded by its timeout).
    pub fn running(&self) -> usize {
        self.running
    }

    /// Takes the reports of workers that finished since the last call.
    pub fn collect(&mut self) -> Vec<ProbeResult> {
        let mut probes = Vec::new();
        while let Ok(done) = self.done_rx.try_recv() {
            match done {
                Done::Hook => self.running = self.running.saturating_sub(1),
                Done::Probe(p) => probes.push(p),
            }
        }
        probes
    }

    /// Gives a reaped pid to the worker that owns it. False if no worker does.
    pub fn route_exit(&self, pid: i32, status: ExitStatus) -> bool {
        // The spawning worker holds this lock from fork until it has registered the pid,
        // so a process that exits at once is still found here.
        let Ok(reg) = self.link.registry.lock() else {
            return false;
        };
        match reg.get(&pid) {
            Some(tx) => {
                let _ = tx.send(status);
                true
            }
            None => false,
        }
    }
}
