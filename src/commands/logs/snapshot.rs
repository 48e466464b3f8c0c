//! The first part of `sysg logs`: a boxed header per service, then the last N lines of
//! each of its files.
//!
//! The supervisor rotates `<name>_<stream>.log` to `.1` (older ones shift to `.2`, `.3`, …)
//! at a line boundary. Asked for more lines than the current file holds, `logs` goes on
//! into `.1`, then `.2`, … until it has them. Every file that contributes lines gets its
//! own `==> path <==` header, oldest first, with the current file last, so the output is
//! the last N lines in order and each one is under the file it came from (the same shape
//! as `tail -n N f.1 f`). A rotated file that contributes nothing is not mentioned; the
//! current file always gets its header when it exists, even when it is empty.

use super::follow::Tail;
use super::rotated::tail_across_rotation;
use super::{Kind, Look};
use crate::paths::service_log;
use std::io::{self, Write};
use std::path::Path;

/// Inner width of the seed's header box.
const MIN_BOX_INNER: usize = 33;

/// The seed's boxed header, three lines without a trailing newline. The box is at least
/// 35 columns and grows with the name; the text is centred (odd space on the right).
pub(super) fn header(name: &str, running: bool) -> String {
    let name = crate::commands::status_view::escape_control(name);
    let text = format!("{name} ({})", if running { "running" } else { "stopped" });
    let len = text.chars().count();
    let inner = MIN_BOX_INNER.max(len + 4);
    let left = (inner - len) / 2;
    let right = inner - len - left;
    let rule = format!("+{}+", "-".repeat(inner));
    format!(
        "{rule}\n|{}{text}{}|\n{rule}",
        " ".repeat(left),
        " ".repeat(right)
    )
}

/// Prints each service's header and its blocks, and returns a follower for every file,
/// positioned where the printed part ended: the file is opened once for both, so a line
/// written meanwhile is printed either here or later by the follower, exactly once.
pub(super) fn print(
    log_dir: &Path,
    services: &[(String, bool)],
    lines: usize,
    kind: Kind,
    look: &Look,
    out: &mut dyn Write,
) -> io::Result<Vec<Tail>> {
    let mut tails = Vec::new();
    // `merged`: (stamp, tail index, line) of every file, printed in time order below.
    let mut merged: Vec<(Option<chrono::DateTime<chrono::Utc>>, usize, String)> = Vec::new();
    for (i, (name, running)) in services.iter().enumerate() {
        if i > 0 && !look.prefixed {
            writeln!(out)?;
        }
        if !look.prefixed {
            writeln!(out, "{}\n", header(name, *running))?;
        }
        let mut shown = 0;
        for stream in kind.streams() {
            let path = service_log(log_dir, name, *stream);
            let path = std::path::absolute(&path).unwrap_or(path);
            let mut tail = Tail::new(name, *stream, path.clone(), look.clone());
            let opened = crate::state_dir::open_read(&path).and_then(|f| {
                let meta = f.metadata()?;
                Ok((f, meta))
            });
            // With a pattern, the last N matching lines: every line is looked at.
            let want = if look.grep.is_some() {
                usize::MAX
            } else {
                lines
            };
            let mut blocks = match opened {
                Ok((file, meta)) => {
                    let blocks = tail_across_rotation(&path, Some((&file, &meta)), want);
                    tail.resume(file, &meta);
                    blocks
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tail_across_rotation(&path, None, want)
                }
                Err(e) => vec![(path, vec![format!("(cannot read: {e})")])],
            };
            if look.filters() && !look.merged {
                keep_last_matching(&mut blocks, look, lines);
            }
            if look.merged {
                for (_, body) in blocks {
                    for line in body.into_iter().filter(|l| look.matches(l.as_bytes())) {
                        merged.push((super::stamp_of(line.as_bytes()), tails.len(), line));
                    }
                }
                tails.push(tail);
                continue;
            }
            for (path, body) in blocks {
                if look.prefixed {
                    for line in body {
                        writeln!(out, "{}{}", tail.label(), look.shown(&line))?;
                    }
                    continue;
                }
                if shown > 0 {
                    writeln!(out)?;
                }
                shown += 1;
                let shown = path.to_string_lossy();
                let shown = crate::commands::status_view::escape_control(&shown);
                writeln!(out, "==> {shown} <==")?;
                for line in body {
                    writeln!(out, "{}", look.shown(&line))?;
                }
            }
            tails.push(tail);
        }
        if shown == 0 && !look.prefixed {
            writeln!(out, "(no logs yet)")?;
        }
    }
    if look.merged {
        // Stable: lines of one file keep their order; unstamped lines sort first.
        merged.sort_by_key(|(t, _, _)| *t);
        let skip = merged.len().saturating_sub(lines);
        for (_, at, line) in merged.into_iter().skip(skip) {
            writeln!(out, "{}{}", tails[at].label(), look.shown(&line))?;
        }
    }
    out.flush()?;
    Ok(tails)
}

/// Only the lines `look` matches, the last `n` of them over all blocks.
pub(super) fn keep_last_matching(blocks: &mut Vec<super::rotated::Block>, look: &Look, n: usize) {
    for (_, body) in blocks.iter_mut() {
        body.retain(|l| look.matches(l.as_bytes()));
    }
    let mut left = n;
    for (_, body) in blocks.iter_mut().rev() {
        let skip = body.len().saturating_sub(left);
        body.drain(..skip);
        left -= body.len();
    }
    blocks.retain(|(_, body)| !body.is_empty());
}
