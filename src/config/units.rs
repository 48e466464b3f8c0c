//! The small value languages of the config file: durations, sizes, signal names and
//! service names. Strict on purpose (DESIGN pitfall 11): a bare `5` is not a duration.

use std::time::Duration;

const DURATION_FORM: &str =
    "expected an integer with a unit (ms, s, m, h, d), e.g. \"500ms\", \"5s\" or \"1m30s\"";

/// Parses `"500ms"`, `"5s"`, `"1m30s"`, `"2h"`, `"1d"`, `"0s"`.
///
/// Each part is an integer followed by one of `d h m s ms`; parts appear largest unit
/// first, each unit at most once. A bare number, an empty string, a sign, spaces or an
/// unknown unit are errors, so `"1m"` can never silently mean something else.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| Err(format!("invalid duration \"{s}\": {why}"));
    if s.is_empty() {
        return bad(DURATION_FORM);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_rank = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return bad(DURATION_FORM);
        }
        let Ok(number) = s[start..i].parse::<u64>() else {
            return bad("number too large");
        };
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (rank, millis) = match &s[unit_start..i] {
            "d" => (0, 86_400_000),
            "h" => (1, 3_600_000),
            "m" => (2, 60_000),
            "s" => (3, 1_000),
            "ms" => (4, 1),
            _ => return bad(DURATION_FORM),
        };
        if last_rank.is_some_and(|last| rank <= last) {
            return bad("each unit may appear once, largest first (e.g. \"1h30m\")");
        }
        last_rank = Some(rank);
        let Some(sum) = number
            .checked_mul(millis)
            .and_then(|ms| total.checked_add(ms))
        else {
            return bad("duration too large");
        };
        total = sum;
    }
    Ok(Duration::from_millis(total))
}

/// Parses `"512B"`, `"10KB"`, `"50MB"`, `"1GB"`, `"1MiB"`.
///
/// All multiples are binary: `K`/`KB`/`KiB` = 1024, `M`/`MB`/`MiB` = 1024², `G`/`GB`/`GiB`
/// = 1024³ (units are case-insensitive). A bare integer is an error rather than a byte
/// count, so a forgotten unit cannot turn "50" megabytes into 50 bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const FORM: &str =
        "expected an integer with a unit (B, KB, MB, GB; 1 KB = 1024 B), e.g. \"50MB\"";
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("invalid size \"{s}\": {FORM}"));
    }
    let Ok(number) = s[..digits].parse::<u64>() else {
        return Err(format!("invalid size \"{s}\": number too large"));
    };
    let multiplier: u64 = match s[digits..].to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size \"{s}\": {FORM}")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size \"{s}\": size too large"))
}

/// Every standard Linux signal (1 to 31), in number order. Names are what the supervisor
/// log and `status` print, and what a config may write; aliases (`IOT`, `POLL`) are left
/// out so each number has one name.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `"TERM"`, `"SIGTERM"`, `"term"` or `"15"` → `SIGTERM`. Numbers must name a known signal.
pub fn parse_signal(s: &str) -> Option<i32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = s.parse::<i32>().ok()?;
        return SIGNALS.iter().any(|&(_, sig)| sig == n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|&&(n, _)| n == name)
        .map(|&(_, sig)| sig)
}

/// `15` → `"SIGTERM"`; a number without a name (real-time signals) → `"signal 99"`. The
/// one naming used everywhere a signal is shown, so the supervisor log and `status` agree.
pub fn signal_name(sig: i32) -> String {
    match SIGNALS.iter().find(|&&(_, s)| s == sig) {
        Some((name, _)) => format!("SIG{name}"),
        None => format!("signal {sig}"),
    }
}

/// Service names become file names (`logs/<name>_stdout.log`), so they are restricted to
/// `[A-Za-z0-9_.-]`, 1 to 64 characters, and may not be `.` or `..`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_largest_first() {
        let ok = [
            ("0s", 0),
            ("500ms", 500),
            ("5s", 5_000),
            ("1m", 60_000),
            ("1m30s", 90_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("1h0m5s250ms", 3_605_250),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_reject_bare_numbers_and_junk() {
        for text in [
            "", "5", "5x", "-1s", "+1s", " 5s", "5 s", "s", "1.5s", "30s1m", "1s1s", "1S",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(&format!("\"{text}\"")), "{err}");
        }
        assert!(parse_duration("5").unwrap_err().contains("e.g. \"500ms\""));
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn sizes_are_binary_and_need_a_unit() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("10KB"), Ok(10 * 1024));
        assert_eq!(parse_size("10k"), Ok(10 * 1024));
        assert_eq!(parse_size("50MB"), Ok(50 * 1024 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("0B"), Ok(0));
        for bad in [
            "",
            "50",
            "MB",
            "5 MB",
            "5TB",
            "-1MB",
            "1.5MB",
            "99999999999999999999GB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_by_name_prefix_case_and_number() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("usr2"), Some(libc::SIGUSR2));
        for bad in ["", "0", "99", "SIG", "TERMINATE", "-15", "SIGSIGTERM"] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
        assert_eq!(signal_name(99), "signal 99");
    }

    #[test]
    fn every_standard_signal_has_one_name_that_parses_back() {
        for sig in 1..=31 {
            let name = signal_name(sig);
            assert!(name.starts_with("SIG"), "{sig}: {name}");
            assert_eq!(parse_signal(&name), Some(sig), "{name}");
        }
        assert_eq!(signal_name(libc::SIGBUS), "SIGBUS");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(
            signal_name(libc::SIGRTMIN()),
            format!("signal {}", libc::SIGRTMIN())
        );
    }

    #[test]
    fn service_names_are_safe_file_names() {
        for ok in ["api", "db-1", "a.b_c", "X", &"a".repeat(64)] {
            assert!(valid_service_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_service_name(bad), "{bad}");
        }
    }
}
