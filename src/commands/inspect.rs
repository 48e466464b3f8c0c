//! `sysg inspect NAME [--json] [--env]`: everything about one service, from the running
//! supervisor.

use crate::client;
use crate::commands::status_view::escape_control;
use crate::error::{Error, Result};
use crate::ipc::{Inspect, Request};
use std::fmt::Write as _;

pub fn inspect(service: &str, json: bool, env: bool) -> Result<i32> {
    let paths = super::paths()?;
    let req = Request::Inspect {
        service: service.to_string(),
        env,
    };
    let resp = client::call(&paths, &req, client::REPLY_TIMEOUT)?;
    let report = resp
        .inspect
        .ok_or_else(|| Error::msg("supervisor sent nothing to inspect"))?;
    let text = if json {
        let mut text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::msg(format!("cannot encode: {e}")))?;
        text.push('\n');
        text
    } else {
        render(&report)
    };
    // A reader gone (`| head`) is no error.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(0)
}

/// `arg` as a shell would need it written: bare when safe, else in single quotes.
fn quoted(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

fn secs(ms: u64) -> String {
    let d = std::time::Duration::from_millis(ms);
    if ms.is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", ms)
    }
}

/// The text form: one `key: value` a line, lists indented below their heading.
pub fn render(r: &Inspect) -> String {
    let e = |s: &str| escape_control(s).into_owned();
    let mut out = String::new();
    let state = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(out, "{} ({}): {state}", e(&r.name), r.kind);
    if let Some(pid) = r.pid {
        let _ = writeln!(out, "  pid: {pid}");
    }
    let _ = writeln!(out, "  command: {}", e(&r.command));
    let runs: Vec<String> = r.runs.iter().map(|a| e(&quoted(a))).collect();
    let _ = writeln!(out, "  runs: {}", runs.join(" "));
    let _ = writeln!(out, "  working dir: {}", e(&r.working_dir));
    if let Some(user) = &r.user {
        let _ = writeln!(out, "  user: {user}");
    }
    if let Some(group) = r.group {
        let _ = writeln!(out, "  group: {group}");
    }
    if let Some(cgroup) = &r.cgroup {
        let _ = writeln!(out, "  cgroup: {}", e(cgroup));
    }
    let _ = writeln!(
        out,
        "  restart: {} (backoff {}, max restarts {}), {} so far",
        r.restart_policy,
        secs(r.backoff_ms),
        r.max_restarts
            .map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
        r.restart_count
    );
    let _ = writeln!(
        out,
        "  stop: {} then SIGKILL after {}",
        r.stop_signal,
        secs(r.stop_timeout_ms)
    );
    if !r.depends_on.is_empty() {
        let _ = writeln!(out, "  depends on: {}", r.depends_on.join(", "));
    }
    if let Some(check) = &r.health_check {
        let _ = writeln!(out, "  health check: {}", e(check));
    }
    if let Some(next) = &r.next_cron {
        let _ = writeln!(out, "  next cron run: {next}");
    }
    match &r.env {
        Some(vars) => {
            let _ = writeln!(out, "  environment:");
            for (k, v) in vars {
                let _ = writeln!(out, "    {}={}", e(k), e(v));
            }
        }
        None => {
            let keys: Vec<String> = r.env_keys.iter().map(|k| e(k)).collect();
            let _ = writeln!(out, "  environment keys: {}", keys.join(" "));
        }
    }
    let _ = writeln!(out, "  exits (newest first):");
    if r.exits.is_empty() {
        let _ = writeln!(out, "    none yet");
    }
    for x in &r.exits {
        let _ = writeln!(
            out,
            "    {}  {} after {:.1}s: {}",
            x.at,
            x.exit,
            x.uptime_s,
            e(&x.then)
        );
    }
    if !r.probes.is_empty() {
        let _ = writeln!(out, "  probes (newest first):");
        for p in &r.probes {
            let verdict = if p.healthy { "passing" } else { "failing" };
            let _ = writeln!(out, "    {}  {verdict}: {}", p.at, e(&p.detail));
        }
    }
    if !r.hooks.is_empty() {
        let _ = writeln!(out, "  hooks (last run):");
        for h in &r.hooks {
            let _ = writeln!(
                out,
                "    {}  {}: {} in {}",
                h.at,
                h.hook,
                e(&h.outcome),
                secs(h.duration_ms)
            );
        }
    }
    let _ = writeln!(out, "  logs:");
    for l in &r.logs {
        let _ = writeln!(out, "    {} ({} bytes)", e(&l.path), l.bytes);
    }
    out
}
