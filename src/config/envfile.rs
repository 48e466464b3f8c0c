//! `KEY=VALUE` env files and the merged environment of a service.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::{EnvSource, Service};

/// Env files are re-read at every spawn, on the supervisor's loop thread: only regular
/// files are read (a FIFO would block the loop), and a cap keeps a wrong path (say, a log
/// file) from being slurped whole.
const MAX_ENV_FILE: u64 = 1 << 20;

/// Reads a dotenv-style file: one `KEY=VALUE` per line, blank lines and `#` comment lines
/// skipped, an optional `export ` prefix, spaces around key and value trimmed, and one pair
/// of matching single or double quotes around the value stripped. Everything else in the
/// value is kept verbatim (no escapes, no `${VAR}`, `#` after a value is part of it).
/// Errors read `<path>: <io error>` or `<path>:<line>: <problem>`.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let shown = path.display();
    let mut bytes = Vec::new();
    super::open_regular(path)
        .and_then(|f| f.take(MAX_ENV_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() as u64 > MAX_ENV_FILE {
        return Err(format!("{shown}: larger than {} KiB", MAX_ENV_FILE / 1024));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not valid UTF-8"))?;
    parse_env_text(&text).map_err(|(line, why)| format!("{shown}:{line}: {why}"))
}

fn parse_env_text(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut vars = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err((index + 1, "expected KEY=VALUE".to_string()));
        };
        let key = key.trim();
        check_env_key(key).map_err(|why| (index + 1, why))?;
        let value = unquote(value.trim());
        if value.contains('\0') {
            return Err((index + 1, "value contains a NUL byte".to_string()));
        }
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// A name `execve` can carry: not empty, no `=`, no whitespace, no NUL.
pub(crate) fn check_env_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty variable name".to_string());
    }
    if key.contains(|c: char| c == '=' || c == '\0' || c.is_whitespace()) {
        return Err(format!("invalid variable name \"{key}\""));
    }
    Ok(())
}

impl EnvSource {
    /// Whether this layer can be read now (a file may have gone since the config loaded).
    pub fn readable(&self) -> bool {
        match self {
            EnvSource::File(path) => read_env_file(path).is_ok(),
            EnvSource::Vars(_) => true,
        }
    }
}

impl Service {
    /// The service's own variables (not including the supervisor's environment): every
    /// layer of `self.env` applied in order, files read now, later keys overriding earlier
    /// ones. Keys keep the position of their first occurrence.
    pub fn environment(&self) -> Result<Vec<(String, String)>, String> {
        let mut merged: Vec<(String, String)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for layer in &self.env {
            let vars = match layer {
                EnvSource::File(path) => read_env_file(path)?,
                EnvSource::Vars(vars) => vars.to_vec(),
            };
            for (key, value) in vars {
                match index.get(&key) {
                    Some(&at) => merged[at].1 = value,
                    None => {
                        index.insert(key.clone(), merged.len());
                        merged.push((key, value));
                    }
                }
            }
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_text_comments_export_and_quotes() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not comment\"\n\
                    D='single'\nE=\nF=a=b\n  # indented comment\nG=\"unbalanced'\nH=\"\"\r\n";
        let got = parse_env_text(text).unwrap();
        let want = pairs(&[
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not comment"),
            ("D", "single"),
            ("E", ""),
            ("F", "a=b"),
            ("G", "\"unbalanced'"),
            ("H", ""),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn env_text_malformed_lines_name_the_line() {
        assert_eq!(parse_env_text("A=1\nnonsense\n").unwrap_err().0, 2);
        assert_eq!(parse_env_text("=1\n").unwrap_err().0, 1);
        assert_eq!(parse_env_text("A B=1\n").unwrap_err().0, 1);
        assert_eq!(parse_env_text("export\n").unwrap_err().0, 1);
    }

    #[test]
    fn env_file_errors_carry_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.env");
        std::fs::write(&path, "OK=1\n\nbroken line\n").unwrap();
        let err = read_env_file(&path).unwrap_err();
        assert_eq!(err, format!("{}:3: expected KEY=VALUE", path.display()));
        let missing = dir.path().join("missing.env");
        assert!(read_env_file(&missing)
            .unwrap_err()
            .starts_with(&format!("{}: ", missing.display())));
    }

    #[test]
    fn environment_layers_later_override_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.env");
        let own = dir.path().join("own.env");
        std::fs::write(&root, "A=root-file\nB=root-file\nC=root-file\n").unwrap();
        std::fs::write(&own, "C=own-file\n").unwrap();
        let mut service = super::super::build::defaults("api", dir.path());
        service.env = vec![
            EnvSource::File(root),
            EnvSource::Vars(pairs(&[("B", "root-vars"), ("D", "root-vars")]).into()),
            EnvSource::File(own.clone()),
            EnvSource::Vars(pairs(&[("D", "own-vars")]).into()),
        ];
        let want = pairs(&[
            ("A", "root-file"),
            ("B", "root-vars"),
            ("C", "own-file"),
            ("D", "own-vars"),
        ]);
        assert_eq!(service.environment().unwrap(), want);
        std::fs::remove_file(&own).unwrap();
        assert!(service.environment().unwrap_err().contains("own.env"));
    }
}
