//! Helpers shared by the integration tests: a private sysg world per test (temp HOME and
//! state dir), a guard that leaves no process behind, and `wait_until` instead of sleeps.
#![allow(dead_code)]

pub mod skip;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The binary under test: `SYSG_BIN` when set (to run the suite against another build,
/// e.g. the static one from `scripts/build-static`), else the one cargo just built.
pub fn sysg_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| match std::env::var("SYSG_BIN") {
        Ok(path) if !path.is_empty() => path,
        _ => env!("CARGO_BIN_EXE_sysg").to_string(),
    })
}

/// Deadline for conditions that need the supervisor to act; CI is a loaded 2-core box.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Longest any single sysg command may take before the test calls it hung.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Polls `cond` every 25 ms until it holds or `limit` passes. True if it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Polls `cond` for the whole of `window`: true if it held every time. For asserting that
/// something does NOT happen (no restart), where there is no event to wait for.
pub fn holds_for(window: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        if !cond() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// A number no other test in this run uses, for `sleep N` commands found by their args.
pub fn unique_number() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let seed =
        std::process::id().wrapping_mul(7919) ^ nanos.wrapping_mul(31) ^ n.wrapping_mul(104_729);
    100_000 + (seed % 800_000)
}

/// Removes the common leading indentation so YAML can be written indented in the tests.
pub fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        if l.len() >= indent {
            out.push_str(&l[indent..]);
        }
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Runs `cmd` to completion, killing it (and failing) if it takes longer than `limit`.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot run sysg");
    let out_reader = reader(child.stdout.take().unwrap());
    let err_reader = reader(child.stderr.take().unwrap());
    let status = wait_child(&mut child, limit);
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    match status {
        Some(s) => Output {
            code: code_of(s),
            stdout,
            stderr,
        },
        None => panic!(
            "command {cmd:?} did not finish within {limit:?}\nstdout: {stdout}\nstderr: {stderr}"
        ),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test's private sysg world. Dropping it stops the supervisor and kills anything
/// that still carries this world's state dir in its environment.
pub struct Sysg {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub state: PathBuf,
    /// Where configs are written; services run here by default.
    pub proj: PathBuf,
}

impl Sysg {
    pub fn new() -> Sysg {
        let tmp = tempfile::Builder::new()
            .prefix("sysg-itest-")
            .tempdir()
            .unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let home = root.join("home");
        let proj = root.join("proj");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&proj).unwrap();
        Sysg {
            state: root.join("state"),
            home,
            proj,
            tmp,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().canonicalize().unwrap()
    }

    /// A sysg command in this world, run from the temp root (not the config's dir).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sysg_bin());
        cmd.args(args)
            .current_dir(self.root())
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.root().join("xdg"))
            .env("SYSG_STATE_DIR", &self.state)
            .env("NO_COLOR", "1")
            .env_remove("SYSG_SERVICE");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_with_limit(self.command(args), COMMAND_LIMIT)
    }

    /// Runs and asserts the exit code, returning the output.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.code,
            0,
            "sysg {args:?} failed\n{out}\n{}",
            self.diagnostics()
        );
        out
    }

    /// Writes `yaml` (dedented) as `proj/<name>` and returns its path.
    pub fn write_config_named(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.proj.join(name);
        std::fs::write(&path, dedent(yaml)).unwrap();
        path
    }

    pub fn write_config(&self, yaml: &str) -> PathBuf {
        self.write_config_named("sysg.yaml", yaml)
    }

    pub fn proj_file(&self, name: &str) -> PathBuf {
        self.proj.join(name)
    }

    pub fn read_proj(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.proj.join(name)).ok()
    }

    /// `sysg start -d -c <config>`; asserts success and returns the output.
    pub fn start_daemon(&self, config: &Path) -> Output {
        let out = self.run(&["start", "-d", "-c", config.to_str().unwrap()]);
        assert_eq!(
            out.code,
            0,
            "start -d failed\n{out}\n{}",
            self.diagnostics()
        );
        out
    }

    /// Writes the config and starts a detached supervisor on it.
    pub fn start_with(&self, yaml: &str) -> PathBuf {
        let cfg = self.write_config(yaml);
        self.start_daemon(&cfg);
        cfg
    }

    pub fn status_json(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert_eq!(
            out.code,
            0,
            "status --json failed\n{out}\n{}",
            self.diagnostics()
        );
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{out}"))
    }

    /// The `services[]` entry of `name` in `status --json`, if present.
    pub fn service(&self, name: &str) -> Option<Value> {
        service_in(&self.status_json(), name)
    }

    pub fn service_status(&self, name: &str) -> Option<String> {
        self.service(name)
            .and_then(|s| s["status"].as_str().map(str::to_string))
    }

    pub fn service_pid(&self, name: &str) -> Option<i32> {
        self.service(name)
            .and_then(|s| s["pid"].as_i64())
            .map(|p| p as i32)
    }

    /// Waits until `name` has `status`; panics with diagnostics otherwise.
    pub fn wait_status(&self, name: &str, status: &str) -> Value {
        let mut last = None;
        let ok = wait_until(DEADLINE, || {
            last = self.service(name);
            last.as_ref().is_some_and(|s| s["status"] == status)
        });
        assert!(
            ok,
            "{name} never reached status {status}; last: {last:#?}\n{}",
            self.diagnostics()
        );
        last.unwrap()
    }

    /// Waits until `name` is running with a pid (optionally different from `not`).
    pub fn wait_running_pid(&self, name: &str, not: Option<i32>) -> i32 {
        let mut last = None;
        let ok = wait_until(DEADLINE, || {
            last = self.service(name);
            last.as_ref().is_some_and(|s| {
                s["status"] == "running" && s["pid"].as_i64().is_some_and(|p| Some(p as i32) != not)
            })
        });
        assert!(
            ok,
            "{name} never ran with a new pid (old {not:?}); last: {last:#?}\n{}",
            self.diagnostics()
        );
        last.unwrap()["pid"].as_i64().unwrap() as i32
    }

    pub fn wait_file(&self, name: &str) -> String {
        let path = self.proj.join(name);
        let ok = wait_until(DEADLINE, || path.exists());
        assert!(
            ok,
            "{} never appeared\n{}",
            path.display(),
            self.diagnostics()
        );
        let mut text = String::new();
        wait_until(DEADLINE, || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            !text.is_empty()
        });
        text
    }

    pub fn status_text(&self) -> Output {
        self.run(&["status"])
    }

    pub fn supervisor_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state.join("sysg.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Every live process (not the test itself) whose environment carries this world's
    /// state dir: the supervisor and all service processes, escaped ones included.
    pub fn processes(&self) -> Vec<i32> {
        let marker = format!("SYSG_STATE_DIR={}", self.state.display());
        live_pids()
            .into_iter()
            .filter(|&p| environ(p).contains(&marker))
            .collect()
    }

    /// Live processes of service `name` in this world.
    pub fn service_processes(&self, name: &str) -> Vec<i32> {
        let state = format!("SYSG_STATE_DIR={}", self.state.display());
        let svc = format!("SYSG_SERVICE={name}");
        live_pids()
            .into_iter()
            .filter(|&p| {
                let env = environ(p);
                env.contains(&state) && env.contains(&svc)
            })
            .collect()
    }

    /// Waits until supervisor.log has a line containing every one of `parts`; returns it.
    pub fn wait_log_line(&self, parts: &[&str]) -> String {
        let mut line = None;
        let ok = wait_until(DEADLINE, || {
            line = self
                .supervisor_log()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_string);
            line.is_some()
        });
        assert!(
            ok,
            "supervisor.log has no line with {parts:?}\n{}",
            self.diagnostics()
        );
        line.unwrap_or_default()
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.state.join("supervisor.log")).unwrap_or_default()
    }

    /// What to print when an assertion fails: the status and the supervisor's log tail.
    pub fn diagnostics(&self) -> String {
        let status = run_with_limit(self.command(&["status"]), Duration::from_secs(10));
        let log = self.supervisor_log();
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "--- sysg status ---\n{}{}\n--- supervisor.log (tail) ---\n{}",
            status.stdout,
            status.stderr,
            tail.join("\n")
        )
    }

    fn cleanup(&self) {
        if self.state.join("sysg.pid").exists() {
            let mut cmd = self.command(&["stop"]);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = cmd.spawn() {
                if wait_child(&mut child, Duration::from_secs(30)).is_none() {
                    eprintln!("cleanup: sysg stop hung");
                }
            }
        }
        // Last resort: the recorded supervisor, the recorded groups, and anything still
        // carrying our state dir (escaped descendants included).
        let mine = self.processes();
        if let Some(pid) = self.supervisor_pid() {
            if mine.contains(&pid) {
                kill(pid, libc::SIGKILL);
            }
        }
        if let Ok(text) = std::fs::read_to_string(self.state.join("pid.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if let Some(map) = v["services"].as_object() {
                    for pid in map.values().filter_map(|p| p.as_i64()) {
                        if mine.contains(&(pid as i32)) {
                            kill(-(pid as i32), libc::SIGKILL);
                        }
                    }
                }
            }
        }
        for _ in 0..50 {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            for pid in left {
                kill(pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sysg {
    fn drop(&mut self) {
        self.cleanup();
    }
}

pub fn service_in(status: &Value, name: &str) -> Option<Value> {
    status["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

pub fn alive(pid: i32) -> bool {
    match proc_state(pid) {
        Some(state) => state != 'Z' && state != 'X',
        None => false,
    }
}

/// True once `pid` has finished exiting: gone from /proc, or every thread of it a zombie.
/// `!alive` is not enough after a SIGKILL: the main thread shows Z while another thread
/// is still closing the process's files (and releasing its locks).
pub fn exited(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .all(|t| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{t}/stat"));
            let state = stat
                .ok()
                .and_then(|s| s.get(s.rfind(')')? + 2..)?.chars().next());
            matches!(state, None | Some('Z') | Some('X'))
        })
}

/// The state letter from /proc/<pid>/stat.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// The process group of `pid`, from /proc/<pid>/stat.
pub fn pgid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(2)?.parse().ok()
}

pub fn live_pids() -> Vec<i32> {
    all_pids().into_iter().filter(|&p| alive(p)).collect()
}

/// Every pid in /proc (not the test itself), zombies included: for checks that a
/// process was reaped, which `live_pids` cannot see.
pub fn all_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .collect()
}

pub fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Live processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<(i32, String)> {
    live_pids()
        .into_iter()
        .map(|p| (p, cmdline(p)))
        .filter(|(_, c)| c.contains(needle))
        .collect()
}

/// A pid no process uses right now.
pub fn unused_pid() -> i32 {
    (999_999..)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

// ----- helpers for the cron, hooks and seed-example tests ---------------------------

/// Reads a JSON file, `Null` if it is missing or not JSON.
pub fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// Lines in a file (0 if it does not exist).
pub fn count_lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

impl Sysg {
    /// The supervisor's `state.json` (`Null` if missing).
    pub fn state_json(&self) -> Value {
        read_json(&self.state.join("state.json"))
    }

    /// `services.<name>.cron.history` from state.json (newest first as stored).
    pub fn cron_history(&self, name: &str) -> Vec<Value> {
        self.state_json()["services"][name]["cron"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Lines in `proj/<name>` (0 if it does not exist).
    pub fn count_proj_lines(&self, name: &str) -> usize {
        count_lines_in(&self.proj.join(name))
    }

    /// `status` as text; asserts it answered with exit 0.
    pub fn status_ok(&self) -> String {
        let out = self.status_text();
        assert_eq!(out.code, 0, "status failed\n{out}");
        out.stdout
    }
}

// ----- helpers for the hardening tests (churn, disk trouble, peer uid, containment) ----

/// Open file descriptors of `pid` (entries of /proc/PID/fd), `None` if unreadable.
pub fn fd_count(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// VmRSS of `pid` in kB, from /proc/PID/status.
pub fn vm_rss_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Live processes whose command line is exactly `cmd` (e.g. `sleep 123456`).
pub fn processes_exactly(cmd: &str) -> Vec<i32> {
    live_pids()
        .into_iter()
        .filter(|&p| cmdline(p) == cmd)
        .collect()
}

/// The first executable called `name` on PATH (or the standard system dirs).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}
