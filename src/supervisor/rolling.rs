//! The loop's side of a rolling restart (`deployment.strategy: rolling`): the table
//! decides (a new instance beside the old one, the old one stopped once the new one is
//! up, or handed back if it fails); this keeps what the unit knew of the old instance,
//! watches the new one's output for an address it cannot bind, and answers the asker.

use super::requests::Awaited;
use super::service::Event;
use super::Supervisor;
use crate::config::Service;
use crate::ipc::Response;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the unit knew of the old instance before the roll.
#[derive(Debug)]
pub struct RolledFrom {
    cfg: Service,
    start_ticks: Option<u64>,
    spawned_env: Option<Vec<(String, String)>>,
    /// Set by the output path when the new instance prints "address already in use".
    pub addr_in_use: Arc<AtomicBool>,
}

/// How a program says its port is taken (EADDRINUSE's text, as libc, Python, Go and
/// nginx print it), matched case-insensitively.
const ADDR_IN_USE: &[u8] = b"address already in use";

/// Whether `bytes` holds [`ADDR_IN_USE`], in any case.
pub fn says_addr_in_use(bytes: &[u8]) -> bool {
    bytes
        .windows(ADDR_IN_USE.len())
        .any(|w| w.eq_ignore_ascii_case(ADDR_IN_USE))
}

impl Supervisor {
    /// Starts a rolling restart of unit `i`, with `new` as its spec from now on (a
    /// reload) or the spec it has.
    pub(super) fn begin_roll(&mut self, i: usize, new: Option<Service>) {
        let u = &mut self.units[i];
        let cfg = match new {
            Some(new) => std::mem::replace(&mut u.cfg, new),
            None => u.cfg.clone(),
        };
        u.rolled_from = Some(RolledFrom {
            cfg,
            start_ticks: u.start_ticks,
            spawned_env: u.spawned_env.clone(),
            addr_in_use: Arc::new(AtomicBool::new(false)),
        });
        self.deliver(i, Event::Roll);
    }

    /// The flag the new instance's pipes set, while unit `i` rolls.
    pub(super) fn roll_watch(&self, i: usize) -> Option<Arc<AtomicBool>> {
        let u = &self.units[i];
        u.svc.retiring.as_ref()?;
        u.rolled_from.as_ref().map(|r| r.addr_in_use.clone())
    }

    /// Before the exit of unit `i`'s new instance is delivered: whether it said its
    /// address is in use (what it wrote last is read first).
    pub(super) fn roll_addr_in_use(&mut self, i: usize) -> bool {
        let Some(flag) = self.roll_watch(i) else {
            return false;
        };
        let name = self.units[i].cfg.name.clone();
        for pipe in self.pipes.iter_mut().filter(|p| p.service == name) {
            self.output.drain(pipe);
        }
        flag.load(Ordering::Relaxed)
    }

    /// The old instance of unit `i` is its instance again: what the unit knew of it is
    /// put back (its spec too, unless a plain restart with the new one follows), so a
    /// later reload tries the change again.
    pub(super) fn reinstated(&mut self, i: usize, new_spec: bool) {
        let u = &mut self.units[i];
        if let Some(from) = u.rolled_from.take() {
            if !new_spec {
                u.cfg = from.cfg;
            }
            u.start_ticks = from.start_ticks;
            u.spawned_env = from.spawned_env;
        }
        u.group_empty = false;
        u.roll_fell_back = new_spec;
        self.pids_dirty = true;
    }

    /// A rolling restart of unit `i` is over: its askers hear how it went (a failure is
    /// an error reply, so `restart -s` exits non-zero).
    pub(super) fn roll_done(&mut self, i: usize, ok: bool, message: String) {
        if ok {
            self.units[i].rolled_from = None;
        }
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.unit == i && matches!(w.awaits, Awaited::Roll));
        self.waiters = keep;
        let reply = if ok {
            Response::ok(message)
        } else {
            Response::error(message)
        };
        for w in done {
            self.reply(w.client, &reply);
        }
    }
}
