//! Readiness probes (SPEC §2 `health_check`, §3 "Up" and start order): a service with a
//! health check is up only once the check passes, dependents wait for that, and a check
//! that never passes fails the start.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A port that refuses connections on 127.0.0.2 for as long as the returned listener
/// lives: it holds the port on 127.0.0.1, so nothing can listen on it on every address,
/// and nothing listens on 127.0.0.2 (a port merely released could be taken meanwhile).
fn refusing_port() -> (TcpListener, u16) {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    (holder, port)
}

/// An HTTP server in the test process that answers every request with `status_line`
/// (e.g. "503 Service Unavailable") and counts the requests. Stops when dropped. Its
/// listener stays open from start to drop, so its port is never anyone else's.
struct FixedServer {
    port: u16,
    hits: Arc<AtomicUsize>,
    answering: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FixedServer {
    fn start(status_line: &'static str) -> FixedServer {
        let server = FixedServer::start_silent(status_line);
        server.answer();
        server
    }

    /// Listening, but answering nothing until `answer`: connections wait in the backlog
    /// and probes time out.
    fn start_silent(status_line: &'static str) -> FixedServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let answering = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, a, s) = (hits.clone(), answering.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if !a.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let _ = stream.read(&mut buf);
                        let body = "nope\n";
                        let reply = format!(
                            "HTTP/1.1 {status_line}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                        h.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FixedServer {
            port,
            hits,
            answering,
            stop,
            thread: Some(thread),
        }
    }

    fn answer(&self) {
        self.answering.store(true, Ordering::Relaxed);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `echo "$SYSG_HOOK $SYSG_OUTCOME" >> <file>` as a YAML single-quoted scalar.
fn record_hook(file: &std::path::Path) -> String {
    format!("'echo \"$SYSG_HOOK $SYSG_OUTCOME\" >> {}'", file.display())
}

#[test]
fn command_probe_gates_dependents_until_it_passes() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          api:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              command: "test -f ready"
              interval: "100ms"
              retries: 200
          client:
            command: "touch client.ran; exec sleep {n}"
            depends_on: ["api"]
            stop_timeout: "1s"
        "#
    ));

    // api runs, but is not up; client waits for it and has not run.
    w.wait_running_pid("api", None);
    let client = w.wait_status("client", "waiting");
    assert_eq!(client["waiting_for"], "api", "{client:#}");
    let text = w.status_ok();
    assert!(text.contains("● client Waiting for api"), "{text}");
    // Several probe intervals pass and the dependent still waits.
    assert!(
        holds_for(Duration::from_millis(800), || !w
            .proj_file("client.ran")
            .exists()),
        "client ran before api's health check passed\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_status("client").as_deref(), Some("waiting"));
    assert_eq!(
        w.service("api").unwrap()["up"],
        false,
        "api is up before its check passed"
    );

    // The probe runs in api's working dir (the config's dir): creating `ready` there
    // lets it pass, and the dependent starts.
    std::fs::write(w.proj_file("ready"), "").unwrap();
    w.wait_running_pid("client", None);
    let ok = wait_until(DEADLINE, || w.proj_file("client.ran").exists());
    assert!(ok, "client never ran\n{}", w.diagnostics());
    assert_eq!(w.service("api").unwrap()["up"], true);
    assert_eq!(w.service_status("api").as_deref(), Some("running"));
}

#[test]
fn url_probe_lets_the_dependent_start_once_the_server_answers() {
    let w = Sysg::new();
    let n = unique_number();
    let server = FixedServer::start_silent("200 OK");
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              url: "http://127.0.0.1:{port}/"
              interval: "100ms"
              timeout: "1s"
              retries: 1000
          client:
            command: "touch client.ran; exec sleep {n}"
            depends_on: ["web"]
            stop_timeout: "1s"
        "#,
        port = server.port,
    ));

    // The server is silent: web runs but is not up, and the dependent waits.
    w.wait_running_pid("web", None);
    let client = w.wait_status("client", "waiting");
    assert_eq!(client["waiting_for"], "web", "{client:#}");
    assert!(
        holds_for(Duration::from_millis(1500), || !w
            .proj_file("client.ran")
            .exists()),
        "client ran before the server answered\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service("web").unwrap()["up"], false);
    assert_eq!(server.hits(), 0);

    server.answer();
    w.wait_running_pid("client", None);
    let ran = wait_until(DEADLINE, || w.proj_file("client.ran").exists());
    assert!(ran, "client never ran\n{}", w.diagnostics());
    assert!(
        server.hits() >= 1,
        "web is up without an answer from the server"
    );
    let web = w.service("web").unwrap();
    assert_eq!(web["status"], "running", "{web:#}");
    assert_eq!(web["up"], true, "{web:#}");
}

/// A host *name* in the URL is resolved (getaddrinfo: /etc/hosts, then DNS), in the
/// static build too, whose libc carries the `files` and `dns` lookups itself.
#[test]
fn url_probe_resolves_a_host_name() {
    use std::net::ToSocketAddrs;
    let loopback = ("localhost", 80)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.any(|a| a.ip().is_loopback() && a.is_ipv4()));
    if !loopback {
        skip::host_dependent("localhost is not 127.0.0.1 here");
        return;
    }
    let w = Sysg::new();
    let n = unique_number();
    let server = FixedServer::start("200 OK");
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              url: "http://localhost:{port}/ready"
              interval: "100ms"
              retries: 100
          after:
            command: "exec sleep {n}"
            depends_on: ["web"]
            stop_timeout: "1s"
        "#,
        port = server.port,
    ));
    w.wait_running_pid("after", None);
    let web = w.service("web").unwrap();
    assert_eq!(web["up"], true, "{web:#}");
    assert!(server.hits() >= 1, "the probe never reached the server");
}

#[test]
fn url_probe_never_passes_on_error_status_or_refused_connection() {
    let w = Sysg::new();
    let n = unique_number();
    let unavailable = FixedServer::start("503 Service Unavailable");
    let not_found = FixedServer::start("404 Not Found");
    let (_holder, refused) = refusing_port();
    w.start_with(&format!(
        r#"
        services:
          busy:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              url: "http://127.0.0.1:{p503}/health"
              interval: "100ms"
              retries: 10000
          missing:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              url: "http://127.0.0.1:{p404}/health"
              interval: "100ms"
              retries: 10000
          nobody:
            command: "exec sleep {n}"
            stop_timeout: "1s"
            health_check:
              url: "http://127.0.0.2:{refused}/"
              interval: "100ms"
              timeout: "1s"
              retries: 10000
          after_busy:
            command: "touch after_busy.ran; exec sleep {n}"
            depends_on: ["busy"]
          after_missing:
            command: "touch after_missing.ran; exec sleep {n}"
            depends_on: ["missing"]
          after_nobody:
            command: "touch after_nobody.ran; exec sleep {n}"
            depends_on: ["nobody"]
        "#,
        p503 = unavailable.port,
        p404 = not_found.port,
    ));
    // The probes really reach the servers, several times.
    let ok = wait_until(DEADLINE, || {
        unavailable.hits() >= 3 && not_found.hits() >= 3
    });
    assert!(
        ok,
        "probes did not reach the servers (503: {}, 404: {} requests)\n{}",
        unavailable.hits(),
        not_found.hits(),
        w.diagnostics()
    );
    for (svc, dep) in [
        ("busy", "after_busy"),
        ("missing", "after_missing"),
        ("nobody", "after_nobody"),
    ] {
        let s = w.service(svc).unwrap();
        assert_eq!(s["status"], "running", "{svc}: {s:#}");
        assert_eq!(s["up"], false, "{svc} counts as up: {s:#}");
        let d = w.service(dep).unwrap();
        assert_eq!(d["status"], "waiting", "{dep}: {d:#}");
        assert!(
            !w.proj_file(&format!("{dep}.ran")).exists(),
            "{dep} ran although {svc}'s check never passed"
        );
    }
    assert!(
        holds_for(Duration::from_millis(500), || {
            ["after_busy", "after_missing", "after_nobody"]
                .iter()
                .all(|d| !w.proj_file(&format!("{d}.ran")).exists())
        }),
        "a dependent started\n{}",
        w.diagnostics()
    );
}

#[test]
fn a_check_that_never_passes_fails_the_start_and_blocks_dependents() {
    let w = Sysg::new();
    let n = unique_number();
    let hooks = w.proj_file("hooks.log");
    w.start_with(&format!(
        r#"
        services:
          api:
            command: "exec sleep {n}"
            restart_policy: "never"
            stop_timeout: "1s"
            health_check:
              command: "echo not-ready-yet; exit 1"
              interval: "100ms"
              retries: 3
            hooks:
              on_start:
                success:
                  command: {rec}
                error:
                  command: {rec}
          client:
            command: "touch client.ran; exec sleep {n}"
            depends_on: ["api"]
            stop_timeout: "1s"
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#,
        rec = record_hook(&hooks)
    ));

    let mut last = None;
    let ok = wait_until(DEADLINE, || {
        last = w.service("api");
        last.as_ref().is_some_and(|s| {
            (s["status"] == "failed" || s["status"] == "exited")
                && s["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("health check failed"))
        })
    });
    assert!(
        ok,
        "api did not end failed/exited with a health-check reason; last: {last:#?}\n{}",
        w.diagnostics()
    );
    // (The reason is in `status --json`, checked above, and in state.json; the text form
    // of an exited service shows only its exit code or signal.)
    let text = w.status_ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("● api Exited") || l.starts_with("● api Failed")),
        "{text}"
    );

    // state.json records the same reason.
    let ok = wait_until(DEADLINE, || {
        w.state_json()["services"]["api"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("health check failed"))
    });
    assert!(ok, "state.json: {:#}", w.state_json());

    // No process of api is left, and policy never means it is not started again.
    let ok = wait_until(DEADLINE, || w.service_processes("api").is_empty());
    assert!(ok, "api processes left: {:?}", w.service_processes("api"));

    let ok = wait_until(DEADLINE, || {
        w.service("client").is_some_and(|s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("dependency api failed"))
        })
    });
    assert!(
        ok,
        "client does not report its failed dependency\n{}",
        w.diagnostics()
    );
    assert!(w.status_ok().contains("dependency api failed"));
    assert!(!w.proj_file("client.ran").exists(), "client ran");

    let ok = wait_until(DEADLINE, || {
        std::fs::read_to_string(&hooks).is_ok_and(|t| t.lines().any(|l| l == "on_start error"))
    });
    assert!(
        ok,
        "on_start.error did not fire; hooks.log: {:?}\n{}",
        std::fs::read_to_string(&hooks).unwrap_or_default(),
        w.diagnostics()
    );
    let log = std::fs::read_to_string(&hooks).unwrap();
    assert!(
        !log.contains("on_start success"),
        "on_start.success fired for a service that never came up: {log:?}"
    );
    assert!(
        holds_for(Duration::from_millis(500), || w
            .service_status("api")
            .is_some_and(|s| s == "failed" || s == "exited")),
        "api was started again under policy never\n{}",
        w.diagnostics()
    );
}

#[test]
fn https_url_is_a_validation_error_mentioning_tls() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          api:
            command: "sleep 1"
            health_check:
              url: "https://127.0.0.1:8443/health"
        "#,
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    let all = out.all();
    assert!(all.contains("TLS"), "error does not mention TLS\n{out}");
    assert!(
        all.contains("health_check"),
        "error does not name the key\n{out}"
    );

    let out = w.run(&["start", "-d", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.all().contains("TLS"), "{out}");
    assert!(w.supervisor_pid().is_none(), "a supervisor started anyway");
}

#[test]
fn a_five_level_chain_of_health_checks_comes_up() {
    let w = Sysg::new();
    let n = unique_number();
    let mut yaml = String::from("services:\n");
    let names = ["a", "b", "c", "d", "e"];
    for (i, name) in names.iter().enumerate() {
        yaml.push_str(&format!(
            "  {name}:\n    command: \"exec sleep {n}\"\n    stop_timeout: \"1s\"\n    health_check: {{ command: \"true\", interval: \"100ms\" }}\n"
        ));
        if i > 0 {
            yaml.push_str(&format!("    depends_on: [\"{}\"]\n", names[i - 1]));
        }
    }
    w.start_with(&yaml);
    let mut last = serde_json::Value::Null;
    let ok = wait_until(DEADLINE, || {
        last = w.status_json();
        names.iter().all(|name| {
            service_in(&last, name).is_some_and(|s| s["status"] == "running" && s["up"] == true)
        })
    });
    assert!(
        ok,
        "not all of the chain is running and up; last: {last:#}\n{}",
        w.diagnostics()
    );
}
