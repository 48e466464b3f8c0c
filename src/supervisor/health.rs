//! Readiness probes (SPEC §2 `health_check`): one attempt per worker thread, a command
//! run with `sh -c` in the service's dir and env, or a plain HTTP/1.1 GET. The loop
//! decides what a result means; an attempt never blocks it.

use super::children::{Done, Link, ProbeResult, Workers, MARKER_AUX};
use super::policy::ExitStatus;
use crate::config::{HealthCheck, Probe, Service};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Starts one probe attempt for unit `unit` (instance `generation`).
pub fn launch(
    workers: &mut Workers,
    svc: &Service,
    check: &HealthCheck,
    unit: usize,
    generation: u64,
    pid: Option<i32>,
) -> std::io::Result<()> {
    let svc = svc.clone();
    let check = check.clone();
    workers.start(format!("probe {}", svc.name), false, move |link| {
        let (healthy, detail) = match &check.probe {
            Probe::Command(cmd) => command_probe(&link, &svc, cmd, check.timeout, pid),
            Probe::Url(url) => http_probe(url, check.timeout),
            Probe::Tcp(target) => tcp_probe(target, check.timeout),
            // Decided by the output path (`ReadyWatch`); never launched.
            Probe::Log(_) => return,
        };
        link.report(Done::Probe(ProbeResult {
            unit,
            generation,
            healthy,
            detail,
        }));
    })
}

/// `SYSG_PID` names the instance being checked: during a rolling restart, the new one,
/// while the old one may still answer on a shared port.
fn command_probe(
    link: &Link,
    svc: &Service,
    cmd: &str,
    timeout: Duration,
    pid: Option<i32>,
) -> (bool, String) {
    let mut extra = vec![(MARKER_AUX.to_string(), "health_check".to_string())];
    extra.extend(pid.map(|p| ("SYSG_PID".to_string(), p.to_string())));
    let mut last = String::new();
    let ran = link.run_bounded(
        svc,
        cmd,
        &extra,
        timeout,
        |_| {},
        |line| {
            if !line.trim().is_empty() {
                last = line.trim().chars().take(200).collect();
            }
        },
    );
    let done = match ran {
        Ok(done) => done,
        Err(e) => return (false, format!("cannot run: {e}")),
    };
    let suffix = if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    };
    match done.status {
        _ if done.timed_out => (
            false,
            format!("timed out after {}ms{suffix}", timeout.as_millis()),
        ),
        Some(ExitStatus::Code(0)) => (true, "passed".into()),
        Some(ExitStatus::Code(c)) => (false, format!("exit code {c}{suffix}")),
        Some(ExitStatus::Signal(s)) => (
            false,
            format!("killed by {}{suffix}", crate::config::signal_name(s)),
        ),
        None => (
            false,
            format!("timed out after {}ms{suffix}", timeout.as_millis()),
        ),
    }
}

/// GET `url` (plain `http://`, validated at load); healthy on a 2xx status.
/// Healthy when a TCP connect to `target` (`host:port`) succeeds within `timeout`.
pub fn tcp_probe(target: &str, timeout: Duration) -> (bool, String) {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = match target.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return (false, format!("cannot resolve {target}: {e}")),
    };
    let mut last = format!("no address for {target}");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, format!("timed out after {}ms", timeout.as_millis()));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => return (true, format!("connected to {addr}")),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    (false, last)
}

pub fn http_probe(url: &str, timeout: Duration) -> (bool, String) {
    match http_status(url, timeout) {
        Ok(code) if (200..300).contains(&code) => (true, format!("HTTP {code}")),
        Ok(code) => (false, format!("HTTP {code}")),
        Err(e) => (false, e),
    }
}

fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let (host, port, path) = split_url(url)?;
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last_err = format!("no address for {host}");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {}ms", timeout.as_millis()));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return request(stream, &host, port, &path, deadline),
            Err(e) => last_err = format!("connect {addr}: {e}"),
        }
    }
    Err(last_err)
}

fn request(
    mut stream: TcpStream,
    host: &str,
    port: u16,
    path: &str,
    deadline: Instant,
) -> Result<u16, String> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: sysg-health\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(format!(
            "not an HTTP response: {:?}",
            line.chars().take(60).collect::<String>()
        )),
    }
}

/// `http://host[:port][/path]` into its parts; `[v6]` hosts allowed.
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("bad host in {url}"))?;
        let port = v6[end + 1..].strip_prefix(':');
        (v6[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port in {url}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok((host, port, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_split_into_host_port_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8000/health").unwrap(),
            ("127.0.0.1".into(), 8000, "/health".into())
        );
        assert_eq!(
            split_url("http://localhost").unwrap(),
            ("localhost".into(), 80, "/".into())
        );
        assert_eq!(
            split_url("http://[::1]:9/x?y=1").unwrap(),
            ("::1".into(), 9, "/x?y=1".into())
        );
        assert!(split_url("https://x").is_err());
        assert!(split_url("http://:80/").is_err());
        assert!(split_url("http://h:port/").is_err());
    }

    fn serve_once(reply: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply.as_bytes());
            }
        });
        port
    }

    #[test]
    fn http_2xx_is_healthy_and_others_are_not() {
        let port = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let (ok, detail) = http_probe(
            &format!("http://127.0.0.1:{port}/h"),
            Duration::from_secs(5),
        );
        assert!(ok, "{detail}");
        let port = serve_once("HTTP/1.0 503 Busy\r\n\r\n");
        assert_eq!(
            http_probe(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5)),
            (false, "HTTP 503".into())
        );
        let port = serve_once("garbage\r\n");
        assert!(!http_probe(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5)).0);
    }

    #[test]
    fn refused_connection_is_unhealthy() {
        // Held on 127.0.0.1, the port cannot be listened on for every address meanwhile,
        // and nothing listens on 127.0.0.2 (a released port could be taken again).
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let (ok, detail) = http_probe(&format!("http://127.0.0.2:{port}/"), Duration::from_secs(2));
        assert!(!ok);
        assert!(detail.contains("connect"), "{detail}");
    }

    #[test]
    fn a_silent_server_times_out() {
        // The kernel completes the handshake; nobody ever answers or closes.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (ok, detail) = http_probe(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        );
        assert!(!ok);
        assert!(detail.starts_with("read:"), "{detail}");
        // The probe sent its request, then gave up waiting and hung up by itself.
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        s.read_to_end(&mut seen)
            .expect("the probe did not close its connection");
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.starts_with("GET / HTTP/1.1\r\n"), "{seen}");
    }
}
