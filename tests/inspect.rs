//! `sysg inspect NAME [--json] [--env]`: what runs and how, the last exits and what the
//! policy did, probes, hook runs, log files, next cron run.

mod common;
use common::*;
use serde_json::Value;

fn inspect_json(w: &Sysg, name: &str, env: bool) -> Value {
    let mut args = vec!["inspect", name, "--json"];
    if env {
        args.push("--env");
    }
    let out = w.run_ok(&args);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn inspect_tells_what_runs_its_exits_hooks_and_logs() {
    let w = Sysg::new();
    w.start_with(
        r#"
        env:
          vars: { API_KEY: "s3cret" }
        services:
          flaky:
            command: "sh -c 'echo hello; sleep 1.1; exit 3'"
            restart_policy: "on-failure"
            backoff: "200ms"
            max_restarts: 1
            hooks:
              on_start:
                success: { command: "true" }
          web:
            command: "sleep 600"
            health_check:
              command: "true"
              interval: "100ms"
          nightly:
            command: "true"
            cron: { expression: "0 0 3 * * *" }
        "#,
    );
    w.wait_status("flaky", "failed");
    let r = inspect_json(&w, "flaky", false);
    for key in [
        "name",
        "kind",
        "status",
        "command",
        "runs",
        "working_dir",
        "env_keys",
        "restart_policy",
        "backoff_ms",
        "max_restarts",
        "restart_count",
        "stop_signal",
        "stop_timeout_ms",
        "exits",
        "probes",
        "hooks",
        "logs",
        "next_cron",
    ] {
        assert!(r.get(key).is_some(), "no {key} in {r:#}");
    }
    assert_eq!(r["restart_policy"], "on-failure");
    assert_eq!(r["runs"][0], "/bin/sh", "{r:#}");
    let exits = r["exits"].as_array().unwrap();
    assert_eq!(exits.len(), 2, "{r:#}");
    assert_eq!(exits[0]["exit"], "exit code 3");
    assert!(
        exits[0]["then"].as_str().unwrap().contains("gave up"),
        "{r:#}"
    );
    assert!(
        exits[1]["then"].as_str().unwrap().starts_with("restart in"),
        "{r:#}"
    );
    assert!(exits[1]["uptime_s"].as_f64().unwrap() >= 1.0, "{r:#}");
    let hooks = r["hooks"].as_array().unwrap();
    assert!(
        wait_until(DEADLINE, || inspect_json(&w, "flaky", false)["hooks"]
            .as_array()
            .is_some_and(|h| h.iter().any(
                |h| h["hook"] == "on_start.success" && h["outcome"] == "exit code 0"
            ))),
        "{hooks:?}"
    );
    // Keys without values, unless asked.
    assert_eq!(r["env_keys"], serde_json::json!(["API_KEY"]));
    assert!(r.get("env").is_none(), "{r:#}");
    let with_env = inspect_json(&w, "flaky", true);
    assert_eq!(with_env["env"][0], serde_json::json!(["API_KEY", "s3cret"]));
    let logs = r["logs"].as_array().unwrap();
    assert!(logs[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("flaky_stdout.log"));
    assert!(
        logs[0]["bytes"].as_u64().unwrap() >= 12,
        "two 'hello' lines\n{r:#}"
    );

    // A plain command runs as the program itself; its probes are listed.
    let web = inspect_json(&w, "web", false);
    assert!(
        web["runs"][0].as_str().unwrap().ends_with("/sleep"),
        "{web:#}"
    );
    assert_eq!(web["runs"][1], "600");
    assert!(
        wait_until(DEADLINE, || inspect_json(&w, "web", false)["probes"]
            .as_array()
            .is_some_and(|p| p.first().is_some_and(|p| p["healthy"] == true))),
        "no probe result"
    );
    let nightly = inspect_json(&w, "nightly", false);
    assert!(
        nightly["next_cron"].as_str().unwrap().contains("T03:00:00"),
        "{nightly:#}"
    );

    let text = w.run_ok(&["inspect", "flaky"]).stdout;
    assert!(text.starts_with("flaky (service): failed\n"), "{text}");
    assert!(text.contains("exit code 3 after"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(w.run(&["inspect", "nope"]).code, 1);
    assert_eq!(w.run(&["inspect"]).code, 2);
    w.run_ok(&["stop"]);
}
