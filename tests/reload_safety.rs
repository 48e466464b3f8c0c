//! Hardening: `sysg restart -c` with a broken config changes nothing (SPEC §2: errors all
//! at once as `path:line:col: key: message`, exit 2; §4 restart re-reads the config).
//! The running services keep their pids and the config hint stays; a good config given
//! afterwards is taken.

mod common;
use common::*;
use std::time::Duration;

/// Error lines of the shape `<path ending in file>:LINE:COL: key: message`.
fn located_errors<'a>(stderr: &'a str, file: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter(|l| {
            let Some(at) = l.find(&format!("{file}:")) else {
                return false;
            };
            let mut rest = l[at + file.len() + 1..].splitn(3, ':');
            let row = rest.next().unwrap_or("");
            let col = rest.next().unwrap_or("");
            row.parse::<u32>().is_ok() && col.parse::<u32>().is_ok()
        })
        .collect()
}

#[test]
fn broken_config_on_restart_changes_nothing_and_a_good_one_still_works() {
    let w = Sysg::new();
    let (na, nb, nx, ny) = (
        unique_number(),
        unique_number(),
        unique_number(),
        unique_number(),
    );
    let cfg = w.start_with(&format!(
        r#"
        services:
          a:
            command: "sleep {na}"
          b:
            command: "sleep {nb}"
        "#
    ));
    let pa = w.wait_running_pid("a", None);
    let pb = w.wait_running_pid("b", None);
    let hint_path = w.state.join("config_hint");
    let hint = std::fs::read_to_string(&hint_path).expect("config_hint");
    assert_eq!(hint.trim(), cfg.to_str().unwrap());

    let bad = w.write_config_named(
        "bad.yaml",
        &format!(
            r#"
            services:
              a:
                command: "sleep {nx}"
                backoff: "5"
                restart_polcy: "always"
              c:
                command: "sleep {ny}"
                depends_on: ["nope"]
            "#
        ),
    );
    let out = w.run(&["restart", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "a broken config must exit 2\n{out}");
    let errors = located_errors(&out.stderr, "bad.yaml");
    for key in [
        "services.a.backoff",
        "services.a.restart_polcy",
        "services.c.depends_on",
    ] {
        assert!(
            errors.iter().any(|l| l.contains(key)),
            "no path:line:col error for {key}\n{out}"
        );
    }

    // Nothing changed: same processes, same hint, nothing of bad.yaml started.
    let unchanged = holds_for(Duration::from_millis(1500), || {
        alive(pa) && alive(pb) && processes_exactly(&format!("sleep {nx}")).is_empty()
    });
    assert!(unchanged, "services were touched\n{}", w.diagnostics());
    assert_eq!(w.service_pid("a"), Some(pa), "{}", w.diagnostics());
    assert_eq!(w.service_pid("b"), Some(pb), "{}", w.diagnostics());
    assert_eq!(w.service_status("a").as_deref(), Some("running"));
    assert_eq!(w.service_status("b").as_deref(), Some("running"));
    assert_eq!(
        std::fs::read_to_string(&hint_path).unwrap(),
        hint,
        "config_hint changed after a refused restart"
    );
    assert!(w.service("c").is_none(), "service c of bad.yaml appeared");

    // A good, different config afterwards is taken.
    let good2 = w.write_config_named(
        "good2.yaml",
        &format!(
            r#"
            services:
              x:
                command: "sleep {nx}"
              y:
                command: "sleep {ny}"
            "#
        ),
    );
    let out = w.run(&["restart", "-c", good2.to_str().unwrap()]);
    assert_eq!(
        out.code,
        0,
        "restart with good2.yaml failed\n{out}\n{}",
        w.diagnostics()
    );
    w.wait_running_pid("x", None);
    w.wait_running_pid("y", None);
    let status = w.status_json();
    assert!(
        service_in(&status, "a").is_none(),
        "a still listed: {status:#}"
    );
    assert!(
        service_in(&status, "b").is_none(),
        "b still listed: {status:#}"
    );
    let gone = wait_until(DEADLINE, || !alive(pa) && !alive(pb));
    assert!(gone, "old services survived the reload");
    assert_eq!(
        std::fs::read_to_string(&hint_path).unwrap().trim(),
        good2.to_str().unwrap()
    );

    w.run_ok(&["stop"]);
    assert!(w.processes().is_empty(), "left: {:?}", w.processes());
}
