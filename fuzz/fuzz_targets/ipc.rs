//! Fuzz target: the control-socket request decoder.
//!
//! 1. `serde_json::from_slice::<ipc::Request>` on the raw input (what the supervisor runs
//!    on each request line); an accepted request must survive a serialize/parse round trip.
//! 2. The framing in `supervisor/control.rs` (`Client::on_readable` / `on_writable`) over a
//!    real socket pair: the first input byte picks a chunk size, the rest is written to the
//!    socket in chunks of that size with `on_readable` called after each, then the writer
//!    hangs up. The request the framing yields must be exactly the parse of the bytes before
//!    the first newline, and a malformed line must get one `{"ok":false,...}` reply line.
//!
//! The crate is binary-only, so the modules are compiled here straight from ../src;
//! `control.rs` only reaches outside itself for `crate::ipc`.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/supervisor/control.rs"]
mod control;
#[path = "../../src/ipc.rs"]
mod ipc;

use control::{Client, ClientEvent};
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

fuzz_target!(|data: &[u8]| {
    // 1. The decoder alone.
    if let Ok(req) = serde_json::from_slice::<ipc::Request>(data) {
        let json = serde_json::to_vec(&req).expect("a Request always serializes");
        let back: ipc::Request = serde_json::from_slice(&json).expect("round trip parses");
        assert_eq!(back, req, "round trip changed the request");
    }

    // 2. The framing, over a socket pair.
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let chunk = 1 + selector as usize % 64;
    let line = match payload.iter().position(|&b| b == b'\n') {
        Some(pos) => Some(&payload[..pos]),
        None => None,
    };
    let expected = line.map(|l| serde_json::from_slice::<ipc::Request>(l).ok());

    let (mut peer, ours) = UnixStream::pair().expect("socketpair");
    let mut client = Client::new(1, ours).expect("client");
    let mut got: Option<ipc::Request> = None;
    let mut closed = false;
    for piece in payload.chunks(chunk) {
        // Inputs are capped well below the socket buffer (-max_len), so this never blocks.
        peer.write_all(piece).expect("write to socket pair");
        match client.on_readable() {
            ClientEvent::Pending => {}
            ClientEvent::Request(r) => {
                assert!(got.is_none(), "two requests from one client");
                got = Some(r);
            }
            ClientEvent::Close => {
                closed = true;
                break;
            }
        }
        if client.answered {
            break;
        }
    }
    if !client.answered && !closed {
        peer.shutdown(Shutdown::Write).expect("shutdown");
        match client.on_readable() {
            ClientEvent::Close => closed = true,
            ClientEvent::Request(r) => got = Some(r),
            ClientEvent::Pending => {}
        }
    }

    match expected {
        // No newline: the client hung up before finishing its line; nothing is acted on.
        None => {
            assert!(got.is_none(), "request acted on without a newline");
            assert!(closed, "client without a full line not closed at EOF");
        }
        Some(Some(req)) => assert_eq!(got.as_ref(), Some(&req), "framing changed the request"),
        Some(None) => {
            assert!(got.is_none(), "malformed line acted on");
            assert!(
                client.answered && client.wants_write(),
                "malformed line got no reply"
            );
            assert!(matches!(client.on_writable(), ClientEvent::Close));
            let mut reply = Vec::new();
            peer.set_nonblocking(true).expect("nonblocking");
            let _ = peer.read_to_end(&mut reply);
            assert_eq!(reply.last(), Some(&b'\n'), "reply not newline-terminated");
            assert_eq!(
                reply.iter().filter(|&&b| b == b'\n').count(),
                1,
                "more than one reply line"
            );
            let resp: ipc::Response =
                serde_json::from_slice(&reply[..reply.len() - 1]).expect("reply is JSON");
            assert!(
                !resp.ok && resp.error.is_some(),
                "malformed line answered ok"
            );
        }
    }
});
