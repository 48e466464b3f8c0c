//! Supervisor robustness (SPEC §5): stale files, a crashed supervisor's leftovers, purge.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

fn one_sleeper(n: u32) -> String {
    format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    )
}

#[test]
fn start_replaces_a_stale_pid_file_and_dead_socket() {
    let w = Sysg::new();
    std::fs::create_dir_all(&w.state).unwrap();
    std::fs::set_permissions(&w.state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(w.state.join("sysg.pid"), format!("{}\n", unused_pid())).unwrap();
    std::fs::write(w.state.join("control.sock"), "not a socket").unwrap();

    let cfg = w.write_config(&one_sleeper(unique_number()));
    w.start_daemon(&cfg);
    let pid = w.supervisor_pid().unwrap();
    assert!(alive(pid));
    w.wait_running_pid("web", None);
    assert_eq!(mode_of(&w.state), 0o700, "a looser state dir is tightened");
    let out = w.run(&["status"]);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn pid_file_naming_a_live_non_sysg_process_is_stale() {
    let w = Sysg::new();
    std::fs::create_dir_all(&w.state).unwrap();
    // The test process itself is alive but is not a supervisor.
    std::fs::write(w.state.join("sysg.pid"), format!("{}\n", std::process::id())).unwrap();
    let cfg = w.write_config(&one_sleeper(unique_number()));
    w.start_daemon(&cfg);
    let pid = w.supervisor_pid().unwrap();
    assert_ne!(pid, std::process::id() as i32);
    w.wait_running_pid("web", None);
}

#[test]
fn restart_after_supervisor_sigkill_never_runs_two_copies() {
    let w = Sysg::new();
    let cfg = w.write_config(&one_sleeper(unique_number()));
    w.start_daemon(&cfg);
    let old_service = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || !alive(sup)), "supervisor did not die");
    assert!(alive(old_service), "the service should outlive a crashed supervisor");

    w.start_daemon(&cfg);
    let new_service = w.wait_running_pid("web", Some(old_service));
    let ok = wait_until(DEADLINE, || {
        let procs = w.service_processes("web");
        procs.len() == 1 && procs[0] == new_service
    });
    assert!(
        ok,
        "expected exactly the new instance {new_service}, found {:?} (old {old_service})\n{}",
        w.service_processes("web"),
        w.diagnostics()
    );
    assert!(!alive(old_service));
}

#[test]
fn purge_removes_the_state_dir_and_every_process() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n} & setsid sh -c 'sleep {m}' & wait"
            stop_timeout: "1s"
        "#,
        m = n + 1
    ));
    w.wait_running_pid("web", None);
    let out = w.run(&["purge"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), format!("Purged {}", w.state.display()), "{out}");
    assert!(!w.state.exists(), "state dir still exists");
    let ok = wait_until(DEADLINE, || w.processes().is_empty());
    assert!(ok, "processes left after purge: {:?}", w.processes());
}

#[test]
fn purge_after_a_supervisor_crash_kills_the_leftovers() {
    let w = Sysg::new();
    let cfg = w.write_config(&one_sleeper(unique_number()));
    w.start_daemon(&cfg);
    let service = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || !alive(sup)));
    let out = w.run(&["purge"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!w.state.exists());
    let ok = wait_until(DEADLINE, || !alive(service));
    assert!(ok, "leftover service {service} survived purge");
}

#[test]
fn purge_without_state_is_fine() {
    let w = Sysg::new();
    let out = w.run(&["purge"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("Purged "), "{out}");
}
