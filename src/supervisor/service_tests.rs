//! The lifecycle table, cell by cell, with no processes.

use super::*;

#[test]
fn waiting_shows_as_waiting_and_checking_as_pending() {
    let mut svc = Service {
        phase: Phase::Pending {
            waiting_for: Some("db".into()),
        },
        epoch: 0,
        consecutive: 0,
        restart_count: 0,
        last_exit: None,
        last_started: None,
        reason: None,
        spawn_error: None,
    };
    assert_eq!(svc.state(), State::Waiting);
    assert_eq!(svc.waiting_for(), Some("db"));
    svc.phase = Phase::Checking {
        pid: Some(7),
        stop: None,
    };
    assert_eq!(svc.state(), State::Pending);
    assert!(svc.has_processes());
}
