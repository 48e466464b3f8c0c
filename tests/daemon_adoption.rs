//! A daemon that forks, calls setsid and overwrites its environment (so the service
//! markers are gone) is re-parented to the supervisor when its parent exits; it is taken
//! to be the exiting instance's and stopped with it: a python stand-in for any such
//! daemon, and a real nginx without `daemon off;`.

mod common;
use common::*;
use std::time::Duration;

/// Forks twice (setsid between), zeroes its own environ block as setproctitle does, notes
/// its pid and sleeps; the first process exits 0 once the daemon is ready.
const DAEMON: &str = r#"
import ctypes, os, sys, time
note = sys.argv[1]
first = os.fork()
if first:
    # The service's own process waits for the daemon to be ready, as a daemonizing
    # server's parent does, then exits 0.
    os.waitpid(first, 0)
    while not os.path.exists(note):
        time.sleep(0.01)
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
f = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
start, end = int(f[47]), int(f[48])
ctypes.memset(start, 0, end - start)
wiped = b"SYSG_SERVICE=" not in open("/proc/self/environ", "rb").read()
open(note + ".tmp", "w").write("%d %s" % (os.getpid(), wiped))
os.rename(note + ".tmp", note)
while True:
    time.sleep(1)
"#;

#[test]
fn a_daemon_that_wipes_its_markers_is_stopped_with_the_instance_it_left() {
    let w = Sysg::new();
    std::fs::write(w.proj_file("daemon.py"), DAEMON).unwrap();
    w.start_with(
        r#"
        services:
          web:
            command: "python3 daemon.py daemon.pid"
        "#,
    );
    let noted = w.wait_file("daemon.pid");
    let (pid, wiped) = noted.trim().split_once(' ').unwrap();
    let daemon: i32 = pid.parse().unwrap();
    assert_eq!(wiped, "True", "the daemon's markers were to be gone");
    let gone = wait_until(Duration::from_secs(20), || exited(daemon));
    assert!(
        gone,
        "the daemon outlived its instance\n{}",
        w.diagnostics()
    );
    let st = w.wait_status("web", "exited");
    let reason = st["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("leftover process(es) stopped"), "{st:#}");
    // In a cgroup nothing leaves the instance: the daemon was found there.
    let contained = w.status_json()["containment"]
        .as_str()
        .is_some_and(|c| c.starts_with("cgroup"));
    if !contained {
        let log = w.wait_log_line(&["web: pid", "left the instance without its markers"]);
        assert!(log.contains(&format!("pid {daemon}")), "{log}");
    }
    w.run_ok(&["stop"]);
}

#[test]
fn nginx_without_daemon_off_is_stopped_not_left_holding_its_port() {
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        skip::root_only("nginx is not installed (.ci/run installs nginx-light as root)");
        return;
    };
    if !is_root() {
        skip::root_only("nginx needs root for its default paths");
        return;
    }
    let w = Sysg::new();
    // nginx processes of anything else on this machine are not this test's business.
    let before: Vec<i32> = processes_matching("nginx")
        .iter()
        .map(|(p, _)| *p)
        .collect();
    let ours = |cmd: &str| -> Vec<(i32, String)> {
        processes_matching(cmd)
            .into_iter()
            .filter(|(p, _)| !before.contains(p))
            .collect()
    };
    let port = free_port();
    let dir = w.proj.display().to_string();
    let conf = format!(
        "worker_processes 2;\nerror_log {dir}/error.log;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {dir}/t1; proxy_temp_path {dir}/t2;\n\
         fastcgi_temp_path {dir}/t3; uwsgi_temp_path {dir}/t4; scgi_temp_path {dir}/t5;\n\
         server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }} }}\n"
    );
    std::fs::write(w.proj_file("nginx.conf"), conf).unwrap();
    w.start_with(&format!(
        r#"
        services:
          web:
            command: "{nginx} -c {dir}/nginx.conf"
        "#
    ));
    // Stopped as it daemonizes: by its markers if it still has them when its parent
    // exits, else adopted; either way no process of this nginx is left.
    let st = w.wait_status("web", "exited");
    let conf = format!("{dir}/nginx.conf");
    let gone = wait_until(Duration::from_secs(20), || {
        ours(&conf).is_empty() && ours("nginx: worker").is_empty()
    });
    assert!(
        gone,
        "nginx outlived its instance: {:?}\n{}",
        ours("nginx"),
        w.diagnostics()
    );
    let free = wait_until(Duration::from_secs(10), || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    });
    assert!(free, "port {port} still held\n{}", w.diagnostics());
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("leftover process(es) stopped"),
        "{st:#}"
    );
    w.run_ok(&["stop"]);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}
