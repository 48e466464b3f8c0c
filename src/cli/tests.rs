//! The parser against the table: every form the help shows parses, anything else is a
//! usage error that names the argument.

use super::table::{flag_synopsis, FLAGS};
use super::*;

fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(n, _, _)| *n == name)
}

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
            service: None,
            wait: None,
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
            json: true,
            watch: false,
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
            kind: LogKind::Stderr,
            supervisor: false,
            view: Default::default(),
            rotate: false,
        }
    );
    let cli = parse_str("logs --supervisor -n 3").unwrap();
    assert!(matches!(
        cli.command,
        Command::Logs {
            supervisor: true,
            lines: 3,
            service: None,
            ..
        }
    ));
    assert!(parse_str("logs api --supervisor").is_err());
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
                if *command == "inspect" && f.long != "service" {
                    // It needs the service it is about.
                    args.insert(1, "api".into());
                }
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

/// The other direction: a command refuses every flag its table entry does not list,
/// and every command of the table has a parser.
#[test]
fn commands_refuse_flags_they_do_not_list() {
    for (command, _, _) in COMMANDS {
        let own = flags(command);
        let others = FLAGS.iter().flat_map(|(_, f)| f.iter());
        for f in others.filter(|f| own.iter().all(|o| o.long != f.long)) {
            let args = [command.to_string(), format!("--{}", f.long), "x".into()];
            let e = parse(args.into_iter().map(OsString::from)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{command} --{}", f.long);
            assert!(e.to_string().contains(&format!("for '{command}'")), "{e}");
        }
        let e = parse_str(&format!("{command} --bogus")).unwrap_err();
        assert!(!e.to_string().contains("unknown command"), "{command}: {e}");
    }
}
