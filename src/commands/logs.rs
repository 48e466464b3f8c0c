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

/// How lines are shown: prefixed with their service (`name | `, the form `-f` uses for
/// the snapshot and what follows alike), and only those holding `grep`.
#[derive(Clone, Debug, Default)]
pub struct Look {
    pub prefixed: bool,
    pub grep: Option<Vec<u8>>,
}

impl Look {
    fn matches(&self, line: &[u8]) -> bool {
        self.grep
            .as_ref()
            .is_none_or(|g| line.windows(g.len().max(1)).any(|w| w == g.as_slice()))
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
    grep: Option<&str>,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    let look = Look {
        prefixed: follow,
        grep: grep.map(|g| g.as_bytes().to_vec()),
    };
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
    grep: Option<&str>,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    let look = Look {
        prefixed: false,
        grep: grep.map(|g| g.as_bytes().to_vec()),
    };
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
    let mut tail = follow::Tail::new(
        "supervisor",
        Stream::Stdout,
        path.clone(),
        look.grep.clone(),
    );
    let want = if look.grep.is_some() {
        usize::MAX
    } else {
        lines
    };
    let opened = crate::state_dir::open_read(&path).and_then(|f| {
        let meta = f.metadata()?;
        Ok((f, meta))
    });
    let blocks = match opened {
        Ok((file, meta)) => {
            let mut blocks = rotated::tail_across_rotation(&path, Some((&file, &meta)), want);
            if look.grep.is_some() {
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
            writeln!(out, "{line}")?;
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
