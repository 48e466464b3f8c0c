//! The status text of every state, checked against SPEC §4's examples.

use super::*;
use crate::ipc::ProcessInfo;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-31T15:50:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn svc(name: &str, status: State) -> ServiceStatus {
    // Absent Option fields deserialize as None: every figure unknown.
    let status = serde_json::to_string(&status).unwrap();
    let json =
        format!(r#"{{"name":"{name}","kind":"service","status":{status},"restart_count":0}}"#);
    serde_json::from_str(&json).unwrap()
}

fn report(services: Vec<ServiceStatus>) -> StatusReport {
    StatusReport {
        supervisor_pid: Some(1),
        config: None,
        containment: None,
        services,
    }
}

fn one(s: ServiceStatus) -> String {
    render(&report(vec![s]), now(), false)
        .trim_start_matches("Service statuses:\n")
        .to_string()
}

fn proc_info(pid: i32, ppid: i32, command: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid,
        command: command.to_string(),
    }
}

fn running_echo_lines() -> ServiceStatus {
    let mut s = svc("echo_lines", State::Running);
    s.pid = Some(67705);
    s.uptime_s = Some(16);
    s.tasks = Some(2);
    s.rss_bytes = Some(2 * 1024 * 1024);
    s.cpu_s = Some(0.01);
    s.processes = vec![
        proc_info(67705, 1, "sh -c sh echo_lines.sh"),
        proc_info(67943, 67705, "sleep 5"),
    ];
    s
}

#[test]
fn running_service_matches_the_spec_block() {
    let expected = "\
● echo_lines Running
   Active: active (running) since 00:16; 16 secs ago
 Main PID: 67705
    Tasks: 2 (limit: N/A)
   Memory: 2.0M
      CPU: 0.010s
 Process Group: 67705
     |-67705 sh -c sh echo_lines.sh
       ├─67943 sleep 5
";
    assert_eq!(one(running_echo_lines()), expected);
}

#[test]
fn running_from_state_json_omits_missing_figures_and_uses_started_at() {
    let mut s = svc("api", State::Running);
    s.pid = Some(42);
    s.started_at = Some("2025-12-31T15:49:00Z".to_string());
    let r = StatusReport {
        supervisor_pid: None,
        config: None,
        containment: None,
        services: vec![s],
    };
    assert_eq!(
            render(&r, now(), false),
            "Supervisor not running (last known state):\n● api Running\n   Active: active (running) since 01:00; 1 min ago\n Main PID: 42\n\nStart it with: sysg start -d -c FILE\n"
        );
}

#[test]
fn tree_nests_and_marks_the_last_of_several_siblings() {
    let mut s = running_echo_lines();
    s.processes = vec![
        proc_info(10, 1, "sh -c run"),
        proc_info(11, 10, "worker a"),
        proc_info(13, 11, "grandchild"),
        proc_info(12, 10, "worker b"),
        proc_info(99, 1, "escaped"),
    ];
    let text = one(s);
    let tree: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with(" Process Group"))
        .skip(1)
        .collect();
    assert_eq!(
        tree,
        vec![
            "     |-10 sh -c run",
            "       ├─11 worker a",
            "         ├─13 grandchild",
            "       └─12 worker b",
            "     |-99 escaped",
        ]
    );
}

#[test]
fn backoff_shows_exit_delay_and_restart_number() {
    let mut s = svc("api", State::Backoff);
    s.exit_code = Some(1);
    s.restart_in_ms = Some(3200);
    s.restart_count = 2;
    assert_eq!(
        one(s),
        "● api Exited (exit code 1) — restarting in 4s (restart 2)\n"
    );
}

#[test]
fn exited_shows_code_or_signal() {
    let mut s = svc("api", State::Exited);
    s.exit_code = Some(0);
    assert_eq!(one(s.clone()), "● api Exited (exit code 0)\n");
    s.signal = Some(9);
    assert_eq!(one(s.clone()), "● api Exited (signal SIGKILL)\n");
    s.reason = Some("health check failed 3 times: exit code 1".into());
    assert_eq!(
        one(s),
        "● api Exited (signal SIGKILL) — health check failed 3 times: exit code 1\n"
    );
}

#[test]
fn failed_prefers_the_reason() {
    let mut s = svc("api", State::Failed);
    s.exit_code = Some(3);
    assert_eq!(one(s.clone()), "● api Failed (exit code 3)\n");
    s.reason = Some("gave up after 5 restarts".to_string());
    assert_eq!(one(s), "● api Failed — gave up after 5 restarts\n");
}

#[test]
fn quiet_states_are_one_line() {
    assert_eq!(one(svc("api", State::Stopped)), "● api Stopped\n");
    assert_eq!(one(svc("api", State::Skipped)), "● api Skipped\n");
    assert_eq!(one(svc("api", State::Pending)), "● api Pending\n");
    assert_eq!(one(svc("api", State::Stopping)), "● api Stopping\n");
    let mut w = svc("api", State::Waiting);
    w.waiting_for = Some("db".to_string());
    assert_eq!(one(w), "● api Waiting for db\n");
    let mut d = svc("api", State::Stopped);
    d.reason = Some("dependency db failed".to_string());
    assert_eq!(one(d), "● api Stopped — dependency db failed\n");
}

fn cron_svc(history: Vec<CronRun>, next: Option<&str>) -> ServiceStatus {
    let mut s = svc("count_number", State::Idle);
    s.kind = "cron".to_string();
    s.cron = Some(CronStatus {
        expression: "*/10 * * * * *".to_string(),
        timezone: "UTC".to_string(),
        next_run: next.map(str::to_string),
        history,
    });
    s
}

fn run(at: &str, exit_code: Option<i32>, signal: Option<i32>, skipped: bool) -> CronRun {
    CronRun {
        started_at: at.to_string(),
        duration_ms: Some(50),
        exit_code,
        signal,
        skipped,
    }
}

#[test]
fn cron_lists_history_newest_first() {
    let s = cron_svc(
        vec![
            run("2025-12-31T15:47:00Z", Some(0), None, false),
            run("2025-12-31T15:47:20Z", None, None, true),
            run("2025-12-31T15:47:10Z", Some(0), None, false),
        ],
        None,
    );
    let expected = "\
● [cron] count_number - Exited successfully (exit code 0)
  Cron history (UTC) for count_number:
    - 2025-12-31 15:47:20 +00:00 | skipped (still running)
    - 2025-12-31 15:47:10 +00:00 | exit 0
    - 2025-12-31 15:47:00 +00:00 | exit 0
";
    assert_eq!(one(s), expected);
}

#[test]
fn cron_error_signal_and_next_run() {
    let s = cron_svc(
        vec![
            run("2025-12-31T15:47:00Z", Some(2), None, false),
            run("2025-12-31T15:46:50Z", None, Some(9), false),
        ],
        Some("2025-12-31T15:47:10+00:00"),
    );
    let expected = "\
● [cron] count_number - Exited with error (exit code 2)
  Cron history (UTC) for count_number:
    - 2025-12-31 15:47:00 +00:00 | exit 2
    - 2025-12-31 15:46:50 +00:00 | signal SIGKILL
  Next run: 2025-12-31 15:47:10 +00:00
";
    assert_eq!(one(s), expected);
}

#[test]
fn cron_never_run_and_running() {
    let s = cron_svc(Vec::new(), Some("2025-12-31T15:47:10Z"));
    assert!(one(s).starts_with("● [cron] count_number - Never run; next run 15:47:10\n  Cron history (UTC) for count_number:\n"));
    let mut r = cron_svc(vec![run("2025-12-31T15:47:00Z", None, None, false)], None);
    r.status = State::Running;
    assert!(one(r).starts_with("● [cron] count_number - Running\n"));
}

#[test]
fn blocks_are_separated_by_a_blank_line() {
    let text = render(
        &report(vec![svc("a", State::Stopped), svc("b", State::Skipped)]),
        now(),
        false,
    );
    assert_eq!(text, "Service statuses:\n● a Stopped\n\n● b Skipped\n");
}

#[test]
fn colour_only_when_asked() {
    let mut bad = svc("x", State::Exited);
    bad.exit_code = Some(1);
    let services = vec![running_echo_lines(), bad, svc("y", State::Stopped)];
    let plain = render(&report(services.clone()), now(), false);
    assert!(!plain.contains('\x1b'));
    let coloured = render(&report(services), now(), true);
    assert!(coloured.contains("\x1b[32m●\x1b[0m echo_lines Running"));
    assert!(coloured.contains("\x1b[31m●\x1b[0m x Exited (exit code 1)"));
    assert!(coloured.contains("\n● y Stopped"));
}

#[test]
fn format_since_units() {
    assert_eq!(format_since(0), "00:00; 0 secs ago");
    assert_eq!(format_since(1), "00:01; 1 sec ago");
    assert_eq!(format_since(16), "00:16; 16 secs ago");
    assert_eq!(format_since(65), "01:05; 1 min ago");
    assert_eq!(format_since(600), "10:00; 10 mins ago");
    assert_eq!(format_since(3723), "1:02:03; 1 hour ago");
    assert_eq!(format_since(86400), "24:00:00; 1 day ago");
    assert_eq!(format_since(2 * 86400 + 5), "48:00:05; 2 days ago");
}

#[test]
fn format_memory_units() {
    assert_eq!(format_memory(512), "512B");
    assert_eq!(format_memory(512 * 1024), "512K");
    assert_eq!(format_memory(2 * 1024 * 1024), "2.0M");
    assert_eq!(format_memory(8_600_000), "8.2M");
    assert_eq!(format_memory(1288490189), "1.2G");
    assert_eq!(format_memory(3 << 40), "3.0T");
}

/// Regression: status showed "signal 7" where the supervisor log said SIGBUS.
#[test]
fn exited_by_sigbus_is_named_like_the_supervisor_log_names_it() {
    let mut s = svc("api", State::Exited);
    s.signal = Some(libc::SIGBUS);
    assert_eq!(one(s), "● api Exited (signal SIGBUS)\n");
    let history = vec![run("2025-12-31T15:47:00Z", None, Some(libc::SIGBUS), false)];
    assert!(one(cron_svc(history, None)).contains("| signal SIGBUS\n"));
}

#[test]
fn control_characters_are_escaped_and_plain_text_is_untouched() {
    assert_eq!(escape_control("sleep 1 — ok ●"), "sleep 1 — ok ●");
    assert_eq!(
        escape_control("a\n● db Running\x1b[2J\t\r\u{7f}\u{9b}\u{202e}"),
        "a\\n● db Running\\x1b[2J\\t\\r\\x7f\\u{9b}\\u{202e}"
    );
}
