//! Signals, the control plane and shutdown: stray signals, a crashed supervisor's
//! leftovers, a stop during boot, clients facing a stopped supervisor, a hook that runs
//! `sysg stop`, and floods of idle connections.

mod common;

use common::*;

/// The `SigIgn:` mask of `pid` from /proc/PID/status.
fn ignored_signals(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

fn one_sleeper(w: &Sysg, n: u32) -> std::path::PathBuf {
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n}"
            stop_timeout: "1s"
        "#
    ))
}

#[test]
fn stray_signals_do_not_kill_the_supervisor_and_services_start_with_default_dispositions() {
    let w = Sysg::new();
    let n = unique_number();
    one_sleeper(&w, n);
    let web = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    assert_ne!(
        ignored_signals(sup),
        Some(0),
        "the supervisor ignores no signal at all"
    );
    // Signals 32 and 33 belong to the C library's threads implementation: sigaction
    // refuses them, so whatever the test runner's environment set there is left as is.
    let reserved = (1u64 << 31) | (1u64 << 32);
    let inherited = ignored_signals(web).expect("service SigIgn") & !reserved;
    assert_eq!(
        inherited, 0,
        "the service inherited ignored signals (mask {inherited:#x})"
    );
    let stray = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPIPE,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSTKFLT,
        libc::SIGPWR,
        libc::SIGQUIT,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    for sig in stray {
        assert!(kill(sup, sig), "cannot send signal {sig}");
    }
    // The supervisor ran after the signals were pending (it answered), so a fatal
    // default action would have ended it by now.
    assert_eq!(w.service_pid("web"), Some(web), "{}", w.diagnostics());
    assert!(alive(sup), "a stray signal killed the supervisor");
    assert!(alive(web), "the service died");
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || exited(sup)));
}
