//! The loop's side of cron: arming a job's next fire on the timer queue, and a fire.

use super::service::Event;
use super::{cron, Supervisor, Timer};
use crate::logger::{debug, info};

impl Supervisor {
    /// Arms the timer for the next fire of cron unit `i`.
    pub(super) fn arm_cron(&mut self, i: usize) {
        let gen = self.next_gen();
        let u = &mut self.units[i];
        let Some(c) = u.cron.as_mut() else { return };
        c.gen = gen;
        let now = chrono::Utc::now();
        c.next = c.next_after(now);
        match c.next {
            Some(next) => {
                debug!("{}: next run at {}", u.cfg.name, c.format(next));
                self.timers
                    .after(cron::sleep_until(next, now), Timer::CronFire(i, gen));
            }
            None => info!("{}: the schedule has no future run", u.cfg.name),
        }
        self.state_dirty = true;
    }

    pub(super) fn arm_all_cron(&mut self) {
        for i in 0..self.units.len() {
            if self.units[i].is_cron() && self.units[i].svc.state() == crate::ipc::State::Idle {
                self.arm_cron(i);
            }
        }
    }

    pub(super) fn on_cron_timer(&mut self, i: usize, gen: u64) {
        // Not while everything stops: a shutdown, or a reload with --all.
        if self.shutting_down || self.reload.as_ref().is_some_and(|r| r.all.is_some()) {
            return;
        }
        let Some(c) = self.units.get_mut(i).and_then(|u| u.cron.as_mut()) else {
            return;
        };
        if c.gen != gen {
            return;
        }
        let Some(due) = c.next else { return };
        let now = chrono::Utc::now();
        if now < due {
            // Woken early (the sleep is capped) or the clock went back: wait on.
            self.timers
                .after(cron::sleep_until(due, now), Timer::CronFire(i, gen));
            return;
        }
        // Strictly after the instant just due, and after now: one instant never fires
        // twice, and a clock that jumped ahead fires once, not once per missed instant.
        c.last_wall = Some(c.wall(due));
        c.next = c.next_after(due.max(now));
        let key = c.format(now);
        let due = c.format(due);
        self.state_dirty = true;
        self.deliver(i, Event::CronDue { key, due });
        if let Some(c) = self.units[i].cron.as_ref().filter(|c| c.gen == gen) {
            if let Some(next) = c.next {
                self.timers
                    .after(cron::sleep_until(next, now), Timer::CronFire(i, gen));
            }
        }
    }
}
