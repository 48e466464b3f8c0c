//! Hardening: a service that fails instantly and is restarted every 10 ms, hundreds of
//! times, costs the supervisor no file descriptors and no memory, does not disturb its
//! healthy neighbour, and never stops `status` from answering (SPEC §3 restart policy,
//! §5 "never blocks its loop").

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Restarts before the baseline is taken: the supervisor's buffers have reached their
/// steady size by then.
const WARM_UP: u64 = 50;
/// Restarts after the baseline over which fds and memory must stay flat.
const CHURN: u64 = 300;
/// Deadline for those restarts: each is a fork, an exec and a 10 ms backoff, on a loaded box.
const CHURN_LIMIT: Duration = Duration::from_secs(120);

/// The smallest value of `f` over a short burst of samples: the steady baseline, free of
/// the transient pipes of an instance that happens to be starting at that moment.
fn settled(mut f: impl FnMut() -> Option<u64>) -> u64 {
    let mut best = u64::MAX;
    for _ in 0..12 {
        if let Some(v) = f() {
            best = best.min(v);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        best != u64::MAX,
        "cannot read the supervisor's /proc entries"
    );
    best
}

#[test]
fn instant_failure_churn_leaks_nothing_and_spares_the_neighbour() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          churner:
            command: "exit 1"
            restart_policy: "always"
            backoff: "10ms"
          healthy:
            command: "sleep {n}"
        "#
    ));
    let sup = w.supervisor_pid().expect("supervisor pid");
    let healthy = w.wait_running_pid("healthy", None);
    let restarts = || {
        w.service("churner")
            .and_then(|s| s["restart_count"].as_u64())
    };

    // Let the churn get going, then take the baseline.
    let warmed = wait_until(DEADLINE, || restarts().is_some_and(|c| c >= WARM_UP));
    assert!(
        warmed,
        "churner is not being restarted\n{}",
        w.diagnostics()
    );
    let fds_before = settled(|| fd_count(sup).map(|c| c as u64));
    let rss_before = settled(|| vm_rss_kb(sup));
    let count_before = restarts().expect("churner in status");

    // CHURN more restarts; `status` must answer throughout.
    let mut status_calls = 0;
    let mut count_after = count_before;
    let churned_since = Instant::now();
    let churned = wait_until(CHURN_LIMIT, || {
        let out = w.status_text();
        assert_eq!(
            out.code,
            0,
            "status failed during the churn\n{out}\n{}",
            w.diagnostics()
        );
        assert!(out.stdout.contains("healthy"), "{out}");
        status_calls += 1;
        // Observation window between status calls: the supervisor stays alive.
        assert!(
            holds_for(Duration::from_millis(500), || alive(sup)),
            "the supervisor died during the churn"
        );
        count_after = restarts().unwrap_or(count_after);
        count_after >= count_before + CHURN
    });
    assert!(
        churned,
        "the churner stopped being restarted: {} of {CHURN} restarts after the baseline\n{}",
        count_after - count_before,
        w.diagnostics()
    );

    let fds_after = settled(|| fd_count(sup).map(|c| c as u64));
    let rss_after = settled(|| vm_rss_kb(sup));
    eprintln!(
        "churn figures: {:.1}s of churn, restart_count {} -> {} ({} restarts), \
         fds {} -> {}, VmRSS {} kB -> {} kB ({:+} kB), {} status calls answered",
        churned_since.elapsed().as_secs_f64(),
        count_before,
        count_after,
        count_after - count_before,
        fds_before,
        fds_after,
        rss_before,
        rss_after,
        rss_after as i64 - rss_before as i64,
        status_calls
    );

    assert!(
        fds_after.abs_diff(fds_before) <= 2,
        "the supervisor's open fds went from {fds_before} to {fds_after} over \
         {CHURN} restarts: a leak per restart"
    );
    assert!(
        rss_after < rss_before + 1024,
        "the supervisor's RSS grew from {rss_before} kB to {rss_after} kB over {CHURN} restarts"
    );
    assert_eq!(
        w.service_pid("healthy"),
        Some(healthy),
        "the healthy service was disturbed\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_status("healthy").as_deref(), Some("running"));
    assert!(alive(healthy));

    w.run_ok(&["stop"]);
    assert!(
        w.processes().is_empty(),
        "processes left: {:?}",
        w.processes()
    );
}
