//! `sysg logs`: the last lines of each service's log files, then optionally follow them.
//! Reads the files directly, so it works with or without a supervisor.
//!
//! The supervisor rotates `<name>_<stream>.log` to `.1` (older ones shift to `.2`, `.3`, …)
//! at a line boundary. Asked for more lines than the current file holds, `logs` goes on
//! into `.1`, then `.2`, … until it has them. Every file that contributes lines gets its
//! own `==> path <==` header, oldest first, with the current file last, so the output is
//! the last N lines in order and each one is under the file it came from (the same shape
//! as `tail -n N f.1 f`). A rotated file that contributes nothing is not mentioned; the
//! current file always gets its header when it exists, even when it is empty.
//!
//! Following polls file sizes every 250 ms rather than using inotify: it costs nothing
//! measurable, needs no `unsafe`, and sees rotation (inode change) and truncation (size
//! below what was read) the same way. Streamed lines carry a `name | ` prefix
//! (`name (stderr) | ` for stderr, the same shape as the foreground supervisor's echo)
//! whenever more than one file is followed; a single followed file streams bare lines.
//! The caller decides when following ends (see [`show`]); before it returns, whatever the
//! files still hold is printed, an unterminated last line included.

use crate::error::Result;
use crate::paths::{rotated, service_log, Stream};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes read per step when walking a file backwards.
const TAIL_CHUNK: u64 = 64 * 1024;
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// A line longer than this is printed in pieces rather than held back indefinitely.
const MAX_PARTIAL: usize = 64 * 1024;
/// Inner width of the seed's header box.
const MIN_BOX_INNER: usize = 33;

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

/// The last `n` lines of `path` (a last line without newline counts), read backwards from
/// the end so a multi-GB log costs only what is shown. Errors, including a missing file,
/// are returned for the caller to judge.
#[cfg(test)]
fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
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

/// The seed's boxed header, three lines without a trailing newline. The box is at least
/// 35 columns and grows with the name; the text is centred (odd space on the right).
pub fn header(name: &str, running: bool) -> String {
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

/// One file's part of the initial output: its path and the lines shown from it.
type Block = (PathBuf, Vec<String>);

/// The last `n` lines of a log across rotation, as blocks oldest file first. `current` is
/// the open current file (`None` when it does not exist) with its metadata; it always
/// yields a block, the rotated files `.1`, `.2`, … only while lines are still wanted and
/// only when they contribute one. Each file is read backwards, only as far as needed.
/// A rotated file whose inode was already read (it was renamed while we were reading) is
/// skipped, so no line is shown twice.
fn tail_across_rotation(
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
        let opened = File::open(&old).and_then(|f| {
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

/// Prints each service's header and the last `lines` lines of its selected files (across
/// rotated files, see the module docs). With `follow`, then streams new lines, asking
/// `keep_following` at every poll tick (250 ms): once it returns false, what the files
/// still hold is printed and `show` returns `Ok`. A caller that never wants to stop passes
/// `&|| true` and ends the process itself. A write error (reader gone, e.g. `| head`)
/// ends it quietly with `Ok`.
pub fn show(
    log_dir: &Path,
    services: &[(String, bool)],
    lines: usize,
    kind: Kind,
    follow: bool,
    keep_following: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    let follow = follow.then_some(keep_following);
    // Only writes to `out` can fail here (unreadable logs are reported inline); a failed
    // write means nobody is reading any more, which is not an error worth a message.
    let _ = show_io(log_dir, services, lines, kind, follow, out);
    Ok(())
}

fn show_io(
    log_dir: &Path,
    services: &[(String, bool)],
    lines: usize,
    kind: Kind,
    follow: Option<&dyn Fn() -> bool>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut tails = Vec::new();
    for (i, (name, running)) in services.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}\n", header(name, *running))?;
        let mut shown = 0;
        for stream in kind.streams() {
            let path = service_log(log_dir, name, *stream);
            let path = std::path::absolute(&path).unwrap_or(path);
            let mut tail = Tail::new(name, *stream, path.clone());
            let opened = File::open(&path).and_then(|f| {
                let meta = f.metadata()?;
                Ok((f, meta))
            });
            let blocks = match opened {
                Ok((file, meta)) => {
                    let blocks = tail_across_rotation(&path, Some((&file, &meta)), lines);
                    tail.resume(file, &meta);
                    blocks
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tail_across_rotation(&path, None, lines)
                }
                Err(e) => vec![(path, vec![format!("(cannot read: {e})")])],
            };
            tails.push(tail);
            for (path, body) in blocks {
                if shown > 0 {
                    writeln!(out)?;
                }
                shown += 1;
                writeln!(out, "==> {} <==", path.display())?;
                for line in body {
                    writeln!(out, "{line}")?;
                }
            }
        }
        if shown == 0 {
            writeln!(out, "(no logs yet)")?;
        }
    }
    out.flush()?;
    let Some(keep_following) = follow else {
        return Ok(());
    };
    let prefixed = tails.len() > 1;
    loop {
        std::thread::sleep(FOLLOW_INTERVAL);
        // Asked before reading, so the last read sees everything written before the
        // answer turned false.
        let keep = keep_following();
        for tail in &mut tails {
            tail.poll(out, prefixed)?;
        }
        if !keep {
            for tail in &mut tails {
                tail.finish_line(out, prefixed)?;
            }
            return out.flush();
        }
        out.flush()?;
    }
}

/// One followed log file: where we are in it and which file (inode) that position
/// belongs to.
struct Tail {
    label: String,
    path: PathBuf,
    file: Option<File>,
    id: (u64, u64),
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(name: &str, stream: Stream, path: PathBuf) -> Tail {
        let label = match stream {
            Stream::Stdout => format!("{name} | "),
            Stream::Stderr => format!("{name} (stderr) | "),
        };
        Tail {
            label,
            path,
            file: None,
            id: (0, 0),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Continue after what was already shown: the end of the file as it was measured.
    fn resume(&mut self, mut file: File, meta: &fs::Metadata) {
        if file.seek(SeekFrom::Start(meta.len())).is_ok() {
            self.id = (meta.dev(), meta.ino());
            self.offset = meta.len();
            self.file = Some(file);
        }
    }

    /// Prints whatever complete lines arrived since the last call. Only write errors are
    /// returned; a log that cannot be read is simply retried next time.
    fn poll(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        let current = fs::metadata(&self.path).ok();
        if let (Some(meta), true) = (current.as_ref(), self.file.is_some()) {
            if (meta.dev(), meta.ino()) != self.id {
                // Rotated: finish the renamed file through our handle, then switch.
                self.drain(out, prefixed)?;
                self.finish_line(out, prefixed)?;
                self.file = None;
            } else if meta.len() < self.offset {
                // Truncated in place: what follows starts at the beginning again.
                self.finish_line(out, prefixed)?;
                self.offset = 0;
                if let Some(file) = self.file.as_mut() {
                    if file.seek(SeekFrom::Start(0)).is_err() {
                        self.file = None;
                    }
                }
            }
        }
        if self.file.is_none() && current.is_some() {
            if let Ok(file) = File::open(&self.path) {
                if let Ok(meta) = file.metadata() {
                    self.id = (meta.dev(), meta.ino());
                    self.offset = 0;
                    self.file = Some(file);
                }
            }
        }
        self.drain(out, prefixed)
    }

    /// Reads up to the size measured now, so a fast writer cannot keep us here forever.
    fn drain(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let result = self.read_new(&mut file, out, prefixed);
        self.file = Some(file);
        result
    }

    fn read_new(&mut self, file: &mut File, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        let end = file.metadata().map_or(self.offset, |m| m.len());
        let mut buf = vec![0u8; TAIL_CHUNK as usize];
        while self.offset < end {
            let want = buf.len().min((end - self.offset) as usize);
            match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => {
                    self.offset += k as u64;
                    self.emit(&buf[..k], out, prefixed)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn emit(&mut self, mut bytes: &[u8], out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        while let Some(i) = bytes.iter().position(|b| *b == b'\n') {
            if prefixed {
                out.write_all(self.label.as_bytes())?;
            }
            out.write_all(&self.partial)?;
            self.partial.clear();
            out.write_all(&bytes[..=i])?;
            bytes = &bytes[i + 1..];
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() >= MAX_PARTIAL {
            self.finish_line(out, prefixed)?;
        }
        Ok(())
    }

    /// Prints a held-back unterminated line as a line of its own.
    fn finish_line(&mut self, out: &mut dyn Write, prefixed: bool) -> io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        if prefixed {
            out.write_all(self.label.as_bytes())?;
        }
        out.write_all(&self.partial)?;
        self.partial.clear();
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    fn append(path: &Path, text: &str) {
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn tail(text: &str, n: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.log");
        write(&p, text);
        tail_lines(&p, n).unwrap()
    }

    #[test]
    fn tail_lines_small_file() {
        assert_eq!(tail("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(tail("a\nb\nc\n", 3), ["a", "b", "c"]);
        assert_eq!(tail("a\nb\nc\n", 0), Vec::<String>::new());
    }

    #[test]
    fn tail_lines_counts_a_last_line_without_newline() {
        assert_eq!(tail("a\nb\nc", 1), ["c"]);
        assert_eq!(tail("a\nb\nc", 2), ["b", "c"]);
        assert_eq!(tail("only", 5), ["only"]);
    }

    #[test]
    fn tail_lines_n_larger_than_file_and_empty_lines() {
        assert_eq!(tail("x\ny\n", 100), ["x", "y"]);
        assert_eq!(tail("a\n\n\n", 2), ["", ""]);
        assert_eq!(tail("\n", 3), [""]);
    }

    #[test]
    fn tail_lines_empty_and_missing_file() {
        assert_eq!(tail("", 10), Vec::<String>::new());
        let dir = tempfile::tempdir().unwrap();
        let err = tail_lines(&dir.path().join("nope.log"), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn tail_lines_large_file_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let mut f = io::BufWriter::new(File::create(&p).unwrap());
        for i in 0..300_000 {
            writeln!(f, "line {i:07}").unwrap();
        }
        f.flush().unwrap();
        drop(f);
        assert!(fs::metadata(&p).unwrap().len() > 3_000_000);
        assert_eq!(tail_lines(&p, 2).unwrap(), ["line 0299998", "line 0299999"]);
        let many = tail_lines(&p, 20_000).unwrap();
        assert_eq!(many.len(), 20_000);
        assert_eq!(many[0], "line 0280000");
        assert!(many.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tail_lines_line_longer_than_a_chunk() {
        let long = "x".repeat(3 * TAIL_CHUNK as usize + 7);
        let got = tail(&format!("first\n{long}\nend"), 2);
        assert_eq!(got, [long.as_str(), "end"]);
    }

    #[test]
    fn header_matches_the_seed_box() {
        let echo = header("echo_lines", true);
        assert_eq!(
            echo,
            "+---------------------------------+\n|      echo_lines (running)       |\n+---------------------------------+"
        );
        let py = header("py_size", false);
        assert_eq!(
            py.lines().nth(1),
            Some("|        py_size (stopped)        |")
        );
        assert!(py.lines().all(|l| l.chars().count() == 35));
    }

    #[test]
    fn header_grows_with_a_long_name() {
        let name = "a_service_with_a_really_long_name_indeed";
        let h = header(name, true);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], format!("|  {name} (running)  |"));
        assert!(lines.iter().all(|l| l.len() == lines[1].len()));
    }

    fn run_show(dir: &Path, services: &[(&str, bool)], lines: usize, kind: Kind) -> String {
        let services: Vec<(String, bool)> =
            services.iter().map(|(n, r)| (n.to_string(), *r)).collect();
        let mut out = Vec::new();
        show(dir, &services, lines, kind, false, &|| true, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn show_prints_headers_paths_and_tails() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(&dir.join("api_stdout.log"), "one\ntwo\nthree\n");
        write(&dir.join("api_stderr.log"), "oops");
        let out = run_show(dir, &[("api", true), ("db", false)], 2, Kind::All);
        let d = dir.display();
        let expected = format!(
            "{}\n\n==> {d}/api_stdout.log <==\ntwo\nthree\n\n==> {d}/api_stderr.log <==\noops\n\n{}\n\n(no logs yet)\n",
            header("api", true),
            header("db", false)
        );
        assert_eq!(out, expected);
        let only_err = run_show(dir, &[("api", true)], 50, Kind::Stderr);
        assert_eq!(
            only_err,
            format!(
                "{}\n\n==> {d}/api_stderr.log <==\noops\n",
                header("api", true)
            )
        );
    }

    #[test]
    fn show_without_files_says_no_logs_yet() {
        let out = run_show(Path::new("no/such/dir"), &[("x", false)], 5, Kind::All);
        assert!(out.ends_with("(no logs yet)\n"));
        assert!(!out.contains("==>"));
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn show_ends_quietly_when_the_reader_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("api_stdout.log"), "hello\n");
        let services = vec![("api".to_string(), true)];
        assert!(show(
            tmp.path(),
            &services,
            10,
            Kind::All,
            true,
            &|| true,
            &mut Closed
        )
        .is_ok());
    }

    #[test]
    fn follow_streams_new_lines_with_prefixes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        write(&dir.join("api_stdout.log"), "old\n");
        let writer = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                append(&dir.join("api_stdout.log"), "new 1\nnew ");
                append(&dir.join("api_stderr.log"), "late err\n");
                std::thread::sleep(FOLLOW_INTERVAL * 2);
                append(&dir.join("api_stdout.log"), "2\n");
            })
        };
        let mut out = Vec::new();
        let services = vec![("api".to_string(), true)];
        let ticks = std::cell::Cell::new(0);
        let keep = || {
            ticks.set(ticks.get() + 1);
            ticks.get() < 5
        };
        show(&dir, &services, 10, Kind::All, true, &keep, &mut out).unwrap();
        writer.join().unwrap();
        let text = String::from_utf8(out).unwrap();
        let streamed: Vec<&str> = text.lines().skip_while(|l| *l != "old").skip(1).collect();
        assert_eq!(
            streamed,
            ["api | new 1", "api (stderr) | late err", "api | new 2"]
        );
    }

    #[test]
    fn follow_survives_rotation_and_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("w_stdout.log");
        write(&p, "seen\n");
        let mut t = Tail::new("w", Stream::Stdout, p.clone());
        let f = File::open(&p).unwrap();
        let meta = f.metadata().unwrap();
        t.resume(f, &meta);
        let mut out = Vec::new();
        append(&p, "a\nunfinished");
        t.poll(&mut out, false).unwrap();
        // Rotation: more bytes land in the old file after the rename, then a new file.
        fs::rename(&p, tmp.path().join("w_stdout.log.1")).unwrap();
        append(&tmp.path().join("w_stdout.log.1"), " tail\nlast old\n");
        write(&p, "fresh\n");
        t.poll(&mut out, false).unwrap();
        // Truncation in place.
        write(&p, "");
        t.poll(&mut out, false).unwrap();
        append(&p, "after truncate\n");
        t.poll(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\nunfinished tail\nlast old\nfresh\nafter truncate\n"
        );
    }

    /// `dir/<name>_stdout.log` and its rotated files: `current` lines in the current file,
    /// then `older[0]` lines in `.1`, `older[1]` in `.2`, … numbered so that line 1 is
    /// the oldest of all.
    fn rotated_logs(dir: &Path, name: &str, current: usize, older: &[usize]) -> usize {
        let total = current + older.iter().sum::<usize>();
        let mut next = 1;
        let path = dir.join(format!("{name}_stdout.log"));
        for (i, count) in older.iter().enumerate().rev() {
            let text: String = (next..next + count)
                .map(|k| format!("line {k}\n"))
                .collect();
            write(&rotated(&path, i as u32 + 1), &text);
            next += count;
        }
        let text: String = (next..next + current)
            .map(|k| format!("line {k}\n"))
            .collect();
        write(&path, &text);
        total
    }

    #[test]
    fn tail_reads_back_into_rotated_files_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert_eq!(rotated_logs(dir, "api", 3, &[5, 5]), 13);
        let d = dir.display();
        let out = run_show(dir, &[("api", true)], 10, Kind::Stdout);
        let mut expected = format!("{}\n\n==> {d}/api_stdout.log.2 <==\n", header("api", true));
        for k in 4..=5 {
            expected.push_str(&format!("line {k}\n"));
        }
        expected.push_str(&format!("\n==> {d}/api_stdout.log.1 <==\n"));
        for k in 6..=10 {
            expected.push_str(&format!("line {k}\n"));
        }
        expected.push_str(&format!("\n==> {d}/api_stdout.log <==\n"));
        for k in 11..=13 {
            expected.push_str(&format!("line {k}\n"));
        }
        assert_eq!(out, expected);
        let shown: Vec<&str> = out.lines().filter(|l| l.starts_with("line ")).collect();
        let want: Vec<String> = (4..=13).map(|k| format!("line {k}")).collect();
        assert_eq!(shown, want);
    }

    #[test]
    fn tail_within_the_current_file_shows_only_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        rotated_logs(dir, "api", 3, &[5, 5]);
        let d = dir.display();
        let out = run_show(dir, &[("api", true)], 2, Kind::Stdout);
        assert_eq!(
            out,
            format!(
                "{}\n\n==> {d}/api_stdout.log <==\nline 12\nline 13\n",
                header("api", true)
            )
        );
        // Exactly what the current file holds: still no rotated file is opened.
        let out = run_show(dir, &[("api", true)], 3, Kind::Stdout);
        assert!(!out.contains(".log.1"), "{out}");
    }

    #[test]
    fn tail_across_rotation_takes_everything_there_is_and_skips_empty_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // A fresh, still empty current file right after a rotation; `.2` is empty too.
        rotated_logs(dir, "api", 0, &[2, 0, 1]);
        let d = dir.display();
        let out = run_show(dir, &[("api", true)], 50, Kind::Stdout);
        assert_eq!(
            out,
            format!(
                "{}\n\n==> {d}/api_stdout.log.3 <==\nline 1\n\n==> {d}/api_stdout.log.1 <==\nline 2\nline 3\n\n==> {d}/api_stdout.log <==\n",
                header("api", true)
            )
        );
        // No current file at all (mid-rotation): the rotated ones are still shown.
        fs::remove_file(dir.join("api_stdout.log")).unwrap();
        let out = run_show(dir, &[("api", true)], 2, Kind::Stdout);
        assert!(
            out.ends_with(&format!("==> {d}/api_stdout.log.1 <==\nline 2\nline 3\n")),
            "{out}"
        );
        assert!(!out.contains("no logs yet"), "{out}");
    }

    #[test]
    fn tail_across_rotation_skips_a_file_already_read_under_another_name() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("api_stdout.log");
        write(&p, "a\nb\n");
        let file = File::open(&p).unwrap();
        let meta = file.metadata().unwrap();
        // Rotated after we opened it: `.1` is now the very file we hold.
        fs::hard_link(&p, rotated(&p, 1)).unwrap();
        write(&rotated(&p, 2), "older\n");
        let blocks = tail_across_rotation(&p, Some((&file, &meta)), 10);
        assert_eq!(
            blocks,
            [
                (rotated(&p, 2), vec!["older".to_string()]),
                (p.clone(), vec!["a".to_string(), "b".to_string()]),
            ]
        );
    }

    #[test]
    fn follow_ends_when_told_and_prints_what_was_left() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let log = dir.join("api_stdout.log");
        write(&log, "old\n");
        let keep = Arc::new(AtomicBool::new(true));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let follower = {
            let (dir, keep) = (dir.clone(), keep.clone());
            std::thread::spawn(move || {
                let services = vec![("api".to_string(), true)];
                let mut out = Vec::new();
                let keep_following = || keep.load(Ordering::SeqCst);
                let result = show(
                    &dir,
                    &services,
                    10,
                    Kind::Stdout,
                    true,
                    &keep_following,
                    &mut out,
                );
                let _ = done_tx.send(());
                result.map(|()| String::from_utf8(out).unwrap())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        append(&log, "during 1\n");
        std::thread::sleep(Duration::from_millis(300));
        // Written just before the stop: the final drain must still print these, the
        // unterminated last line as a line of its own.
        append(&log, "during 2\nlast words");
        keep.store(false, Ordering::SeqCst);
        assert!(
            done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "show did not return after keep_following turned false"
        );
        let text = follower.join().unwrap().unwrap();
        let body: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("==>"))
            .skip(1)
            .collect();
        assert_eq!(body, ["old", "during 1", "during 2", "last words"]);
        assert!(text.ends_with("last words\n"), "{text:?}");
    }
}
