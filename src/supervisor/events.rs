//! `sysg events`: subscribers on the control socket, told each lifecycle transition as
//! it happens (a state change, a failed probe, a cron fire or skip), one JSON line each.
//! Pushed from `deliver`, so nothing runs while nothing happens, and nothing at all
//! without a subscriber. A subscriber more than `MAX_BACKLOG` behind is dropped: it
//! never holds up the loop.

use super::service::{self, Phase};
use super::Supervisor;
use crate::ipc::{LifecycleEvent, Response};
use crate::logger::warning;

/// Unread bytes a subscriber may have queued before it is dropped.
const MAX_BACKLOG: usize = 1 << 20;

/// The state a transition is told in: a running instance is `up` once it is.
pub fn shown(svc: &service::Service) -> &'static str {
    match &svc.phase {
        Phase::Running(inst) if inst.up => "up",
        other => other.name(),
    }
}

impl Supervisor {
    pub(super) fn events_request(&mut self, client: u64) -> Option<Response> {
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
            c.streaming = true;
            self.subscribers.push(client);
        }
        Some(Response::ok("subscribed"))
    }

    /// Unit `i` went from `from` to what it shows now.
    pub(super) fn publish_transition(&mut self, i: usize, from: &'static str) {
        let u = &self.units[i];
        let to = shown(&u.svc);
        if self.subscribers.is_empty() || from == to {
            return;
        }
        let ended = matches!(
            u.svc.phase,
            Phase::Exited | Phase::Failed | Phase::Backoff { .. } | Phase::Completed
        ) || matches!(u.svc.phase, Phase::Stopping { .. });
        let ev = LifecycleEvent {
            kind: "state".into(),
            from: Some(from.into()),
            to: Some(to.into()),
            pid: u.svc.live().map(|r| r.pid),
            exit: u
                .svc
                .last_exit
                .filter(|_| ended && from != "stopping")
                .map(|e| e.describe()),
            detail: u.svc.reason.clone().filter(|_| ended || to == "failed"),
            ..self.event_for(i, "state")
        };
        self.publish(&ev);
    }

    /// Something about unit `i` that is not a state change.
    pub(super) fn publish_note(&mut self, i: usize, kind: &str, detail: String) {
        if self.subscribers.is_empty() {
            return;
        }
        let ev = LifecycleEvent {
            detail: Some(detail),
            ..self.event_for(i, kind)
        };
        self.publish(&ev);
    }

    fn event_for(&self, i: usize, kind: &str) -> LifecycleEvent {
        let u = &self.units[i];
        LifecycleEvent {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            service: u.cfg.name.clone(),
            kind: kind.into(),
            from: None,
            to: None,
            pid: None,
            exit: None,
            detail: None,
            restarts: u.svc.restart_count,
        }
    }

    fn publish(&mut self, ev: &LifecycleEvent) {
        let Ok(mut line) = serde_json::to_vec(ev) else {
            return;
        };
        line.push(b'\n');
        let mut gone = Vec::new();
        for &id in &self.subscribers {
            let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
                gone.push(id);
                continue;
            };
            if c.backlog() + line.len() > MAX_BACKLOG {
                warning!("dropping an events subscriber that does not keep up");
                gone.push(id);
                continue;
            }
            c.push(&line);
            if matches!(c.on_writable(), super::control::ClientEvent::Close) {
                gone.push(id);
            }
        }
        for id in gone {
            self.drop_client(id);
        }
    }
}
