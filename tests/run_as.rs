//! `user:`, `group:`, `umask:` and `limits:`: the service, its hooks and its health
//! check run as the service's user, with its groups, environment, umask and limits; the
//! log files stay the supervisor's. Users and groups are created by the test itself.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// A system user with a group of its own and one supplementary group, removed on drop.
struct TestUser {
    name: String,
    extra_group: String,
}

impl TestUser {
    fn create() -> Option<TestUser> {
        let n = unique_number();
        let name = format!("sysgu{n}");
        let extra_group = format!("sysgg{n}");
        let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
        if !ok(Command::new("groupadd").arg(&extra_group)) {
            return None;
        }
        let user = TestUser {
            name: name.clone(),
            extra_group: extra_group.clone(),
        };
        let made = ok(Command::new("useradd")
            .args(["-M", "-d", &format!("/nonexistent/{name}"), "-s", "/bin/sh"])
            .args(["-G", &extra_group, &name]));
        made.then_some(user)
    }

    fn id(&self, flag: &str) -> String {
        let out = Command::new("id")
            .args([flag, &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.extra_group).status();
    }
}

fn stdout_log(w: &Sysg, name: &str) -> std::path::PathBuf {
    w.root().join(format!("state/logs/{name}_stdout.log"))
}

/// Waits until the service's stdout log has a line starting with `prefix`.
fn wait_output(w: &Sysg, name: &str, prefix: &str) -> String {
    let mut line = None;
    let ok = wait_until(DEADLINE, || {
        line = std::fs::read_to_string(stdout_log(w, name))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_string);
        line.is_some()
    });
    assert!(ok, "{name} never printed {prefix:?}\n{}", w.diagnostics());
    line.unwrap_or_default()
}

#[test]
fn a_service_its_hook_and_its_probe_run_as_its_user() {
    if !is_root() {
        skip::root_only("needs root (to run a service as another user)");
        return;
    }
    let Some(user) = TestUser::create() else {
        skip::root_only("needs useradd and groupadd");
        return;
    };
    let (uid, gid, groups) = (user.id("-u"), user.id("-g"), user.id("-G"));
    let w = Sysg::new();
    let n = unique_number();
    // "/" as the working dir: the test's own dirs are root's, 0700.
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "echo \"who uid=$(id -u) gid=$(id -g) groups=$(id -G) umask=$(umask) home=$HOME user=$USER logname=$LOGNAME shell=$SHELL\"; exec sleep {n}"
            working_dir: "/"
            user: "{name}"
            umask: "027"
            health_check:
              command: "test \"$(id -u)\" = {uid}"
              interval: "100ms"
            hooks:
              on_start:
                success:
                  command: "echo hook-uid=$(id -u)"
        "#,
        name = user.name,
    ));
    let line = wait_output(&w, "web", "who ");
    assert_eq!(
        line,
        format!(
            "who uid={uid} gid={gid} groups={groups} umask=0027 home=/nonexistent/{name} user={name} logname={name} shell=/bin/sh",
            name = user.name
        )
    );
    assert!(
        groups.split(' ').count() == 2,
        "{groups}: the extra group is missing"
    );
    // Up only once the probe, run as the user, passed.
    let up = wait_until(DEADLINE, || {
        w.service("web").is_some_and(|s| s["up"] == true)
    });
    assert!(up, "the probe never passed\n{}", w.diagnostics());
    w.wait_log_line(&[&format!("hook-uid={uid}")]);
    let meta = std::fs::metadata(stdout_log(&w, "web")).unwrap();
    assert_eq!(meta.uid(), 0, "the log file is the supervisor's");
    w.run_ok(&["stop"]);
}

#[test]
fn group_alone_changes_only_the_group() {
    if !is_root() {
        skip::root_only("needs root (to run a service as another group)");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "echo \"who uid=$(id -u) gid=$(id -g) groups=$(id -G)\"; exec sleep {n}"
            group: 1
        "#
    ));
    let line = wait_output(&w, "web", "who ");
    assert_eq!(line, "who uid=0 gid=1 groups=1");
    w.run_ok(&["stop"]);
}

#[test]
fn limits_are_set_before_exec() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "echo \"limits $(ulimit -Sn) $(ulimit -Hn) $(ulimit -c) $(ulimit -s)\"; exec sleep {n}"
            limits:
              nofile: "256:512"
              core: 0
              stack: "4MB"
        "#
    ));
    let line = wait_output(&w, "web", "limits ");
    assert_eq!(line, "limits 256 512 0 4096");
    w.run_ok(&["stop"]);
}

#[test]
fn unknown_users_groups_and_bad_limits_are_config_errors() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "services:\n  a:\n    command: x\n    user: no-such-user-sysg\n    group: no-such-group-sysg\n    umask: \"99\"\n    limits: {nofile: \"2:1\", cpu: lots}\n",
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    let all = out.all();
    for want in [
        "4:5: services.a.user: unknown user 'no-such-user-sysg'",
        "5:5: services.a.group: unknown group 'no-such-group-sysg'",
        "services.a.umask: not an octal umask",
        "services.a.limits.nofile: soft limit above hard limit",
        "services.a.limits.cpu: expected a number or \"unlimited\"",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
}

#[test]
fn a_supervisor_that_is_not_root_cannot_run_services_as_another_user() {
    if !is_root() {
        // Not root already: the check applies to this very run.
        let w = Sysg::new();
        let cfg = w.write_config("services:\n  a:\n    command: x\n    user: root\n");
        let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
        assert_ne!(out.code, 0, "{out}");
        assert!(
            out.all().contains("can only run services as itself"),
            "{out}"
        );
        return;
    }
    let Some(setpriv) = find_program("setpriv") else {
        skip::root_only("needs setpriv (to validate as nobody)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cfg = dir.path().join("sysg.yaml");
    std::fs::write(&cfg, "services:\n  a:\n    command: x\n    user: root\n").unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(sysg_bin())
        .args(["validate", "-c"])
        .arg(&cfg)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("services.a.user: the supervisor runs as uid 65534, not root"),
        "{all}"
    );
}
