//! Lifecycle hooks (SPEC §3 "Hooks"): when each of on_start / on_stop / on_restart
//! fires with which outcome, the environment and working dir a hook sees, timeouts,
//! failures, and hook output in supervisor.log.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One line a recording hook wrote.
#[derive(Debug, Clone, PartialEq)]
struct HookLine {
    service: String,
    hook: String,
    outcome: String,
    exit_code: String,
    pid: String,
    cwd: String,
    extra: String,
}

/// A YAML (single-quoted) hook command that appends its view of the world to `file`:
/// `service|hook|outcome|exit code|pid|cwd|<extra>`.
fn record(file: &Path, extra: &str) -> String {
    format!(
        "'echo \"$SYSG_SERVICE|$SYSG_HOOK|$SYSG_OUTCOME|$SYSG_EXIT_CODE|$SYSG_PID|$(pwd)|{extra}\" >> {}'",
        file.display()
    )
}

fn hook_lines(file: &Path) -> Vec<HookLine> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 7).then(|| HookLine {
                service: f[0].into(),
                hook: f[1].into(),
                outcome: f[2].into(),
                exit_code: f[3].into(),
                pid: f[4].into(),
                cwd: f[5].into(),
                extra: f[6].trim().into(),
            })
        })
        .collect()
}

fn hooks_file(w: &Sysg) -> PathBuf {
    w.root().join("hooks.txt")
}

/// Waits for a line of `service` `hook`.`outcome`; returns it.
fn wait_hook(w: &Sysg, service: &str, hook: &str, outcome: &str) -> HookLine {
    let file = hooks_file(w);
    let mut found = None;
    let ok = wait_until(DEADLINE, || {
        found = hook_lines(&file)
            .into_iter()
            .find(|l| l.service == service && l.hook == hook && l.outcome == outcome);
        found.is_some()
    });
    assert!(
        ok,
        "hook {service} {hook}.{outcome} never ran; lines: {:#?}\n{}",
        hook_lines(&file),
        w.diagnostics()
    );
    found.unwrap()
}

fn count_hook(w: &Sysg, service: &str, hook: &str, outcome: &str) -> usize {
    hook_lines(&hooks_file(w))
        .iter()
        .filter(|l| l.service == service && l.hook == hook && l.outcome == outcome)
        .count()
}

#[test]
fn on_start_success_fires_once_when_up_with_pid_cwd_and_env() {
    let w = Sysg::new();
    let n = unique_number();
    let wd = w.proj.join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            working_dir: \"wd\"
            stop_timeout: \"1s\"
            env:
              vars:
                GREETING: \"hello-hook\"
            hooks:
              on_start:
                success:
                  command: {}
        ",
        record(&hooks_file(&w), "$GREETING")
    ));
    let pid = w.wait_running_pid("web", None);
    let line = wait_hook(&w, "web", "on_start", "success");
    assert_eq!(line.pid, pid.to_string(), "{line:?}");
    assert_eq!(line.exit_code, "", "{line:?}");
    assert_eq!(Path::new(&line.cwd), wd.as_path(), "{line:?}");
    assert_eq!(line.extra, "hello-hook", "service env missing: {line:?}");
    // The hook fires when the service is up, not at spawn.
    let svc = w.service("web").unwrap();
    assert_eq!(svc["up"], true, "hook ran before up: {svc:#}");
    assert_eq!(svc["pid"], pid, "{svc:#}");
    assert!(
        holds_for(Duration::from_millis(1500), || hook_lines(&hooks_file(&w))
            .len()
            == 1),
        "on_start.success fired more than once: {:#?}",
        hook_lines(&hooks_file(&w))
    );
}

#[test]
fn on_start_error_and_on_stop_error_when_it_exits_nonzero_before_up() {
    let w = Sysg::new();
    let file = hooks_file(&w);
    w.start_with(&format!(
        "
        services:
          broken:
            command: \"exit 5\"
            restart_policy: \"never\"
            hooks:
              on_start:
                success:
                  command: {ok}
                error:
                  command: {rec}
              on_stop:
                success:
                  command: {ok}
                error:
                  command: {rec}
        ",
        rec = record(&file, "x"),
        ok = record(&file, "unexpected"),
    ));
    let start = wait_hook(&w, "broken", "on_start", "error");
    assert_eq!(start.exit_code, "5", "{start:?}");
    assert!(start.pid.parse::<i32>().is_ok(), "no SYSG_PID: {start:?}");
    let stop = wait_hook(&w, "broken", "on_stop", "error");
    assert_eq!(stop.exit_code, "5", "{stop:?}");
    assert_eq!(stop.pid, start.pid, "{stop:?}");
    w.wait_status("broken", "exited");
    assert!(
        holds_for(Duration::from_secs(1), || hook_lines(&file)
            .iter()
            .all(|l| l.outcome == "error")),
        "a success hook fired: {:#?}",
        hook_lines(&file)
    );
}

#[test]
fn on_stop_success_on_stop_request_and_on_exit_zero() {
    let w = Sysg::new();
    let n = unique_number();
    let file = hooks_file(&w);
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            restart_policy: \"always\"
            hooks:
              on_stop:
                success:
                  command: {rec}
                error:
                  command: {rec}
          oneshot:
            command: \"echo done\"
            restart_policy: \"on-failure\"
            hooks:
              on_start:
                error:
                  command: {rec}
              on_stop:
                success:
                  command: {rec}
                error:
                  command: {rec}
        ",
        rec = record(&file, "x"),
    ));
    let oneshot = wait_hook(&w, "oneshot", "on_stop", "success");
    assert_eq!(oneshot.exit_code, "0", "{oneshot:?}");

    let pid = w.wait_running_pid("web", None);
    assert_eq!(count_hook(&w, "web", "on_stop", "success"), 0);
    let out = w.run(&["stop", "-s", "web"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    let web = wait_hook(&w, "web", "on_stop", "success");
    assert_eq!(web.pid, pid.to_string(), "{web:?}");
    w.wait_status("web", "stopped");

    assert!(
        holds_for(Duration::from_secs(1), || hook_lines(&file)
            .iter()
            .all(|l| l.outcome == "success")),
        "an error hook fired: {:#?}",
        hook_lines(&file)
    );
    assert_eq!(count_hook(&w, "oneshot", "on_stop", "success"), 1);
    assert_eq!(count_hook(&w, "web", "on_stop", "success"), 1);
}

#[test]
fn on_restart_error_fires_before_the_backoff_and_success_once_up() {
    let w = Sysg::new();
    let n = unique_number();
    let file = hooks_file(&w);
    w.start_with(&format!(
        "
        services:
          web:
            command: \"echo $$ >> starts.txt; exec sleep {n}\"
            restart_policy: \"on-failure\"
            backoff: \"2s\"
            stop_timeout: \"1s\"
            hooks:
              on_restart:
                success:
                  command: {rec}
                error:
                  command: {rec}
        ",
        rec = record(&file, "$(wc -l < starts.txt)"),
    ));
    let first = w.wait_running_pid("web", None);
    // Up, so a later on_restart.success is about the restarted instance only.
    w.wait_status("web", "running");
    assert!(wait_until(DEADLINE, || w.service("web").unwrap()["up"] == true));
    assert_eq!(hook_lines(&file).len(), 0, "{:#?}", hook_lines(&file));

    assert!(kill(-first, libc::SIGKILL), "cannot kill group {first}");
    let err = wait_hook(&w, "web", "on_restart", "error");
    assert_eq!(err.pid, first.to_string(), "{err:?}");
    assert_eq!(
        err.exit_code,
        (128 + libc::SIGKILL).to_string(),
        "a death by SIGKILL is SYSG_EXIT_CODE 128 + 9: {err:?}"
    );
    assert_eq!(
        err.extra, "1",
        "on_restart.error ran after the new instance started: {err:?}"
    );

    let second = w.wait_running_pid("web", Some(first));
    let ok_line = wait_hook(&w, "web", "on_restart", "success");
    assert_eq!(ok_line.pid, second.to_string(), "{ok_line:?}");
    assert_eq!(ok_line.exit_code, "", "{ok_line:?}");
    assert_eq!(ok_line.extra, "2", "{ok_line:?}");
    let svc = w.service("web").unwrap();
    assert_eq!(svc["up"], true, "on_restart.success before up: {svc:#}");
    assert_eq!(count_hook(&w, "web", "on_restart", "error"), 1);
    assert_eq!(count_hook(&w, "web", "on_restart", "success"), 1);
}

#[test]
fn hook_past_its_timeout_is_killed_with_its_group() {
    let w = Sysg::new();
    let n = unique_number();
    let m = unique_number();
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            hooks:
              on_start:
                success:
                  command: \"sleep {m} & sleep {m}; wait\"
                  timeout: \"1s\"
        "
    ));
    let pid = w.wait_running_pid("web", None);
    let needle = format!("sleep {m}");
    let mut seen = Vec::new();
    let ok = wait_until(DEADLINE, || {
        seen = processes_matching(&needle);
        !seen.is_empty()
    });
    assert!(ok, "the hook never ran\n{}", w.diagnostics());
    let pgids: Vec<i32> = seen.iter().filter_map(|(p, _)| pgid_of(*p)).collect();
    assert!(!pgids.is_empty(), "{seen:?}");
    assert!(!pgids.contains(&pid), "hook runs in the service's group");

    let ok = wait_until(DEADLINE, || processes_matching(&needle).is_empty());
    assert!(
        ok,
        "hook processes survived the timeout: {:?}\n{}",
        processes_matching(&needle),
        w.diagnostics()
    );
    let ok = wait_until(DEADLINE, || {
        !live_pids()
            .into_iter()
            .any(|p| pgid_of(p).is_some_and(|g| pgids.contains(&g)))
    });
    assert!(ok, "the hook's process group {pgids:?} is not gone");
    w.wait_log_line(&["web on_start.success", "timed out"]);

    // The service is unaffected.
    assert!(alive(pid));
    let svc = w.service("web").unwrap();
    assert_eq!(svc["status"], "running", "{svc:#}");
    assert_eq!(svc["pid"], pid, "{svc:#}");
    assert_eq!(svc["restart_count"], 0, "{svc:#}");
}

#[test]
fn failing_hook_does_not_affect_the_service() {
    let w = Sysg::new();
    let n = unique_number();
    let file = w.root().join("ran.txt");
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            restart_policy: \"on-failure\"
            hooks:
              on_start:
                success:
                  command: \"echo ran >> {}; exit 9\"
        ",
        file.display()
    ));
    let pid = w.wait_running_pid("web", None);
    assert!(wait_until(DEADLINE, || file.exists()), "hook never ran");
    w.wait_log_line(&["hook web on_start.success failed: exit code 9"]);
    assert!(
        holds_for(Duration::from_secs(1), || {
            w.service("web")
                .is_some_and(|s| s["status"] == "running" && s["pid"] == pid)
        }),
        "the service changed after its hook failed\n{}",
        w.diagnostics()
    );
    assert!(alive(pid));
    assert_eq!(w.service("web").unwrap()["restart_count"], 0);
}

#[test]
fn hook_output_goes_to_supervisor_log() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            hooks:
              on_start:
                success:
                  command: \"echo hello-from-hook-{n}; echo oops-from-hook-{n} >&2\"
        "
    ));
    w.wait_running_pid("web", None);
    w.wait_log_line(&[&format!("hook web on_start.success: hello-from-hook-{n}")]);
    w.wait_log_line(&[&format!("hook web on_start.success: oops-from-hook-{n}")]);
    // Hook output is not the service's output.
    let out = std::fs::read_to_string(w.state.join("logs/web_stdout.log")).unwrap_or_default();
    assert!(!out.contains("hello-from-hook"), "{out}");
}

#[test]
fn supervisor_stop_lets_a_slow_on_stop_hook_complete() {
    let w = Sysg::new();
    let n = unique_number();
    let file = w.root().join("stopped.txt");
    w.start_with(&format!(
        "
        services:
          web:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            hooks:
              on_stop:
                success:
                  command: \"sleep 1; echo \\\"$SYSG_SERVICE $SYSG_HOOK $SYSG_OUTCOME\\\" >> {}\"
                  timeout: \"10s\"
        ",
        file.display()
    ));
    let pid = w.wait_running_pid("web", None);
    let sup = w.supervisor_pid().unwrap();
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Supervisor shutting down"), "{out}");
    assert!(!alive(pid), "service survived stop");
    let ok = wait_until(DEADLINE, || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("web on_stop success"))
    });
    assert!(
        ok,
        "the on_stop hook did not complete: {:?}\n{}",
        std::fs::read_to_string(&file),
        w.supervisor_log()
    );
    assert!(
        wait_until(DEADLINE, || !alive(sup)),
        "supervisor {sup} still alive"
    );
}

/// A hook's descendant that left its process group (setsid) outlives the hook, but not
/// the supervisor: `sysg stop` leaves nothing behind. (The hook waits until its child has
/// escaped: what is still in its group when it ends is killed with it.)
#[test]
fn a_process_escaped_from_a_hook_does_not_outlive_the_supervisor() {
    let w = Sysg::new();
    let (n, m) = (unique_number(), unique_number());
    w.start_with(&format!(
        "
        services:
          web:
            command: \"exec sleep {n}\"
            stop_timeout: \"1s\"
            hooks:
              on_start:
                success:
                  command: \"setsid sh -c 'touch escaped; exec sleep {m}' > /dev/null 2>&1 & while [ ! -e escaped ]; do sleep 0.05; done\"
        "
    ));
    w.wait_running_pid("web", None);
    let escaped = wait_until(DEADLINE, || {
        processes_exactly(&format!("sleep {m}")).len() == 1
    });
    assert!(escaped, "the hook's child never ran\n{}", w.diagnostics());
    let pid = processes_exactly(&format!("sleep {m}"))[0];
    assert_eq!(pgid_of(pid), Some(pid), "it did not leave the hook's group");

    let log_dir = w.state.clone();
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{out}");
    let gone = wait_until(DEADLINE, || !alive(pid) || proc_state(pid) == Some('Z'));
    assert!(gone, "the hook's escaped child survived the supervisor");
    let log = std::fs::read_to_string(log_dir.join("supervisor.log")).unwrap_or_default();
    assert!(
        log.contains("escaped from a hook or probe"),
        "supervisor.log does not say it killed it:\n{log}"
    );
}
