//! supervisor.log: `2025-12-31T15:30:00.123Z INFO  message`, UTC, rotated at 10 MiB.
//! A foreground supervisor also prints each line to stderr. The file is opened and rotated
//! through [`crate::state_dir`]: a symlink at its name is refused, never written through.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

const ROTATE_AT: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Level::Off,
            "error" | "1" => Level::Error,
            "warn" | "warning" | "2" => Level::Warn,
            "info" | "3" => Level::Info,
            "debug" | "4" => Level::Debug,
            "trace" | "5" => Level::Trace,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Level::Off => "OFF",
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Off,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        }
    }
}

struct Sink {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    echo: bool,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
// Hook worker threads log too, so the sink sits behind a lock; it holds no service state.
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level != Level::Off && level <= Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Starts writing to `path`; with `echo`, lines also go to stderr (foreground mode).
/// Opens supervisor.log for appending. A file that cannot be opened safely (a planted
/// link, a foreign owner) is an error: the supervisor refuses to start without its log.
pub fn open(path: PathBuf, echo: bool) -> std::io::Result<()> {
    let file = Some(crate::state::open_append(&path)?);
    let size = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    if let Ok(mut sink) = SINK.lock() {
        *sink = Some(Sink {
            path,
            file,
            size,
            echo,
        });
    }
    Ok(())
}

pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let line = format!("{ts} {:<5} {msg}\n", level.label());
    let Ok(mut guard) = SINK.lock() else { return };
    let Some(sink) = guard.as_mut() else { return };
    if sink.echo {
        crate::terminal::write(crate::terminal::To::Err, line.as_bytes().to_vec());
    }
    if sink.size + line.len() as u64 > ROTATE_AT {
        let rotated = sink.path.with_extension("log.1");
        sink.file = None;
        let _ = crate::state_dir::rename(&sink.path, &rotated);
        sink.file = crate::state::open_append(&sink.path).ok();
        sink.size = 0;
    }
    if let Some(f) = sink.file.as_mut() {
        if f.write_all(line.as_bytes()).is_ok() {
            sink.size += line.len() as u64;
        }
    }
}

macro_rules! error { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Error, &format!($($t)*)) } }
macro_rules! warning { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Warn, &format!($($t)*)) } }
macro_rules! info { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Info, &format!($($t)*)) } }
macro_rules! debug { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Debug, &format!($($t)*)) } }
pub(crate) use {debug, error, info, warning};
