//! `sysg logs`: the last lines of each service's log files, then optionally follow them.
//! Reads the files directly, so it works with or without a supervisor. [`snapshot`] prints
//! what the files hold now (reading back into rotated files through [`rotated`]), then
//! [`follow`] streams what is appended after.

mod follow;
mod rotated;
mod snapshot;
#[cfg(test)]
mod tests;

use crate::error::Result;
use crate::paths::Stream;
use std::io::{self, Write};
use std::path::Path;

/// Which lines are shown and how: prefixed with their service (`name | `, the form `-f`
/// uses for the snapshot and what follows alike), only those holding `grep`, only those
/// stamped (`logs.timestamps`) within `since`..`until`, their stamps hidden (`strip`),
/// and (`merged`) every selected file's in one list in time order.
#[derive(Clone, Debug, Default)]
pub struct Look {
    pub prefixed: bool,
    pub grep: Option<Vec<u8>>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub strip: bool,
    pub merged: bool,
}

/// The `Look` the command line asks for. `--since 10m` is ten minutes ago; a time is
/// RFC 3339 (`2026-12-02T18:00:00Z`) or `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn look_of(view: &crate::cli::LogView) -> Result<Look> {
    let when =
        |flag: &str, text: &Option<String>| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
            let Some(text) = text else { return Ok(None) };
            parse_when(text)
                .map(Some)
                .map_err(|e| crate::error::Error::Usage(format!("{flag}: {e}")))
        };
    Ok(Look {
        prefixed: false,
        grep: view.grep.as_ref().map(|g| g.as_bytes().to_vec()),
        since: when("--since", &view.since)?,
        until: when("--until", &view.until)?,
        strip: view.timestamps == Some(false),
        merged: view.timestamps == Some(true) || view.since.is_some() || view.until.is_some(),
    })
}

fn parse_when(text: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = crate::config::parse_duration(text) {
        return chrono::Duration::from_std(d)
            .map(|d| chrono::Utc::now() - d)
            .map_err(|e| e.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| {
            format!(
                "'{text}' is neither a duration (10m) nor a time (2026-12-02T18:00:00Z, \
                 2026-12-02 18:00:00 UTC)"
            )
        })
}

/// The length of a stored line's stamp: `2026-12-02T18:00:01.234Z `.
const STAMP_LEN: usize = 25;

/// The receive time a line was stored with, if it was.
pub fn stamp_of(line: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let head = line.get(..STAMP_LEN)?;
    if head[STAMP_LEN - 1] != b' ' {
        return None;
    }
    let text = std::str::from_utf8(&head[..STAMP_LEN - 1]).ok()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl Look {
    fn matches(&self, line: &[u8]) -> bool {
        let text = self
            .grep
            .as_ref()
            .is_none_or(|g| line.windows(g.len().max(1)).any(|w| w == g.as_slice()));
        if !text {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        stamp_of(line)
            .is_some_and(|t| self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u))
    }

    /// `line` as printed: without its stamp when they are hidden.
    fn shown<'a>(&self, line: &'a str) -> &'a str {
        match (self.strip, stamp_of(line.as_bytes())) {
            (true, Some(_)) => &line[STAMP_LEN..],
            _ => line,
        }
    }

    /// Whether every line must be read (a filter may skip any of them).
    fn filters(&self) -> bool {
        self.grep.is_some() || self.since.is_some() || self.until.is_some() || self.merged
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Stdout,
    Stderr,
    All,
}

impl Kind {
    fn streams(self) -> &'static [Stream] {
        match self {
            Kind::Stdout => &[Stream::Stdout],
            Kind::Stderr => &[Stream::Stderr],
            Kind::All => &[Stream::Stdout, Stream::Stderr],
        }
    }
}

/// Prints each service's header and the last `lines` lines of its selected files (across
/// rotated files, see [`snapshot`]). With `follow`, then streams new lines, asking
/// `keep_following` at every poll tick (250 ms): once it returns false, what the files
/// still hold is printed and `show` returns `Ok`. A caller that never wants to stop passes
/// `&|| true` and ends the process itself. A write error (reader gone, e.g. `| head`)
/// ends it quietly with `Ok`.
#[allow(clippy::too_many_arguments)]
pub fn show(
    log_dir: &Path,
    services: &[(String, bool)],
    lines: usize,
    kind: Kind,
    follow: bool,
    mut look: Look,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    look.prefixed = follow || look.merged;
    let follow = follow.then_some(keep_following);
    // Only writes to `out` can fail here (unreadable logs are reported inline); a failed
    // write means nobody is reading any more, which is not an error worth a message.
    let _ = show_io(log_dir, services, lines, kind, &look, follow, out);
    Ok(())
}

/// Refuses, naming the path, a logs dir or a selected current log file that is a symlink
/// (or, for a file, not a regular file): `logs` never reads through one. Missing ones are
/// fine, they just have no lines yet.
pub fn refuse_links(log_dir: &Path, services: &[(String, bool)], kind: Kind) -> Result<()> {
    use crate::error::Error;
    let dir = match crate::state_dir::OpenDir::open(log_dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io_path("cannot read", log_dir, e)),
    };
    for (name, _) in services {
        for stream in kind.streams() {
            let path = crate::paths::service_log(log_dir, name, *stream);
            let Some(file) = path.file_name() else {
                continue;
            };
            match dir.entry(file) {
                Ok(e) if e.is_symlink() => {
                    return Err(Error::msg(format!(
                        "{}: is a symbolic link; refusing to read through it",
                        path.display()
                    )))
                }
                Ok(e) if !e.is_file() => {
                    return Err(Error::msg(format!(
                        "{}: not a regular file; refusing to read it",
                        path.display()
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The last `n` lines `name` wrote, its stdout's then its stderr's (marked), for a
/// report of its failure.
pub fn last_lines(log_dir: &Path, name: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for stream in [Stream::Stdout, Stream::Stderr] {
        let path = crate::paths::service_log(log_dir, name, stream);
        let opened = crate::state_dir::open_read(&path).and_then(|f| {
            let meta = f.metadata()?;
            Ok((f, meta))
        });
        let current = opened.as_ref().ok().map(|(f, m)| (f, m));
        let lines: Vec<String> = rotated::tail_across_rotation(&path, current, n)
            .into_iter()
            .flat_map(|(_, body)| body)
            .collect();
        out.extend(lines.into_iter().map(|l: String| {
            let l = crate::commands::status_view::escape_control(&l).into_owned();
            match stream {
                Stream::Stdout => l,
                Stream::Stderr => format!("(stderr) {l}"),
            }
        }));
    }
    let skip = out.len().saturating_sub(n);
    out.split_off(skip)
}

/// `sysg logs --supervisor`: the last `lines` lines of supervisor.log (hook output,
/// lifecycle events), across its rotated files, then with `follow` what is appended.
pub fn show_supervisor(
    path: &Path,
    lines: usize,
    follow: bool,
    mut look: Look,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    look.prefixed = false;
    look.merged = false;
    let _ = supervisor_io(path, lines, &look, follow.then_some(keep_following), out);
    Ok(())
}

fn supervisor_io(
    path: &Path,
    lines: usize,
    look: &Look,
    follow: Option<&dyn Fn() -> bool>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut tail = follow::Tail::new("supervisor", Stream::Stdout, path.clone(), look.clone());
    let want = if look.filters() { usize::MAX } else { lines };
    let opened = crate::state_dir::open_read(&path).and_then(|f| {
        let meta = f.metadata()?;
        Ok((f, meta))
    });
    let blocks = match opened {
        Ok((file, meta)) => {
            let mut blocks = rotated::tail_across_rotation(&path, Some((&file, &meta)), want);
            if look.filters() {
                snapshot::keep_last_matching(&mut blocks, look, lines);
            }
            tail.resume(file, &meta);
            blocks
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            writeln!(out, "(no supervisor.log yet: no supervisor has run here)")?;
            Vec::new()
        }
        Err(e) => vec![(path.clone(), vec![format!("(cannot read: {e})")])],
    };
    for (i, (file, body)) in blocks.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let text = file.to_string_lossy();
        let shown = crate::commands::status_view::escape_control(&text);
        writeln!(out, "==> {shown} <==")?;
        for line in body {
            writeln!(out, "{}", look.shown(line))?;
        }
    }
    match follow {
        Some(keep_following) => {
            follow::follow(std::slice::from_mut(&mut tail), false, keep_following, out)
        }
        None => Ok(()),
    }
}

fn show_io(
    log_dir: &Path,
    services: &[(String, bool)],
    lines: usize,
    kind: Kind,
    look: &Look,
    follow: Option<&dyn Fn() -> bool>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut tails = snapshot::print(log_dir, services, lines, kind, look, out)?;
    match follow {
        Some(keep_following) => follow::follow(&mut tails, true, keep_following, out),
        None => Ok(()),
    }
}
