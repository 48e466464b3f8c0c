//! `sysg restart` without `-s` restarts only what changed: an unchanged service keeps its
//! pid and fires no hook, a changed one is restarted, an added one started, a removed one
//! stopped; `--dry-run` changes nothing and `--all` bounces everything.

mod common;
use common::*;
use std::time::Duration;

fn config(n: u32, api: &str, extra: &str) -> String {
    format!(
        r#"
        services:
          db:
            command: "sleep {n}1"
            hooks:
              on_start:
                success:
                  command: "echo db >> hooks.txt"
          api:
            command: "{api}"
            env:
              file: "api.env"
            depends_on: [db]
{extra}
        "#
    )
}

fn pids(w: &Sysg) -> Vec<(String, i32)> {
    let st = w.status_json();
    let mut out: Vec<(String, i32)> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["pid"].as_i64()? as i32)))
        .collect();
    out.sort();
    out
}

#[test]
fn an_unchanged_config_touches_nothing() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("api.env"), "TOKEN=a\n").unwrap();
    let cfg = w.start_with(&config(n, &format!("sleep {n}2"), ""));
    w.wait_running_pid("db", None);
    w.wait_running_pid("api", None);
    // The hook of db's start has run: one line.
    w.wait_file("hooks.txt");
    std::thread::sleep(Duration::from_millis(300));
    let before = pids(&w);
    let counts = w.state_json()["services"].clone();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.stdout.trim(), "db: unchanged\napi: unchanged", "{out}");
    assert_eq!(pids(&w), before);
    let quiet = holds_for(Duration::from_millis(800), || {
        w.read_proj("hooks.txt")
            .is_some_and(|t| t.lines().count() == 1)
    });
    assert!(
        quiet,
        "a hook fired on an unchanged reload\n{}",
        w.diagnostics()
    );
    let after = w.state_json()["services"].clone();
    for name in ["db", "api"] {
        assert_eq!(
            after[name]["restart_count"], counts[name]["restart_count"],
            "{name}"
        );
    }
    w.run_ok(&["stop"]);
}

#[test]
fn only_what_changed_is_restarted_added_started_removed_stopped() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("api.env"), "TOKEN=a\n").unwrap();
    let cache = format!("          cache:\n            command: \"sleep {n}3\"\n");
    let cfg = w.start_with(&config(n, &format!("sleep {n}2"), &cache));
    let db = w.wait_running_pid("db", None);
    let api = w.wait_running_pid("api", None);
    let cache_pid = w.wait_running_pid("cache", None);

    // The env file's contents change: api runs with a stale environment.
    std::fs::write(w.proj_file("api.env"), "TOKEN=b\n").unwrap();
    let plan = w.run_ok(&["restart", "--dry-run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(
        plan.stdout.trim(),
        "db: unchanged\napi: changed (env TOKEN) -> restarted\ncache: unchanged",
        "{plan}"
    );
    assert_eq!(
        w.service_pid("api"),
        Some(api),
        "--dry-run changed something"
    );

    let worker = format!(
        "          worker:\n            command: \"sleep {n}4\"\n            logs: {{ max_size: \"1MB\" }}\n"
    );
    std::fs::write(&cfg, dedent(&config(n, &format!("sleep {n}2"), &worker))).unwrap();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "db: unchanged\napi: changed (env TOKEN) -> restarted\nworker: added -> started\n\
         cache: removed -> stopped",
        "{out}"
    );
    assert_eq!(w.service_pid("db"), Some(db), "db was bounced");
    let new_api = w.wait_running_pid("api", Some(api));
    assert!(environ(new_api).contains(&"TOKEN=b".to_string()));
    w.wait_running_pid("worker", None);
    assert!(
        wait_until(DEADLINE, || exited(cache_pid)),
        "cache still runs"
    );
    assert!(w.service("cache").is_none(), "cache still listed");

    // A change that needs no restart is applied in place.
    let worker2 = worker.replace("1MB", "2MB");
    std::fs::write(&cfg, dedent(&config(n, &format!("sleep {n}2"), &worker2))).unwrap();
    let worker_pid = w.wait_running_pid("worker", None);
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert!(
        out.stdout
            .contains("worker: changed (logs) -> applied in place"),
        "{out}"
    );
    assert_eq!(w.service_pid("worker"), Some(worker_pid));
    w.run_ok(&["stop"]);
}

#[test]
fn restart_all_bounces_every_service() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("api.env"), "TOKEN=a\n").unwrap();
    let cfg = w.start_with(&config(n, &format!("sleep {n}2"), ""));
    let db = w.wait_running_pid("db", None);
    let api = w.wait_running_pid("api", None);
    let out = w.run_ok(&["restart", "--all", "-c", cfg.to_str().unwrap()]);
    assert!(out.stdout.contains("Restarted 2 services"), "{out}");
    w.wait_running_pid("db", Some(db));
    w.wait_running_pid("api", Some(api));
    w.run_ok(&["stop"]);
}

#[test]
fn a_dependent_declared_with_restart_true_follows_its_dependency() {
    let w = Sysg::new();
    let n = unique_number();
    let yaml = |db: &str| {
        format!(
            r#"
            services:
              db:
                command: "{db}"
              api:
                command: "sleep {n}2"
                depends_on: [{{ name: db, restart: true }}]
              worker:
                command: "sleep {n}3"
                depends_on: [db]
            "#
        )
    };
    let cfg = w.start_with(&yaml(&format!("sleep {n}1")));
    let db = w.wait_running_pid("db", None);
    let api = w.wait_running_pid("api", None);
    let worker = w.wait_running_pid("worker", None);
    std::fs::write(&cfg, dedent(&yaml(&format!("sleep {n}4")))).unwrap();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "db: changed (command) -> restarted\n\
         api: restarted after db (depends_on restart: true)\n\
         worker: unchanged",
        "{out}"
    );
    w.wait_running_pid("db", Some(db));
    w.wait_running_pid("api", Some(api));
    assert_eq!(w.service_pid("worker"), Some(worker), "worker was bounced");
    w.run_ok(&["stop"]);
}

#[test]
fn a_dependency_entry_must_name_a_service_and_restart_must_be_a_boolean() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          db:
            command: "sleep 1"
          api:
            command: "sleep 1"
            depends_on: [{ restart: "yes" }]
        "#,
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("services.api.depends_on[0].restart"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("services.api.depends_on[0].name: missing required key"),
        "{out}"
    );
}

#[test]
fn a_reload_that_changes_a_rolling_service_starts_the_new_one_before_the_old_one_stops() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("web.env"), "TOKEN=a\n").unwrap();
    let yaml = format!(
        r#"
        services:
          web:
            command: "sleep {n}"
            env:
              file: "web.env"
            deployment:
              strategy: rolling
              grace_period: "2s"
        "#
    );
    let cfg = w.start_with(&yaml);
    let old = w.wait_running_pid("web", None);
    // Up after the 1 s rule: only then does a change roll.
    let up = wait_until(DEADLINE, || {
        w.status_json()["services"][0]["up"].as_bool() == Some(true)
    });
    assert!(up, "web never came up\n{}", w.diagnostics());
    std::fs::write(w.proj_file("web.env"), "TOKEN=b\n").unwrap();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "web: changed (env TOKEN) -> restarted (rolling)",
        "{out}"
    );
    let new = w.wait_running_pid("web", Some(old));
    let up = wait_until(DEADLINE, || {
        w.status_json()["services"][0]["up"].as_bool() == Some(true)
    });
    assert!(up, "the new instance never came up\n{}", w.diagnostics());
    assert!(
        alive(old),
        "the old instance stopped before the grace period was over\n{}",
        w.diagnostics()
    );
    let gone = wait_until(DEADLINE, || !alive(old));
    assert!(
        gone,
        "the old instance was never stopped\n{}",
        w.diagnostics()
    );
    assert_eq!(
        w.status_json()["services"][0]["pid"].as_i64(),
        Some(new as i64)
    );
    w.run_ok(&["stop"]);
}

#[test]
fn a_reload_answers_once_what_it_started_is_up_and_says_what_did_not_come_up() {
    let w = Sysg::new();
    let n = unique_number();
    let cfg = w.start_with(&format!(
        "services:\n  a:\n    command: \"exec sleep {n}\"\n"
    ));
    w.wait_running_pid("a", None);
    std::fs::write(
        &cfg,
        dedent(&format!(
            r#"
            services:
              a:
                command: "exec sleep {n}"
              web:
                command: "exec sleep {n}"
                health_check:
                  command: "test -f ready"
                  interval: "100ms"
              broken:
                command: "sleep 0.2; exit 3"
            "#
        )),
    )
    .unwrap();
    // web gets up a little after the reload begins; the reply waits for it.
    let ready = w.proj_file("ready");
    let toucher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        std::fs::write(ready, "").unwrap();
    });
    let out = w.run(&["restart", "-c", cfg.to_str().unwrap()]);
    toucher.join().unwrap();
    assert_eq!(out.code, 1, "{out}");
    let all = out.all();
    for line in [
        "a: unchanged",
        "web: added -> started",
        "broken: added -> started",
        "broken: did not come up (",
    ] {
        assert!(all.contains(line), "missing {line:?}\n{out}");
    }
    assert!(!all.contains("web: did not come up"), "{out}");
    assert!(!all.contains("web: not up"), "{out}");
    assert_eq!(
        w.service("web").unwrap()["up"],
        true,
        "answered before web was up"
    );
    w.run_ok(&["stop"]);
}
