//! `sysg events [--json]`: a subscription to the running supervisor's lifecycle events,
//! printed as they arrive until the supervisor exits.

use crate::client;
use crate::error::{Error, Result};
use crate::ipc::{LifecycleEvent, Request};
use std::io::{BufRead, Write};

pub fn events(json: bool) -> Result<i32> {
    let paths = super::paths()?;
    let (resp, mut reader) = client::subscribe(&paths, &Request::Events)?;
    if !resp.ok {
        return Err(Error::msg(resp.error.unwrap_or_default()));
    }
    let stdout = std::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return Ok(0),
            Ok(_) => {}
        }
        let text = if json {
            line.trim_end().to_string()
        } else {
            match serde_json::from_str::<LifecycleEvent>(&line) {
                Ok(ev) => render(&ev),
                Err(_) => continue,
            }
        };
        let mut out = stdout.lock();
        // A reader gone (`| head`) ends it quietly.
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return Ok(0);
        }
    }
}

/// `12:00:01.234 api starting -> up (pid 42)`.
pub fn render(ev: &LifecycleEvent) -> String {
    use crate::commands::status_view::escape_control;
    let time = ev
        .time
        .split_once('T')
        .map_or(ev.time.as_str(), |(_, t)| t)
        .trim_end_matches('Z');
    let mut text = format!("{time} {}", escape_control(&ev.service));
    match ev.kind.as_str() {
        "state" => {
            let from = ev.from.as_deref().unwrap_or("?");
            let to = ev.to.as_deref().unwrap_or("?");
            text.push_str(&format!(" {from} -> {to}"));
            let mut notes = Vec::new();
            if let Some(pid) = ev.pid {
                notes.push(format!("pid {pid}"));
            }
            if let Some(exit) = &ev.exit {
                notes.push(exit.clone());
            }
            if to == "backoff" || (ev.restarts > 0 && to == "starting") {
                notes.push(format!("restart {}", ev.restarts));
            }
            if let Some(detail) = &ev.detail {
                notes.push(escape_control(detail).into_owned());
            }
            if !notes.is_empty() {
                text.push_str(&format!(" ({})", notes.join("; ")));
            }
        }
        kind => {
            let detail = ev.detail.as_deref().unwrap_or_default();
            text.push_str(&format!(" {kind} {}", escape_control(detail)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> LifecycleEvent {
        LifecycleEvent {
            time: "2026-12-02T12:00:01.234Z".into(),
            service: "api".into(),
            kind: kind.into(),
            from: None,
            to: None,
            pid: None,
            exit: None,
            detail: None,
            restarts: 0,
        }
    }

    #[test]
    fn transitions_read_like_the_issue_says() {
        let mut ev = event("state");
        ev.from = Some("starting".into());
        ev.to = Some("up".into());
        ev.pid = Some(42);
        assert_eq!(render(&ev), "12:00:01.234 api starting -> up (pid 42)");
        let mut ev = event("state");
        ev.from = Some("up".into());
        ev.to = Some("backoff".into());
        ev.exit = Some("exit code 1".into());
        ev.restarts = 2;
        assert_eq!(
            render(&ev),
            "12:00:01.234 api up -> backoff (exit code 1; restart 2)"
        );
        let mut ev = event("probe");
        ev.detail = Some("failed: connection refused\x1b[2J".into());
        assert_eq!(
            render(&ev),
            "12:00:01.234 api probe failed: connection refused\\x1b[2J"
        );
    }
}
