use super::*;
use chrono::{DateTime, Utc};
use std::str::FromStr;

const ZONEINFO: &str = "/usr/share/zoneinfo";

/// A real zone from the system, or None (with a note) when tzdata is not installed.
fn system_zone(name: &str) -> Option<Zone> {
    let path = Path::new(ZONEINFO).join(name);
    if !path.is_file() {
        eprintln!("skipping: {} not present", path.display());
        return None;
    }
    Some(Zone::load_from(Path::new(ZONEINFO), name).expect(name))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// The offset (as "+hh:mm") of `zone` at the UTC instant `at`.
fn off(zone: &Zone, at: &str) -> String {
    zone.offset_from_utc_datetime(&utc(at).naive_utc())
        .to_string()
}

fn abbrev(zone: &Zone, at: &str) -> String {
    format!("{:#}", zone.offset_from_utc_datetime(&utc(at).naive_utc()))
}

fn local_offsets(zone: &Zone, at: &str) -> LocalResult<String> {
    zone.offset_from_local_datetime(&local(at))
        .map(|o| o.to_string())
}

/// Builds a TZif file: version 0 writes only 32-bit data; other versions write the
/// same table as 32-bit data, then as 64-bit data, then the footer.
fn tzif(
    version: u8,
    transitions: &[(i64, u8)],
    types: &[(i32, bool, &str)],
    footer: &str,
) -> Vec<u8> {
    let mut chars = Vec::new();
    let mut ttinfo = Vec::new();
    for &(utoff, dst, abbrev) in types {
        ttinfo.extend_from_slice(&utoff.to_be_bytes());
        ttinfo.push(u8::from(dst));
        ttinfo.push(chars.len() as u8);
        chars.extend_from_slice(abbrev.as_bytes());
        chars.push(0);
    }
    let header = |version: u8, timecnt: usize, typecnt: usize, charcnt: usize| {
        let mut h = b"TZif".to_vec();
        h.push(version);
        h.extend_from_slice(&[0; 15]);
        for n in [0, 0, 0, timecnt, typecnt, charcnt] {
            h.extend_from_slice(&(n as u32).to_be_bytes());
        }
        h
    };
    let data = |time_size: usize| {
        let mut d = Vec::new();
        for &(t, _) in transitions {
            if time_size == 4 {
                d.extend_from_slice(&(t as i32).to_be_bytes());
            } else {
                d.extend_from_slice(&t.to_be_bytes());
            }
        }
        d.extend(transitions.iter().map(|&(_, i)| i));
        d.extend_from_slice(&ttinfo);
        d.extend_from_slice(&chars);
        d
    };
    let mut out = Vec::new();
    if version == 0 {
        out.extend(header(0, transitions.len(), types.len(), chars.len()));
        out.extend(data(4));
    } else {
        out.extend(header(version, transitions.len(), types.len(), chars.len()));
        out.extend(data(4));
        out.extend(header(version, transitions.len(), types.len(), chars.len()));
        out.extend(data(8));
        out.push(b'\n');
        out.extend_from_slice(footer.as_bytes());
        out.push(b'\n');
    }
    out
}

fn footer_zone(footer: &str) -> Zone {
    Zone::from_tzif(
        "Test/Footer",
        // Version 3: the RFC 8536 extensions (hours beyond 24, negative) are allowed.
        &tzif(b'3', &[], &[(0, false, "LMT")], footer),
    )
    .unwrap()
}

// ------------------------------------------------------------------ real files

#[test]
fn utc_zone() {
    let Some(z) = system_zone("UTC") else { return };
    assert_eq!(z.name(), "UTC");
    assert_eq!(off(&z, "2025-07-01T12:00:00Z"), "+00:00");
    assert_eq!(abbrev(&z, "2100-07-01T12:00:00Z"), "UTC");
    assert_eq!(
        local_offsets(&z, "2025-03-30 02:30:00"),
        LocalResult::Single("+00:00".into())
    );
}

#[test]
fn berlin_offsets_including_far_future() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    assert_eq!(off(&z, "2025-07-01T12:00:00Z"), "+02:00");
    assert_eq!(abbrev(&z, "2025-07-01T12:00:00Z"), "CEST");
    assert_eq!(off(&z, "2025-01-15T12:00:00Z"), "+01:00");
    assert_eq!(abbrev(&z, "2025-01-15T12:00:00Z"), "CET");
    // Exact transition instants (01:00 UTC both ways in the EU).
    assert_eq!(off(&z, "2025-03-30T00:59:59Z"), "+01:00");
    assert_eq!(off(&z, "2025-03-30T01:00:00Z"), "+02:00");
    assert_eq!(off(&z, "2025-10-26T00:59:59Z"), "+02:00");
    assert_eq!(off(&z, "2025-10-26T01:00:00Z"), "+01:00");
    // 2100 lies beyond the last listed transition: the footer rule answers.
    let t2100 = utc("2100-07-01T12:00:00Z").timestamp();
    assert!(z
        .table_transitions()
        .last()
        .is_some_and(|&last| last < t2100));
    assert!(z.has_footer_rule());
    assert_eq!(off(&z, "2100-07-01T12:00:00Z"), "+02:00");
    assert_eq!(off(&z, "2100-01-15T12:00:00Z"), "+01:00");
    // Last Sunday of March 2100 is the 28th.
    assert_eq!(off(&z, "2100-03-28T00:59:59Z"), "+01:00");
    assert_eq!(off(&z, "2100-03-28T01:00:00Z"), "+02:00");
    // History: Berlin kept Central European time in 1950 (no DST).
    assert_eq!(off(&z, "1950-07-01T12:00:00Z"), "+01:00");
    // Local mean time before the first transition (type 0).
    assert_eq!(off(&z, "1850-01-01T00:00:00Z"), "+00:53:28");
    assert_eq!(abbrev(&z, "1850-01-01T00:00:00Z"), "LMT");
}

#[test]
fn new_york_offsets() {
    let Some(z) = system_zone("America/New_York") else {
        return;
    };
    assert_eq!(off(&z, "2025-07-01T12:00:00Z"), "-04:00");
    assert_eq!(off(&z, "2025-01-15T12:00:00Z"), "-05:00");
    assert_eq!(abbrev(&z, "2025-01-15T12:00:00Z"), "EST");
    assert_eq!(off(&z, "2100-07-01T12:00:00Z"), "-04:00");
    assert_eq!(abbrev(&z, "2100-07-01T12:00:00Z"), "EDT");
    assert_eq!(off(&z, "2100-12-01T12:00:00Z"), "-05:00");
    // 2025: DST from Mar 9 07:00Z to Nov 2 06:00Z.
    assert_eq!(off(&z, "2025-03-09T06:59:59Z"), "-05:00");
    assert_eq!(off(&z, "2025-03-09T07:00:00Z"), "-04:00");
    assert_eq!(off(&z, "2025-11-02T05:59:59Z"), "-04:00");
    assert_eq!(off(&z, "2025-11-02T06:00:00Z"), "-05:00");
    assert_eq!(local_offsets(&z, "2025-03-09 02:30:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2025-11-02 01:30:00"),
        LocalResult::Ambiguous("-04:00".into(), "-05:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-11-02 02:00:00"),
        LocalResult::Single("-05:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-03-09 03:00:00"),
        LocalResult::Single("-04:00".into())
    );
}

#[test]
fn kolkata_half_hour() {
    let Some(z) = system_zone("Asia/Kolkata") else {
        return;
    };
    assert_eq!(off(&z, "2025-07-01T12:00:00Z"), "+05:30");
    assert_eq!(off(&z, "2025-01-15T12:00:00Z"), "+05:30");
    assert_eq!(off(&z, "2100-07-01T12:00:00Z"), "+05:30");
    assert_eq!(abbrev(&z, "2100-07-01T12:00:00Z"), "IST");
    let t = z.with_ymd_and_hms(2025, 7, 1, 17, 30, 0).single().unwrap();
    assert_eq!(t.with_timezone(&Utc), utc("2025-07-01T12:00:00Z"));
}

#[test]
fn lord_howe_half_hour_dst() {
    let Some(z) = system_zone("Australia/Lord_Howe") else {
        return;
    };
    assert_eq!(off(&z, "2025-01-15T12:00:00Z"), "+11:00");
    assert_eq!(off(&z, "2025-07-01T12:00:00Z"), "+10:30");
    assert_eq!(off(&z, "2100-01-15T12:00:00Z"), "+11:00");
    assert_eq!(off(&z, "2100-07-01T12:00:00Z"), "+10:30");
    // DST starts the first Sunday of October at 02:00 (-> 02:30), ends the first
    // Sunday of April at 02:00 (-> 01:30).
    assert_eq!(local_offsets(&z, "2025-10-05 02:15:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2025-10-05 02:30:00"),
        LocalResult::Single("+11:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-04-06 01:45:00"),
        LocalResult::Ambiguous("+11:00".into(), "+10:30".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-04-06 02:00:00"),
        LocalResult::Single("+10:30".into())
    );
}

#[test]
fn berlin_gap_and_overlap() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    assert_eq!(local_offsets(&z, "2025-03-30 02:30:00"), LocalResult::None);
    assert_eq!(local_offsets(&z, "2025-03-30 02:00:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2025-03-30 01:59:59"),
        LocalResult::Single("+01:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-03-30 03:00:00"),
        LocalResult::Single("+02:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-10-26 02:30:00"),
        LocalResult::Ambiguous("+02:00".into(), "+01:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-10-26 03:00:00"),
        LocalResult::Single("+01:00".into())
    );
    assert_eq!(
        local_offsets(&z, "2025-10-26 01:59:59"),
        LocalResult::Single("+02:00".into())
    );
    // The same through the footer rule, far in the future.
    assert_eq!(local_offsets(&z, "2100-03-28 02:30:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2100-10-31 02:30:00"),
        LocalResult::Ambiguous("+02:00".into(), "+01:00".into())
    );
    // Whole DateTimes: earlier = CEST instant, later = CET instant.
    let LocalResult::Ambiguous(a, b) = z.with_ymd_and_hms(2025, 10, 26, 2, 30, 0) else {
        panic!("not ambiguous")
    };
    assert_eq!(a.with_timezone(&Utc), utc("2025-10-26T00:30:00Z"));
    assert_eq!(b.with_timezone(&Utc), utc("2025-10-26T01:30:00Z"));
    assert_eq!(a.to_rfc3339(), "2025-10-26T02:30:00+02:00");
    assert_eq!(b.to_string(), "2025-10-26 02:30:00 +01:00");
    assert_eq!(format!("{:?}", b.offset()), "+01:00 CET");
    assert_eq!(format!("{z:?}"), "Zone(\"Europe/Berlin\")");
    // Subsecond local times follow the second they are in.
    let t = local("2025-03-30 01:59:59")
        .with_nanosecond(999_999_999)
        .unwrap();
    assert!(z.offset_from_local_datetime(&t).single().is_some());
    // from_offset gives the zone back.
    assert_eq!(Zone::from_offset(a.offset()).name(), "Europe/Berlin");
}

use chrono::Timelike;

/// Runs the system's `date` (glibc's reading of the same files) over `instants`,
/// returning "%z %Z" per instant, or None if `date` is unusable.
fn system_date(zone: &str, instants: &[i64]) -> Option<Vec<String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("date")
        .env("TZ", zone)
        .env("TZDIR", ZONEINFO)
        .args(["-f", "-", "+%z %Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut input = String::new();
    for t in instants {
        input.push_str(&format!("@{t}\n"));
    }
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    if !out.status.success() {
        return None;
    }
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .map(String::from)
        .collect();
    (lines.len() == instants.len()).then_some(lines)
}

/// Compares offsets and abbreviations with glibc at every transition (and one
/// second before), at a spread of instants 1850..2300, and checks that every
/// wall-clock time maps back to the instant it came from.
fn compare_with_system(name: &str) -> bool {
    let Some(z) = system_zone(name) else {
        return true;
    };
    let mut instants = Vec::new();
    for &t in z
        .table_transitions()
        .iter()
        .filter(|&&t| t > -4_000_000_000)
    {
        instants.extend([t - 1, t]);
    }
    let mut t = utc("1850-01-01T00:00:00Z").timestamp();
    let end = utc("2300-01-01T00:00:00Z").timestamp();
    while t < end {
        instants.push(t);
        t += 86_400 * 7 + 3_607;
    }
    // Around footer transitions in 2030..2110 (each 15 minutes for a few days
    // around the ends of March/October and other common switch months).
    for year in [2030, 2047, 2061, 2099, 2110] {
        for month in 1..=12 {
            for day in [1, 5, 10, 25, 28] {
                let d = NaiveDate::from_ymd_opt(year, month, day)
                    .unwrap()
                    .and_time(NaiveTime::MIN)
                    .and_utc()
                    .timestamp();
                for q in 0..(4 * 24) {
                    instants.push(d + q * 900);
                }
            }
        }
    }
    let Some(expected) = system_date(name, &instants) else {
        eprintln!("skipping comparison for {name}: `date` unavailable");
        return true;
    };
    let mut ok = true;
    for (&t, want) in instants.iter().zip(&expected) {
        let dt = DateTime::from_timestamp(t, 0).unwrap();
        let o = z.offset_from_utc_datetime(&dt.naive_utc());
        let secs = o.fix().local_minus_utc();
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.abs();
        let got = format!("{sign}{:02}{:02} {:#}", a / 3600, a / 60 % 60, o);
        // glibc writes "-0000" for the "-00" (local time unspecified) type.
        let want = if want == "-0000 -00" {
            "+0000 -00"
        } else {
            want.as_str()
        };
        if got != want {
            eprintln!("{name} at {dt}: got {got}, date says {want}");
            ok = false;
        }
        let wall = dt.with_timezone(&z).naive_local();
        let back = z.from_local_datetime(&wall);
        let round_trips = match &back {
            LocalResult::Single(x) => *x == dt,
            LocalResult::Ambiguous(x, y) => (*x == dt || *y == dt) && x < y,
            LocalResult::None => false,
        };
        if !round_trips {
            eprintln!("{name}: {dt} shows {wall} which maps to {back:?}");
            ok = false;
        }
    }
    ok
}

#[test]
fn agrees_with_glibc() {
    let zones = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Nuuk",
        "Asia/Jerusalem",
        "America/Sao_Paulo",
        "Africa/Casablanca",
        "Europe/Dublin",
        "Pacific/Chatham",
        "Antarctica/Troll",
        "America/Santiago",
        "Australia/Sydney",
        "Pacific/Apia",
        "Pacific/Kiritimati",
        "America/St_Johns",
        "Asia/Tehran",
        "Europe/London",
        "EST5EDT",
    ];
    let mut ok = true;
    for name in zones {
        ok &= compare_with_system(name);
    }
    assert!(ok);
}

/// Every zone on the system (slow: `cargo test -- --ignored`).
#[test]
#[ignore]
fn agrees_with_glibc_all_zones() {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"TZif")) {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut names = Vec::new();
    walk(Path::new(ZONEINFO), Path::new(ZONEINFO), &mut names);
    names.retain(|n| !n.starts_with("right/") && !n.starts_with("posix/"));
    names.sort();
    eprintln!("{} zones", names.len());
    let bad: Vec<&String> = names.iter().filter(|n| !compare_with_system(n)).collect();
    assert!(bad.is_empty(), "{bad:?}");
}

// ------------------------------------------------------------------ cron

fn fires(expr: &str, zone: &Zone, from: &str, n: usize) -> Vec<DateTime<Zone>> {
    let schedule = cron::Schedule::from_str(expr).unwrap();
    let start = zone.from_local_datetime(&local(from)).single().unwrap();
    schedule.after(&start).take(n).collect()
}

/// What the supervisor does: each next fire computed afresh from the previous one.
fn refires(expr: &str, zone: &Zone, from: &str, n: usize) -> Vec<DateTime<Zone>> {
    let schedule = cron::Schedule::from_str(expr).unwrap();
    let mut at = zone.from_local_datetime(&local(from)).single().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        at = schedule.after(&at).next().unwrap();
        out.push(at.clone());
    }
    out
}

fn rfc(ts: &[DateTime<Zone>]) -> Vec<String> {
    ts.iter().map(|t| t.to_rfc3339()).collect()
}

fn strictly_increasing(ts: &[DateTime<Zone>]) -> bool {
    ts.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn cron_skips_nonexistent_time_in_gap() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    // 2025-03-30 02:30 does not exist: the cron crate skips that day entirely.
    let expected = [
        "2025-03-31T02:30:00+02:00",
        "2025-04-01T02:30:00+02:00",
        "2025-04-02T02:30:00+02:00",
    ];
    let got = fires("0 30 2 * * *", &z, "2025-03-29 03:00:00", 3);
    assert_eq!(rfc(&got), expected);
    assert!(strictly_increasing(&got));
    let got = refires("0 30 2 * * *", &z, "2025-03-29 03:00:00", 3);
    assert_eq!(rfc(&got), expected);
}

#[test]
fn cron_ambiguous_time_in_overlap() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    // Recomputing from the last fire (what the supervisor does): 02:30 fires once,
    // at the first (CEST) occurrence.
    let got = refires("0 30 2 * * *", &z, "2025-10-25 03:00:00", 3);
    assert_eq!(
        rfc(&got),
        [
            "2025-10-26T02:30:00+02:00",
            "2025-10-27T02:30:00+01:00",
            "2025-10-28T02:30:00+01:00",
        ]
    );
    assert!(strictly_increasing(&got));
    // One iterator from `after()` yields both occurrences (distinct instants an
    // hour apart), still in increasing order.
    let got = fires("0 30 2 * * *", &z, "2025-10-25 03:00:00", 3);
    assert_eq!(
        rfc(&got),
        [
            "2025-10-26T02:30:00+02:00",
            "2025-10-26T02:30:00+01:00",
            "2025-10-27T02:30:00+01:00",
        ]
    );
    assert!(strictly_increasing(&got));
}

#[test]
fn cron_every_ten_seconds_across_fall_back() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    // Recomputed from each fire: strictly increasing; the repeated hour's slots
    // fire once (02:59:50 CEST is followed by 03:00:00 CET, an hour later).
    let got = refires("*/10 * * * * *", &z, "2025-10-26 01:59:00", 1200);
    assert!(strictly_increasing(&got));
    let ends: Vec<String> = got
        .windows(2)
        .filter(|w| w[1].clone() - w[0].clone() != chrono::TimeDelta::seconds(10))
        .map(|w| format!("{} -> {}", w[0].to_rfc3339(), w[1].to_rfc3339()))
        .collect();
    assert_eq!(
        ends,
        ["2025-10-26T02:59:50+02:00 -> 2025-10-26T03:00:00+01:00"]
    );

    // A single `after()` iterator goes back in time inside the repeated hour: after
    // yielding both 02:00:00 instants it continues from the later (CET) one and
    // then yields 02:00:10 CEST, which is earlier. Callers must not rely on it.
    let got = fires("*/10 * * * * *", &z, "2025-10-26 01:59:50", 4);
    assert_eq!(
        rfc(&got),
        [
            "2025-10-26T02:00:00+02:00",
            "2025-10-26T02:00:00+01:00",
            "2025-10-26T02:00:10+02:00",
            "2025-10-26T02:00:10+01:00",
        ]
    );
    assert!(!strictly_increasing(&got));
}

#[test]
fn cron_next_from_utc_instant_in_repeated_hour() {
    let Some(z) = system_zone("Europe/Berlin") else {
        return;
    };
    // `schedule.after(&t).next()` searches from t + 1 s *by wall clock* and returns
    // the earlier of two ambiguous instants. When t + 1 s is in the second pass of
    // the repeated hour, that is an instant before t.
    let schedule = cron::Schedule::from_str("*/10 * * * * *").unwrap();
    let t = utc("2025-10-26T00:59:59Z").with_timezone(&z); // 02:59:59 CEST
    let next = schedule.after(&t).next().unwrap();
    assert_eq!(next.to_rfc3339(), "2025-10-26T02:00:00+02:00");
    assert_eq!(next.with_timezone(&Utc), utc("2025-10-26T00:00:00Z"));
    assert!(
        next < t,
        "the cron crate returned an instant before `after`"
    );
    let t = utc("2025-10-26T01:00:03Z").with_timezone(&z); // 02:00:03 CET
    let next = schedule.after(&t).next().unwrap();
    assert_eq!(next.to_rfc3339(), "2025-10-26T02:00:10+02:00");
    assert!(next < t);
    // Taking the first instant after `t` from the same iterator is monotonic: the
    // iterator yields the later (CET) occurrence right after the earlier one.
    let next = schedule.after(&t).find(|x| *x > t).unwrap();
    assert_eq!(next.to_rfc3339(), "2025-10-26T02:00:10+01:00");
    let t = utc("2025-10-26T00:59:59Z").with_timezone(&z);
    let next = schedule.after(&t).find(|x| *x > t).unwrap();
    assert_eq!(next.to_rfc3339(), "2025-10-26T02:00:00+01:00");
    // Daily 02:30 asked at 02:29:59 CET (01:29:59Z, the first 02:30 already past):
    // next() answers the first 02:30 (00:30Z, in the past), `find` the second one.
    // From the previous fire time (00:30Z) both answer the next day's 02:30.
    let daily = cron::Schedule::from_str("0 30 2 * * *").unwrap();
    let t = utc("2025-10-26T01:29:59Z").with_timezone(&z);
    assert_eq!(
        daily.after(&t).next().unwrap().to_rfc3339(),
        "2025-10-26T02:30:00+02:00"
    );
    assert_eq!(
        daily.after(&t).find(|x| *x > t).unwrap().to_rfc3339(),
        "2025-10-26T02:30:00+01:00"
    );
}

// ------------------------------------------------------------------ footer rules

#[test]
fn posix_rules() {
    let z = footer_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_eq!(off(&z, "2025-03-30T00:59:59Z"), "+01:00");
    assert_eq!(off(&z, "2025-03-30T01:00:00Z"), "+02:00");
    assert_eq!(off(&z, "2025-10-26T00:59:59Z"), "+02:00");
    assert_eq!(off(&z, "2025-10-26T01:00:00Z"), "+01:00");
    assert_eq!(local_offsets(&z, "2025-03-30 02:30:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2025-10-26 02:30:00"),
        LocalResult::Ambiguous("+02:00".into(), "+01:00".into())
    );

    let z = footer_zone("EST5EDT,M3.2.0,M11.1.0");
    assert_eq!(off(&z, "2025-03-09T06:59:59Z"), "-05:00");
    assert_eq!(off(&z, "2025-03-09T07:00:00Z"), "-04:00");
    assert_eq!(off(&z, "2025-11-02T05:59:59Z"), "-04:00");
    assert_eq!(off(&z, "2025-11-02T06:00:00Z"), "-05:00");
    assert_eq!(abbrev(&z, "2025-07-01T00:00:00Z"), "EDT");

    let z = footer_zone("<+0330>-3:30");
    assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+03:30");
    assert_eq!(abbrev(&z, "2025-07-01T00:00:00Z"), "+0330");
    let z = footer_zone("UTC0");
    assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+00:00");
    let z = footer_zone("<-0130>+1:30:15");
    assert_eq!(
        z.offset_from_utc_date(&NaiveDate::from_ymd_opt(2025, 1, 1).unwrap())
            .fix()
            .local_minus_utc(),
        -5415
    );

    // Southern hemisphere (DST spans the new year).
    let z = footer_zone("AEST-10AEDT,M10.1.0,M4.1.0/3");
    assert_eq!(off(&z, "2025-01-15T00:00:00Z"), "+11:00");
    assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+10:00");
    assert_eq!(off(&z, "2025-12-31T23:00:00Z"), "+11:00");

    // Over 24 h: Thursday before last Sunday... at 26:00 = Friday 02:00.
    let z = footer_zone("IST-2IDT,M3.4.4/26,M10.5.0");
    assert_eq!(off(&z, "2025-03-27T23:59:59Z"), "+02:00");
    assert_eq!(off(&z, "2025-03-28T00:00:00Z"), "+03:00");
    assert_eq!(local_offsets(&z, "2025-03-28 02:30:00"), LocalResult::None);

    // Negative times (Nuuk): from -01:00 on the last Sunday of March (23:00 the day
    // before) to 00:00 on the last Sunday of October.
    let z = footer_zone("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    assert_eq!(off(&z, "2025-03-30T00:59:59Z"), "-02:00");
    assert_eq!(off(&z, "2025-03-30T01:00:00Z"), "-01:00");
    assert_eq!(off(&z, "2025-10-26T00:59:59Z"), "-01:00");
    assert_eq!(off(&z, "2025-10-26T01:00:00Z"), "-02:00");
    assert_eq!(local_offsets(&z, "2025-03-29 23:30:00"), LocalResult::None);
    assert_eq!(
        local_offsets(&z, "2025-10-25 23:30:00"),
        LocalResult::Ambiguous("-01:00".into(), "-02:00".into())
    );

    // Daylight time all year (RFC 8536 §3.3.1).
    let z = footer_zone("EST5EDT,0/0,J365/25");
    for at in [
        "2025-01-01T00:00:00Z",
        "2025-01-01T05:00:00Z",
        "2025-06-01T00:00:00Z",
        "2025-12-31T23:59:59Z",
        "2024-12-31T12:00:00Z",
        "2100-03-01T00:00:00Z",
    ] {
        assert_eq!(off(&z, at), "-04:00", "{at}");
    }
    assert_eq!(
        local_offsets(&z, "2025-01-01 00:30:00"),
        LocalResult::Single("-04:00".into())
    );

    // Julian days: J60 is March 1 even in leap years; 59 (zero-based) is Feb 29.
    let z = footer_zone("AAA0BBB,J60/0,J300/0");
    assert_eq!(off(&z, "2024-02-29T23:59:59Z"), "+00:00");
    assert_eq!(off(&z, "2024-03-01T00:00:00Z"), "+01:00");
    let z = footer_zone("AAA0BBB,59/0,300/0");
    assert_eq!(off(&z, "2024-02-28T23:59:59Z"), "+00:00");
    assert_eq!(off(&z, "2024-02-29T00:00:00Z"), "+01:00");
    assert_eq!(off(&z, "2025-02-28T23:59:59Z"), "+00:00");
    assert_eq!(off(&z, "2025-03-01T00:00:00Z"), "+01:00");

    // A DST name without rules (glibc would apply US rules) is not accepted by tz-rs;
    // zic never writes such a footer.
    let file = tzif(b'3', &[], &[(0, false, "LMT")], "EST5EDT");
    assert!(Zone::from_tzif("t", &file).is_err());
}

#[test]
fn tzif_versions_and_tables() {
    // Version 1: 32-bit table, no footer; after the last transition the last type
    // stays in force.
    let types = [(3600, false, "CET"), (7200, true, "CEST")];
    let trans = [(1_743_296_400, 1), (1_761_440_400, 0)]; // 2025-03-30/10-26 01:00Z
    let z = Zone::from_tzif("v1", &tzif(0, &trans, &types, "")).unwrap();
    assert_eq!(off(&z, "2025-03-30T00:59:59Z"), "+01:00");
    assert_eq!(off(&z, "2025-03-30T01:00:00Z"), "+02:00");
    assert_eq!(off(&z, "2025-10-26T01:00:00Z"), "+01:00");
    assert_eq!(off(&z, "2026-07-01T00:00:00Z"), "+01:00");
    assert_eq!(local_offsets(&z, "2025-03-30 02:30:00"), LocalResult::None);
    // Same table as version 2, 3 and 4 with a footer taking over afterwards.
    for v in [b'2', b'3'] {
        let z =
            Zone::from_tzif("v2", &tzif(v, &trans, &types, "CET-1CEST,M3.5.0,M10.5.0/3")).unwrap();
        assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+02:00");
        assert_eq!(off(&z, "2026-07-01T00:00:00Z"), "+02:00");
        assert_eq!(off(&z, "2026-03-29T00:59:59Z"), "+01:00");
        assert_eq!(off(&z, "2026-03-29T01:00:00Z"), "+02:00");
        // Before the first transition: type 0.
        assert_eq!(off(&z, "2000-07-01T00:00:00Z"), "+01:00");
    }
    // Version 4 (RFC 9636; zic writes it only for leap-second tables) is not read by
    // tz-rs.
    let v4 = tzif(b'4', &trans, &types, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert!(Zone::from_tzif("v4", &v4).is_err());
    // Empty footer: last type continues.
    let z = Zone::from_tzif("v2", &tzif(b'2', &trans, &types, "")).unwrap();
    assert_eq!(off(&z, "2026-07-01T00:00:00Z"), "+01:00");
    // Single type, no transitions.
    let z = Zone::from_tzif("fixed", &tzif(b'2', &[], &[(-9000, false, "ABC")], "")).unwrap();
    assert_eq!(off(&z, "2026-07-01T00:00:00Z"), "-02:30");
    // Extreme instants do not panic.
    let z = footer_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    for dt in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
        let _ = z.offset_from_utc_datetime(&dt);
        let _ = z.offset_from_local_datetime(&dt);
        let _ = z.from_local_datetime(&dt);
    }
}

// ------------------------------------------------------------------ bad input

#[test]
fn malformed_files_are_errors() {
    let types = [(3600, false, "CET"), (7200, true, "CEST")];
    let good = tzif(b'2', &[(0, 0)], &types, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert!(Zone::from_tzif("t", &good).is_ok());
    // The footer must agree with the type in force at the last transition (CET on
    // 1970-01-01, not CEST).
    let inconsistent = tzif(b'2', &[(0, 1)], &types, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert!(Zone::from_tzif("t", &inconsistent).is_err());
    // Every truncation is an error but one: cut right after the footer's opening
    // newline, the lone "\n" reads (to tz-rs) as an empty footer, so the table's last
    // type stays in force.
    let truncations_accepted = |file: &[u8]| -> Vec<usize> {
        (0..file.len())
            .filter(|&n| Zone::from_tzif("t", &file[..n]).is_ok())
            .collect()
    };
    let footer_at = good.len() - "CET-1CEST,M3.5.0,M10.5.0/3\n".len();
    assert_eq!(truncations_accepted(&good), [footer_at]);
    if let Ok(real) = std::fs::read(Path::new(ZONEINFO).join("Europe/Berlin")) {
        let footer_at = real.len() - "CET-1CEST,M3.5.0,M10.5.0/3\n".len();
        assert_eq!(truncations_accepted(&real), [footer_at]);
    }
    // Wrong magic.
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(Zone::from_tzif("t", &bad)
        .unwrap_err()
        .contains("not a TZif"));
    assert!(Zone::from_tzif("t", b"# not a zone file\n")
        .unwrap_err()
        .contains("not a TZif"));
    // Version byte '1' does not exist.
    let mut bad = good.clone();
    bad[4] = b'1';
    assert!(Zone::from_tzif("t", &bad).is_err());
    // Bad footers.
    for footer in [
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M3.5.0,M10.5.0/3x",
        "<+03",
        "CET-25",
        "CET",
        "CET-1CEST,M13.5.0,M10.5.0/3",
        "CET-1CEST,M3.6.0,M10.5.0/3",
        "CET-1CEST,M3.5.7,M10.5.0/3",
        "CET-1CEST,M3.5.0,M10.5.0/168",
        "CET-1CEST,J0,J365",
        "CET-1CEST,366,J365",
        "CET-1:60",
        "CET-1CEST,M3.5.0/1:2:3:4,M10.5.0",
        "CÉT-1",
        "CET-1CEST-25,M3.5.0,M10.5.0",
    ] {
        let file = tzif(b'2', &[], &[(0, false, "LMT")], footer);
        assert!(
            Zone::from_tzif("t", &file).is_err(),
            "footer {footer:?} accepted"
        );
    }
    // tz-rs is lenient where POSIX is strict (two-letter names, extra digits in the
    // hour); the offsets read are still the intended ones.
    for footer in ["XX-1", "CET-0001"] {
        let file = tzif(b'2', &[], &[(0, false, "LMT")], footer);
        let z = Zone::from_tzif("t", &file).unwrap();
        assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+01:00");
    }
    // Footer not newline-framed.
    let mut bad = tzif(b'2', &[], &[(0, false, "LMT")], "UTC0");
    bad.pop();
    assert!(Zone::from_tzif("t", &bad).is_err());
    // Transition type out of range, unsorted transitions, no types, offset too large.
    assert!(Zone::from_tzif("t", &tzif(b'2', &[(0, 5)], &[(0, false, "A")], "")).is_err());
    assert!(Zone::from_tzif("t", &tzif(b'2', &[(10, 0), (5, 0)], &[(0, false, "A")], "")).is_err());
    assert!(Zone::from_tzif("t", &tzif(b'2', &[], &[], "")).is_err());
    assert!(Zone::from_tzif("t", &tzif(b'2', &[], &[(86_400, false, "A")], "")).is_err());
    assert!(Zone::from_tzif("t", &tzif(b'2', &[], &[(i32::MIN, false, "A")], "")).is_err());
    // Counts that would overflow or promise far more data than present.
    let mut huge = good.clone();
    huge[20 + 12..20 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(Zone::from_tzif("t", &huge).is_err());
}

/// A small xorshift generator, so the fuzz loop needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn fuzz_does_not_panic() {
    let mut seeds = vec![
        tzif(
            b'2',
            &[(0, 1), (1000, 0)],
            &[(3600, false, "CET"), (7200, true, "CEST")],
            "CET-1CEST,M3.5.0,M10.5.0/3",
        ),
        tzif(
            0,
            &[(-100, 1), (1000, 0)],
            &[(3600, false, "CET"), (7200, true, "CEST")],
            "",
        ),
    ];
    for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"] {
        if let Ok(b) = std::fs::read(Path::new(ZONEINFO).join(name)) {
            seeds.push(b);
        }
    }
    let probes: Vec<NaiveDateTime> = [
        "2025-03-30 02:30:00",
        "2025-10-26 02:30:00",
        "1901-12-13 20:45:52",
        "2100-07-01 00:00:00",
        "1970-01-01 00:00:00",
    ]
    .iter()
    .map(|s| local(s))
    .chain([NaiveDateTime::MIN, NaiveDateTime::MAX])
    .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for round in 0..6000 {
        let seed = &seeds[round % seeds.len()];
        let mut bytes = seed.clone();
        match rng.below(4) {
            0 => bytes.truncate(rng.below(bytes.len() + 1)),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
            }
            2 => {
                // Damage the footer region specifically.
                let tail = bytes.len().saturating_sub(40);
                let i = tail + rng.below(bytes.len() - tail);
                bytes[i] = b"0123456789+-:,./<>JMabcEST\n"[rng.below(27)];
            }
            _ => {
                let len = rng.below(200);
                bytes = (0..len).map(|_| rng.next() as u8).collect();
                if rng.below(2) == 0 {
                    bytes.splice(0..0, b"TZif2".iter().copied());
                }
            }
        }
        if let Ok(z) = Zone::from_tzif("fuzz", &bytes) {
            accepted += 1;
            for p in &probes {
                let _ = z.offset_from_local_datetime(p);
                let _ = z.offset_from_utc_datetime(p).to_string();
            }
        }
    }
    eprintln!("fuzz: {accepted} of 6000 mutated inputs still parsed");
}

// ------------------------------------------------------------------ names

#[test]
fn names_are_checked() {
    for name in [
        "",
        "../etc/passwd",
        "/etc/localtime",
        "Europe/../../etc/passwd",
        "Europe//Berlin",
        "Europe/Berlin/",
        "./UTC",
        "Europe/Ber lin",
        "a\0b",
        "Europe\\Berlin",
    ] {
        let err = Zone::load(name).unwrap_err();
        assert!(!err.is_empty(), "{name:?}");
    }
    assert!(Zone::load("").unwrap_err().contains("empty"));
    assert!(Zone::load("/etc/localtime")
        .unwrap_err()
        .contains("absolute"));
    assert!(Zone::load("../etc/passwd").unwrap_err().contains(".."));
    assert!(Zone::load_from(Path::new(ZONEINFO), "Mars/Olympus_Mons")
        .unwrap_err()
        .contains("unknown time zone"));
    if Path::new(ZONEINFO).join("Europe").is_dir() {
        assert!(Zone::load_from(Path::new(ZONEINFO), "Europe").is_err());
    }
    if Path::new(ZONEINFO).join("Etc/GMT+5").is_file() {
        let z = Zone::load_from(Path::new(ZONEINFO), "Etc/GMT+5").unwrap();
        assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "-05:00");
    }
}

#[test]
fn loads_from_a_given_directory() {
    let dir = std::env::temp_dir().join(format!("sysg-tz-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("Test")).unwrap();
    std::fs::write(
        dir.join("Test/Zone"),
        tzif(b'2', &[], &[(0, false, "LMT")], "<+0330>-3:30"),
    )
    .unwrap();
    std::fs::write(dir.join("Test/Text"), "hello, not a zone\n").unwrap();
    let z = Zone::load_from(&dir, "Test/Zone").unwrap();
    assert_eq!(z.name(), "Test/Zone");
    assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+03:30");
    let err = Zone::load_from(&dir, "Test/Text").unwrap_err();
    assert!(err.contains("not a TZif"), "{err}");
    // UTC works without zone files.
    let z = Zone::load_from(&dir, "UTC").unwrap();
    assert_eq!(off(&z, "2025-07-01T00:00:00Z"), "+00:00");
    assert!(Zone::load_from(&dir, "Europe/Berlin").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
