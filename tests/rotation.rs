//! Log rotation (SPEC §2 `logs`, §3 "Logs"): a file that passes `max_size` is renamed
//! `.1` (older ones shift, `max_files` kept), at a line boundary, losing nothing, and
//! `sysg logs` reads on into the rotated files.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// Reads `.k` … `.1` then the current file (oldest first), asserting each present file is
/// non-empty and ends with a newline (no line split across files). Returns the joined text.
fn read_rotated_set(current: &Path, max_files: u32) -> String {
    let mut all = String::new();
    let mut files: Vec<PathBuf> = (1..=max_files).rev().map(|k| rotated(current, k)).collect();
    files.push(current.to_path_buf());
    for p in files {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        assert!(!text.is_empty(), "{} is empty", p.display());
        assert!(
            text.ends_with('\n'),
            "{} does not end with a newline (a line was split): ...{:?}",
            p.display(),
            &text[text.len().saturating_sub(40)..]
        );
        all.push_str(&text);
    }
    all
}

/// The `line-N` numbers in `lines`, asserting they all have that form.
fn numbers(lines: &[&str]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| {
            l.strip_prefix("line-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l:?}"))
        })
        .collect()
}

#[test]
fn rotated_files_hold_a_gap_free_tail_and_logs_reads_across_them() {
    let w = Sysg::new();
    let n = unique_number();
    w.start_with(&format!(
        r#"
        services:
          spew:
            command: "seq 1 50000 | sed 's/^/line-/'"
            logs: {{ max_size: "100KB", max_files: 3 }}
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_status("spew", "exited");
    let current = w.state.join("logs/spew_stdout.log");
    let ok = wait_until(DEADLINE, || {
        std::fs::read_to_string(&current).is_ok_and(|t| t.ends_with("line-50000\n"))
    });
    assert!(
        ok,
        "the current log does not end with line-50000; tail: {:?}\n{}",
        std::fs::read_to_string(&current)
            .map(|t| t[t.len().saturating_sub(60)..].to_string())
            .unwrap_or_default(),
        w.diagnostics()
    );

    // ~540 KB of output with a 100 KB limit: at least three rotations happened, and only
    // three rotated files are kept.
    for k in 1..=3 {
        assert!(
            rotated(&current, k).is_file(),
            "{} is missing",
            rotated(&current, k).display()
        );
    }
    assert!(
        !rotated(&current, 4).exists(),
        ".4 exists although max_files is 3"
    );

    let all = read_rotated_set(&current, 3);
    let lines: Vec<&str> = all.lines().collect();
    let got = numbers(&lines);
    let first = got[0];
    let want: Vec<u64> = (first..=50000).collect();
    if got != want {
        let bad = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "kept lines are not a contiguous tail ending at line-50000: {} lines from {first}, \
             first difference at index {bad}: got {:?} want {:?}",
            got.len(),
            got.get(bad..bad + 3),
            want.get(bad..bad + 3)
        );
    }
    assert!(
        got.len() > 20_000,
        "only {} lines kept in 4 files of up to 100 KB",
        got.len()
    );

    // `logs -n 5`: the last five lines.
    let out = w.run(&["logs", "spew", "-n", "5", "-k", "stdout"]);
    assert_eq!(out.code, 0, "{out}");
    let shown: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("line-"))
        .collect();
    assert_eq!(
        shown,
        vec![
            "line-49996",
            "line-49997",
            "line-49998",
            "line-49999",
            "line-50000"
        ],
        "{out}"
    );

    // More lines than the current file holds: the rest comes from `.1`, in order.
    let cur_lines = count_lines_in(&current);
    let one_lines = count_lines_in(&rotated(&current, 1));
    let want_n = cur_lines + one_lines.clamp(1, 10);
    let out = w.run(&["logs", "spew", "-n", &want_n.to_string(), "-k", "stdout"]);
    assert_eq!(out.code, 0, "{out}");
    let shown: Vec<&str> = out
        .stdout
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("line-"))
        .collect();
    let got = numbers(&shown);
    let want: Vec<u64> = (50001 - want_n as u64..=50000).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "logs -n {want_n} showed {} lines (current file holds {cur_lines})",
        got.len()
    );
    assert!(
        got == want,
        "logs -n {want_n} lines are not the last ones, in order"
    );
    let one_header = format!("==> {} <==", rotated(&current, 1).display());
    let cur_header = format!("==> {} <==", current.display());
    let (Some(a), Some(b)) = (out.stdout.find(&one_header), out.stdout.find(&cur_header)) else {
        panic!(
            "missing '{one_header}' or '{cur_header}'\n{}",
            &out.stdout[..out.stdout.len().min(2000)]
        );
    };
    assert!(
        a < b,
        "the .1 block should come before the current file's block"
    );
}

/// A service that writes `bursts` bursts of 200 numbered lines, each only once the
/// previous one has reached its log file, so the supervisor sees separate writes.
fn burst_script(bursts: u32) -> String {
    format!(
        r#"log="$SYSG_STATE_DIR/logs/${{SYSG_SERVICE}}_stdout.log"
b=1
while [ $b -le {bursts} ]; do
  seq 1 200 | sed "s/^/b$b-/"
  echo "b$b-end"
  n=0
  until grep -q "^b$b-end\$" "$log" 2>/dev/null || [ $n -ge 400 ]; do sleep 0.05; n=$((n+1)); done
  b=$((b+1))
done
"#
    )
}

#[test]
fn top_level_logs_default_applies_to_services_without_their_own() {
    let w = Sysg::new();
    let n = unique_number();
    std::fs::write(w.proj_file("burst.sh"), burst_script(6)).unwrap();
    w.start_with(&format!(
        r#"
        logs: {{ max_size: "1KB", max_files: 2 }}
        services:
          plain:
            command: "sh burst.sh"
          own:
            command: "sh burst.sh"
            logs: {{ max_files: 1 }}
          keeper:
            command: "exec sleep {n}"
            stop_timeout: "1s"
        "#
    ));
    w.wait_status("plain", "exited");
    w.wait_status("own", "exited");
    for (name, keep) in [("plain", 2u32), ("own", 1u32)] {
        let current = w.state.join(format!("logs/{name}_stdout.log"));
        let ok = wait_until(DEADLINE, || {
            std::fs::read_to_string(&current).is_ok_and(|t| t.ends_with("b6-end\n"))
        });
        assert!(
            ok,
            "{name}: log does not end with b6-end\n{}",
            w.diagnostics()
        );
        for k in 1..=keep {
            assert!(
                rotated(&current, k).is_file(),
                "{name}: {} missing; the 1KB limit was not applied",
                rotated(&current, k).display()
            );
        }
        assert!(
            !rotated(&current, keep + 1).exists(),
            "{name}: {} exists although max_files is {keep}",
            rotated(&current, keep + 1).display()
        );
        // Whatever is kept is a contiguous tail of what was written.
        let all = read_rotated_set(&current, keep);
        let mut written = Vec::new();
        for b in 1..=6 {
            for i in 1..=200 {
                written.push(format!("b{b}-{i}"));
            }
            written.push(format!("b{b}-end"));
        }
        let kept: Vec<&str> = all.lines().collect();
        assert!(
            !kept.is_empty() && kept.len() <= written.len(),
            "{name}: {} lines kept",
            kept.len()
        );
        let tail: Vec<&str> = written[written.len() - kept.len()..]
            .iter()
            .map(String::as_str)
            .collect();
        assert!(kept == tail, "{name}: kept lines are not a contiguous tail");
    }
}
