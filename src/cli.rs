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

/// The shells `sysg completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub const SHELLS: &[&str] = &["bash", "zsh", "fish"];

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

/// Every user-facing command: name, one-line summary, and the head of its help text
/// (usage line and description). The options part of `sysg help <cmd>` is rendered from
/// [`FLAGS`], which the shell completions and the man-page test read as well.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "start",
        "Start the supervisor and its services",
        "Usage: sysg start [-c FILE] [-d] [-s NAME]\n\n\
         With no supervisor running: validate the config and start one, in the foreground\n\
         (service output echoed as 'name | line'; Ctrl-C stops everything) or detached.\n\
         With a supervisor running and -s: start that service.",
    ),
    (
        "stop",
        "Stop one service, or every service and the supervisor",
        "Usage: sysg stop [-s NAME]\n\n\
         Without -s: stop every service, shut the supervisor down and wait for it to exit.",
    ),
    (
        "restart",
        "Restart one service, or reload the config and restart all",
        "Usage: sysg restart [-s NAME] [-c FILE] [-d]\n\n\
         Without -s: re-read the config (-c, or the one in use), stop all, start all in order.\n\
         A config with errors is refused and nothing is touched.",
    ),
    (
        "status",
        "Show the state of every service",
        "Usage: sysg status [-s NAME] [--json]\n\n\
         Without a running supervisor, shows the last known state and exits 3.",
    ),
    (
        "logs",
        "Show service output",
        "Usage: sysg logs [NAME] [-s NAME] [-n N] [-f] [-k stdout|stderr|all]",
    ),
    (
        "validate",
        "Check a config file",
        "Usage: sysg validate [-c FILE]\n\nPrints 'OK: N services (M cron)' or every error (exit 2).",
    ),
    (
        "purge",
        "Stop everything and delete the state directory",
        "Usage: sysg purge",
    ),
    (
        "completions",
        "Print a shell completion script",
        "Usage: sysg completions bash|zsh|fish\n\n\
         Writes a completion script for the shell to stdout, for example:\n  \
         sysg completions bash > ~/.local/share/bash-completion/completions/sysg\n  \
         sysg completions zsh > ~/.zfunc/_sysg\n  \
         sysg completions fish > ~/.config/fish/completions/sysg.fish",
    ),
    ("help", "Show help for a command", "Usage: sysg help [COMMAND]"),
];

/// One option of a command, as `sysg help`, the completions and the man page show it.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    /// Placeholder of the value (`FILE`, `NAME`, ...); `None` for a switch.
    pub value: Option<&'static str>,
    /// The complete set of values, when there is one (offered by completions).
    pub choices: &'static [&'static str],
    pub help: &'static str,
}

const fn flag(
    short: Option<char>,
    long: &'static str,
    value: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        short,
        long,
        value,
        choices: &[],
        help,
    }
}

pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
pub const LOG_KINDS: &[&str] = &["stdout", "stderr", "all"];

/// Options accepted before or after any command.
pub const GLOBAL_FLAGS: &[Flag] = &[
    Flag {
        short: None,
        long: "log-level",
        value: Some("LEVEL"),
        choices: LOG_LEVELS,
        help: "trace, debug, info, warn, error, off, or 0-5 (default info)",
    },
    flag(Some('h'), "help", None, "show help"),
    flag(Some('V'), "version", None, "show version"),
];

const CONFIG: Flag = flag(
    Some('c'),
    "config",
    Some("FILE"),
    "config file (default: ./systemg.yaml, then ./sysg.yaml)",
);

/// The options of each command in [`COMMANDS`] (commands without options are absent).
pub const FLAGS: &[(&str, &[Flag])] = &[
    (
        "start",
        &[
            CONFIG,
            flag(
                Some('d'),
                "daemonize",
                None,
                "detach; return once the supervisor is up",
            ),
            flag(
                Some('s'),
                "service",
                Some("NAME"),
                "start one service of the running supervisor",
            ),
        ],
    ),
    (
        "stop",
        &[flag(
            Some('s'),
            "service",
            Some("NAME"),
            "stop only this service",
        )],
    ),
    (
        "restart",
        &[
            flag(
                Some('s'),
                "service",
                Some("NAME"),
                "restart only this service",
            ),
            flag(Some('c'), "config", Some("FILE"), "config file to load"),
            flag(
                Some('d'),
                "daemonize",
                None,
                "with no supervisor running, start one detached",
            ),
        ],
    ),
    (
        "status",
        &[
            flag(Some('s'), "service", Some("NAME"), "only this service"),
            flag(None, "json", None, "one JSON document"),
        ],
    ),
    (
        "logs",
        &[
            flag(
                Some('s'),
                "service",
                Some("NAME"),
                "only this service (same as NAME)",
            ),
            flag(Some('n'), "lines", Some("N"), "lines per file (default 50)"),
            flag(
                Some('f'),
                "follow",
                None,
                "keep printing new lines until interrupted",
            ),
            Flag {
                short: Some('k'),
                long: "kind",
                value: Some("KIND"),
                choices: LOG_KINDS,
                help: "stdout, stderr or all (default all)",
            },
        ],
    ),
    ("validate", &[CONFIG]),
];

/// The options of `command` (empty for commands without any).
pub fn flags(command: &str) -> &'static [Flag] {
    FLAGS
        .iter()
        .find(|(n, _)| *n == command)
        .map_or(&[], |(_, f)| *f)
}

/// `-c, --config FILE`, or `    --json` for a flag without a short form.
pub fn flag_synopsis(f: &Flag) -> String {
    let short = match f.short {
        Some(c) => format!("-{c}, "),
        None => "    ".to_string(),
    };
    match f.value {
        Some(v) => format!("{short}--{} {v}", f.long),
        None => format!("{short}--{}", f.long),
    }
}

fn options_text(title: &str, flags: &[Flag]) -> String {
    let width = flags
        .iter()
        .map(|f| flag_synopsis(f).len())
        .max()
        .unwrap_or(0);
    let mut s = format!("{title}:\n");
    for f in flags {
        s.push_str(&format!("  {:<width$}  {}\n", flag_synopsis(f), f.help));
    }
    s
}

pub fn main_help() -> String {
    let mut s = String::from(
        "sysg - a small process supervisor\n\nUsage: sysg [--log-level LEVEL] <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    for (name, summary, _) in COMMANDS {
        s.push_str(&format!("  {name:<13}{summary}\n"));
    }
    s.push('\n');
    s.push_str(&options_text("Global options", GLOBAL_FLAGS));
    s.push_str(
        "\nState lives in $SYSG_STATE_DIR, else $XDG_DATA_HOME/systemg, else ~/.local/share/systemg.\n",
    );
    s
}

fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(n, _, _)| *n == name)
}

/// The full help of one command: usage, description and its options.
pub fn command_help(name: &str) -> Option<String> {
    let (_, _, head) = COMMANDS.iter().find(|(n, _, _)| *n == name)?;
    let flags = flags(name);
    if flags.is_empty() {
        return Some(head.to_string());
    }
    Some(format!(
        "{head}\n\n{}",
        options_text("Options", flags).trim_end()
    ))
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
                if name != "__supervise" && !is_command(&name) {
                    return Err(Error::Usage(format!("unknown command '{name}'")));
                }
                cmd_name = Some(name);
            }
            Value(v)
                if matches!(cmd, Some("logs" | "help" | "completions"))
                    && positional.is_empty() =>
            {
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
            Some("completions") => {
                let name = positional.pop().ok_or_else(|| {
                    Error::Usage("completions: which shell? (bash, zsh, fish)".into())
                })?;
                let shell = Shell::parse(&name).ok_or_else(|| {
                    Error::Usage(format!(
                        "completions: unknown shell '{name}' (bash, zsh, fish)"
                    ))
                })?;
                Command::Completions { shell }
            }
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

    #[test]
    fn completions_take_a_known_shell() {
        assert_eq!(
            parse_str("completions zsh").unwrap().command,
            Command::Completions { shell: Shell::Zsh }
        );
        let e = parse_str("completions nope").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("nope"), "{e}");
        assert_eq!(parse_str("completions").unwrap_err().exit_code(), 2);
    }

    /// The flag table and the parser agree: every listed flag, short and long, parses for
    /// its command, and the help of the command shows it.
    #[test]
    fn flag_table_matches_parser_and_help() {
        for (command, flags) in FLAGS {
            assert!(is_command(command), "{command}");
            let help = command_help(command).unwrap();
            for f in *flags {
                assert!(help.contains(&flag_synopsis(f)), "{command}: {help}");
                let value = f.choices.first().copied().unwrap_or("1");
                let mut spellings = vec![format!("--{}", f.long)];
                spellings.extend(f.short.map(|c| format!("-{c}")));
                for spelling in spellings {
                    let mut args = vec![command.to_string(), spelling.clone()];
                    if f.value.is_some() {
                        args.push(value.to_string());
                    }
                    let parsed = parse(args.into_iter().map(OsString::from));
                    assert!(parsed.is_ok(), "{command} {spelling}: {parsed:?}");
                }
            }
        }
        for f in GLOBAL_FLAGS {
            assert!(main_help().contains(&flag_synopsis(f)), "{}", f.long);
        }
    }
}
