//! Skips that `cargo test` cannot hide. A test that cannot run here says why on stderr
//! (shown with `--nocapture` only) and appends one line to a skip file, which `.ci/run`
//! summarises after the run:
//!
//! ```text
//! <test binary>::<test name> TAB <root-only: yes|no> TAB <reason>
//! ```
//!
//! The file is `skips.tsv` in `$SYSG_SKIP_DIR` when set (`.ci/run` sets it), else in
//! cargo's per-target temp dir. Each line is one `write(2)` on an `O_APPEND` descriptor,
//! so tests running in parallel (threads or binaries) never interleave their lines.

use std::io::Write;
use std::path::PathBuf;

/// Names the directory that receives `skips.tsv`.
pub const DIR_ENV: &str = "SYSG_SKIP_DIR";

/// The test skipped for want of something CI has when it runs as root: root itself, or a
/// program `.ci/run` installs (man-db, tzdata, util-linux, python3). `.ci/run` running as
/// root fails on such a skip.
pub fn root_only(reason: &str) {
    record(true, reason);
}

/// The test skipped for a property of the host that CI does not control (how `localhost`
/// resolves, ...). Reported, never a CI failure.
pub fn host_dependent(reason: &str) {
    record(false, reason);
}

/// The skip file this test binary appends to.
pub fn file() -> PathBuf {
    let dir = match std::env::var_os(DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    };
    dir.join("skips.tsv")
}

/// One skip line, without tabs or newlines inside its fields.
pub fn line(test: &str, root_only: bool, reason: &str) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let flag = if root_only { "yes" } else { "no" };
    format!("{}\t{flag}\t{}\n", clean(test), clean(reason))
}

/// `<test binary>::<test name>`: libtest runs each test on a thread named after it.
fn test_name() -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unknown test");
    format!("{}::{name}", env!("CARGO_CRATE_NAME"))
}

fn record(root_only: bool, reason: &str) {
    let test = test_name();
    eprintln!("SKIPPED {test}: {reason}");
    let path = file();
    let text = line(&test, root_only, reason);
    let written = std::fs::create_dir_all(path.parent().unwrap_or(&path))
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        // One write, not write_all: a retried remainder could land after another line.
        .and_then(|mut f| f.write(text.as_bytes()));
    match written {
        Ok(n) if n == text.len() => {}
        other => panic!(
            "could not record the skip of {test} in {}: {other:?}",
            path.display()
        ),
    }
}
