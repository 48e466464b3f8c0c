//! The control socket under abuse: the supervisor keeps serving everyone else, never
//! panics, and drops clients that stall.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(w: &Sysg) -> UnixStream {
    let s = UnixStream::connect(w.state.join("control.sock")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn reply(mut s: UnixStream) -> String {
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn garbage_oversized_and_idle_clients_do_not_disturb_status() {
    let w = Sysg::new();
    let mut yaml = String::from("services:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  svc{i}:\n    command: \"sleep {}\"\n",
            unique_number()
        ));
    }
    w.start_with(&yaml);

    // 50 connections that never send anything.
    let idle: Vec<UnixStream> = (0..50).map(|_| connect(&w)).collect();

    // Clients that ask for a (large) status and never read the reply.
    let mut silent = Vec::new();
    for _ in 0..5 {
        let mut s = connect(&w);
        s.write_all(b"{\"cmd\":\"status\",\"service\":null}\n")
            .unwrap();
        silent.push(s);
    }

    let mut s = connect(&w);
    s.write_all(&[0xff, 0x00, 0x13, b'\n']).unwrap();
    assert!(reply(s).contains("malformed request"));

    let mut s = connect(&w);
    s.write_all(b"{\"cmd\": 42}\n").unwrap();
    assert!(reply(s).contains("\"ok\":false"));

    let mut s = connect(&w);
    s.write_all(b"{\"cmd\":\"stop\",\"service\":[1,2]}\n")
        .unwrap();
    assert!(reply(s).contains("\"ok\":false"));

    // A 3 MB line: refused with an error, without the supervisor buffering it all.
    let mut s = connect(&w);
    let big = vec![b'a'; 3 << 20];
    let _ = s.write_all(&big);
    let _ = s.write_all(b"\n");
    assert!(reply(s).contains("too large"));

    // Meanwhile everyone else is served, without waiting the stalled clients out: one
    // that connects just before `status` is still connected when the reply is in.
    let mut stalled = connect(&w);
    let out = w.run(&["status"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("● svc39 Running"), "{out}");
    stalled.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let still_connected =
        matches!(stalled.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    assert!(
        still_connected,
        "status was answered only once a stalled client had been dropped"
    );
    // ... and it was stalled, not lost: it is dropped in its turn.
    stalled.set_nonblocking(false).unwrap();
    assert!(
        matches!(stalled.read(&mut buf), Ok(0)),
        "the stalled client was not dropped"
    );

    // Stalled clients are dropped (the supervisor closes them) and it is still alive.
    let mut closed = 0;
    for mut s in idle.into_iter().take(3) {
        let mut buf = [0u8; 16];
        if matches!(s.read(&mut buf), Ok(0)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 3, "idle clients were not dropped");
    drop(silent);
    let pid = w.supervisor_pid().expect("supervisor pid");
    assert!(alive(pid));
    assert_eq!(w.run(&["status", "-s", "svc0"]).code, 0);
}
