//! The loop's side of service output: reading the ready pipes (and what a `log`
//! readiness check saw in them), and the log limits of every service.

use super::output::ReadOutcome;
use super::service::Event;
use super::Supervisor;

impl Supervisor {
    pub(super) fn on_pipes(&mut self, ready: &[i16]) {
        let mut closed = Vec::new();
        let mut ready_now = Vec::new();
        for (idx, &rev) in ready.iter().enumerate() {
            if rev == 0 {
                continue;
            }
            let pipe = &mut self.pipes[idx];
            if let ReadOutcome::Closed = self.output.read(pipe) {
                closed.push(idx);
            }
            if std::mem::take(&mut pipe.ready_hit) {
                ready_now.push(pipe.service.clone());
            }
        }
        for name in ready_now {
            // `health_check.log` passed: up now, not at the next probe interval.
            if let Some(&i) = self.index.get(&name) {
                let ev = Event::ProbeResult {
                    healthy: true,
                    detail: "its output said it is ready".into(),
                };
                self.deliver(i, ev);
            }
        }
        for idx in closed.into_iter().rev() {
            self.pipes.swap_remove(idx);
        }
    }

    pub(super) fn apply_log_limits(&mut self) {
        for u in &self.units {
            self.output.set_limits(&u.cfg.name, u.cfg.logs);
        }
    }
}
