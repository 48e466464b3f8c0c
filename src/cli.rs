//! Command-line parsing (lexopt) into a plain `Cli`; the help texts live beside the flags.

use crate::error::{Error, Result};
use crate::logger::Level;
use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Stdout,
    Stderr,
    All,
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Start {
        config: Option<PathBuf>,
        daemonize: bool,
        service: Option<String>,
    },
    Stop {
        service: Option<String>,
    },
    Restart {
        config: Option<PathBuf>,
        daemonize: bool,
        service: Option<String>,
    },
    Status {
        service: Option<String>,
        json: bool,
    },
    Logs {
        service: Option<String>,
        lines: usize,
        follow: bool,
        kind: LogKind,
    },
    Validate {
        config: Option<PathBuf>,
    },
    Purge,
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

pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "start",
        "Start the supervisor and its services",
        "Usage: sysg start [-c FILE] [-d] [-s NAME]\n\n\
         With no supervisor running: validate the config and start one, in the foreground\n\
         (service output echoed as 'name | line'; Ctrl-C stops everything) or detached.\n\
         With a supervisor running and -s: start that service.\n\n\
         Options:\n  -c, --config FILE   config file (default: ./systemg.yaml, then ./sysg.yaml)\n  \
         -d, --daemonize     detach; return once the supervisor is up\n  \
         -s, --service NAME  start one service of the running supervisor",
    ),
    (
        "stop",
        "Stop one service, or every service and the supervisor",
        "Usage: sysg stop [-s NAME]\n\n\
         Without -s: stop every service, shut the supervisor down and wait for it to exit.\n\n\
         Options:\n  -s, --service NAME  stop only this service",
    ),
    (
        "restart",
        "Restart one service, or reload the config and restart all",
        "Usage: sysg restart [-s NAME] [-c FILE] [-d]\n\n\
         Without -s: re-read the config (-c, or the one in use), stop all, start all in order.\n\
         A config with errors is refused and nothing is touched.\n\n\
         Options:\n  -s, --service NAME  restart only this service\n  \
         -c, --config FILE   config file to load\n  \
         -d, --daemonize     with no supervisor running, start one detached",
    ),
    (
        "status",
        "Show the state of every service",
        "Usage: sysg status [-s NAME] [--json]\n\n\
         Without a running supervisor, shows the last known state and exits 3.\n\n\
         Options:\n  -s, --service NAME  only this service\n      --json          one JSON document",
    ),
    (
        "logs",
        "Show service output",
        "Usage: sysg logs [NAME] [-s NAME] [-n N] [-f] [-k stdout|stderr|all]\n\n\
         Options:\n  -s, --service NAME  only this service (same as NAME)\n  \
         -n, --lines N       lines per file (default 50)\n  \
         -f, --follow        keep printing new lines until interrupted\n  \
         -k, --kind KIND     stdout, stderr or all (default all)",
    ),
    ("validate", "Check a config file", "Usage: sysg validate [-c FILE]\n\nPrints 'OK: N services (M cron)' or every error (exit 2)."),
    ("purge", "Stop everything and delete the state directory", "Usage: sysg purge"),
    ("help", "Show help for a command", "Usage: sysg help [COMMAND]"),
];

pub fn main_help() -> String {
    let mut s = String::from(
        "sysg - a small process supervisor\n\nUsage: sysg [--log-level LEVEL] <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    for (name, summary, _) in COMMANDS {
        s.push_str(&format!("  {name:<10}{summary}\n"));
    }
    s.push_str(
        "\nGlobal options:\n  \
         --log-level LEVEL  trace, debug, info, warn, error, off, or 0-5 (default info)\n  \
         -h, --help         show help\n  \
         -V, --version      show version\n\n\
         State lives in $SYSG_STATE_DIR, else $XDG_DATA_HOME/systemg, else ~/.local/share/systemg.\n",
    );
    s
}

pub fn command_help(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, h)| *h)
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

pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Cli> {
    let mut p = lexopt::Parser::from_args(args);
    let mut log_level = None;
    let mut cmd_name: Option<String> = None;
    let mut config = None;
    let mut daemonize = false;
    let mut service: Option<String> = None;
    let mut json = false;
    let mut lines = 50usize;
    let mut follow = false;
    let mut kind = LogKind::All;
    let mut positional: Vec<String> = Vec::new();
    let mut help = false;
    let mut version = false;

    while let Some(arg) = p.next()? {
        let cmd = cmd_name.as_deref();
        match arg {
            Long("log-level") => log_level = Some(parse_level(p.value()?)?),
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") if cmd.is_none() => version = true,
            Short('c') | Long("config")
                if matches!(cmd, Some("start" | "restart" | "validate" | "__supervise")) =>
            {
                config = Some(PathBuf::from(p.value()?))
            }
            Short('d') | Long("daemonize") | Long("daemon")
                if matches!(cmd, Some("start" | "restart")) =>
            {
                daemonize = true
            }
            Short('s') | Long("service")
                if matches!(cmd, Some("start" | "stop" | "restart" | "status" | "logs")) =>
            {
                service = Some(value_string(p.value()?, "--service")?)
            }
            Long("json") if cmd == Some("status") => json = true,
            Short('n') | Long("lines") if cmd == Some("logs") => {
                let v = value_string(p.value()?, "--lines")?;
                lines = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--lines: '{v}' is not a number")))?;
            }
            Short('f') | Long("follow") if cmd == Some("logs") => follow = true,
            Short('k') | Long("kind") if cmd == Some("logs") => {
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
            Value(v) if cmd.is_none() => {
                let name = value_string(v, "command")?;
                if name != "__supervise" && command_help(&name).is_none() {
                    return Err(Error::Usage(format!("unknown command '{name}'")));
                }
                cmd_name = Some(name);
            }
            Value(v) if matches!(cmd, Some("logs" | "help")) && positional.is_empty() => {
                positional.push(value_string(v, "argument")?)
            }
            _ => {
                let what = match cmd {
                    Some(c) => format!(" for '{c}'"),
                    None => String::new(),
                };
                return Err(Error::Usage(format!("{}{what}", arg.unexpected())));
            }
        }
    }

    let command = if version {
        Command::Version
    } else if help {
        Command::Help {
            topic: cmd_name
                .filter(|c| c != "help")
                .or_else(|| positional.pop()),
        }
    } else {
        match cmd_name.as_deref() {
            None => Command::Help { topic: None },
            Some("start") => Command::Start {
                config,
                daemonize,
                service,
            },
            Some("stop") => Command::Stop { service },
            Some("restart") => Command::Restart {
                config,
                daemonize,
                service,
            },
            Some("status") => Command::Status { service, json },
            Some("logs") => {
                let pos = positional.pop();
                if let (Some(a), Some(b)) = (&pos, &service) {
                    if a != b {
                        return Err(Error::Usage(format!(
                            "logs: two different services given ('{a}' and '{b}')"
                        )));
                    }
                }
                Command::Logs {
                    service: pos.or(service),
                    lines,
                    follow,
                    kind,
                }
            }
            Some("validate") => Command::Validate { config },
            Some("purge") => Command::Purge,
            Some("help") => Command::Help {
                topic: positional.pop(),
            },
            Some("__supervise") => Command::Supervise {
                config: config.ok_or_else(|| Error::Usage("__supervise needs --config".into()))?,
            },
            Some(other) => return Err(Error::Usage(format!("unknown command '{other}'"))),
        }
    };
    Ok(Cli { log_level, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Cli> {
        parse(s.split_whitespace().map(OsString::from))
    }

    #[test]
    fn start_flags() {
        let cli = parse_str("start -c x.yaml -d --log-level debug").unwrap();
        assert_eq!(cli.log_level, Some(Level::Debug));
        assert_eq!(
            cli.command,
            Command::Start {
                config: Some("x.yaml".into()),
                daemonize: true,
                service: None
            }
        );
    }

    #[test]
    fn log_level_before_command_and_numeric() {
        let cli = parse_str("--log-level 4 status --json").unwrap();
        assert_eq!(cli.log_level, Some(Level::Debug));
        assert_eq!(
            cli.command,
            Command::Status {
                service: None,
                json: true
            }
        );
    }

    #[test]
    fn logs_positional_and_flags() {
        let cli = parse_str("logs api -n 5 -f -k stderr").unwrap();
        assert_eq!(
            cli.command,
            Command::Logs {
                service: Some("api".into()),
                lines: 5,
                follow: true,
                kind: LogKind::Stderr
            }
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let e = parse_str("status --bogus").unwrap_err().to_string();
        assert!(e.contains("--bogus"), "{e}");
        let e = parse_str("frobnicate").unwrap_err().to_string();
        assert!(e.contains("frobnicate"), "{e}");
        let e = parse_str("logs -n many").unwrap_err().to_string();
        assert!(e.contains("many"), "{e}");
        assert!(parse_str("--log-level loud status").is_err());
        assert!(parse_str("stop -d").is_err());
    }

    #[test]
    fn help_forms() {
        assert_eq!(
            parse_str("help stop").unwrap().command,
            Command::Help {
                topic: Some("stop".into())
            }
        );
        assert_eq!(
            parse_str("stop --help").unwrap().command,
            Command::Help {
                topic: Some("stop".into())
            }
        );
        assert_eq!(
            parse_str("").unwrap().command,
            Command::Help { topic: None }
        );
        assert_eq!(parse_str("--version").unwrap().command, Command::Version);
    }

    #[test]
    fn every_command_has_help() {
        for (name, _, help) in COMMANDS {
            assert!(help.starts_with("Usage: sysg"), "{name}");
        }
    }
}
