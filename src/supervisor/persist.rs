//! Writes state.json and pid.json off the loop thread. The loop builds each snapshot and
//! hands it over; one writer thread writes them (temp file, fsync, rename), skipping
//! snapshots already superseded by a newer one. There is still exactly one writer, fed
//! only by the loop, so no stale copy can overwrite a newer state, and a slow disk
//! never stalls the loop. A write error is logged once per outage (a full disk fails every
//! write until space returns), and the first success after it says so.

use super::{Timer, STATE_EVERY};
use crate::logger::{error, info};
use crate::paths::Paths;
use crate::state::{PidFile, StateFile};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

enum Snapshot {
    State(StateFile),
    Pids(PidFile),
}

pub struct Persister {
    tx: Option<Sender<Snapshot>>,
    writer: Option<JoinHandle<()>>,
    /// Outages of writes made here, when the writer thread is missing or gone.
    outages: Mutex<Outages>,
}

/// Which files are failing to be written right now.
#[derive(Debug, Default)]
struct Outages {
    state: bool,
    pids: bool,
}

impl Persister {
    pub fn start(paths: Paths) -> Persister {
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("state writer".into())
            .spawn(move || write_loop(&paths, &rx));
        match writer {
            Ok(handle) => Persister {
                tx: Some(tx),
                writer: Some(handle),
                outages: Mutex::default(),
            },
            Err(e) => {
                error!("cannot start the state writer thread ({e}); writing from the loop");
                Persister {
                    tx: None,
                    writer: None,
                    outages: Mutex::default(),
                }
            }
        }
    }

    pub fn state(&self, paths: &Paths, file: StateFile) {
        self.send(paths, Snapshot::State(file));
    }

    pub fn pids(&self, paths: &Paths, file: PidFile) {
        self.send(paths, Snapshot::Pids(file));
    }

    fn send(&self, paths: &Paths, snap: Snapshot) {
        let snap = match &self.tx {
            Some(tx) => match tx.send(snap) {
                Ok(()) => return,
                Err(mpsc::SendError(snap)) => snap,
            },
            None => snap,
        };
        let mut outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        write(paths, snap, &mut outages);
    }

    /// Writes everything still queued and stops the writer.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

fn write_loop(paths: &Paths, rx: &Receiver<Snapshot>) {
    let mut outages = Outages::default();
    while let Ok(first) = rx.recv() {
        let (mut state, mut pids) = (None, None);
        for snap in std::iter::once(first).chain(rx.try_iter()) {
            match snap {
                Snapshot::State(s) => state = Some(s),
                Snapshot::Pids(p) => pids = Some(p),
            }
        }
        if let Some(s) = state {
            write(paths, Snapshot::State(s), &mut outages);
        }
        if let Some(p) = pids {
            write(paths, Snapshot::Pids(p), &mut outages);
        }
    }
}

fn write(paths: &Paths, snap: Snapshot, outages: &mut Outages) {
    let (name, result, failing) = match snap {
        Snapshot::State(s) => ("state.json", s.write(paths), &mut outages.state),
        Snapshot::Pids(p) => ("pid.json", p.write(paths), &mut outages.pids),
    };
    match result {
        Err(e) if !*failing => {
            *failing = true;
            error!("cannot write {name}: {e} (not logged again until a write succeeds)");
        }
        Err(_) => {}
        Ok(()) if *failing => {
            *failing = false;
            info!("{name} written again");
        }
        Ok(()) => {}
    }
}

impl super::Supervisor {
    /// Hands the state files to the writer thread when something changed, at most once
    /// per `STATE_EVERY`: a snapshot is built from every service, so a stop of 2,000
    /// services must not build one per child exit. Later changes are written when the
    /// interval is over (a timer wakes the loop then; an idle loop arms none).
    pub(super) fn flush_state(&mut self) {
        if !self.state_dirty && !self.pids_dirty {
            return;
        }
        if let Some(last) = self.last_flush {
            let since = last.elapsed();
            if since < STATE_EVERY {
                if !self.flush_armed {
                    self.flush_armed = true;
                    self.timers.after(STATE_EVERY - since, Timer::FlushState);
                }
                return;
            }
        }
        self.last_flush = Some(Instant::now());
        if self.state_dirty {
            self.state_dirty = false;
            let mut file = StateFile::default();
            for u in self.units.iter().filter(|u| !u.removed) {
                file.services.insert(u.cfg.name.clone(), u.record());
            }
            self.persist.state(&self.paths, file);
        }
        if self.pids_dirty {
            self.pids_dirty = false;
            let mut pids = PidFile::default();
            for u in &self.units {
                if let Some(run) = u.svc.live() {
                    pids.services.insert(u.cfg.name.clone(), run.pid);
                }
            }
            self.persist.pids(&self.paths, pids);
        }
    }
}
