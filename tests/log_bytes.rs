//! Logs hold every byte as written (SPEC §3 "Logs"): a line without newline reaches the
//! file while the service still runs, instances never splice, no newline is inserted
//! inside a long line, and rotation keeps each file within `max_size` plus one line even
//! when one read brings many lines.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn log_path(w: &Sysg, service: &str) -> PathBuf {
    w.state.join(format!("logs/{service}_stdout.log"))
}

fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

#[test]
fn a_prompt_without_newline_is_in_the_file_while_the_service_runs() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          asker:
            command: "printf 'password> '; exec sleep {n}"
        "#
    ));
    let pid = w.wait_running_pid("asker", None);
    let path = log_path(&w, "asker");
    let mut got = Vec::new();
    let there = wait_until(DEADLINE, || {
        got = read_bytes(&path);
        got == b"password> "
    });
    assert!(
        there,
        "the prompt is not in the log while the service runs: {:?}\n{}",
        String::from_utf8_lossy(&got),
        w.diagnostics()
    );
    assert!(alive(pid), "the service is still running");
    assert_eq!(w.service_pid("asker"), Some(pid));
}

#[test]
fn each_instance_starts_on_a_line_of_its_own_with_one_newline_between() {
    let w = Sysg::new();
    let n = unique_number();
    // Each instance counts itself in ./runs and prints `run-K` without a newline.
    w.start_with(&format!(
        r#"
        services:
          counter:
            command: "k=$(($(cat runs 2>/dev/null || echo 0) + 1)); echo $k > runs; printf run-$k; exec sleep {n}"
            stop_timeout: "2s"
        "#
    ));
    let path = log_path(&w, "counter");
    let mut pid = w.wait_running_pid("counter", None);
    let mut want = String::from("run-1");
    for k in 2..=3 {
        let mut got = String::new();
        let ok = wait_until(DEADLINE, || {
            got = String::from_utf8_lossy(&read_bytes(&path)).into_owned();
            got == want
        });
        assert!(ok, "log is {got:?}, want {want:?}\n{}", w.diagnostics());
        w.run_ok(&["restart", "-s", "counter"]);
        pid = w.wait_running_pid("counter", Some(pid));
        want = format!("{want}\nrun-{k}");
    }
    let mut got = String::new();
    let ok = wait_until(DEADLINE, || {
        got = String::from_utf8_lossy(&read_bytes(&path)).into_owned();
        got == want
    });
    assert!(ok, "log is {got:?}, want {want:?}\n{}", w.diagnostics());
}

#[test]
fn a_one_mib_line_is_one_line_in_the_file() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          long:
            command: "head -c 1048576 /dev/zero | tr '\\000' a; echo; echo after; exec sleep {n}"
        "#
    ));
    let path = log_path(&w, "long");
    let want = 1048576 + 1 + "after\n".len();
    let mut got = Vec::new();
    let ok = wait_until(DEADLINE, || {
        got = read_bytes(&path);
        got.len() >= want
    });
    assert!(
        ok,
        "the log has {} of {want} bytes\n{}",
        got.len(),
        w.diagnostics()
    );
    assert_eq!(got.len(), want);
    assert_eq!(
        newlines(&got),
        2,
        "a newline was inserted inside the long line"
    );
    assert!(got[..1048576].iter().all(|&b| b == b'a'));
    assert_eq!(&got[1048576..], b"\nafter\n");
}

#[test]
fn output_without_any_newline_is_written_through_in_bounded_memory() {
    let w = Sysg::new();
    let n = unique_number();
    let size = 48 << 20;
    w.start_with(&format!(
        r#"
        services:
          stream:
            command: "head -c {size} /dev/zero | tr '\\000' b; exec sleep {n}"
        "#
    ));
    let path = log_path(&w, "stream");
    let mut len = 0;
    let ok = wait_until(DEADLINE, || {
        len = std::fs::metadata(&path).map_or(0, |m| m.len());
        len >= size
    });
    assert!(ok, "the log has {len} of {size} bytes\n{}", w.diagnostics());
    let got = read_bytes(&path);
    assert_eq!(got.len() as u64, size);
    assert_eq!(
        newlines(&got),
        0,
        "newlines were inserted into one long line"
    );
    // Written through, not held: the supervisor never holds the line in memory.
    let sup = w.supervisor_pid().expect("supervisor pid");
    let rss = vm_rss_kb(sup).expect("supervisor VmRSS");
    assert!(
        rss < 24 * 1024,
        "supervisor RSS {rss} KiB after a {} MiB line",
        size >> 20
    );
}

#[test]
fn rotation_of_many_lines_in_one_read_stays_within_max_size_plus_one_line() {
    let w = Sysg::new();
    let n = unique_number();
    // 900 lines of 12 to 30 bytes (about 19 KiB), written by `cat` in one write(2).
    let text: String = (0..900)
        .map(|i| format!("line-{i:04} {}\n", "x".repeat(i * 7 % 19)))
        .collect();
    std::fs::write(w.proj_file("lines.txt"), &text).unwrap();
    let longest = text.lines().map(|l| l.len() + 1).max().unwrap() as u64;
    w.start_with(&format!(
        r#"
        services:
          burst:
            command: "cat lines.txt; exec sleep {n}"
            logs: {{ max_size: "4KB", max_files: 20 }}
        "#
    ));
    let current = log_path(&w, "burst");
    let files = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = (1..=20)
            .rev()
            .map(|k| PathBuf::from(format!("{}.{k}", current.display())))
            .filter(|p| p.exists())
            .collect();
        v.push(current.clone());
        v
    };
    let joined = |files: &[PathBuf]| -> String {
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&read_bytes(p)).into_owned())
            .collect()
    };
    let mut all = String::new();
    let ok = wait_until(DEADLINE, || {
        all = joined(&files());
        all.len() >= text.len()
    });
    assert!(
        ok,
        "{} of {} bytes logged\n{}",
        all.len(),
        text.len(),
        w.diagnostics()
    );
    assert_eq!(
        all, text,
        "the rotated files do not hold the output, in order"
    );
    let files = files();
    assert!(files.len() >= 4, "only {} files: no rotation?", files.len());
    for p in &files {
        let bytes = read_bytes(p);
        assert!(
            bytes.len() as u64 <= 4096 + longest,
            "{} is {} bytes, over max_size 4096 + one line ({longest})",
            p.display(),
            bytes.len()
        );
        assert!(
            bytes.ends_with(b"\n"),
            "{} does not end at a line boundary",
            p.display()
        );
    }
}

#[test]
fn a_writer_streaming_one_write_per_line_loses_nothing() {
    let w = Sysg::new();
    let n = unique_number();
    // The shell's `echo` is one write(2) per line: the loop sees a streaming pipe (and
    // paces itself, with a bigger pipe) for the whole run.
    let lines = 30000;
    w.start_with(&format!(
        r#"
        services:
          chatty:
            command: "i=0; while [ $i -lt {lines} ]; do echo line-$i; i=$((i+1)); done; exec sleep {n}"
        "#
    ));
    let path = log_path(&w, "chatty");
    let want: String = (0..lines).map(|i| format!("line-{i}\n")).collect();
    let mut got = Vec::new();
    let ok = wait_until(DEADLINE * 3, || {
        got = read_bytes(&path);
        got.len() >= want.len()
    });
    assert!(
        ok,
        "{} of {} bytes logged\n{}",
        got.len(),
        want.len(),
        w.diagnostics()
    );
    assert!(
        got == want.as_bytes(),
        "lines lost, reordered or split: {} lines logged",
        newlines(&got)
    );
}
