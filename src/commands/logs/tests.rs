//! `sysg logs` end to end on real files: tails, headers, rotation, following.

use super::follow::{Tail, FOLLOW_INTERVAL};
use super::rotated::{tail_across_rotation, tail_lines, TAIL_CHUNK};
use super::snapshot::header;
use super::*;
use crate::paths::rotated;
use std::fs::{self, File};
use std::time::Duration;

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
    let services: Vec<(String, bool)> = services.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    let mut out = Vec::new();
    show(
        dir,
        &services,
        lines,
        kind,
        false,
        Look::default(),
        &|| true,
        &mut out,
    )
    .unwrap();
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
        Look::default(),
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
    show(
        &dir,
        &services,
        10,
        Kind::All,
        true,
        Look::default(),
        &keep,
        &mut out,
    )
    .unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(out).unwrap();
    // The snapshot in the same form as what follows.
    let streamed: Vec<&str> = text.lines().collect();
    assert_eq!(
        streamed,
        [
            "api | old",
            "api | new 1",
            "api (stderr) | late err",
            "api | new 2"
        ]
    );
}

#[test]
fn follow_survives_rotation_and_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("w_stdout.log");
    write(&p, "seen\n");
    let mut t = Tail::new("w", Stream::Stdout, p.clone(), Look::default());
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
                Look::default(),
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
    let body: Vec<&str> = text.lines().collect();
    assert_eq!(
        body,
        [
            "api | old",
            "api | during 1",
            "api | during 2",
            "api | last words"
        ]
    );
    assert!(text.ends_with("last words\n"), "{text:?}");
}
