//! Fuzz target: the config loader (`config::load`: read, YAML parse, merge keys, build,
//! validate, locate errors). It must never panic, whatever the file holds.
//!
//! The crate is binary-only, so the modules are compiled here straight from ../src.
//! `src/config` only reaches outside itself for `crate::error`.
//!
//! Besides "no panic", an accepted config is checked against what the rest of the
//! supervisor relies on without re-validating (names usable as file names, no NUL for
//! execve, dependencies that exist and form no cycle); a rejected one must carry at
//! least one message.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/config/mod.rs"]
mod config;
#[path = "../../src/error.rs"]
mod error;

use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// One scratch directory per fuzzing process; every input is written to the same file in
/// it (relative paths in the config resolve against it). Removed when libFuzzer exits
/// normally; a crash leaves it behind in $TMPDIR.
fn config_path() -> PathBuf {
    SCRATCH
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("sysg-fuzz-config-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create fuzz scratch dir");
            // SAFETY: registers a plain extern "C" fn with no captured state.
            unsafe { libc::atexit(remove_scratch) };
            dir
        })
        .join("systemg.yaml")
}

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fuzz_target!(|data: &[u8]| {
    let path = config_path();
    std::fs::write(&path, data).expect("write fuzz input");
    match config::load(&path) {
        Ok(cfg) => check_accepted(&cfg),
        Err(error::Error::Config(lines)) => {
            assert!(!lines.is_empty(), "Config error without a message")
        }
        Err(other) => panic!("config::load returned a non-config error: {other:?}"),
    }
});

fn check_accepted(cfg: &config::Config) {
    assert!(
        !cfg.services.is_empty(),
        "accepted a config without services"
    );
    let mut names = HashSet::new();
    for svc in &cfg.services {
        assert!(
            config::valid_service_name(&svc.name),
            "accepted service name {:?}",
            svc.name
        );
        assert!(
            names.insert(svc.name.as_str()),
            "duplicate service {:?}",
            svc.name
        );
        assert!(
            !svc.command.trim().is_empty(),
            "{}: empty command accepted",
            svc.name
        );
        assert!(!svc.command.contains('\0'), "{}: NUL in command", svc.name);
        assert!(
            svc.working_dir.is_absolute(),
            "{}: relative working_dir",
            svc.name
        );
        assert!(
            !svc.working_dir.as_os_str().as_encoded_bytes().contains(&0),
            "{}: NUL in working_dir",
            svc.name
        );
        for layer in &svc.env {
            match layer {
                config::EnvSource::File(p) => {
                    assert!(p.is_absolute(), "{}: relative env file", svc.name)
                }
                config::EnvSource::Vars(vars) => {
                    for (k, v) in vars {
                        assert!(
                            !k.is_empty()
                                && !k
                                    .contains(|c: char| c == '=' || c == '\0' || c.is_whitespace()),
                            "{}: bad env key {k:?}",
                            svc.name
                        );
                        assert!(!v.contains('\0'), "{}: NUL in env value", svc.name);
                    }
                }
            }
        }
        if let Some(skip) = &svc.skip {
            assert!(!skip.contains('\0'), "{}: NUL in skip", svc.name);
        }
    }
    // Every dependency exists and the graph is acyclic (iterative DFS, three colours).
    let index: HashMap<&str, &config::Service> =
        cfg.services.iter().map(|s| (s.name.as_str(), s)).collect();
    for svc in &cfg.services {
        for dep in &svc.depends_on {
            assert!(
                index.contains_key(dep.as_str()),
                "{}: unknown dependency {dep:?} accepted",
                svc.name
            );
        }
    }
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
    for start in &cfg.services {
        if state.contains_key(start.name.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start.name.as_str(), 0)];
        state.insert(start.name.as_str(), 1);
        while let Some((name, next)) = stack.pop() {
            let deps = &index[name].depends_on;
            if next < deps.len() {
                stack.push((name, next + 1));
                let dep = deps[next].as_str();
                match state.get(dep) {
                    Some(1) => panic!("dependency cycle through {name} -> {dep} accepted"),
                    Some(_) => {}
                    None => {
                        state.insert(dep, 1);
                        stack.push((dep, 0));
                    }
                }
            } else {
                state.insert(name, 2);
            }
        }
    }
}
