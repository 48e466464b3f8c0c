//! `deployment: { strategy: rolling }`: `sysg restart -s` starts the new instance beside
//! the old one, answers once the new one is up, and stops the old one after its grace
//! period, so a server sharing its port with SO_REUSEPORT drops no request. A new
//! instance that never gets up is stopped and the old one keeps serving.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A tiny HTTP server: after a simulated 0.3 s startup it listens on the port (shared
/// with SO_REUSEPORT), writes `ready.<pid>` unless `broken` exists, and answers every
/// request with its pid. On SIGTERM it stops accepting, serves what is already queued,
/// closes the listener and exits 0.
const SERVER: &str = r#"
import os, signal, socket, sys, time

port = int(sys.argv[1])
time.sleep(0.3)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
srv.bind(("127.0.0.1", port))
srv.listen(128)
srv.settimeout(0.05)

stopping = False
def on_term(signum, frame):
    global stopping
    stopping = True
signal.signal(signal.SIGTERM, on_term)

if not os.path.exists("broken"):
    open("ready.%d" % os.getpid(), "w").close()

body = str(os.getpid()).encode()
response = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body

def serve(conn):
    try:
        conn.setblocking(True)
        conn.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        conn.sendall(response)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()

while not stopping:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    serve(conn)

# Whatever the kernel already queued on this listener is served before it closes.
srv.setblocking(False)
while True:
    try:
        conn, _ = srv.accept()
    except (BlockingIOError, InterruptedError):
        break
    serve(conn)
srv.close()
sys.exit(0)
"#;

/// A TCP port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One GET; the pid in the body, or why it failed.
fn get_pid(port: u16) -> Result<i32, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let limit = Duration::from_secs(1);
    let mut stream =
        TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(limit)).unwrap();
    stream.set_write_timeout(Some(limit)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    if !text.starts_with("HTTP/1.0 200 ") {
        return Err(format!("bad reply: {text:?}"));
    }
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| format!("no body: {text:?}"))?;
    body.trim()
        .parse()
        .map_err(|_| format!("body is not a pid: {text:?}"))
}

/// The config of service `web`: the server above on `port`, rolling deployment.
fn web_config(w: &Sysg, port: u16, retries: u32) -> String {
    let script = w.proj_file("server.py");
    format!(
        r#"
        services:
          web:
            command: "exec python3 {script} {port}"
            stop_timeout: "5s"
            deployment:
              strategy: rolling
              grace_period: "1s"
            health_check:
              command: "test -f ready.$SYSG_PID"
              interval: "100ms"
              retries: {retries}
        "#,
        script = script.display(),
    )
}

/// A world running service `web` (see `web_config`); returns the config's path.
fn start_web(w: &Sysg, port: u16, retries: u32) -> std::path::PathBuf {
    std::fs::write(w.proj_file("server.py"), SERVER).unwrap();
    w.start_with(&web_config(w, port, retries))
}

/// Waits until `web` is running and up and its pid answers on `port`; returns the pid.
fn wait_serving(w: &Sysg, port: u16) -> i32 {
    let pid = w.wait_running_pid("web", None);
    let mut last = None;
    let up = wait_until(DEADLINE, || {
        last = w.service("web");
        last.as_ref().is_some_and(|s| s["up"] == true)
    });
    assert!(up, "web never got up; last: {last:#?}\n{}", w.diagnostics());
    let mut answer = Err(String::new());
    let ok = wait_until(DEADLINE, || {
        answer = get_pid(port);
        answer == Ok(pid)
    });
    assert!(
        ok,
        "web (pid {pid}) never answered on port {port}; last: {answer:?}\n{}",
        w.diagnostics()
    );
    pid
}

/// Live server processes of this world (their command line names its script).
fn servers(w: &Sysg) -> Vec<i32> {
    let script = w.proj_file("server.py");
    processes_matching(&script.display().to_string())
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

#[derive(Default)]
struct Record {
    answered: Vec<i32>,
    failures: Vec<String>,
}

/// Sends a GET every 10 ms until stopped, recording who answered and what failed.
struct Client {
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start(port: u16) -> Client {
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (record.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let answer = get_pid(port);
                {
                    let mut rec = r.lock().unwrap();
                    match answer {
                        Ok(pid) => rec.answered.push(pid),
                        Err(e) => rec.failures.push(e),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Client {
            record,
            stop,
            thread: Some(thread),
        }
    }

    fn last_answer(&self) -> Option<i32> {
        self.record.lock().unwrap().answered.last().copied()
    }

    fn finish(mut self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.record.lock().unwrap())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn rolling_restart_serves_every_request() {
    let w = Sysg::new();
    let port = free_port();
    start_web(&w, port, 50);
    let old = wait_serving(&w, port);

    let client = Client::start(port);
    assert!(
        wait_until(DEADLINE, || client.last_answer().is_some()),
        "the client got no answer"
    );
    let out = w.run(&["restart", "-s", "web"]);
    assert_eq!(
        out.code,
        0,
        "restart -s web failed\n{out}\n{}",
        w.diagnostics()
    );
    assert!(out.all().contains("rolling"), "{out}");

    let new = w.wait_running_pid("web", Some(old));
    let expected = format!("Restarted web (rolling: pid {new} is up; pid {old} stops in 1.0s)");
    assert!(
        out.stdout.contains(&expected),
        "expected {expected:?}\n{out}"
    );
    let switched = wait_until(DEADLINE, || {
        client.last_answer() == Some(new) && exited(old)
    });
    assert!(
        switched,
        "the new pid {new} never took over from {old} (last answer {:?}, old alive: {})\n{}",
        client.last_answer(),
        alive(old),
        w.diagnostics()
    );
    // A little more traffic to the new instance alone.
    std::thread::sleep(Duration::from_millis(300));
    let rec = client.finish();

    assert!(
        rec.failures.is_empty(),
        "{} of {} requests failed during the rolling restart: {:?}\n{}",
        rec.failures.len(),
        rec.failures.len() + rec.answered.len(),
        rec.failures,
        w.diagnostics()
    );
    assert!(rec.answered.contains(&old), "the old pid never answered");
    assert!(rec.answered.contains(&new), "the new pid never answered");
    assert!(
        rec.answered.iter().all(|&p| p == old || p == new),
        "a third pid answered: {:?}",
        rec.answered
    );
    assert!(exited(old), "the old instance {old} still runs");
    let st = w.service("web").unwrap();
    assert_eq!(st["status"], "running", "{st:#}");
    assert_eq!(st["pid"].as_i64(), Some(new as i64), "{st:#}");
    assert_eq!(servers(&w), vec![new], "server processes left");
    w.run_ok(&["stop"]);
}

#[test]
fn a_new_instance_that_never_gets_healthy_leaves_the_old_one_serving() {
    let w = Sysg::new();
    let port = free_port();
    // The first start gets time enough to come up; the restart's candidate gets 5 checks
    // (probe timing is applied in place, without a restart).
    let cfg = start_web(&w, port, 50);
    let old = wait_serving(&w, port);
    std::fs::write(&cfg, dedent(&web_config(&w, port, 5))).unwrap();
    let out = w.run_ok(&["restart", "-c", cfg.to_str().unwrap()]);
    assert!(out.stdout.contains("applied in place"), "{out}");
    assert_eq!(w.service_pid("web"), Some(old), "web was restarted");

    std::fs::write(w.proj_file("broken"), "").unwrap();
    let out = w.run(&["restart", "-s", "web"]);
    assert_ne!(out.code, 0, "restart -s web succeeded\n{out}");
    let all = out.all();
    assert!(all.contains("rolling restart of web failed"), "{out}");
    assert!(all.contains("keeps running"), "{out}");

    // The candidate is gone; only the old instance is left to answer.
    let mut left = Vec::new();
    let gone = wait_until(DEADLINE, || {
        left = servers(&w);
        left == vec![old]
    });
    assert!(
        gone,
        "server processes: {left:?}, expected only the old {old}\n{}",
        w.diagnostics()
    );
    for _ in 0..5 {
        assert_eq!(get_pid(port), Ok(old), "{}", w.diagnostics());
    }
    let st = w.service("web").unwrap();
    assert_eq!(st["status"], "running", "{st:#}");
    assert_eq!(st["pid"].as_i64(), Some(old as i64), "{st:#}");
    assert!(alive(old), "the old instance died");
    w.run_ok(&["stop"]);
}

#[test]
fn a_config_with_an_unknown_strategy_is_refused() {
    let w = Sysg::new();
    let cfg = w.write_config(
        r#"
        services:
          web:
            command: "sleep 1"
            deployment:
              strategy: "blue-green"
        "#,
    );
    let out = w.run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    let all = out.all();
    assert!(all.contains("deployment.strategy"), "{out}");
    assert!(all.contains("unknown strategy"), "{out}");
}

#[test]
fn a_new_instance_that_finds_the_port_taken_falls_back_to_stop_then_start() {
    // The same server without SO_REUSEPORT: the new instance cannot bind while the old
    // one listens, says "Address already in use" and exits.
    let w = Sysg::new();
    let port = free_port();
    let plain = SERVER.replace(
        "srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n",
        "",
    );
    assert_ne!(plain, SERVER);
    std::fs::write(w.proj_file("server.py"), plain).unwrap();
    w.start_with(&web_config(&w, port, 50));
    let old = wait_serving(&w, port);
    let out = w.run_ok(&["restart", "-s", "web"]);
    assert!(
        out.stdout
            .contains("the new instance found its address in use"),
        "{out}"
    );
    let new = w.wait_running_pid("web", Some(old));
    let serving = wait_until(DEADLINE, || get_pid(port) == Ok(new));
    assert!(
        serving,
        "the new instance never served\n{}",
        w.diagnostics()
    );
    assert!(!alive(old), "the old instance is still alive");
    let log = w.supervisor_log();
    assert!(log.contains("falling back to stop-then-start"), "{log}");
    w.run_ok(&["stop"]);
}
