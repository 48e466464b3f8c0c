//! `sysg`: a small process supervisor. Parses the command line, runs one command, prints
//! at most one error, and exits with the code the error maps to.

mod cgroup;
mod cli;
mod client;
mod commands;
mod completions;
mod config;
mod error;
mod ipc;
mod logger;
mod paths;
mod procfs;
mod state;
mod state_dir;
mod supervisor;
mod sys;
mod terminal;
mod tz;

use cli::Command;
use error::{Error, Result};

fn run() -> Result<i32> {
    let cli = cli::parse(std::env::args_os().skip(1))?;
    let level = cli.log_level.unwrap_or(logger::Level::Info);
    logger::set_level(level);
    match cli.command {
        Command::Version => {
            println!("sysg {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Help { topic: None } => {
            print!("{}", cli::main_help());
            Ok(0)
        }
        Command::Help { topic: Some(t) } => match cli::command_help(&t) {
            Some(h) => {
                println!("{h}");
                Ok(0)
            }
            None => Err(Error::Usage(format!("no help for unknown command '{t}'"))),
        },
        Command::Start {
            config,
            daemonize,
            service,
            wait,
        } => commands::start::start(
            config.as_deref(),
            daemonize,
            service.as_deref(),
            wait,
            level,
        ),
        Command::Restart {
            config,
            daemonize,
            service,
            dry_run,
            all,
            wait,
        } => commands::start::restart(
            config.as_deref(),
            daemonize,
            service.as_deref(),
            commands::start::Reload { dry_run, all, wait },
            level,
        ),
        Command::Supervise { config } => commands::start::supervise(config),
        Command::Stop {
            service,
            with_dependents,
        } => commands::manage::stop(service.as_deref(), with_dependents),
        Command::Status {
            service,
            watch: true,
            ..
        } => commands::watch::watch(service.as_deref()),
        Command::Status { service, json, .. } => commands::status::status(service.as_deref(), json),
        Command::Logs {
            service,
            rotate: true,
            ..
        } => commands::manage::rotate(service.as_deref()),
        Command::Logs {
            lines,
            follow,
            supervisor: true,
            view,
            ..
        } => commands::manage::supervisor_log(lines, follow, &view),
        Command::Logs {
            service,
            lines,
            follow,
            kind,
            supervisor: false,
            view,
            rotate: false,
        } => commands::manage::logs(service.as_deref(), lines, follow, kind, &view),
        Command::Validate { config } => commands::manage::validate(config.as_deref()),
        Command::Purge => commands::manage::purge(),
        Command::Events { json } => commands::events::events(json),
        Command::Inspect { service, json, env } => commands::inspect::inspect(&service, json, env),
        Command::Upgrade { binary } => commands::manage::upgrade(binary.as_deref()),
        Command::Resume { fd, fallback } => supervisor::resume(fd, fallback),
        Command::HandoverVersion => {
            println!("sysg-handover {}", supervisor::HANDOVER_VERSION);
            Ok(0)
        }
        Command::Completions { shell } => {
            let script = completions::script(shell);
            std::io::Write::write_all(&mut std::io::stdout(), script.as_bytes())
                .map_err(|e| Error::io("writing the completion script", e))?;
            Ok(0)
        }
    }
}

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            // A foreground supervisor's queued terminal lines come before its last word.
            terminal::flush(std::time::Duration::from_secs(2));
            match &e {
                Error::Config(_) => eprintln!("{e}"),
                _ => eprintln!("sysg: {e}"),
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}
