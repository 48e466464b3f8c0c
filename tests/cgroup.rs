//! cgroup v2 containment: each instance in a cgroup of its own, a stop that nothing
//! escapes, figures from the cgroup, limits checked at load, leftovers of a crashed
//! supervisor killed, and the same services without cgroups (`SYSG_CGROUP=off`).
//! Needs root and a cgroup2 mount (here in the hybrid layout at
//! `/sys/fs/cgroup/unified`); skips visibly otherwise.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

const SWITCH: &str = "SYSG_CGROUP";

/// The cgroup2 mount point and this process's cgroup dir in it, when usable (as root).
fn cgroup_host() -> Option<(PathBuf, PathBuf)> {
    if !is_root() {
        skip::root_only("needs root (to create cgroups)");
        return None;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = info.lines().find_map(|l| {
        let (head, tail) = l.split_once(" - ")?;
        (tail.split_whitespace().next()? == "cgroup2")
            .then(|| PathBuf::from(head.split_whitespace().nth(4).unwrap()))
    });
    let Some(mount) = mount else {
        skip::host_dependent("no cgroup2 file system is mounted here");
        return None;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let dir = mount.join(own.trim_start_matches('/'));
    Some((mount, dir))
}

/// `sysg start -d` with cgroups on (whatever the environment says) or off.
fn start(w: &Sysg, yaml: &str, cgroups: bool) {
    let cfg = w.write_config(yaml);
    let mut cmd = w.command(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    if cgroups {
        cmd.env_remove(SWITCH);
    } else {
        cmd.env(SWITCH, "off");
    }
    let out = run_with_limit(cmd, DEADLINE);
    assert_eq!(out.code, 0, "start -d failed\n{out}\n{}", w.diagnostics());
}

/// The cgroup v2 path of `pid` (`/sysg.…/api.service/1`).
fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_default()
}

/// Waits for a file the service writes (a pid) and returns it as a number.
fn wait_pid_file(w: &Sysg, name: &str) -> i32 {
    w.wait_file(name).trim().parse().expect("a pid")
}

/// A service whose child escapes every way but its cgroup: it clears its environment
/// (no markers), leads a session of its own, is re-parented by a double fork and
/// ignores SIGTERM. Its pid goes to `escapee.pid`.
fn leaky(w: &Sysg, extra: &str) -> String {
    std::fs::write(
        w.proj.join("escapee.sh"),
        "trap '' TERM\necho $$ > escapee.pid\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::write(
        w.proj.join("escape.sh"),
        "/usr/bin/env -i /usr/bin/setsid /bin/sh -c '/bin/sh escapee.sh & exit 0' &\nexec sleep 600\n",
    )
    .unwrap();
    format!("services:\n  leaky:\n    command: \"sh escape.sh\"\n{extra}")
}

#[test]
fn each_instance_runs_in_a_cgroup_of_its_own_that_status_names() {
    let Some((mount, _)) = cgroup_host() else {
        return;
    };
    let w = Sysg::new();
    start(
        &w,
        "services:\n  api:\n    command: \"sleep 600\"\n  worker:\n    command: \"sleep 600\"\n",
        true,
    );
    let report = w.status_json();
    let containment = report["containment"].as_str().unwrap_or_default();
    assert!(containment.starts_with("cgroup v2"), "{report}");
    let mut paths = Vec::new();
    for name in ["api", "worker"] {
        let svc = w.wait_status(name, "running");
        let pid = svc["pid"].as_i64().unwrap() as i32;
        let path = svc["cgroup"]["path"].as_str().unwrap().to_string();
        assert!(
            path.contains("/sysg.") && path.ends_with(&format!("/{name}.service/1")),
            "{svc}"
        );
        assert_eq!(
            cgroup_of(pid),
            path,
            "{name}'s main process is not in its cgroup"
        );
        assert!(mount.join(path.trim_start_matches('/')).is_dir());
        paths.push(path);
    }
    let text = w.run_ok(&["status", "-s", "api"]).stdout;
    assert!(text.contains(&format!("   CGroup: {}", paths[0])), "{text}");

    // A restart is a new instance in a new cgroup; the old one is removed.
    let old = mount.join(paths[0].trim_start_matches('/'));
    let old_pid = w.service_pid("api").unwrap();
    w.run_ok(&["restart", "-s", "api"]);
    w.wait_running_pid("api", Some(old_pid));
    let svc = w.service("api").unwrap();
    assert!(
        svc["cgroup"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/api.service/2"),
        "{svc}"
    );
    assert!(
        wait_until(DEADLINE, || !old.exists()),
        "{old:?} left behind"
    );

    // The whole tree goes with the supervisor.
    let tree = old.parent().unwrap().parent().unwrap().to_path_buf();
    w.run_ok(&["stop"]);
    assert!(
        wait_until(DEADLINE, || !tree.exists()),
        "{tree:?} left behind"
    );
}

#[test]
fn a_stop_kills_what_left_the_group_and_dropped_the_markers() {
    if cgroup_host().is_none() {
        return;
    }
    let w = Sysg::new();
    start(&w, &leaky(&w, "    stop_timeout: 1s\n"), true);
    w.wait_status("leaky", "running");
    let escapee = wait_pid_file(&w, "escapee.pid");
    assert!(alive(escapee));
    assert!(
        !environ(escapee).iter().any(|v| v.starts_with("SYSG_")),
        "the escapee kept its markers"
    );
    let leader = w.service_pid("leaky").unwrap();
    assert_ne!(pgid_of(escapee), pgid_of(leader));
    let listed = w.service("leaky").unwrap();
    assert!(
        listed["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == escapee),
        "status does not list the escapee\n{listed}"
    );
    w.run_ok(&["stop", "-s", "leaky"]);
    assert!(
        wait_until(DEADLINE, || exited(escapee)),
        "the escapee outlived the stop\n{}",
        w.diagnostics()
    );
}

#[test]
fn cpu_time_counts_children_that_have_exited() {
    if cgroup_host().is_none() {
        return;
    }
    let w = Sysg::new();
    // A child burns 0.3 s of CPU and exits; the leader itself uses almost none.
    std::fs::write(
        w.proj.join("burn.py"),
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n",
    )
    .unwrap();
    let yaml = "services:\n  burner:\n    command: \"sh -c 'python3 burn.py; touch burnt; exec sleep 600'\"\n";
    start(&w, yaml, true);
    w.wait_file("burnt");
    let svc = w.wait_status("burner", "running");
    let cpu = svc["cpu_s"].as_f64().unwrap();
    assert!(cpu >= 0.3, "CPU {cpu}s leaves out the exited child\n{svc}");
}

#[test]
fn limits_the_cgroups_cannot_apply_are_refused_at_load() {
    let Some((_, own)) = cgroup_host() else {
        return;
    };
    let offered = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap();
    let w = Sysg::new();
    for (key, value, controller) in [
        ("memory", "64MB", "memory"),
        ("memory_high", "48MB", "memory"),
        ("pids", "32", "pids"),
        ("cpu", "\"50%\"", "cpu"),
    ] {
        let cfg = w.write_config(&format!(
            "services:\n  api:\n    command: \"sleep 600\"\n    limits:\n      {key}: {value}\n"
        ));
        let mut cmd = w.command(&["validate", "-c", cfg.to_str().unwrap()]);
        cmd.env_remove(SWITCH);
        let out = run_with_limit(cmd, DEADLINE);
        if offered.split_whitespace().any(|c| c == controller) {
            assert_eq!(out.code, 0, "{key} with the {controller} controller\n{out}");
            continue;
        }
        assert_eq!(
            out.code, 2,
            "{key} without the {controller} controller\n{out}"
        );
        assert!(
            out.stderr.contains(&format!("limits.{key}"))
                && out
                    .stderr
                    .contains(&format!("cgroup v2 {controller} controller")),
            "{out}"
        );
        // Without cgroups at all, the same limit is refused for that reason.
        let mut cmd = w.command(&["validate", "-c", cfg.to_str().unwrap()]);
        cmd.env(SWITCH, "off");
        let out = run_with_limit(cmd, DEADLINE);
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr.contains(&format!("limits.{key}"))
                && out.stderr.contains("turned off by SYSG_CGROUP=off"),
            "{out}"
        );
    }
    // A CPU limit in seconds stays an rlimit, with or without cgroups.
    let cfg =
        w.write_config("services:\n  api:\n    command: \"sleep 1\"\n    limits:\n      cpu: 60\n");
    let mut cmd = w.command(&["validate", "-c", cfg.to_str().unwrap()]);
    cmd.env(SWITCH, "off");
    assert_eq!(run_with_limit(cmd, DEADLINE).code, 0);
}

#[test]
fn a_crashed_supervisors_cgroups_are_emptied_before_services_start_again() {
    if cgroup_host().is_none() {
        return;
    }
    let w = Sysg::new();
    let yaml = leaky(&w, "");
    start(&w, &yaml, true);
    let escapee = wait_pid_file(&w, "escapee.pid");
    let sup = w.supervisor_pid().unwrap();
    kill(sup, libc::SIGKILL);
    assert!(wait_until(DEADLINE, || exited(sup)));
    // Nothing but its cgroup ties the escapee to the service now.
    assert!(alive(escapee), "the escapee died with the supervisor");
    std::fs::remove_file(w.proj_file("escapee.pid")).unwrap();
    start(&w, &yaml, true);
    assert!(
        wait_until(DEADLINE, || exited(escapee)),
        "the leftover survived a new supervisor\n{}",
        w.diagnostics()
    );
    assert!(w
        .supervisor_log()
        .contains("leftover process(es) in /sysg."));
    let fresh = wait_pid_file(&w, "escapee.pid");
    assert_ne!(fresh, escapee);
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || exited(fresh)));
}

#[test]
fn without_cgroups_services_run_as_before_and_status_says_so() {
    if cgroup_host().is_none() {
        return;
    }
    let w = Sysg::new();
    start(&w, "services:\n  api:\n    command: \"sleep 600\"\n", false);
    let svc = w.wait_status("api", "running");
    let report = w.status_json();
    assert_eq!(
        report["containment"], "process groups and markers (turned off by SYSG_CGROUP=off)",
        "{report}"
    );
    assert!(svc.get("cgroup").is_none(), "{svc}");
    let pid = svc["pid"].as_i64().unwrap() as i32;
    let sup = w.supervisor_pid().unwrap();
    assert_eq!(cgroup_of(pid), cgroup_of(sup));
    let text = w.run_ok(&["status"]).stdout;
    assert!(!text.contains("CGroup:"), "{text}");
    w.run_ok(&["stop"]);
    assert!(wait_until(DEADLINE, || exited(pid)));
}

#[test]
fn an_upgrade_keeps_each_instance_in_its_cgroup() {
    if cgroup_host().is_none() {
        return;
    }
    let w = Sysg::new();
    start(&w, &leaky(&w, "    stop_timeout: 1s\n"), true);
    let escapee = wait_pid_file(&w, "escapee.pid");
    // Up after a second of running.
    assert!(wait_until(DEADLINE, || w
        .service("leaky")
        .is_some_and(|s| s["up"] == true)));
    let before = w.service("leaky").unwrap()["cgroup"]["path"].clone();
    let out = Command::new(sysg_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    w.run_ok(&["upgrade"]);
    let after = w.service("leaky").unwrap();
    assert_eq!(after["cgroup"]["path"], before, "{after}");
    w.run_ok(&["stop", "-s", "leaky"]);
    assert!(
        wait_until(DEADLINE, || exited(escapee)),
        "the escapee outlived a stop after the upgrade\n{}",
        w.diagnostics()
    );
}
