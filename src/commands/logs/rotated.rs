//! Reading the end of a log backwards, on into its rotated files (`.1` the newest, then
//! `.2`, …) when the current file holds fewer lines than asked for.

use crate::paths::rotated;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes read per step when walking a file backwards.
pub(super) const TAIL_CHUNK: u64 = 64 * 1024;

/// The last `n` lines of `path` (a last line without newline counts), read backwards from
/// the end so a multi-GB log costs only what is shown. Errors, including a missing file,
/// are returned for the caller to judge.
#[cfg(test)]
pub(super) fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    tail_of(&file, len, n)
}

/// The last `n` lines of the first `len` bytes of `file`.
fn tail_of(file: &File, len: u64, n: usize) -> io::Result<Vec<String>> {
    if n == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut pos = len;
    let mut separators = 0usize;
    while pos > 0 && separators < n {
        let start = pos.saturating_sub(TAIL_CHUNK);
        let mut buf = vec![0u8; (pos - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        separators += buf.iter().filter(|b| **b == b'\n').count();
        if pos == len && buf.last() == Some(&b'\n') {
            // The final newline ends the last line; it does not start another.
            separators -= 1;
        }
        chunks.push(buf);
        pos = start;
    }
    let mut bytes = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for chunk in chunks.iter().rev() {
        bytes.extend_from_slice(chunk);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect())
}

/// One file's part of the initial output: its path and the lines shown from it.
pub(super) type Block = (PathBuf, Vec<String>);

/// The last `n` lines of a log across rotation, as blocks oldest file first. `current` is
/// the open current file (`None` when it does not exist) with its metadata; it always
/// yields a block, the rotated files `.1`, `.2`, … only while lines are still wanted and
/// only when they contribute one. Each file is read backwards, only as far as needed.
/// A rotated file whose inode was already read (it was renamed while we were reading) is
/// skipped, so no line is shown twice.
pub(super) fn tail_across_rotation(
    path: &Path,
    current: Option<(&File, &fs::Metadata)>,
    n: usize,
) -> Vec<Block> {
    let cannot_read = |e: io::Error| vec![format!("(cannot read: {e})")];
    let mut blocks = Vec::new();
    let mut seen = Vec::new();
    let mut want = n;
    if let Some((file, meta)) = current {
        seen.push((meta.dev(), meta.ino()));
        match tail_of(file, meta.len(), n) {
            Ok(lines) => {
                want -= lines.len();
                blocks.push((path.to_path_buf(), lines));
            }
            Err(e) => {
                // Without the current file's count, older lines would be out of place.
                want = 0;
                blocks.push((path.to_path_buf(), cannot_read(e)));
            }
        }
    }
    let mut i: u32 = 1;
    while want > 0 {
        let old = rotated(path, i);
        i += 1;
        let opened = crate::state_dir::open_read(&old).and_then(|f| {
            let meta = f.metadata()?;
            Ok((f, meta))
        });
        let (file, meta) = match opened {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => {
                blocks.push((old, cannot_read(e)));
                break;
            }
        };
        let id = (meta.dev(), meta.ino());
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        match tail_of(&file, meta.len(), want) {
            Ok(lines) if lines.is_empty() => {}
            Ok(lines) => {
                want -= lines.len();
                blocks.push((old, lines));
            }
            Err(e) => {
                blocks.push((old, cannot_read(e)));
                break;
            }
        }
    }
    blocks.reverse();
    blocks
}
