//! `sysg status` text: the seed's systemd-like block per service (SPEC §4). Pure: it turns
//! a `StatusReport` and the current time into a string, so every state is unit-tested.
//! Text from the report is printed through [`escape_control`]: JSON output is serde's.

use crate::config::signal_name;
use crate::ipc::{CronRun, CronStatus, ServiceStatus, State, StatusReport};
use chrono::{DateTime, FixedOffset, Utc};
use std::fmt::Write as _;

mod tree;

pub use tree::tree_order;

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
            render_service(&mut out, svc, now, color, report.supervisor_pid.is_some());
        }
    }
    if report.supervisor_pid.is_none() {
        let config = report.config.as_ref().map_or_else(
            || "FILE".to_string(),
            |c| escape_control(&c.to_string_lossy()).into_owned(),
        );
        let _ = writeln!(out, "\nStart it with: sysg start -d -c {config}");
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

fn render_service(
    out: &mut String,
    svc: &ServiceStatus,
    now: DateTime<Utc>,
    color: bool,
    live: bool,
) {
    let (tone, mut summary) = service_summary(svc);
    // Without a supervisor, "running" is a process a crashed one left behind: say so.
    if !live && svc.status == State::Running {
        summary = with_reason(&summary, &svc.reason);
    }
    let _ = writeln!(
        out,
        "{} {} {}",
        bullet(tone, color),
        escape_control(&svc.name),
        escape_control(&summary)
    );
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
    let cgroup = svc.cgroup.as_ref();
    if let Some(tasks) = svc.tasks {
        let limit = cgroup
            .and_then(|c| c.pids_max)
            .map_or_else(|| "N/A".to_string(), |n| n.to_string());
        let _ = writeln!(out, "    Tasks: {tasks} (limit: {limit})");
    }
    if let Some(rss) = svc.rss_bytes {
        let max = cgroup
            .and_then(|c| c.memory_max)
            .map_or_else(String::new, |m| format!(" (max: {})", format_memory(m)));
        let _ = writeln!(out, "   Memory: {}{max}", format_memory(rss));
    }
    if let Some(cpu) = svc.cpu_s {
        let _ = writeln!(out, "      CPU: {cpu:.3}s");
    }
    if let Some(text) = &svc.notify_status {
        let _ = writeln!(out, "   Status: \"{}\"", escape_control(text));
    }
    if let Some(p) = &svc.last_probe {
        let verdict = if p.healthy { "passing" } else { "failing" };
        let when = DateTime::parse_from_rfc3339(&p.at)
            .ok()
            .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0))
            .map_or_else(String::new, |s| format!(", {s}s ago"));
        let _ = writeln!(
            out,
            "   Health: {verdict} ({}{when})",
            escape_control(&p.detail)
        );
    }
    if let Some(c) = cgroup {
        let _ = writeln!(out, "   CGroup: {}", escape_control(&c.path));
    }
    if !svc.processes.is_empty() {
        // The service runs in its own group, led by the main process.
        let _ = writeln!(out, " Process Group: {pid}");
        tree::render(out, &svc.processes, pid);
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
        State::Stopped if svc.stopped_by_request => (Tone::Plain, "Stopped (by request)".into()),
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
    let name = escape_control(&svc.name);
    let _ = writeln!(
        out,
        "{} [cron] {name} - {}",
        bullet(tone, color),
        escape_control(&summary)
    );
    let zone = svc.cron.as_ref().map_or("local", |c| c.timezone.as_str());
    let _ = writeln!(out, "  Cron history ({}) for {name}:", escape_control(zone));
    for run in &history {
        let when = match parse_time(&run.started_at) {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
            None => escape_control(&run.started_at).into_owned(),
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

/// `text` safe to print to a terminal: control characters (C0, DEL, C1), line and
/// paragraph separators and bidirectional overrides are written as escapes (`\n`, `\t`,
/// `\r`, `\x1b`, `\u{202e}`), so text a service controls (its command line, an error
/// naming its files) can neither start a line of its own nor send escape sequences.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;
