//! `sysg status` text: the seed's systemd-like block per service (SPEC §4). Pure: it turns
//! a `StatusReport` and the current time into a string, so every state is unit-tested.

use crate::config::signal_name;
use crate::ipc::{CronRun, CronStatus, ProcessInfo, ServiceStatus, State, StatusReport};
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tone {
    Good,
    Bad,
    Plain,
}

pub fn render(report: &StatusReport, now: DateTime<Utc>, color: bool) -> String {
    let mut out = String::new();
    out.push_str(if report.supervisor_pid.is_some() {
        "Service statuses:\n"
    } else {
        "Supervisor not running (last known state):\n"
    });
    if report.services.is_empty() {
        out.push_str("  (no services)\n");
    }
    for (i, svc) in report.services.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if svc.kind == "cron" {
            render_cron(&mut out, svc, color);
        } else {
            render_service(&mut out, svc, now, color);
        }
    }
    out
}

fn bullet(tone: Tone, color: bool) -> String {
    match (color, tone) {
        (true, Tone::Good) => format!("{GREEN}●{RESET}"),
        (true, Tone::Bad) => format!("{RED}●{RESET}"),
        _ => "●".to_string(),
    }
}

fn render_service(out: &mut String, svc: &ServiceStatus, now: DateTime<Utc>, color: bool) {
    let (tone, summary) = service_summary(svc);
    let _ = writeln!(out, "{} {} {summary}", bullet(tone, color), svc.name);
    if svc.status != State::Running {
        return;
    }
    match elapsed_secs(svc, now) {
        Some(secs) => {
            let _ = writeln!(
                out,
                "   Active: active (running) since {}",
                format_since(secs)
            );
        }
        None => out.push_str("   Active: active (running)\n"),
    }
    let Some(pid) = svc.pid else { return };
    let _ = writeln!(out, " Main PID: {pid}");
    if let Some(tasks) = svc.tasks {
        let _ = writeln!(out, "    Tasks: {tasks} (limit: N/A)");
    }
    if let Some(rss) = svc.rss_bytes {
        let _ = writeln!(out, "   Memory: {}", format_memory(rss));
    }
    if let Some(cpu) = svc.cpu_s {
        let _ = writeln!(out, "      CPU: {cpu:.3}s");
    }
    if !svc.processes.is_empty() {
        // The service runs in its own group, led by the main process.
        let _ = writeln!(out, " Process Group: {pid}");
        render_tree(out, &svc.processes, pid);
    }
}

/// The words after the name on the first line, and the bullet's colour.
fn service_summary(svc: &ServiceStatus) -> (Tone, String) {
    let with_reason = |text: &str| with_reason(text, &svc.reason);
    match svc.status {
        State::Running => (Tone::Good, "Running".to_string()),
        State::Exited => {
            let tone = if exit_is_clean(svc.exit_code, svc.signal) {
                Tone::Plain
            } else {
                Tone::Bad
            };
            let why = svc
                .reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default();
            (
                tone,
                format!("Exited{}{why}", exit_suffix(svc.exit_code, svc.signal)),
            )
        }
        State::Backoff => {
            let when = match svc.restart_in_ms {
                Some(ms) => format!(" in {}s", ms.div_ceil(1000)),
                None => String::new(),
            };
            // restart_count already includes the restart being waited for.
            let text = format!(
                "Exited{} — restarting{when} (restart {})",
                exit_suffix(svc.exit_code, svc.signal),
                svc.restart_count
            );
            (Tone::Bad, text)
        }
        State::Failed => match &svc.reason {
            Some(r) => (Tone::Bad, format!("Failed — {r}")),
            None => (
                Tone::Bad,
                format!("Failed{}", exit_suffix(svc.exit_code, svc.signal)),
            ),
        },
        State::Waiting => match &svc.waiting_for {
            Some(dep) => (Tone::Plain, format!("Waiting for {dep}")),
            None => (Tone::Plain, with_reason("Waiting")),
        },
        State::Pending => (Tone::Plain, with_reason("Pending")),
        State::Stopping => (Tone::Plain, with_reason("Stopping")),
        State::Stopped => (Tone::Plain, with_reason("Stopped")),
        State::Skipped => (Tone::Plain, with_reason("Skipped")),
        State::Idle => (Tone::Plain, with_reason("Idle")),
    }
}

fn exit_is_clean(code: Option<i32>, signal: Option<i32>) -> bool {
    signal.is_none() && code.is_none_or(|c| c == 0)
}

/// `Stopped — dependency db failed`, or just `Stopped`.
fn with_reason(text: &str, reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!("{text} — {r}"),
        None => text.to_string(),
    }
}

/// ` (exit code N)`, ` (signal SIGKILL)`, or nothing when neither is known.
fn exit_suffix(code: Option<i32>, signal: Option<i32>) -> String {
    match (signal, code) {
        (Some(sig), _) => format!(" (signal {})", signal_name(sig)),
        (None, Some(code)) => format!(" (exit code {code})"),
        (None, None) => String::new(),
    }
}

/// Seconds the current instance has run: the supervisor's own figure, else from
/// `started_at` (state.json has no uptime).
fn elapsed_secs(svc: &ServiceStatus, now: DateTime<Utc>) -> Option<u64> {
    if let Some(up) = svc.uptime_s {
        return Some(up);
    }
    let started = DateTime::parse_from_rfc3339(svc.started_at.as_deref()?).ok()?;
    Some((now - started.with_timezone(&Utc)).num_seconds().max(0) as u64)
}

/// `|-` for the main process (and any other root), children two spaces deeper per level
/// with `├─`. `└─` marks the last of two or more siblings; an only child keeps `├─`, as
/// in SPEC §4's example.
fn render_tree(out: &mut String, procs: &[ProcessInfo], main_pid: i32) {
    let present: HashSet<i32> = procs.iter().map(|p| p.pid).collect();
    let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        if p.ppid != p.pid && present.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    // The main process first even if another root has a lower pid.
    roots.sort_by_key(|i| procs[*i].pid != main_pid);
    let mut visited = vec![false; procs.len()];
    // (index, depth, is last of several siblings)
    let mut stack: Vec<(usize, usize, bool)> = roots.iter().rev().map(|i| (*i, 0, false)).collect();
    while let Some((i, depth, last)) = stack.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let p = &procs[i];
        if depth == 0 {
            let _ = writeln!(out, "     |-{} {}", p.pid, p.command);
        } else {
            let branch = if last { "└─" } else { "├─" };
            let indent = " ".repeat(5 + 2 * depth);
            let _ = writeln!(out, "{indent}{branch}{} {}", p.pid, p.command);
        }
        if let Some(kids) = children.get(&p.pid) {
            let n = kids.len();
            for (k, kid) in kids.iter().enumerate().rev() {
                stack.push((*kid, depth + 1, n > 1 && k == n - 1));
            }
        }
    }
}

fn render_cron(out: &mut String, svc: &ServiceStatus, color: bool) {
    let history = sorted_history(svc.cron.as_ref());
    let last_done = history.iter().find(|r| !r.skipped);
    let next = svc
        .cron
        .as_ref()
        .and_then(|c| c.next_run.as_deref())
        .and_then(parse_time);
    let (tone, summary) = match (svc.status, last_done) {
        (State::Running, _) => (Tone::Good, "Running".to_string()),
        (State::Failed, _) => (Tone::Bad, with_reason("Failed", &svc.reason)),
        (State::Stopped, _) => (Tone::Plain, with_reason("Stopped", &svc.reason)),
        (_, Some(run)) => match (run.signal, run.exit_code) {
            (None, Some(0)) => (Tone::Plain, "Exited successfully (exit code 0)".to_string()),
            // Recorded as started but never finished: the supervisor went away mid-run.
            (None, None) => (Tone::Plain, "Last run did not finish".to_string()),
            (sig, code) => (
                Tone::Bad,
                format!("Exited with error{}", exit_suffix(code, sig)),
            ),
        },
        (_, None) => match next {
            Some(t) => (
                Tone::Plain,
                format!("Never run; next run {}", t.format("%H:%M:%S")),
            ),
            None => (Tone::Plain, "Never run".to_string()),
        },
    };
    let _ = writeln!(
        out,
        "{} [cron] {} - {summary}",
        bullet(tone, color),
        svc.name
    );
    let zone = svc.cron.as_ref().map_or("local", |c| c.timezone.as_str());
    let _ = writeln!(out, "  Cron history ({zone}) for {}:", svc.name);
    for run in &history {
        let when = match parse_time(&run.started_at) {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
            None => run.started_at.clone(),
        };
        let outcome = if run.skipped {
            "skipped (still running)".to_string()
        } else {
            match (run.signal, run.exit_code) {
                (Some(sig), _) => format!("signal {}", signal_name(sig)),
                (None, Some(code)) => format!("exit {code}"),
                (None, None) => "running".to_string(),
            }
        };
        let _ = writeln!(out, "    - {when} | {outcome}");
    }
    if let Some(t) = next {
        let _ = writeln!(out, "  Next run: {}", t.format("%Y-%m-%d %H:%M:%S %:z"));
    }
}

/// Runs newest first, whatever order they were stored in.
fn sorted_history(cron: Option<&CronStatus>) -> Vec<&CronRun> {
    let mut runs: Vec<&CronRun> = cron.map(|c| c.history.iter().collect()).unwrap_or_default();
    // Stable sort: unparsable times keep their stored order, after the dated ones.
    runs.sort_by_key(|r| std::cmp::Reverse(parse_time(&r.started_at)));
    runs
}

fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// `MM:SS` (or `H:MM:SS` from an hour on), then the largest whole unit: `00:16; 16 secs
/// ago`, `1:02:03; 1 hour ago`, `48:00:00; 2 days ago`.
pub fn format_since(elapsed_secs: u64) -> String {
    let (h, m, s) = (
        elapsed_secs / 3600,
        elapsed_secs / 60 % 60,
        elapsed_secs % 60,
    );
    let clock = if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    };
    let (n, unit) = match elapsed_secs {
        0..=59 => (elapsed_secs, "sec"),
        60..=3599 => (elapsed_secs / 60, "min"),
        3600..=86399 => (elapsed_secs / 3600, "hour"),
        _ => (elapsed_secs / 86400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{clock}; {n} {unit}{plural} ago")
}

/// systemd-like: bytes as `NB`, kibibytes whole (`512K`), larger with one decimal,
/// truncated (`2.0M`, `1.2G`).
pub fn format_memory(bytes: u64) -> String {
    const K: u64 = 1024;
    if bytes < K {
        return format!("{bytes}B");
    }
    if bytes < K * K {
        return format!("{}K", bytes / K);
    }
    let (factor, unit) = if bytes < K * K * K {
        (K * K, "M")
    } else if bytes < K * K * K * K {
        (K * K * K, "G")
    } else {
        (K * K * K * K, "T")
    };
    let tenths = (bytes as u128 * 10 / factor as u128) as u64;
    format!("{}.{}{unit}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            services: vec![s],
        };
        assert_eq!(
            render(&r, now(), false),
            "Supervisor not running (last known state):\n● api Running\n   Active: active (running) since 01:00; 1 min ago\n Main PID: 42\n"
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
}
