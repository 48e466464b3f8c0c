//! The commands and flags of `sysg`, defined once: the same table renders `sysg help`,
//! generates the shell completions (`completions.rs`) and is checked against the man page
//! (`tests/man_page.rs`). The parser in `cli.rs` must accept exactly what is listed here.

/// The shells `sysg completions` writes a script for.
pub const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// Every user-facing command: name, one-line summary, and the head of its help text
/// (usage line and description). The options part of `sysg help <cmd>` is rendered from
/// [`FLAGS`], which the shell completions and the man-page test read as well.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "start",
        "Start the supervisor and its services",
        "Usage: sysg start [-c FILE] [-d] [-s NAME] [--wait [--timeout DUR]]\n\n\
         With no supervisor running: validate the config and start one, in the foreground\n\
         (service output echoed as 'name | line'; Ctrl-C stops everything) or detached.\n\
         With a supervisor running and -s: start that service.\n\
         With --wait (detached, or with -s): return once every service (cron jobs\n\
         aside) is up, healthy where it has a check, completed or skipped: exit 0. Exit\n\
         1 as soon as one fails (naming it, why, and its last 10 log lines) or once\n\
         the --timeout is over (default 60s; a timeout implies --wait).",
    ),
    (
        "stop",
        "Stop one service, or every service and the supervisor",
        "Usage: sysg stop [-s NAME [--with-dependents]]\n\n\
         Without -s: stop every service, shut the supervisor down and wait for it to exit.\n\
         With -s: that service stays stopped until started again; --with-dependents also\n\
         stops the running services that depend on it.\n\
         With no supervisor: stop what a crashed one left running. Gives up with exit 75\n\
         after the stop_timeouts of the dependency levels added up (plus the longest\n\
         hook timeout without -s) + 10 s.",
    ),
    (
        "restart",
        "Restart one service, or reload the config and restart all",
        "Usage: sysg restart [-s NAME] [-c FILE] [-d] [--dry-run] [--all] [--wait [--timeout DUR]]\n\n\
         Without -s: re-read the config (-c, or the one in use) and restart only what\n\
         changed: one line a service (unchanged, changed (keys) -> restarted or applied\n\
         in place, added -> started, removed -> stopped). --dry-run: print that plan,\n\
         change nothing. --all (or --force): stop all, start all in order.\n\
         A config with errors is refused and nothing is touched. The reply waits until\n\
         what the reload started is up (at most 60 s); exit 1 names what did not come up.\n\
         Gives up with exit 75 after the stop_timeouts of the dependency levels added up\n\
         + 10 s (+ 60 s for a reload). With -s and --wait: then wait until it is up,\n\
         as 'start --wait' does.",
    ),
    (
        "status",
        "Show the state of every service",
        "Usage: sysg status [-s NAME] [--json | --watch]\n\n\
         Without a running supervisor, shows the last known state and exits 3.\n\
         With --watch on a terminal: a full-screen view redrawn on every event and once\n\
         a second (q or Ctrl-C quits); not on a terminal, the status again after each\n\
         event. Ends when the supervisor exits.",
    ),
    (
        "logs",
        "Show service output",
        "Usage: sysg logs [NAME] [-s NAME] [-n N] [-f] [-k stdout|stderr|all] [--grep TEXT]\n                 \
         [--since WHEN] [--until WHEN] [--timestamps|--no-timestamps]\n       \
         sysg logs --supervisor [-n N] [-f] [--grep TEXT]\n       \
         sysg logs --rotate [NAME]\n\n\
         With -f every line, the last N and those that follow, is prefixed 'name | '\n\
         ('name (stderr) | ' for stderr), every service interleaved as lines arrive.\n\
         The supervisor option shows supervisor.log: lifecycle events, hook output.\n\
         Lines stored with their time (logs.timestamps) can be picked by time: WHEN is\n\
         a duration ago (10m) or a time (2026-12-02T18:00:00Z); with a time window, or\n\
         asked for timestamps, every service's lines come in one list in time order.",
    ),
    (
        "events",
        "Print lifecycle events as they happen",
        "Usage: sysg events [--json]\n\n\
         Subscribes to the running supervisor and prints each event as it happens, one\n\
         line each (time in UTC): state changes ('api starting -> up (pid 42)', exits\n\
         with their code, restarts), failed health probes, cron fires and skips. Ends\n\
         when the supervisor exits. With --json: one JSON object a line.",
    ),
    (
        "inspect",
        "Show everything about one service",
        "Usage: sysg inspect NAME [--json] [--env]\n\n\
         What runs (the command, the program and arguments, working dir, user), its\n\
         environment keys (values with --env), restart policy, the last 10 exits and\n\
         what the policy did about each, the last probe results, the last run of each\n\
         hook, its log files and their sizes, and the next cron run.",
    ),
    (
        "validate",
        "Check a config file",
        "Usage: sysg validate [-c FILE]\n\nPrints 'OK: N services (M cron)' or every error (exit 2).",
    ),
    (
        "upgrade",
        "Re-execute the supervisor from its binary, keeping every service",
        "Usage: sysg upgrade [--binary PATH]\n\n\
         The running supervisor execs the sysg binary at its path (or PATH) as the same\n\
         process: services keep running as its children, output pipes, the control\n\
         socket, timers and state are handed over, a stop under way too. Refused, with\n\
         the old supervisor still running, while anything is starting or rolling, when\n\
         the config file no longer matches what runs, or when the new binary cannot\n\
         take over.",
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

const WAIT: Flag = flag(
    None,
    "wait",
    None,
    "return once the services are up (exit 1 if one fails)",
);
const TIMEOUT: Flag = flag(
    None,
    "timeout",
    Some("DUR"),
    "how long --wait waits (default 60s; implies --wait)",
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
            WAIT,
            TIMEOUT,
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
            WAIT,
            TIMEOUT,
        ],
    ),
    (
        "status",
        &[
            flag(Some('s'), "service", Some("NAME"), "only this service"),
            flag(None, "json", None, "one JSON document"),
            flag(
                Some('w'),
                "watch",
                None,
                "a live view, redrawn on every event; q quits",
            ),
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
            flag(
                None,
                "supervisor",
                None,
                "supervisor.log: lifecycle events and hook output",
            ),
            flag(
                None,
                "grep",
                Some("TEXT"),
                "only lines holding TEXT (the last N of them)",
            ),
            flag(None, "since", Some("WHEN"), "only lines stored since WHEN"),
            flag(None, "until", Some("WHEN"), "only lines stored until WHEN"),
            flag(
                None,
                "timestamps",
                None,
                "all services in one list in time order",
            ),
            flag(None, "no-timestamps", None, "hide stored timestamps"),
            flag(
                None,
                "rotate",
                None,
                "rotate the log files now (at a line boundary)",
            ),
        ],
    ),
    (
        "events",
        &[flag(None, "json", None, "one JSON object a line")],
    ),
    (
        "inspect",
        &[
            flag(
                Some('s'),
                "service",
                Some("NAME"),
                "the service (same as NAME)",
            ),
            flag(None, "json", None, "one JSON document"),
            flag(None, "env", None, "show environment values too"),
        ],
    ),
    ("validate", &[CONFIG]),
    (
        "upgrade",
        &[flag(
            None,
            "binary",
            Some("PATH"),
            "the sysg binary to run (default: the one at the supervisor's path)",
        )],
    ),
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
    s.push_str(
        "Exit codes: 0 ok, 1 error, 2 bad usage or config, 3 no supervisor (status),\n75 try again: the supervisor did not answer or finish in time, or is busy\n(see 'sysg help stop').\n",
    );
    s
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
