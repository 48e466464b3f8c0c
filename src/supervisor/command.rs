//! PURE (but for the PATH lookup): whether a service's command needs a shell. A command
//! with no shell syntax is split on whitespace and executed itself, so the service is one
//! process, its Main PID is the program, and signals reach it with no shell between.

use std::path::{Path, PathBuf};

/// Bytes that make a command shell syntax: quotes, expansions, operators, redirections,
/// grouping, globs, comments, home and history, escapes.
const SHELL_SYNTAX: &[u8] = b"'\"`$|&;<>()*?[]{}~#!\\\n\r";

/// The words of `command` when it can be executed without `sh -c`: no shell syntax, no
/// `NAME=value` before the program; a leading `exec` is the shell's and is dropped.
pub fn plain_words(command: &str) -> Option<Vec<&str>> {
    if command.bytes().any(|b| SHELL_SYNTAX.contains(&b)) {
        return None;
    }
    let mut words: Vec<&str> = command.split_ascii_whitespace().collect();
    if words.first() == Some(&"exec") {
        words.remove(0);
    }
    let first = words.first()?;
    if first.contains('=') {
        return None;
    }
    Some(words)
}

/// Where `program` is, as `execvp` would find it with `path` (the service's `PATH`),
/// relative entries being relative to `dir`: `None` if it is not an executable file
/// there (the shell then runs it, and says "not found" as it always has).
pub fn find_program(program: &str, path: Option<&str>, dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(&dir.join(program)).then(|| PathBuf::from(program));
    }
    let path = path.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path.split(':').find_map(|entry| {
        let base = if entry.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(entry)
        };
        let candidate = base.join(program);
        is_executable(&candidate).then_some(candidate)
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_are_split_into_words() {
        assert_eq!(plain_words("sleep 100"), Some(vec!["sleep", "100"]));
        assert_eq!(
            plain_words("  python3   app.py "),
            Some(vec!["python3", "app.py"])
        );
        assert_eq!(plain_words("exec sleep 5"), Some(vec!["sleep", "5"]));
        assert_eq!(
            plain_words("sh echo_lines.sh"),
            Some(vec!["sh", "echo_lines.sh"])
        );
        assert_eq!(
            plain_words("nginx -g daemon-off -c /etc/nginx.conf"),
            Some(vec!["nginx", "-g", "daemon-off", "-c", "/etc/nginx.conf"])
        );
        assert_eq!(
            plain_words("./run --port=80"),
            Some(vec!["./run", "--port=80"])
        );
    }

    #[test]
    fn anything_the_shell_would_interpret_goes_to_the_shell() {
        for cmd in [
            "echo 'a b'",
            "echo \"$HOME\"",
            "echo $HOME",
            "echo `date`",
            "a | b",
            "a && b",
            "a; b",
            "a > out",
            "a < in",
            "(a)",
            "ls *.txt",
            "ls file?",
            "ls [ab]",
            "cat ~/x",
            "run # comment",
            "echo a\\ b",
            "a\nb",
            "FOO=bar run",
            "exec FOO=bar run",
            "! false",
            "echo {a,b}",
            "",
            "   ",
            "exec",
        ] {
            assert_eq!(plain_words(cmd), None, "{cmd:?}");
        }
    }

    #[test]
    fn programs_are_found_on_the_path_as_execvp_would() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let data = bin.join("data");
        std::fs::write(&data, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(
            find_program("tool", Some(&path), dir.path()),
            Some(tool.clone())
        );
        assert_eq!(
            find_program("data", Some(&path), dir.path()),
            None,
            "not executable"
        );
        assert_eq!(find_program("nope", Some(&path), dir.path()), None);
        // A relative entry is relative to the working dir.
        assert_eq!(find_program("tool", Some("bin"), dir.path()), Some(tool));
        // A path is taken as it is, relative to the working dir, if it can run.
        assert_eq!(
            find_program("./bin/tool", None, dir.path()),
            Some(PathBuf::from("./bin/tool"))
        );
        assert_eq!(find_program("./bin/data", None, dir.path()), None);
    }
}
