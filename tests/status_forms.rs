//! `sysg status` text for every state, `--json`, `-s NAME`, and no supervisor (SPEC §4).

mod common;
use common::*;
use serde_json::Value;

/// The first line of `text` that starts with `prefix`, for failure messages and checks.
fn line_starting<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

/// Waits until `status` (text, exit 0) contains `needle`; returns the last text.
fn wait_text(w: &Sysg, needle: &str) -> String {
    let mut last = String::new();
    let ok = wait_until(DEADLINE, || {
        let out = w.status_text();
        last = out.stdout;
        out.code == 0 && last.contains(needle)
    });
    assert!(
        ok,
        "status never showed {needle:?}; last:\n{last}\n{}",
        w.diagnostics()
    );
    last
}

fn keeper(n: u32) -> String {
    format!(
        "
          keeper:
            command: \"exec sleep {n}\"
            stop_timeout: \"1s\""
    )
}

#[test]
fn running_block_has_pid_tasks_memory_cpu_group_and_tree() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "sleep {n} & wait"
            stop_timeout: "1s"
        "#
    ));
    let pid = w.wait_running_pid("web", None);
    let text = wait_text(&w, &format!("sleep {n}"));
    let block: String = text
        .lines()
        .skip_while(|l| !l.starts_with("● web"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.starts_with("● web Running\n"), "{text}");
    let active = line_starting(&block, "   Active: active (running) since ")
        .unwrap_or_else(|| panic!("no Active line\n{text}"));
    assert!(active.contains(" ago"), "{text}");
    assert!(block.contains(&format!("\n Main PID: {pid}\n")), "{text}");
    let tasks = line_starting(&block, "    Tasks: ").unwrap_or_else(|| panic!("no Tasks\n{text}"));
    let count: u32 = tasks["    Tasks: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("bad Tasks line {tasks:?}"));
    assert!(count >= 2, "sh and sleep are two tasks: {tasks:?}");
    assert!(tasks.ends_with("(limit: N/A)"), "{tasks:?}");
    let mem = line_starting(&block, "   Memory: ").unwrap_or_else(|| panic!("no Memory\n{text}"));
    assert!(
        mem.trim_end().ends_with(['B', 'K', 'M', 'G']),
        "memory with a unit: {mem:?}"
    );
    let cpu = line_starting(&block, "      CPU: ").unwrap_or_else(|| panic!("no CPU\n{text}"));
    assert!(
        cpu.trim_end().ends_with('s') && cpu.contains('.'),
        "CPU in seconds: {cpu:?}"
    );
    assert!(
        block.contains(&format!("\n Process Group: {pid}\n")),
        "{text}"
    );
    // The main process is `sh -c <command>` (the shell may be shown by its full path).
    let main_line = block
        .lines()
        .find(|l| l.starts_with(&format!("     |-{pid} ")))
        .unwrap_or_else(|| panic!("no tree line for the main process\n{text}"));
    assert!(
        main_line.contains("sh -c ") && main_line.ends_with(&format!("sleep {n} & wait")),
        "main process line {main_line:?}"
    );
    let sleeper = processes_matching(&format!("sleep {n}"))
        .into_iter()
        .find(|(p, c)| *p != pid && c.starts_with("sleep"))
        .map(|(p, _)| p)
        .expect("the sleep child is running");
    assert!(
        block.contains(&format!("─{sleeper} sleep {n}\n")),
        "tree line for the sleep child {sleeper}\n{text}"
    );
    let tree_line = block
        .lines()
        .find(|l| l.contains(&format!("{sleeper} sleep")))
        .unwrap();
    assert!(
        tree_line.starts_with("       ├─") || tree_line.starts_with("       └─"),
        "child nested under the main process: {tree_line:?}"
    );
}

#[test]
fn backoff_shows_exit_code_delay_and_restart_number() {
    let w = Sysg::new();
    w.start_with(
        r#"
        services:
          flaky:
            command: "exit 1"
            restart_policy: "on-failure"
            backoff: "30s"
        "#,
    );
    w.wait_status("flaky", "backoff");
    let text = w.status_ok();
    let line = line_starting(&text, "● flaky ").unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("● flaky Exited (exit code 1) — restarting in "),
        "{line:?}"
    );
    assert!(line.ends_with("(restart 1)"), "{line:?}");
    // The delay shown is within the 30 s backoff.
    let secs: u64 = line["● flaky Exited (exit code 1) — restarting in ".len()..]
        .split('s')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line:?}"));
    assert!((1..=30).contains(&secs), "{line:?}");
}

#[test]
fn failed_after_giving_up() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          crashy:
            command: "exit 3"
            restart_policy: "on-failure"
            backoff: "50ms"
            max_restarts: 2{}
        "#,
        keeper(n)
    ));
    w.wait_status("crashy", "failed");
    let text = w.status_ok();
    assert!(
        text.lines()
            .any(|l| l == "● crashy Failed — gave up after 2 restarts"),
        "{text}"
    );
}

#[test]
fn stopped_after_stop_s() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"{}
        "#,
        keeper(n)
    ));
    w.wait_running_pid("web", None);
    w.run_ok(&["stop", "-s", "web"]);
    w.wait_status("web", "stopped");
    let text = w.status_ok();
    assert!(
        text.lines().any(|l| l == "● web Stopped (by request)"),
        "{text}"
    );
    // Only the first line: no Active/PID block for a stopped service.
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("● web "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(block, vec!["● web Stopped (by request)"], "{text}");
}

#[test]
fn skipped_service() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          opt:
            command: "exec sleep {n}"
            skip: "true"{}
        "#,
        keeper(n)
    ));
    w.wait_status("opt", "skipped");
    let text = w.status_ok();
    assert!(text.lines().any(|l| l == "● opt Skipped"), "{text}");
}

#[test]
fn waiting_for_a_dependency_that_is_not_up() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          db:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              command: "false"
              interval: "100ms"
              retries: 100000
          app:
            command: "exec sleep {n}"
            depends_on: ["db"]
        "#
    ));
    w.wait_status("app", "waiting");
    let text = w.status_ok();
    assert!(text.lines().any(|l| l == "● app Waiting for db"), "{text}");
}

#[test]
fn exited_with_code_zero() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          once:
            command: "true"{}
        "#,
        keeper(n)
    ));
    w.wait_status("once", "exited");
    let text = w.status_ok();
    assert!(
        text.lines().any(|l| l == "● once Exited (exit code 0)"),
        "{text}"
    );
}

/// Regression: status printed "signal 7" for a service the supervisor log said SIGBUS
/// killed; both now name it the same way.
#[test]
fn killed_by_sigbus_status_names_sigbus() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          bus:
            command: "kill -BUS $$"{}
        "#,
        keeper(n)
    ));
    w.wait_status("bus", "exited");
    let text = w.status_ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("● bus Exited (signal SIGBUS)")),
        "{text}"
    );
    assert!(
        w.supervisor_log().contains("SIGBUS"),
        "{}",
        w.supervisor_log()
    );
}

#[test]
fn cron_job_that_never_ran_shows_its_next_run() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          yearly:
            command: "echo hi"
            cron:
              expression: "0 0 0 1 1 *"
              timezone: "UTC"{}
        "#,
        keeper(n)
    ));
    w.wait_running_pid("keeper", None);
    let svc = w.service("yearly").unwrap();
    let next = svc["cron"]["next_run"]
        .as_str()
        .unwrap_or_else(|| panic!("no next_run: {svc:#}"))
        .to_string();
    let text = w.status_ok();
    let line = line_starting(&text, "● [cron] yearly - ").unwrap_or_else(|| panic!("{text}"));
    // next_run is RFC 3339; the line shows its time of day.
    assert_eq!(
        line,
        format!("● [cron] yearly - Never run; next run {}", &next[11..19]),
        "{text}"
    );
    assert!(text.contains("  Cron history (UTC) for yearly:"), "{text}");
}

const SERVICE_KEYS: &[&str] = &[
    "name",
    "kind",
    "status",
    "pid",
    "started_at",
    "uptime_s",
    "restart_count",
    "exit_code",
    "signal",
    "rss_bytes",
    "cpu_s",
    "tasks",
    "cron",
];

#[test]
fn json_has_every_key_and_real_figures() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"
          job:
            command: "echo hi"
            cron:
              expression: "0 0 0 1 1 *"
              timezone: "UTC"
        "#
    ));
    let pid = w.wait_running_pid("web", None);
    // Figures from /proc may lag the first status by a poll; wait for them.
    let mut v = Value::Null;
    let ok = wait_until(DEADLINE, || {
        v = w.status_json();
        service_in(&v, "web").is_some_and(|s| s["rss_bytes"].as_u64().is_some_and(|r| r > 0))
    });
    assert!(ok, "web has no rss_bytes > 0: {v:#}");

    let services = v["services"].as_array().expect("services is an array");
    assert_eq!(services.len(), 2, "{v:#}");
    for s in services {
        let obj = s.as_object().expect("service is an object");
        for k in SERVICE_KEYS {
            assert!(obj.contains_key(*k), "{} lacks key {k}: {s:#}", s["name"]);
        }
    }

    let web = service_in(&v, "web").unwrap();
    assert_eq!(web["kind"], "service", "{web:#}");
    assert_eq!(web["status"], "running", "{web:#}");
    assert!(web["cron"].is_null(), "{web:#}");
    assert_eq!(web["pid"].as_i64(), Some(pid as i64));
    assert!(alive(pid), "pid {pid} is not a live process");
    assert!(
        cmdline(pid).contains(&format!("sleep {n}")),
        "pid {pid} is {:?}",
        cmdline(pid)
    );
    assert!(
        environ(pid).contains(&"SYSG_SERVICE=web".to_string()),
        "pid {pid} is not web's process"
    );
    assert!(web["tasks"].as_u64().is_some_and(|t| t >= 1), "{web:#}");
    assert!(web["cpu_s"].is_number(), "{web:#}");
    assert!(web["uptime_s"].is_u64(), "{web:#}");
    assert!(web["started_at"].is_string(), "{web:#}");
    assert_eq!(web["restart_count"], 0, "{web:#}");

    let job = service_in(&v, "job").unwrap();
    assert_eq!(job["kind"], "cron", "{job:#}");
    let cron = job["cron"].as_object().unwrap_or_else(|| panic!("{job:#}"));
    for k in ["expression", "timezone", "next_run", "history"] {
        assert!(cron.contains_key(k), "cron lacks {k}: {job:#}");
    }
    assert_eq!(cron["expression"], "0 0 0 1 1 *");
    assert_eq!(cron["timezone"], "UTC");
    assert!(cron["next_run"].is_string(), "{job:#}");
    assert!(
        cron["history"].as_array().is_some_and(|h| h.is_empty()),
        "{job:#}"
    );

    assert_eq!(
        v["supervisor_pid"].as_i64(),
        w.supervisor_pid().map(i64::from),
        "supervisor_pid differs from sysg.pid: {v:#}"
    );
    assert!(v["supervisor_pid"].is_i64(), "{v:#}");
}

#[test]
fn status_s_shows_only_that_service_and_unknown_exits_1() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          alpha:
            command: "exec sleep {n}"
            stop_timeout: "1s"
          beta:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("alpha", None);
    w.wait_running_pid("beta", None);

    let out = w.run(&["status", "-s", "alpha"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("● alpha Running"), "{out}");
    assert!(!out.stdout.contains("beta"), "{out}");

    let out = w.run(&["status", "-s", "alpha", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let names: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha"], "{v:#}");

    let out = w.run(&["status", "-s", "nosuch"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("nosuch"), "{out}");
}

#[test]
fn no_supervisor_ever_status_exits_3_and_json_has_null_pid() {
    let w = Sysg::new();
    let out = w.status_text();
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.all().to_lowercase().contains("not running"),
        "no 'not running' line\n{out}"
    );
    let out = w.run(&["status", "--json"]);
    assert_eq!(out.code, 3, "{out}");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e})\n{out}"));
    assert!(v["supervisor_pid"].is_null(), "{v:#}");
    assert!(v.get("supervisor_pid").is_some(), "key present: {v:#}");
}

#[test]
fn after_stop_status_says_not_running_and_json_has_null_pid() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_running_pid("web", None);
    w.run_ok(&["stop"]);
    let out = w.status_text();
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.all().to_lowercase().contains("not running"),
        "no 'not running' line\n{out}"
    );
    assert!(
        out.stdout.contains("● web "),
        "last known state lists web\n{out}"
    );
    let out = w.run(&["status", "--json"]);
    assert_eq!(out.code, 3, "{out}");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e})\n{out}"));
    assert!(v["supervisor_pid"].is_null(), "{v:#}");
    assert!(service_in(&v, "web").is_some(), "{v:#}");
}
