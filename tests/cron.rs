//! Cron jobs (SPEC §3 "Cron jobs", §4 status cron form, §6 state.json): not started at
//! boot, one run per fire time, overlap skips, the last 10 runs kept across restarts,
//! time zones, no policy retries, and `stop -s` / `start -s` of a schedule.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

/// Long enough for a dozen per-second fires on a loaded box.
const LONG: Duration = Duration::from_secs(45);

fn is_skipped(run: &Value) -> bool {
    run["skipped"] == true
}

/// A run that has ended (not skipped, not still running).
fn is_finished(run: &Value) -> bool {
    !is_skipped(run) && !run["duration_ms"].is_null()
}

fn started_at(run: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = run["started_at"].as_str().expect("started_at is a string");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("started_at {s:?} is not RFC 3339: {e}"))
}

/// Waits until `name` has at least `n` finished runs in state.json; returns the history.
fn wait_finished(w: &Sysg, name: &str, n: usize, limit: Duration) -> Vec<Value> {
    let mut history = Vec::new();
    let ok = wait_until(limit, || {
        history = w.cron_history(name);
        history.iter().filter(|r| is_finished(r)).count() >= n
    });
    assert!(
        ok,
        "{name} never had {n} finished runs; history: {history:#?}\n{}",
        w.diagnostics()
    );
    history
}

#[test]
fn cron_job_is_not_started_at_boot() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          yearly:
            command: \"echo ran >> yearly.out\"
            cron:
              expression: \"0 0 0 1 1 *\"
        ",
    );
    let mut state = Value::Null;
    let ok = wait_until(DEADLINE, || {
        state = w.state_json();
        state["services"]["yearly"]["cron"]["next_run"].is_string()
    });
    assert!(
        ok,
        "state.json has no cron.next_run: {state:#}\n{}",
        w.diagnostics()
    );
    let rec = &state["services"]["yearly"];
    assert_eq!(rec["status"], "idle", "{state:#}");
    assert_eq!(
        rec["cron"]["history"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{state:#}"
    );
    assert!(
        rec["pid"].is_null(),
        "a cron job has a pid at boot: {state:#}"
    );

    let status = w.status_ok();
    assert!(
        status.contains("● [cron] yearly - Never run; next run "),
        "{status}"
    );
    assert!(status.contains("Cron history ("), "{status}");
    assert_eq!(w.service_status("yearly").as_deref(), Some("idle"));

    // Nothing to wait for: the command must simply not run.
    assert!(
        holds_for(Duration::from_secs(2), || !w
            .proj_file("yearly.out")
            .exists()),
        "a yearly cron job ran at boot\n{}",
        w.diagnostics()
    );
}

#[test]
fn per_second_job_records_history_newest_first_capped_at_ten() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          tick:
            command: \"echo run >> runs.txt\"
            cron:
              expression: \"* * * * * *\"
        ",
    );
    let history = wait_finished(&w, "tick", 3, DEADLINE);
    for run in history.iter().filter(|r| is_finished(r)) {
        assert_eq!(run["exit_code"], 0, "{history:#?}");
        assert!(run["duration_ms"].is_u64(), "{history:#?}");
        assert!(!is_skipped(run), "{history:#?}");
    }
    for pair in history.windows(2) {
        assert!(
            started_at(&pair[0]) >= started_at(&pair[1]),
            "history is not newest first: {history:#?}"
        );
    }
    assert!(w.count_proj_lines("runs.txt") >= 3);

    let status = w.status_ok();
    assert!(status.contains("● [cron] tick - "), "{status}");
    assert!(status.contains("Cron history ("), "{status}");
    assert!(status.contains(" | exit 0"), "{status}");

    // History keeps the last 10 runs only.
    let ok = wait_until(LONG, || w.count_proj_lines("runs.txt") >= 12);
    assert!(
        ok,
        "fewer than 12 runs happened: {}\n{}",
        w.count_proj_lines("runs.txt"),
        w.diagnostics()
    );
    let history = w.cron_history("tick");
    assert_eq!(
        history.len(),
        10,
        "history is not capped at 10: {history:#?}"
    );
    for pair in history.windows(2) {
        assert!(
            started_at(&pair[0]) >= started_at(&pair[1]),
            "history is not newest first: {history:#?}"
        );
    }
    let json = w.service("tick").unwrap();
    assert_eq!(
        json["cron"]["history"].as_array().map(Vec::len),
        Some(10),
        "{json:#}"
    );
}

#[test]
fn overlapping_fire_is_skipped_and_never_runs_twice_at_once() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          slow:
            command: \"mkdir lockdir 2>/dev/null || echo OVERLAP >> overlap.txt; echo run >> runs.txt; sleep 2.5; rmdir lockdir\"
            cron:
              expression: \"* * * * * *\"
        ",
    );
    let mut history = Vec::new();
    let ok = wait_until(LONG, || {
        history = w.cron_history("slow");
        history.iter().filter(|r| is_skipped(r)).count() >= 2
            && history.iter().filter(|r| is_finished(r)).count() >= 2
    });
    assert!(
        ok,
        "no skipped fires recorded; history: {history:#?}\n{}",
        w.diagnostics()
    );
    for run in history.iter().filter(|r| is_finished(r)) {
        assert_eq!(run["exit_code"], 0, "{history:#?}");
    }
    let status = w.status_ok();
    assert!(status.contains("skipped (still running)"), "{status}");
    assert!(
        !w.proj_file("overlap.txt").exists(),
        "two runs overlapped: {:?}\nhistory: {history:#?}",
        w.read_proj("overlap.txt")
    );
    // Never more than one live instance of the job.
    assert!(
        holds_for(Duration::from_secs(2), || {
            w.service_processes("slow")
                .iter()
                .filter(|&&p| cmdline(p).starts_with("/bin/sh -c mkdir lockdir"))
                .count()
                <= 1
        }),
        "two runs of the job alive at once"
    );
}

#[test]
fn failed_run_is_recorded_and_not_retried_by_restart_policy() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          failing:
            command: \"echo run >> runs.txt; exit 3\"
            restart_policy: \"always\"
            backoff: \"100ms\"
            cron:
              expression: \"*/2 * * * * *\"
        ",
    );
    let history = wait_finished(&w, "failing", 3, LONG);
    for run in history.iter().filter(|r| is_finished(r)) {
        assert_eq!(run["exit_code"], 3, "{history:#?}");
    }
    // Every run is a fire: a policy restart would add runs without history entries.
    // (The file is read before the history: a fire is recorded before its run starts,
    // so lines <= fires holds.)
    let lines = w.count_proj_lines("runs.txt");
    let state = w.state_json();
    let rec = &state["services"]["failing"];
    let fires = rec["cron"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !is_skipped(r))
        .count();
    assert!(
        fires < 10 && lines <= fires,
        "{lines} runs for {fires} fires: restarted by policy?\n{state:#}\n{}",
        w.diagnostics()
    );
    assert_eq!(rec["restart_count"], 0, "{state:#}");
    assert_ne!(rec["status"], "backoff", "{state:#}");
    assert_ne!(rec["status"], "failed", "{state:#}");

    let status = w.status_ok();
    assert!(status.contains(" | exit 3"), "{status}");
    assert!(status.contains("Exited with error"), "{status}");
}

#[test]
fn cron_history_survives_a_supervisor_restart() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "
        services:
          keep:
            command: \"echo run >> runs.txt\"
            cron:
              expression: \"*/2 * * * * *\"
        ",
    );
    w.start_daemon(&cfg);
    let history = wait_finished(&w, "keep", 2, LONG);
    let old: Vec<Value> = history.into_iter().filter(is_finished).collect();
    w.run_ok(&["stop"]);
    assert!(w.supervisor_pid().is_none(), "supervisor still recorded");

    let after_stop = w.cron_history("keep");
    for run in &old {
        assert!(
            after_stop
                .iter()
                .any(|r| r["started_at"] == run["started_at"]),
            "run {run} lost at stop: {after_stop:#?}"
        );
    }

    w.start_daemon(&cfg);
    let mut state = Value::Null;
    let ok = wait_until(DEADLINE, || {
        state = w.state_json();
        state["services"]["keep"]["cron"]["next_run"].is_string()
    });
    assert!(ok, "state.json not rewritten after restart: {state:#}");
    let now = w.cron_history("keep");
    for run in &old {
        let again = now
            .iter()
            .find(|r| r["started_at"] == run["started_at"])
            .unwrap_or_else(|| panic!("run {run} lost across restart: {now:#?}"));
        assert_eq!(again["exit_code"], 0, "{now:#?}");
    }
    let status = w.status_ok();
    for run in &old {
        let when = started_at(run).format("%Y-%m-%d %H:%M:%S %:z").to_string();
        assert!(
            status.contains(&format!("    - {when} | exit 0")),
            "status lost run {when}:\n{status}"
        );
    }
}

#[test]
fn named_timezone_validates_and_runs() {
    if !std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        skip::root_only("/usr/share/zoneinfo/Europe/Berlin is missing (tzdata)");
        return;
    }
    let w = Sysg::new();
    let cfg = w.write_config(
        "
        services:
          berlin:
            command: \"echo run >> runs.txt\"
            cron:
              expression: \"* * * * * *\"
              timezone: \"Europe/Berlin\"
        ",
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("(1 cron)"), "{out}");

    w.start_daemon(&cfg);
    let history = wait_finished(&w, "berlin", 1, DEADLINE);
    let run = history.iter().find(|r| is_finished(r)).unwrap();
    assert_eq!(run["exit_code"], 0, "{history:#?}");
    // Berlin is UTC+1 or UTC+2: times are shown with that offset.
    let offset = started_at(run).offset().local_minus_utc();
    assert!(
        offset == 3600 || offset == 7200,
        "started_at not in Berlin time: {run}"
    );
    let json = w.service("berlin").unwrap();
    assert!(
        json["cron"]["timezone"]
            .as_str()
            .is_some_and(|z| z.contains("Europe/Berlin")),
        "{json:#}"
    );
    let status = w.status_ok();
    assert!(status.contains("Cron history (Europe/Berlin)"), "{status}");
}

#[test]
fn unknown_timezone_is_a_validation_error() {
    let w = Sysg::new();
    let cfg = w.write_config(
        "
        services:
          mars:
            command: \"echo run\"
            cron:
              expression: \"* * * * * *\"
              timezone: \"Mars/Base\"
        ",
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.all().contains("Mars/Base"), "{out}");
    assert!(out.all().contains("services.mars.cron"), "{out}");
    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(w.supervisor_pid().is_none(), "a supervisor started");
}

#[test]
fn dependent_of_a_cron_job_starts_at_once() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        "
        services:
          yearly:
            command: \"echo ran >> yearly.out\"
            cron:
              expression: \"0 0 0 1 1 *\"
          app:
            command: \"sleep {n}\"
            stop_timeout: \"1s\"
            depends_on: [\"yearly\"]
        "
    ));
    let pid = w.wait_running_pid("app", None);
    assert!(alive(pid));
    assert_eq!(w.service_status("yearly").as_deref(), Some("idle"));
    assert!(!w.proj_file("yearly.out").exists(), "the cron job ran");
}

#[test]
fn stop_s_stops_firing_and_start_s_schedules_again() {
    let w = Sysg::new();
    w.start_with(
        "
        services:
          tick:
            command: \"echo run >> runs.txt\"
            cron:
              expression: \"* * * * * *\"
        ",
    );
    let ok = wait_until(DEADLINE, || w.count_proj_lines("runs.txt") >= 2);
    assert!(ok, "the job never ran twice\n{}", w.diagnostics());

    let out = w.run(&["stop", "-s", "tick"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    w.wait_status("tick", "stopped");
    let status = w.status_ok();
    assert!(status.contains("● [cron] tick - Stopped"), "{status}");
    let state = w.state_json();
    assert!(
        state["services"]["tick"]["cron"]["next_run"].is_null(),
        "a stopped job still has a next run: {state:#}"
    );
    let stopped_at = w.count_proj_lines("runs.txt");
    assert!(
        holds_for(Duration::from_secs(3), || w.count_proj_lines("runs.txt")
            == stopped_at),
        "the job kept firing after stop -s: {} runs > {stopped_at}\n{}",
        w.count_proj_lines("runs.txt"),
        w.diagnostics()
    );
    assert_eq!(w.service_status("tick").as_deref(), Some("stopped"));

    let out = w.run(&["start", "-s", "tick"]);
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    let ok = wait_until(DEADLINE, || {
        w.count_proj_lines("runs.txt") >= stopped_at + 2
    });
    assert!(
        ok,
        "runs did not resume after start -s\n{}",
        w.diagnostics()
    );
    assert_ne!(w.service_status("tick").as_deref(), Some("stopped"));
}
