//! Command-line parsing (lexopt) into a plain `Cli`: the words before the command, then one
//! small loop per command. What each command accepts is listed in [`table`], which also
//! renders the help.

mod table;

pub use table::{command_help, flags, main_help, Flag, COMMANDS, GLOBAL_FLAGS, SHELLS};

use crate::error::{Error, Result};
use crate::logger::Level;
use lexopt::prelude::*;
use lexopt::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Stdout,
    Stderr,
    All,
}

/// The shells `sysg completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn parse(name: &str) -> Option<Shell> {
        match name {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Start {
        config: Option<PathBuf>,
        daemonize: bool,
        service: Option<String>,
        /// `--wait [--timeout D]`: return once the services are up (see `Request::WaitUp`).
        wait: Option<std::time::Duration>,
    },
    Stop {
        service: Option<String>,
        with_dependents: bool,
    },
    Restart {
        config: Option<PathBuf>,
        daemonize: bool,
        service: Option<String>,
        dry_run: bool,
        all: bool,
        wait: Option<std::time::Duration>,
    },
    Status {
        service: Option<String>,
        json: bool,
        /// `--watch`: a live view until quit.
        watch: bool,
    },
    Logs {
        service: Option<String>,
        lines: usize,
        follow: bool,
        kind: LogKind,
        /// `--supervisor`: supervisor.log instead of a service's files.
        supervisor: bool,
        /// `--grep`, `--since`, `--until`, `--timestamps` / `--no-timestamps`.
        view: LogView,
        /// `--rotate`: rotate the files now instead of showing them.
        rotate: bool,
    },
    Validate {
        config: Option<PathBuf>,
    },
    Purge,
    Upgrade {
        binary: Option<PathBuf>,
    },
    Events {
        json: bool,
    },
    Inspect {
        service: String,
        json: bool,
        env: bool,
    },
    /// The new binary taking over from `upgrade` (hidden).
    Resume {
        fd: i32,
        /// The old binary, opened before the exec: run again if taking over fails.
        fallback: Option<i32>,
    },
    /// `__handover-version`: the handover format this binary reads (hidden).
    HandoverVersion,
    Completions {
        shell: Shell,
    },
    Help {
        topic: Option<String>,
    },
    Version,
    /// Internal: the detached supervisor started by `start --daemonize`.
    Supervise {
        config: PathBuf,
    },
}

#[derive(Debug, PartialEq)]
pub struct Cli {
    pub log_level: Option<Level>,
    pub command: Command,
}

/// The options every command accepts, wherever they stand.
#[derive(Default)]
struct Global {
    log_level: Option<Level>,
    help: bool,
    /// Only before the command: `sysg stop -V` is a usage error.
    version: bool,
}

impl Global {
    /// What runs instead of `command` when `--version` or `--help` was given. The
    /// command's own arguments then need not be complete (`sysg completions --help`).
    fn replacement(&self, command: &str) -> Option<Command> {
        if self.version {
            Some(Command::Version)
        } else if self.help {
            Some(Command::Help {
                topic: Some(command.to_string()),
            })
        } else {
            None
        }
    }
}

pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Cli> {
    let mut p = Parser::from_args(args);
    let mut g = Global::default();
    let mut name = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            Short('V') | Long("version") => g.version = true,
            Value(v) => {
                name = Some(value_string(v, "command")?);
                break;
            }
            _ => return Err(Error::Usage(arg.unexpected().to_string())),
        }
    }
    let command = match name.as_deref() {
        None if g.version => Command::Version,
        None => Command::Help { topic: None },
        Some("start") => start(&mut p, &mut g)?,
        Some("stop") => stop(&mut p, &mut g)?,
        Some("restart") => restart(&mut p, &mut g)?,
        Some("status") => status(&mut p, &mut g)?,
        Some("logs") => logs(&mut p, &mut g)?,
        Some("validate") => validate(&mut p, &mut g)?,
        Some("purge") => purge(&mut p, &mut g)?,
        Some("upgrade") => upgrade(&mut p, &mut g)?,
        Some("events") => events(&mut p, &mut g)?,
        Some("inspect") => inspect(&mut p, &mut g)?,
        Some("__resume") => resume(&mut p)?,
        Some("__handover-version") => Command::HandoverVersion,
        Some("completions") => completions(&mut p, &mut g)?,
        Some("help") => help(&mut p, &mut g)?,
        Some("__supervise") => supervise(&mut p, &mut g)?,
        Some(other) => return Err(Error::Usage(format!("unknown command '{other}'"))),
    };
    Ok(Cli {
        log_level: g.log_level,
        command,
    })
}

/// How `logs` filters and shows lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogView {
    /// Only lines holding this text.
    pub grep: Option<String>,
    /// Only lines stamped at or after / before this (a duration ago, or a time).
    pub since: Option<String>,
    pub until: Option<String>,
    /// `--timestamps`: every service's stamped lines in one list in time order, stamps
    /// shown; `--no-timestamps`: stamps hidden.
    pub timestamps: Option<bool>,
}

/// `--wait` and `--timeout D` of `start` and `restart` (a timeout implies `--wait`;
/// for `start`, `--wait` implies `-d`, as `docker compose up --wait` does).
#[derive(Default)]
struct Wait {
    wait: bool,
    timeout: Option<std::time::Duration>,
}

/// How long `--wait` waits unless `--timeout` says.
pub const WAIT_DEFAULT: std::time::Duration = std::time::Duration::from_secs(60);

impl Wait {
    fn timeout(&mut self, p: &mut Parser) -> Result<()> {
        let v = value_string(p.value()?, "--timeout")?;
        // A plain number is seconds, as `timeout(1)` takes it.
        let d = match v.parse::<u64>() {
            Ok(secs) => std::time::Duration::from_secs(secs),
            Err(_) => crate::config::parse_duration(&v)
                .map_err(|e| Error::Usage(format!("--timeout: {e}")))?,
        };
        self.timeout = Some(d);
        Ok(())
    }

    fn done(self) -> Option<std::time::Duration> {
        match (self.wait, self.timeout) {
            (_, Some(t)) => Some(t),
            (true, None) => Some(WAIT_DEFAULT),
            (false, None) => None,
        }
    }
}

fn start(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut config, mut daemonize, mut service) = (None, false, None);
    let mut wait = Wait::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("wait") => wait.wait = true,
            Long("timeout") => wait.timeout(p)?,
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            // `--daemon`: the seed's spelling, kept working but not advertised.
            Short('d') | Long("daemonize") | Long("daemon") => daemonize = true,
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "start")),
        }
    }
    let wait = wait.done();
    // Waiting in the foreground makes no sense: `--wait` detaches.
    let daemonize = daemonize || (wait.is_some() && service.is_none());
    Ok(g.replacement("start").unwrap_or(Command::Start {
        config,
        daemonize,
        service,
        wait,
    }))
}

fn stop(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut service, mut with_dependents) = (None, false);
    while let Some(arg) = p.next()? {
        match arg {
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Long("with-dependents") => with_dependents = true,
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "stop")),
        }
    }
    if with_dependents && service.is_none() {
        return Err(Error::Usage("stop: --with-dependents needs -s NAME".into()));
    }
    Ok(g.replacement("stop").unwrap_or(Command::Stop {
        service,
        with_dependents,
    }))
}

fn restart(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut config, mut daemonize, mut service) = (None, false, None);
    let (mut dry_run, mut all) = (false, false);
    let mut wait = Wait::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("wait") => wait.wait = true,
            Long("timeout") => wait.timeout(p)?,
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            Short('d') | Long("daemonize") | Long("daemon") => daemonize = true,
            Long("dry-run") => dry_run = true,
            Long("all") | Long("force") => all = true,
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "restart")),
        }
    }
    if service.is_some() && (dry_run || all) {
        return Err(Error::Usage(
            "restart: --dry-run and --all are for a reload (without -s)".into(),
        ));
    }
    let wait = wait.done();
    Ok(g.replacement("restart").unwrap_or(Command::Restart {
        config,
        daemonize,
        service,
        dry_run,
        all,
        wait,
    }))
}

fn status(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut service, mut json, mut watch) = (None, false, false);
    while let Some(arg) = p.next()? {
        match arg {
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Long("json") => json = true,
            Short('w') | Long("watch") => watch = true,
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "status")),
        }
    }
    if watch && json {
        return Err(Error::Usage(
            "status: --watch draws the text form, not --json".into(),
        ));
    }
    Ok(g.replacement("status").unwrap_or(Command::Status {
        service,
        json,
        watch,
    }))
}

fn logs(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut named, mut service) = (None, None);
    let (mut lines, mut follow, mut kind) = (50, false, LogKind::All);
    let mut supervisor = false;
    let mut view = LogView::default();
    let mut rotate = false;
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if named.is_none() => named = Some(value_string(v, "argument")?),
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Short('n') | Long("lines") => {
                let v = value_string(p.value()?, "--lines")?;
                lines = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--lines: '{v}' is not a number")))?;
            }
            Short('f') | Long("follow") => follow = true,
            Long("supervisor") => supervisor = true,
            Long("rotate") => rotate = true,
            Long("grep") => view.grep = Some(value_string(p.value()?, "--grep")?),
            Long("since") => view.since = Some(value_string(p.value()?, "--since")?),
            Long("until") => view.until = Some(value_string(p.value()?, "--until")?),
            Long("timestamps") => view.timestamps = Some(true),
            Long("no-timestamps") => view.timestamps = Some(false),
            Short('k') | Long("kind") => {
                let v = value_string(p.value()?, "--kind")?;
                kind = match v.as_str() {
                    "stdout" => LogKind::Stdout,
                    "stderr" => LogKind::Stderr,
                    "all" => LogKind::All,
                    _ => {
                        return Err(Error::Usage(format!(
                            "--kind: '{v}' is not stdout, stderr or all"
                        )))
                    }
                };
            }
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "logs")),
        }
    }
    if let Some(instead) = g.replacement("logs") {
        return Ok(instead);
    }
    if let (Some(a), Some(b)) = (&named, &service) {
        if a != b {
            return Err(Error::Usage(format!(
                "logs: two different services given ('{a}' and '{b}')"
            )));
        }
    }
    if supervisor && (named.is_some() || service.is_some()) {
        return Err(Error::Usage(
            "logs: --supervisor shows supervisor.log, not a service's logs".into(),
        ));
    }
    Ok(Command::Logs {
        service: named.or(service),
        lines,
        follow,
        kind,
        supervisor,
        view,
        rotate,
    })
}

fn validate(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut config = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "validate")),
        }
    }
    Ok(g.replacement("validate")
        .unwrap_or(Command::Validate { config }))
}

fn purge(p: &mut Parser, g: &mut Global) -> Result<Command> {
    while let Some(arg) = p.next()? {
        match arg {
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "purge")),
        }
    }
    Ok(g.replacement("purge").unwrap_or(Command::Purge))
}

fn upgrade(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut binary = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("binary") => binary = Some(PathBuf::from(p.value()?)),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "upgrade")),
        }
    }
    Ok(g.replacement("upgrade")
        .unwrap_or(Command::Upgrade { binary }))
}

fn events(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut json = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("json") => json = true,
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "events")),
        }
    }
    Ok(g.replacement("events").unwrap_or(Command::Events { json }))
}

fn inspect(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let (mut service, mut json, mut env) = (None, false, false);
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if service.is_none() => service = Some(value_string(v, "argument")?),
            Short('s') | Long("service") => service = Some(service_value(p)?),
            Long("json") => json = true,
            Long("env") => env = true,
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "inspect")),
        }
    }
    if let Some(instead) = g.replacement("inspect") {
        return Ok(instead);
    }
    let Some(service) = service else {
        return Err(Error::Usage(
            "inspect: which service? (sysg inspect NAME)".into(),
        ));
    };
    Ok(Command::Inspect { service, json, env })
}

fn resume(p: &mut Parser) -> Result<Command> {
    let fd = match p.next()? {
        Some(Value(v)) => value_string(v, "__resume")?
            .parse()
            .map_err(|_| Error::Usage("__resume needs a descriptor number".into()))?,
        _ => return Err(Error::Usage("__resume needs a descriptor number".into())),
    };
    let fallback = match p.next()? {
        Some(Value(v)) => value_string(v, "__resume")?.parse().ok(),
        _ => None,
    };
    Ok(Command::Resume { fd, fallback })
}

fn completions(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut shell = None;
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if shell.is_none() => shell = Some(value_string(v, "argument")?),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "completions")),
        }
    }
    if let Some(instead) = g.replacement("completions") {
        return Ok(instead);
    }
    let name =
        shell.ok_or_else(|| Error::Usage("completions: which shell? (bash, zsh, fish)".into()))?;
    let shell = Shell::parse(&name).ok_or_else(|| {
        Error::Usage(format!(
            "completions: unknown shell '{name}' (bash, zsh, fish)"
        ))
    })?;
    Ok(Command::Completions { shell })
}

/// `sysg help [COMMAND]`; `sysg help stop --help` is still the help of `stop`.
fn help(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut topic = None;
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if topic.is_none() => topic = Some(value_string(v, "argument")?),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "help")),
        }
    }
    Ok(if g.version {
        Command::Version
    } else {
        Command::Help { topic }
    })
}

fn supervise(p: &mut Parser, g: &mut Global) -> Result<Command> {
    let mut config = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            Long("log-level") => g.log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => g.help = true,
            _ => return Err(unexpected(arg, "__supervise")),
        }
    }
    if let Some(instead) = g.replacement("__supervise") {
        return Ok(instead);
    }
    let config = config.ok_or_else(|| Error::Usage("__supervise needs --config".into()))?;
    Ok(Command::Supervise { config })
}

/// lexopt's message, and which command did not take the argument.
fn unexpected(arg: lexopt::Arg<'_>, command: &str) -> Error {
    Error::Usage(format!("{} for '{command}'", arg.unexpected()))
}

fn service_value(p: &mut Parser) -> Result<String> {
    value_string(p.value()?, "--service")
}

fn value_string(v: OsString, flag: &str) -> Result<String> {
    v.into_string()
        .map_err(|_| Error::Usage(format!("{flag}: value is not valid UTF-8")))
}

fn parse_level(v: OsString) -> Result<Level> {
    let s = value_string(v, "--log-level")?;
    Level::parse(&s).ok_or_else(|| {
        Error::Usage(format!(
            "--log-level: invalid level '{s}' (trace, debug, info, warn, error, off, 0-5)"
        ))
    })
}

#[cfg(test)]
mod tests;
