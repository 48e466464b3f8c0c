//! `sysg status --watch`: the status again on every event; on a terminal a full-screen
//! view that `q` quits and that gives the screen back; it ends with the supervisor.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;

#[test]
fn without_a_terminal_the_status_comes_again_after_each_event() {
    let w = Sysg::new();
    w.start_with("services:\n  api:\n    command: \"sleep 600\"\n");
    let first = w.wait_running_pid("api", None);
    let mut watcher = w
        .command(&["status", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = watcher.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let seen = |want: &str| {
        let deadline = std::time::Instant::now() + DEADLINE;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(want) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    assert!(seen(&format!("Main PID: {first}")), "no first status");
    w.run_ok(&["restart", "-s", "api"]);
    let second = w.wait_running_pid("api", Some(first));
    assert!(
        seen(&format!("Main PID: {second}")),
        "not shown again after the restart"
    );
    w.run_ok(&["stop"]);
    let ended = wait_until(DEADLINE, || watcher.try_wait().unwrap().is_some());
    assert!(ended, "status --watch outlived the supervisor");
    assert_eq!(watcher.wait().unwrap().code(), Some(0));
}

#[test]
fn on_a_terminal_it_draws_full_screen_and_q_quits() {
    let Some(script) = find_program("script") else {
        skip::root_only("needs script(1) for a terminal (.ci/run installs util-linux)");
        return;
    };
    let w = Sysg::new();
    w.start_with("services:\n  api:\n    command: \"sleep 600\"\n");
    w.wait_running_pid("api", None);
    let cmd = format!("{} status --watch", sysg_bin());
    let mut term = std::process::Command::new(script);
    term.args(["-qfec", &cmd, "/dev/null"])
        .current_dir(w.root())
        .env("HOME", &w.home)
        .env("SYSG_STATE_DIR", &w.state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = term.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let drawn = wait_until(DEADLINE, || {
        while let Ok(bytes) = rx.try_recv() {
            screen.extend(bytes);
        }
        String::from_utf8_lossy(&screen).contains("● api Running")
    });
    assert!(drawn, "{}", String::from_utf8_lossy(&screen));
    let text = String::from_utf8_lossy(&screen).to_string();
    assert!(
        text.contains("\x1b[?1049h"),
        "no alternate screen: {text:?}"
    );
    assert!(text.contains("(q quits)"), "{text:?}");
    child.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    let quit = wait_until(DEADLINE, || child.try_wait().unwrap().is_some());
    assert!(quit, "q did not quit");
    while let Ok(bytes) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
        screen.extend(bytes);
    }
    let text = String::from_utf8_lossy(&screen).to_string();
    assert!(
        text.contains("\x1b[?1049l"),
        "the screen was not given back: {text:?}"
    );
    assert!(
        w.supervisor_pid().is_some(),
        "quitting the view stops nothing"
    );
    w.run_ok(&["stop"]);
}
