//! One error type for the whole program; `main` prints it once and maps it to an exit code.

use std::fmt;
use std::io;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// Bad command line: unknown flag, missing value. Exit 2.
    Usage(String),
    /// Configuration problems, every one of them, already formatted as
    /// `path:line:col: key.path: message`. Exit 2.
    Config(Vec<String>),
    /// An I/O failure with what we were doing at the time. Exit 1.
    Io { context: String, source: io::Error },
    /// `status` found no supervisor. Exit 3.
    NotRunning(String),
    /// Anything else worth one line to the user. Exit 1.
    Msg(String),
    /// Worth trying again: the supervisor did not answer in time, is busy (shutting
    /// down, reloading), or does not take connections yet. Exit 75 (`EX_TEMPFAIL`).
    TempFail(String),
}

/// `EX_TEMPFAIL` of sysexits(3): try again later.
pub const EXIT_TEMPFAIL: i32 = 75;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn io_path(what: &str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }

    pub fn msg(text: impl Into<String>) -> Self {
        Error::Msg(text.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            Error::NotRunning(_) => 3,
            Error::Io { .. } | Error::Msg(_) => 1,
            Error::TempFail(_) => EXIT_TEMPFAIL,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}\nTry 'sysg --help' for more information."),
            Error::Config(lines) => write!(f, "{}", lines.join("\n")),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::NotRunning(m) | Error::Msg(m) | Error::TempFail(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Self {
        Error::Usage(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
