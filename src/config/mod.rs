mod types;
pub use types::*;

mod build;
mod envfile;
mod expand;
mod graph;
mod locate;
mod schedule;
mod units;

// The module's public API; the binary does not call every item of it (yet), and an unused
// re-export must not fail `clippy -D warnings`.
#[allow(unused_imports)]
pub use envfile::read_env_file;
#[allow(unused_imports)]
pub use units::{parse_duration, parse_signal, parse_size, signal_name, valid_service_name};

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_yaml::Value;

use crate::error::Error;
use locate::{display_path, Locator, Problem};

/// A config file larger than this is surely a wrong path; refuse it instead of reading it.
const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// Reads, parses and validates the config at `path`.
///
/// Every problem is reported, sorted by position, as `<path>:<line>:<col>: <key.path>:
/// <message>` inside [`Error::Config`]; an unreadable file gives the single line
/// `<path>: cannot read config: <io error>`.
///
/// Decisions the spec leaves open:
/// - `version` may be the string `"1"` or the number `1`.
/// - `${VAR}` looks in the root `env.vars` first, then the supervisor's environment; a root
///   var may use the root vars defined before it. Env files never feed `${VAR}`.
/// - A key with an empty value (`skip:`) counts as absent, except `command:` (empty).
/// - YAML merge keys (`<<: *defaults`) are applied before validation.
/// - `logs` at the top level sets the default for every service; a service's `logs` keys
///   override it one by one.
pub fn load(path: &Path) -> Result<Config, Error> {
    load_from(path, File::open(path))
}

/// Like [`load`], for the supervisor, which reads the config on its loop thread (on a
/// reload): a FIFO or device at `path` is refused at once instead of blocking the loop.
pub fn load_regular(path: &Path) -> Result<Config, Error> {
    load_from(path, open_regular(path))
}

/// Opens `path` for reading without waiting for a FIFO's writer, and refuses anything but
/// a regular file (symlinks are followed).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

fn load_from(path: &Path, opened: io::Result<File>) -> Result<Config, Error> {
    let shown = path.display().to_string();
    let unreadable =
        |e: io::Error| Error::Config(vec![format!("{shown}: cannot read config: {e}")]);
    let text = opened.and_then(read_capped).map_err(unreadable)?;
    let absolute = path.canonicalize().map_err(unreadable)?;
    // A canonical path of a readable file always has a parent; `/` is only a fallback.
    let dir = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();

    let mut root: Value = match serde_yaml::from_str(&text) {
        Ok(root) => root,
        Err(e) => return Err(Error::Config(vec![yaml_error(&shown, &e)])),
    };
    if let Err(e) = root.apply_merge() {
        return Err(Error::Config(vec![yaml_error(&shown, &e)]));
    }

    let (services, problems) = build::build(&root, &dir, &build::process_env);
    if problems.is_empty() {
        return Ok(Config {
            path: absolute,
            services,
        });
    }
    let locator = Locator::new(&text);
    let mut located: Vec<((usize, usize), Problem)> = problems
        .into_iter()
        .map(|p| (locator.locate(&p.path), p))
        .collect();
    located.sort_by_key(|(pos, _)| *pos);
    let lines = located
        .into_iter()
        .map(|((line, col), p)| match p.path.is_empty() {
            true => format!("{shown}:{line}:{col}: {}", p.message),
            false => format!(
                "{shown}:{line}:{col}: {}: {}",
                display_path(&p.path),
                p.message
            ),
        })
        .collect();
    Err(Error::Config(lines))
}

fn read_capped(file: File) -> io::Result<String> {
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_SIZE {
        let why = format!("larger than {} MiB", MAX_CONFIG_SIZE >> 20);
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
}

/// `path:line:col: invalid YAML: <what>`, without the library's own "at line N column M".
fn yaml_error(shown: &str, e: &serde_yaml::Error) -> String {
    let mut message = e.to_string();
    let (line, col) = match e.location() {
        Some(loc) => {
            let own = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(at) = message.find(&own) {
                message.replace_range(at..at + own.len(), "");
            }
            (loc.line(), loc.column())
        }
        None => (1, 1),
    };
    format!("{shown}:{line}:{col}: invalid YAML: {message}")
}

#[cfg(test)]
mod tests;
