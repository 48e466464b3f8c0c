//! `sysg status --watch`: the status again whenever something happens. On a terminal, a
//! full-screen view (the alternate screen, given back on exit) redrawn on every event
//! and once a second for the figures, `q` or Ctrl-C quits; otherwise the status block is
//! printed again after each burst of events. Either way it ends with the supervisor.
//! The supervisor does no work for a watcher but answer its status requests.

use crate::client;
use crate::error::Result;
use crate::ipc::Request;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc::{self, TryRecvError};
use std::time::{Duration, Instant};

/// How often the figures are sampled while the view is up.
const REFRESH: Duration = Duration::from_secs(1);
/// Events this close together are one redraw.
const SETTLE: Duration = Duration::from_millis(50);

pub fn watch(service: Option<&str>) -> Result<i32> {
    let paths = super::paths()?;
    let (_, reader) = client::subscribe(&paths, &Request::Events)?;
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in reader.lines() {
            if line.is_err() || tx.send(()).is_err() {
                break;
            }
        }
        // Dropping `tx` says the supervisor is gone.
    });
    let color = std::env::var_os("NO_COLOR").is_none();
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return full_screen(&paths, service, &rx, color);
    }
    let mut out = std::io::stdout();
    loop {
        let (text, _) = super::status::report_text(&paths, service, false, false)?;
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(0);
        }
        if rx.recv().is_err() {
            return Ok(0);
        }
        std::thread::sleep(SETTLE);
        while rx.try_recv().is_ok() {}
        if out.write_all(b"\n").is_err() {
            return Ok(0);
        }
    }
}

fn full_screen(
    paths: &crate::paths::Paths,
    service: Option<&str>,
    rx: &mpsc::Receiver<()>,
    color: bool,
) -> Result<i32> {
    let keys = crate::sys::term::RawKeys::enable()
        .map_err(|e| crate::error::Error::io("cannot set up the terminal", e))?;
    let mut out = std::io::stdout();
    // The alternate screen, the cursor hidden.
    let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
    let mut drawn: Option<Instant> = None;
    let ended = loop {
        let mut redraw = drawn.is_none_or(|t| t.elapsed() >= REFRESH);
        let mut gone = false;
        loop {
            match rx.try_recv() {
                Ok(()) => redraw = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    gone = true;
                    break;
                }
            }
        }
        if gone {
            break true;
        }
        if redraw {
            let text = match super::status::report_text(paths, service, false, color) {
                Ok((text, _)) => text,
                Err(e) => format!("{e}\n"),
            };
            let now = chrono::Utc::now().format("%H:%M:%S");
            let screen = format!(
                "\x1b[H\x1b[2Jsysg status --watch  {now} UTC  (q quits)\r\n\r\n{}",
                text.replace('\n', "\r\n")
            );
            if out
                .write_all(screen.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                break false;
            }
            drawn = Some(Instant::now());
        }
        let pressed = crate::sys::term::read_keys(200);
        if pressed.iter().any(|&k| k == b'q' || k == b'Q' || k == 3) {
            break false;
        }
    };
    let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
    let _ = out.flush();
    drop(keys);
    if ended {
        println!("The supervisor stopped.");
    }
    Ok(0)
}
