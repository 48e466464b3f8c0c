//! Hardening: the logs disk fills up (SPEC §5: "never blocks its loop on disk"; §3 Logs).
//! A tiny tmpfs is mounted over `<state>/logs`; a service writes steadily. The service is
//! never disturbed, the failure is reported once per outage (not once per write), the
//! state files stay intact, and once space is freed writing resumes and is reported.
//!
//! Needs root (for `mount`); skipped with a message otherwise.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Unmounts (lazily) on drop, also when the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    if !is_root() {
        skip::root_only("needs root to mount a tmpfs");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(Mount(dir.to_path_buf())),
        Ok(o) => {
            skip::root_only(&format!(
                "cannot mount a tmpfs at {}: {}",
                dir.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            None
        }
        Err(e) => {
            skip::root_only(&format!("cannot run mount: {e}"));
            None
        }
    }
}

/// The highest `line-N` number in `path` (None if there is none).
fn last_number(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("line-")?.split(' ').next()?.parse().ok())
        .max()
}

/// `proj/writer.sh`: batches of 20 numbered lines, `pause` seconds apart.
/// Starts a supervisor running `writer.sh` (see `write_writer`); returns its pid.
fn start_writer(w: &Sysg, pause: &str) -> i32 {
    write_writer(w, pause);
    w.start_with(
        r#"
        services:
          writer:
            command: "sh ./writer.sh"
        "#,
    );
    w.wait_running_pid("writer", None)
}

fn write_writer(w: &Sysg, pause: &str) {
    std::fs::write(
        w.proj_file("writer.sh"),
        dedent(&format!(
            r#"
            i=0
            while :; do
              j=0
              while [ $j -lt 20 ]; do
                echo "line-$i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                i=$((i+1)); j=$((j+1))
              done
              sleep {pause}
            done
            "#
        )),
    )
    .unwrap();
}

fn lines_mentioning(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .map(str::to_string)
        .collect()
}

#[test]
fn full_log_disk_is_reported_once_and_writing_resumes_when_space_returns() {
    let w = Sysg::new();
    std::fs::create_dir_all(&w.state).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let logs = w.state.join("logs");
    let Some(_mount) = mount_tmpfs(&logs, "256k") else {
        return;
    };

    // ~2000 numbered lines of ~45 bytes a second: 256 KiB fill in about 3 s.
    let pid = start_writer(&w, "0.01");
    let file = logs.join("writer_stdout.log");
    let name = file.to_str().unwrap().to_string();

    // The disk fills and the supervisor says so.
    let reported = wait_until(Duration::from_secs(30), || {
        lines_mentioning(&w.supervisor_log(), &name)
            .iter()
            .any(|l| l.contains("cannot write"))
    });
    assert!(
        reported,
        "no `cannot write {name}` in supervisor.log (file is {} bytes)\n{}",
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        w.diagnostics()
    );
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert!(size > 128 * 1024, "the log file is only {size} bytes");

    // While full: the service runs on, state.json stays valid, and the outage is not
    // reported again for every write.
    let state_file = w.state.join("state.json");
    let mut bad_state = None;
    let steady = holds_for(Duration::from_secs(2), || {
        if let Ok(text) = std::fs::read_to_string(&state_file) {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                bad_state = Some(format!("{e}: {text}"));
                return false;
            }
        }
        alive(pid)
    });
    assert!(bad_state.is_none(), "state.json is not JSON: {bad_state:?}");
    assert!(
        steady,
        "the writer died while the disk was full\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_pid("writer"), Some(pid), "{}", w.diagnostics());
    let st = w.state_json();
    assert!(st["services"]["writer"].is_object(), "state.json: {st:#}");
    let mentions = lines_mentioning(&w.supervisor_log(), &name);
    eprintln!("supervisor.log lines about {name} while full: {mentions:#?}");
    assert!(
        mentions.len() <= 2,
        "the outage was reported {} times, not once:\n{}",
        mentions.len(),
        mentions.join("\n")
    );

    // Free the space: the next write after an error reopens the file.
    let before = last_number(&file).unwrap_or(0);
    std::fs::remove_file(&file).unwrap();
    let mut now = None;
    let resumed = wait_until(DEADLINE, || {
        now = last_number(&file);
        now.is_some_and(|k| k > before)
    });
    assert!(
        resumed,
        "writing did not resume after space was freed (last before {before}, now {now:?})\n{}",
        w.diagnostics()
    );
    let again = wait_until(DEADLINE, || {
        lines_mentioning(&w.supervisor_log(), &name)
            .iter()
            .any(|l| l.contains("again"))
    });
    assert!(
        again,
        "supervisor.log does not say `writing {name} again`\n{}",
        w.diagnostics()
    );
    assert_eq!(w.service_pid("writer"), Some(pid), "{}", w.diagnostics());
    assert!(serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(&state_file).unwrap()
    )
    .is_ok());

    w.run_ok(&["stop"]);
    assert!(w.processes().is_empty(), "left: {:?}", w.processes());
}

/// A read-only bind mount over `dir` (itself, mode 0700 so the supervisor need not chmod).
fn bind_read_only(dir: &Path) -> Option<Mount> {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        skip::root_only("needs root to bind-mount the logs dir read-only");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ok = |args: &[&str]| {
        Command::new("mount")
            .args(args)
            .arg(dir)
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok(&["--bind"]) {
        skip::root_only(&format!("cannot bind-mount {}", dir.display()));
        return None;
    }
    let guard = Mount(dir.to_path_buf());
    let ro = Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ro {
        skip::root_only(&format!("cannot remount {} read-only", dir.display()));
        return None;
    }
    Some(guard)
}

#[test]
fn read_only_logs_dir_is_reported_once_and_writing_starts_when_writable() {
    let w = Sysg::new();
    std::fs::create_dir_all(&w.state).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let logs = w.state.join("logs");
    let Some(_mount) = bind_read_only(&logs) else {
        return;
    };
    let pid = start_writer(&w, "0.1");
    let file = logs.join("writer_stdout.log");
    let name = file.to_str().unwrap().to_string();
    let reported = wait_until(DEADLINE, || {
        lines_mentioning(&w.supervisor_log(), &name)
            .iter()
            .any(|l| l.contains("cannot"))
    });
    assert!(
        reported,
        "no error about {name} in supervisor.log\n{}",
        w.diagnostics()
    );
    assert!(
        holds_for(Duration::from_secs(2), || alive(pid)),
        "the writer died while its log dir was read-only"
    );
    assert_eq!(w.service_pid("writer"), Some(pid));
    let mentions = lines_mentioning(&w.supervisor_log(), &name);
    eprintln!("supervisor.log lines about {name} while read-only: {mentions:#?}");
    assert!(
        mentions.len() <= 2,
        "the outage was reported {} times, not once:\n{}",
        mentions.len(),
        mentions.join("\n")
    );

    let rw = Command::new("mount")
        .args(["-o", "remount,bind,rw"])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(rw.status.success(), "cannot remount rw: {rw:?}");
    let resumed = wait_until(DEADLINE, || last_number(&file).is_some());
    assert!(
        resumed,
        "nothing written once the dir was writable\n{}",
        w.diagnostics()
    );
    let again = wait_until(DEADLINE, || {
        lines_mentioning(&w.supervisor_log(), &name)
            .iter()
            .any(|l| l.contains("again"))
    });
    assert!(again, "no `writing {name} again`\n{}", w.diagnostics());
    assert_eq!(w.service_pid("writer"), Some(pid));

    w.run_ok(&["stop"]);
    assert!(w.processes().is_empty(), "left: {:?}", w.processes());
}

/// A torn line: a prefix of `line-N xxx…` (as `write_writer` prints them), not a whole one.
fn is_torn_head(line: &str) -> bool {
    const TAIL: &str = " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    if !line.is_empty() && "line-".starts_with(line) {
        return true;
    }
    let Some(rest) = line.strip_prefix("line-") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    TAIL.starts_with(&rest[digits..]) && rest.len() - digits < TAIL.len()
}

#[test]
fn a_line_torn_by_a_full_disk_is_ended_and_writing_resumes_at_a_line_boundary() {
    let w = Sysg::new();
    std::fs::create_dir_all(&w.state).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let logs = w.state.join("logs");
    let Some(_mount) = mount_tmpfs(&logs, "256k") else {
        return;
    };
    // Space is freed later by removing this, so the log file itself stays (with the torn
    // line at its end) and writing goes on in it.
    let filler = logs.join("filler");
    std::fs::write(&filler, vec![0u8; 160 * 1024]).unwrap();

    let pid = start_writer(&w, "0.01");
    let file = logs.join("writer_stdout.log");
    let name = file.to_str().unwrap().to_string();
    let full = wait_until(Duration::from_secs(30), || {
        lines_mentioning(&w.supervisor_log(), &name)
            .iter()
            .any(|l| l.contains("cannot write"))
    });
    assert!(full, "the disk never filled\n{}", w.diagnostics());
    let before = last_number(&file).unwrap_or(0);
    std::fs::remove_file(&filler).unwrap();
    let resumed = wait_until(DEADLINE, || {
        last_number(&file).is_some_and(|k| k > before + 100)
    });
    assert!(resumed, "writing did not resume\n{}", w.diagnostics());
    w.run_ok(&["stop"]);
    assert!(!alive(pid));

    let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
    let torn: Vec<&str> = text.lines().filter(|l| is_torn_head(l)).collect();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| !is_torn_head(l) && last_number_in(l).is_none())
        .collect();
    assert!(
        bad.is_empty(),
        "lines glued or cut by the outage: {bad:?}\n{}",
        w.diagnostics()
    );
    eprintln!("torn lines (ended by the supervisor): {torn:?}");
    assert!(torn.len() <= 1, "more torn lines than outages: {torn:?}");
    let mentions = lines_mentioning(&w.supervisor_log(), &name);
    eprintln!("supervisor.log lines about {name}: {mentions:#?}");
    let again: Vec<&String> = mentions.iter().filter(|l| l.contains("again")).collect();
    assert_eq!(
        again.len(),
        1,
        "recovery said once, with what it did to the torn line: {mentions:#?}"
    );
    assert!(again[0].contains("line"), "{}", again[0]);
}

/// `Some(N)` if `line` is exactly a whole `line-N xxx…` line.
fn last_number_in(line: &str) -> Option<u64> {
    let (n, tail) = line.strip_prefix("line-")?.split_once(' ')?;
    (tail == "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        .then(|| n.parse().ok())
        .flatten()
}
