//! `start -d --wait` / `start -s NAME --wait` / `restart -s NAME --wait`: return once the
//! services are up (healthy where checked), completed or skipped; on a failure exit 1
//! naming the service, why, and its last lines; on the timeout exit 1 naming what is
//! not up yet.

mod common;
use common::*;

fn start_wait(w: &Sysg, yaml: &str, extra: &[&str]) -> Output {
    let cfg = w.write_config(yaml);
    let mut args = vec!["start", "-d", "--wait", "-c", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.run(&args)
}

#[test]
fn wait_returns_once_every_service_is_up_or_done() {
    let w = Sysg::new();
    // `web` is only up once its check passes, which needs `ready`, made by `prep`.
    let out = start_wait(
        &w,
        r#"
        services:
          prep:
            command: "sh -c 'sleep 0.5; touch ready'"
          web:
            command: "sleep 600"
            health_check:
              command: "test -f ready"
              interval: "100ms"
              retries: 100
          nightly:
            command: "true"
            cron: { expression: "0 0 3 * * *" }
        "#,
        &[],
    );
    assert_eq!(out.code, 0, "{out}\n{}", w.diagnostics());
    assert!(
        w.proj_file("ready").exists(),
        "returned before web was healthy\n{out}"
    );
    assert!(out.stdout.contains("web: up"), "{out}");
    assert!(out.stdout.contains("prep: completed"), "{out}");
    assert!(
        !out.stdout.contains("nightly"),
        "cron jobs are not waited for\n{out}"
    );
    let web = w.service("web").unwrap();
    assert_eq!(web["up"], true, "{web}");
    // One service, after a restart.
    let out = w.run(&["restart", "-s", "web", "--wait"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("web: up"), "{out}");
    w.run_ok(&["stop"]);
}

#[test]
fn a_service_that_fails_is_named_with_why_and_its_last_lines() {
    let w = Sysg::new();
    let out = start_wait(
        &w,
        r#"
        services:
          db:
            command: "sleep 600"
          api:
            command: "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done; echo no config >&2; exit 3'"
            depends_on: [db]
        "#,
        &[],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("api: did not come up"), "{out}");
    assert!(out.stderr.contains("exit code 3"), "{out}");
    assert!(out.stderr.contains("(stderr) no config"), "{out}");
    assert!(out.stderr.contains("line 12"), "{out}");
    assert!(
        !out.stderr.contains("line 2\n"),
        "more than the last 10 lines\n{out}"
    );
    // The supervisor itself runs on.
    assert_eq!(w.service_status("db").as_deref(), Some("running"));
    w.run_ok(&["stop"]);
}

#[test]
fn wait_gives_up_at_its_timeout_naming_what_is_not_up() {
    let w = Sysg::new();
    let out = start_wait(
        &w,
        r#"
        services:
          slow:
            command: "sleep 600"
            health_check:
              command: "false"
              interval: "100ms"
              retries: 10000
          quick:
            command: "sleep 600"
        "#,
        &["--timeout", "1s"],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("not up within 1s: slow (running)"),
        "{out}"
    );
    assert!(!out.stderr.contains("quick"), "{out}");
    w.run_ok(&["stop"]);
}

#[test]
fn wait_detaches_and_a_timeout_implies_it() {
    let w = Sysg::new();
    assert_eq!(
        w.run(&["start", "-d", "--wait", "--timeout", "soon"]).code,
        2
    );
    let cfg = w.write_config("services:\n  api:\n    command: \"sleep 600\"\n");
    // No -d: --wait detaches; a bare number is seconds.
    let out = w.run(&["start", "--timeout", "20", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("api: up"), "{out}");
    assert!(w.supervisor_pid().is_some());
    w.run_ok(&["stop"]);
}
