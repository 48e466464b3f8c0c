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
    std::fs::write(
        w.state.join("sysg.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let cfg = w.write_config(&one_sleeper(unique_number()));
    w.start_daemon(&cfg);
    let pid = w.supervisor_pid().unwrap();
    assert_ne!(pid, std::process::id() as i32);
    w.wait_running_pid("web", None);
}

#[test]
fn restart_after_supervisor_sigkill_never_runs_two_copies() {
    // `sleep & wait`: even if the main process dies with the supervisor (parent-death
    // signal), its child lives on as a leftover the next supervisor must clear.
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        services:
          web:
            command: "sleep {n} & wait"
            stop_timeout: "1s"
        "#
    ));
    w.start_daemon(&cfg);
    let old_main = w.wait_running_pid("web", None);
    assert!(
        wait_until(DEADLINE, || w.service_processes("web").len() == 2),
        "sh and sleep not both up"
    );
    let old = w.service_processes("web");
    let sleeper = format!("sleep {n}");
    let old_sleep = *old
        .iter()
        .find(|&&p| cmdline(p) == sleeper)
        .expect("the service's sleep is among its processes");
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGKILL));
    assert!(
        wait_until(DEADLINE, || exited(sup)),
        "supervisor did not die"
    );
    // The leftover outlived its supervisor: the next one has something to clear.
    assert!(
        alive(old_sleep),
        "the service's sleep {old_sleep} died with the supervisor: no leftover to test"
    );

    w.start_daemon(&cfg);
    let new_main = w.wait_running_pid("web", Some(old_main));
    // Exactly one copy: every process of the service is in the new instance's group.
    let ok = wait_until(DEADLINE, || {
        let procs = w.service_processes("web");
        !procs.is_empty() && procs.iter().all(|&p| pgid_of(p) == Some(new_main))
    });
    assert!(
        ok,
        "expected only the new instance (group {new_main}), found {:?} (old {old:?})\n{}",
        w.service_processes("web")
            .iter()
            .map(|&p| (p, pgid_of(p), cmdline(p)))
            .collect::<Vec<_>>(),
        w.diagnostics()
    );
    assert!(
        wait_until(DEADLINE, || !alive(old_sleep)),
        "the leftover {old_sleep} was not stopped\n{}",
        w.diagnostics()
    );
    let sleeps = processes_exactly(&sleeper).len();
    assert_eq!(sleeps, 1, "two copies of the service's sleep are running");
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
    assert_eq!(
        out.stdout.trim(),
        format!("Purged {}", w.state.display()),
        "{out}"
    );
    assert!(!w.state.exists(), "state dir still exists");
    let ok = wait_until(DEADLINE, || w.processes().is_empty());
    assert!(ok, "processes left after purge: {:?}", w.processes());
}

#[test]
fn purge_after_a_supervisor_crash_kills_the_leftovers() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&format!(
        r#"
        services:
          web:
            command: "sleep {n} & wait"
            stop_timeout: "1s"
        "#
    ));
    w.start_daemon(&cfg);
    w.wait_running_pid("web", None);
    assert!(
        wait_until(DEADLINE, || w.service_processes("web").len() == 2),
        "sh and sleep not both up"
    );
    let old = w.service_processes("web");
    let sup = w.supervisor_pid().unwrap();
    assert!(kill(sup, libc::SIGKILL));
    assert!(wait_until(DEADLINE, || exited(sup)));
    let left: Vec<i32> = old.iter().copied().filter(|&p| alive(p)).collect();
    assert!(
        !left.is_empty(),
        "nothing of {old:?} outlived the supervisor: no leftover to purge"
    );
    let out = w.run(&["purge"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!w.state.exists());
    let ok = wait_until(DEADLINE, || w.service_processes("web").is_empty());
    assert!(
        ok,
        "leftovers survived purge: {:?}",
        w.service_processes("web")
    );
}

#[test]
fn purge_without_state_is_fine() {
    let w = Sysg::new();
    let out = w.run(&["purge"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("Purged "), "{out}");
}

fn control_call(w: &Sysg, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(w.state.join("control.sock")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

#[test]
fn malformed_and_oversized_requests_do_not_hurt_the_supervisor() {
    let w = Sysg::new();
    w.start_daemon(&w.write_config(&one_sleeper(unique_number())));
    let pid = w.wait_running_pid("web", None);

    // Each is dropped with an error reply (SPEC §5).
    let reply = control_call(&w, b"this is not json\n");
    assert!(
        reply.contains("\"ok\":false") && reply.contains("malformed request"),
        "reply to garbage: {reply:?}"
    );
    let reply = control_call(&w, b"{\"cmd\":\"frobnicate\"}\n");
    assert!(
        reply.contains("\"ok\":false") && reply.contains("frobnicate"),
        "reply to unknown cmd: {reply:?}"
    );
    let big = vec![b'x'; 2 * 1024 * 1024];
    let reply = control_call(&w, &big);
    assert!(
        reply.contains("\"ok\":false") && reply.contains("request too large"),
        "reply to a 2 MiB request: {reply:?}"
    );

    assert!(w.supervisor_pid().is_some_and(alive), "supervisor died");
    assert_eq!(w.service_pid("web"), Some(pid), "service disturbed");
    let reply = control_call(&w, b"{\"cmd\":\"status\",\"service\":null}\n");
    assert!(
        reply.contains("\"ok\":true"),
        "a good request after bad ones: {reply}"
    );
}

#[test]
fn a_reused_pid_in_pid_json_is_never_signalled() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.write_config(&one_sleeper(n));
    w.start_daemon(&cfg);
    let old = w.wait_running_pid("web", None);
    // The supervisor dies, and so does its service...
    let sup = w.supervisor_pid().expect("supervisor pid");
    kill(sup, libc::SIGKILL);
    assert!(wait_until(DEADLINE, || exited(sup)));
    for p in w.service_processes("web") {
        kill(p, libc::SIGKILL);
    }
    assert!(wait_until(std::time::Duration::from_secs(20), || w
        .service_processes("web")
        .is_empty()));
    // ...and an unrelated process now holds a pid that pid.json names (as after pid reuse).
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("spawn sleep");
    let pid = bystander.id() as i32;
    let pid_json = w.state.join("pid.json");
    std::fs::write(&pid_json, format!("{{\"services\":{{\"web\":{pid}}}}}\n")).unwrap();
    assert_ne!(pid, old);
    w.start_daemon(&cfg);
    w.wait_running_pid("web", None);
    let still = bystander.try_wait().expect("try_wait").is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(
        still,
        "the bystander holding a recorded pid was killed\n{}",
        w.diagnostics()
    );
}
