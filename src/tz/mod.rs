//! IANA time zones read from the system's compiled zone files (TZif, RFC 8536), exposed
//! as a `chrono::TimeZone` so cron schedules can follow a named zone's wall clock
//! without embedding the tz database in the binary.
//!
//! A zone is looked up as `$TZDIR/<name>` (default `/usr/share/zoneinfo/<name>`). The
//! 64-bit (version 2+) data is used when present; instants after the last listed
//! transition follow the footer's POSIX TZ rule (e.g. `CET-1CEST,M3.5.0,M10.5.0/3`),
//! including the RFC 8536 extensions (transition times from -167 to 167 hours).
//!
//! Leap-second records (the `right/` zones) are skipped, not applied: transition
//! instants in such files are then off by the accumulated leap seconds (< 1 minute).

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where zone files live when `$TZDIR` is not set.
const DEFAULT_TZDIR: &str = "/usr/share/zoneinfo";

/// Real zone files are a few KiB; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

const SECS_PER_DAY: i64 = 86_400;

/// A zone loaded from a TZif file. Cheap to clone (the data is shared).
#[derive(Clone)]
pub struct Zone {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// Transition instants (Unix seconds), strictly ascending.
    transitions: Vec<i64>,
    /// `types[transition_types[i]]` is in force from `transitions[i]` on.
    transition_types: Vec<u8>,
    /// Never empty; `types[0]` is in force before the first transition.
    types: Vec<LocalType>,
    /// The rule for instants after the last transition (absent in v1 files or when
    /// the footer is empty).
    footer: Option<PosixTz>,
}

/// One kind of local time: its offset from UTC and its abbreviation ("CEST").
#[derive(Clone, Debug, PartialEq)]
struct LocalType {
    offset: FixedOffset,
    abbrev: Arc<str>,
}

impl LocalType {
    fn utoff(&self) -> i64 {
        i64::from(self.offset.local_minus_utc())
    }
}

impl Zone {
    /// Loads the zone `name` ("UTC", "Europe/Berlin") from `$TZDIR` if set, else from
    /// `/usr/share/zoneinfo`. The name must be relative and free of `.`/`..` parts.
    /// "UTC" and "Etc/UTC" work even when no zone files are installed.
    pub fn load(name: &str) -> Result<Zone, String> {
        let dir = std::env::var_os("TZDIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TZDIR));
        Zone::load_from(&dir, name)
    }

    fn load_from(dir: &Path, name: &str) -> Result<Zone, String> {
        check_name(name)?;
        let path = dir.join(name);
        let bytes = match read_zone_file(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if name == "UTC" || name == "Etc/UTC" {
                    return Ok(Zone::utc(name));
                }
                return Err(format!(
                    "unknown time zone {name:?}: {} does not exist",
                    path.display()
                ));
            }
            Err(e) => return Err(format!("time zone {name:?}: {}: {e}", path.display())),
        };
        Zone::from_tzif(name, &bytes)
            .map_err(|e| format!("time zone {name:?}: {}: {e}", path.display()))
    }

    /// Parses the contents of a TZif file (version 1, or 2 and later with the 64-bit
    /// data and the POSIX TZ footer). `name` is only recorded, for `name()`.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<Zone, String> {
        let parsed = parse_tzif(bytes)?;
        Ok(Zone {
            inner: Arc::new(Inner {
                name: name.to_string(),
                transitions: parsed.transitions,
                transition_types: parsed.transition_types,
                types: parsed.types,
                footer: parsed.footer,
            }),
        })
    }

    /// The name the zone was loaded under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn utc(name: &str) -> Zone {
        Zone {
            inner: Arc::new(Inner {
                name: name.to_string(),
                transitions: Vec::new(),
                transition_types: Vec::new(),
                types: vec![LocalType {
                    offset: chrono::Utc.fix(),
                    abbrev: Arc::from("UTC"),
                }],
                footer: None,
            }),
        }
    }

    /// The local time type in force at the instant `t` (Unix seconds).
    fn type_at(&self, t: i64) -> &LocalType {
        let inner = &*self.inner;
        let idx = inner.transitions.partition_point(|&x| x <= t);
        match (idx, &inner.footer) {
            (0, Some(footer)) if inner.transitions.is_empty() => footer.type_at(t),
            (0, _) => &inner.types[0],
            (n, Some(footer)) if n == inner.transitions.len() && t > inner.transitions[n - 1] => {
                footer.type_at(t)
            }
            (n, _) => &inner.types[usize::from(inner.transition_types[n - 1])],
        }
    }

    /// Every instant in `(lo, hi)` at which the offset may change.
    fn boundaries(&self, lo: i64, hi: i64, out: &mut Vec<i64>) {
        let tr = &self.inner.transitions;
        let first = tr.partition_point(|&x| x <= lo);
        let end = tr.partition_point(|&x| x < hi);
        out.extend_from_slice(&tr[first..end]);
        if let Some(footer) = &self.inner.footer {
            if tr.last().is_none_or(|&last| hi > last) {
                footer.events_between(lo, hi, out);
            }
        }
    }

    fn offset_for(&self, ty: &LocalType) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            offset: ty.offset,
            abbrev: ty.abbrev.clone(),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.inner.name).finish()
    }
}

/// The offset of a `Zone` at some instant: what `DateTime<Zone>` carries.
///
/// `Display` shows the numeric offset ("+02:00"), the alternate form (`{:#}`) the
/// abbreviation ("CEST").
#[derive(Clone)]
pub struct ZoneOffset {
    zone: Zone,
    offset: FixedOffset,
    abbrev: Arc<str>,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&self.abbrev)
        } else {
            fmt::Display::fmt(&self.offset, f)
        }
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.offset, self.abbrev)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        // The wall clock read as if it were UTC. Offsets are whole seconds, so the
        // fraction of a second cannot move an instant across a transition.
        let wall = local.and_utc().timestamp();
        // Offsets are below a day in magnitude, so the instants showing `wall` lie
        // within a day of it. Split that window where the offset may change and keep,
        // per piece, the instant whose offset maps it back to `wall`.
        let lo = wall - SECS_PER_DAY - 1;
        let hi = wall + SECS_PER_DAY + 1;
        let mut cuts = vec![lo];
        self.boundaries(lo, hi, &mut cuts);
        cuts.sort_unstable();
        cuts.dedup();
        let mut found: Option<(i64, &LocalType)> = None;
        let mut last: Option<&LocalType> = None;
        for (i, &start) in cuts.iter().enumerate() {
            let end = cuts.get(i + 1).copied().unwrap_or(hi);
            let ty = self.type_at(start);
            let instant = wall - ty.utoff();
            if (start..end).contains(&instant) {
                if found.is_none() {
                    found = Some((instant, ty));
                } else {
                    last = Some(ty);
                }
            }
        }
        match (found, last) {
            (None, _) => LocalResult::None,
            (Some((_, ty)), None) => LocalResult::Single(self.offset_for(ty)),
            (Some((_, early)), Some(late)) => {
                LocalResult::Ambiguous(self.offset_for(early), self.offset_for(late))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.offset_for(self.type_at(utc.and_utc().timestamp()))
    }
}

/// Zone names are paths below the zoneinfo directory: relative, no `.`/`..` or empty
/// parts, and only the characters IANA names use.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("time zone name is empty".into());
    }
    if name.starts_with('/') {
        return Err(format!(
            "time zone {name:?}: give an IANA name such as \"Europe/Berlin\", not an absolute path"
        ));
    }
    if name.len() > 255 {
        return Err(format!("time zone {name:?}: name is too long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+' | '.')))
    {
        return Err(format!(
            "time zone {name:?}: character {c:?} is not allowed in a zone name"
        ));
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "time zone {name:?}: empty, \".\" and \"..\" path components are not allowed"
        ));
    }
    Ok(())
}

fn read_zone_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a zone file (a directory?)"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other("file too large to be a zone file"));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------------
// TZif parsing

struct ParsedTzif {
    transitions: Vec<i64>,
    transition_types: Vec<u8>,
    types: Vec<LocalType>,
    footer: Option<PosixTz>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(format!(
                "truncated TZif data: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                rest.len()
            ));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_be_bytes(a)
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn read(r: &mut Reader<'_>) -> Result<Header, String> {
        let magic = r.take(4, "header")?;
        if magic != b"TZif" {
            return Err("not a TZif zone file (bad magic)".into());
        }
        let version = r.take(1, "header")?[0];
        r.take(15, "header")?;
        let counts = r.take(24, "header")?;
        let count = |i: usize| -> Result<usize, String> {
            usize::try_from(be_u32(&counts[i * 4..]))
                .map_err(|_| "TZif count too large".to_string())
        };
        Ok(Header {
            version,
            isutcnt: count(0)?,
            isstdcnt: count(1)?,
            leapcnt: count(2)?,
            timecnt: count(3)?,
            typecnt: count(4)?,
            charcnt: count(5)?,
        })
    }

    /// Size of the data block that follows the header, with `time_size`-byte times.
    fn data_len(&self, time_size: usize) -> Option<usize> {
        let parts = [
            self.timecnt.checked_mul(time_size)?,
            self.timecnt,
            self.typecnt.checked_mul(6)?,
            self.charcnt,
            self.leapcnt.checked_mul(time_size + 4)?,
            self.isstdcnt,
            self.isutcnt,
        ];
        parts.iter().try_fold(0usize, |acc, &p| acc.checked_add(p))
    }
}

fn parse_tzif(bytes: &[u8]) -> Result<ParsedTzif, String> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let header = Header::read(&mut r)?;
    match header.version {
        0 => parse_block(&mut r, &header, 4),
        b'2'..=b'9' => {
            // Skip the 32-bit block; the 64-bit one after the second header supersedes it.
            let v1_len = header.data_len(4).ok_or("TZif counts overflow")?;
            r.take(v1_len, "version 1 data block")?;
            let header2 = Header::read(&mut r)?;
            let mut parsed = parse_block(&mut r, &header2, 8)?;
            parsed.footer = read_footer(&mut r)?;
            Ok(parsed)
        }
        v => Err(format!("unsupported TZif version byte 0x{v:02x}")),
    }
}

fn parse_block(r: &mut Reader<'_>, h: &Header, time_size: usize) -> Result<ParsedTzif, String> {
    let len = h.data_len(time_size).ok_or("TZif counts overflow")?;
    if r.remaining() < len {
        return Err(format!(
            "truncated TZif data: the header announces {len} bytes of data, {} present",
            r.remaining()
        ));
    }
    if h.typecnt == 0 {
        return Err("TZif file has no local time types".into());
    }
    if h.isutcnt != 0 && h.isutcnt != h.typecnt {
        return Err("TZif isutcnt is neither 0 nor typecnt".into());
    }
    if h.isstdcnt != 0 && h.isstdcnt != h.typecnt {
        return Err("TZif isstdcnt is neither 0 nor typecnt".into());
    }
    let times = r.take(h.timecnt * time_size, "transition times")?;
    let transitions: Vec<i64> = times
        .chunks_exact(time_size)
        .map(|c| {
            if time_size == 8 {
                be_i64(c)
            } else {
                i64::from(be_i32(c))
            }
        })
        .collect();
    if transitions.windows(2).any(|w| w[0] >= w[1]) {
        return Err("TZif transition times are not in ascending order".into());
    }
    let transition_types = r.take(h.timecnt, "transition types")?.to_vec();
    if let Some(&bad) = transition_types
        .iter()
        .find(|&&i| usize::from(i) >= h.typecnt)
    {
        return Err(format!(
            "TZif transition refers to local time type {bad}, only {} exist",
            h.typecnt
        ));
    }
    let ttinfos = r.take(h.typecnt * 6, "local time types")?;
    let chars = r.take(h.charcnt, "time zone abbreviations")?;
    // Leap-second records and the standard/UT indicators are not needed.
    r.take(h.leapcnt * (time_size + 4), "leap second records")?;
    r.take(h.isstdcnt + h.isutcnt, "standard/UT indicators")?;
    let mut types = Vec::with_capacity(h.typecnt);
    for info in ttinfos.chunks_exact(6) {
        let utoff = be_i32(info);
        let offset = FixedOffset::east_opt(utoff)
            .ok_or_else(|| format!("TZif UTC offset {utoff}s is not within a day"))?;
        let idx = usize::from(info[5]);
        let abbrev = chars
            .get(idx..)
            .ok_or_else(|| format!("TZif abbreviation index {idx} is out of range"))?;
        let abbrev = abbrev.split(|&b| b == 0).next().unwrap_or_default();
        types.push(LocalType {
            offset,
            abbrev: Arc::from(String::from_utf8_lossy(abbrev).as_ref()),
        });
    }
    Ok(ParsedTzif {
        transitions,
        transition_types,
        types,
        footer: None,
    })
}

fn read_footer(r: &mut Reader<'_>) -> Result<Option<PosixTz>, String> {
    let rest = &r.buf[r.pos..];
    let body = rest
        .strip_prefix(b"\n")
        .ok_or("TZif footer missing (expected a newline after the data)")?;
    let end = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("TZif footer is not terminated by a newline")?;
    let text = std::str::from_utf8(&body[..end])
        .map_err(|_| "TZif footer is not valid text".to_string())?;
    r.pos += end + 2;
    if text.is_empty() {
        return Ok(None);
    }
    PosixTz::parse(text)
        .map(Some)
        .map_err(|e| format!("TZif footer {text:?}: {e}"))
}

// ---------------------------------------------------------------------------------
// POSIX TZ strings (the TZif footer), with the RFC 8536 extensions.

struct PosixTz {
    std: LocalType,
    dst: Option<DstRule>,
}

struct DstRule {
    dst: LocalType,
    start: RuleDate,
    /// Seconds after local midnight (standard time) of the start date.
    start_time: i64,
    end: RuleDate,
    /// Seconds after local midnight (daylight time) of the end date.
    end_time: i64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RuleDate {
    /// `Jn`: day 1..=365, February 29 never counted.
    NoLeap(u16),
    /// `n`: day 0..=365, February 29 counted.
    ZeroBased(u16),
    /// `Mm.w.d`: weekday `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay { month: u8, week: u8, weekday: u8 },
}

impl PosixTz {
    fn parse(s: &str) -> Result<PosixTz, String> {
        let mut p = PosixParser {
            s: s.as_bytes(),
            i: 0,
        };
        let std_name = p.name()?;
        let std_off = -p.hms(24)?;
        let std = local_type(std_off, std_name)?;
        if p.eof() {
            return Ok(PosixTz { std, dst: None });
        }
        let dst_name = p.name()?;
        let dst_off = match p.peek() {
            Some(b'0'..=b'9' | b'+' | b'-') => -p.hms(24)?,
            _ => std_off + 3600,
        };
        let dst = local_type(dst_off, dst_name)?;
        let rule = if p.eof() {
            // POSIX leaves this to the implementation; glibc and tzcode use US rules.
            DstRule {
                dst,
                start: RuleDate::MonthWeekDay {
                    month: 3,
                    week: 2,
                    weekday: 0,
                },
                start_time: 7200,
                end: RuleDate::MonthWeekDay {
                    month: 11,
                    week: 1,
                    weekday: 0,
                },
                end_time: 7200,
            }
        } else {
            p.expect_byte(b',')?;
            let start = p.date()?;
            let start_time = p.time()?;
            p.expect_byte(b',')?;
            let end = p.date()?;
            let end_time = p.time()?;
            if !p.eof() {
                return Err(format!("unexpected text at position {}", p.i));
            }
            DstRule {
                dst,
                start,
                start_time,
                end,
                end_time,
            }
        };
        Ok(PosixTz {
            std,
            dst: Some(rule),
        })
    }

    fn type_at(&self, t: i64) -> &LocalType {
        match &self.dst {
            Some(rule) if rule.in_dst(t, self.std.utoff()) => &rule.dst,
            _ => &self.std,
        }
    }

    /// Pushes the rule's transition instants within `(lo, hi)`.
    fn events_between(&self, lo: i64, hi: i64, out: &mut Vec<i64>) {
        let Some(rule) = &self.dst else { return };
        let std_off = self.std.utoff();
        for year in year_of(lo) - 1..=year_of(hi) + 1 {
            for t in [rule.start_utc(year, std_off), rule.end_utc(year)] {
                if lo < t && t < hi {
                    out.push(t);
                }
            }
        }
    }
}

fn local_type(utoff: i64, abbrev: &str) -> Result<LocalType, String> {
    let offset = i32::try_from(utoff)
        .ok()
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| format!("UTC offset of {abbrev} is not within a day"))?;
    Ok(LocalType {
        offset,
        abbrev: Arc::from(abbrev),
    })
}

impl DstRule {
    fn start_utc(&self, year: i64, std_off: i64) -> i64 {
        rule_day(self.start, year) * SECS_PER_DAY + self.start_time - std_off
    }

    fn end_utc(&self, year: i64) -> i64 {
        rule_day(self.end, year) * SECS_PER_DAY + self.end_time - self.dst.utoff()
    }

    /// Whether daylight time is in force at `t`: the state set by the latest start
    /// or end at or before `t`. On a tie, the later rule year wins (so DST that ends
    /// exactly when the next year's begins lasts all year), and within a year the end
    /// wins (a zero-length DST period is no DST).
    fn in_dst(&self, t: i64, std_off: i64) -> bool {
        let year = year_of(t);
        let mut latest: Option<(i64, i64, u8)> = None;
        for y in year - 2..=year + 1 {
            for (instant, kind) in [(self.start_utc(y, std_off), 0u8), (self.end_utc(y), 1u8)] {
                let key = (instant, y, kind);
                if instant <= t && latest.is_none_or(|l| key > l) {
                    latest = Some(key);
                }
            }
        }
        matches!(latest, Some((_, _, 0)))
    }
}

struct PosixParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> PosixParser<'a> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect_byte(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at position {}", c as char, self.i))
        }
    }

    /// An abbreviation: three or more letters, or `<...>` holding three or more
    /// letters, digits, `+` or `-`.
    fn name(&mut self) -> Result<&'a str, String> {
        let s: &'a [u8] = self.s;
        let (start, end) = if self.peek() == Some(b'<') {
            let start = self.i + 1;
            let len = s[start..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'-'))
                .unwrap_or(s.len() - start);
            if s.get(start + len) != Some(&b'>') {
                return Err(format!(
                    "unterminated <abbreviation> at position {}",
                    self.i
                ));
            }
            self.i = start + len + 1;
            (start, start + len)
        } else {
            let start = self.i;
            let len = s[start..]
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .unwrap_or(s.len() - start);
            self.i = start + len;
            (start, start + len)
        };
        if end - start < 3 {
            return Err(format!(
                "time zone abbreviation at position {start} is shorter than 3 characters"
            ));
        }
        std::str::from_utf8(&s[start..end]).map_err(|_| "abbreviation is not text".to_string())
    }

    /// An unsigned number of 1 to `max_digits` digits.
    fn number(&mut self, max_digits: usize) -> Result<i64, String> {
        let start = self.i;
        let mut n: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if self.i - start == max_digits {
                return Err(format!("number at position {start} has too many digits"));
            }
            n = n * 10 + i64::from(d - b'0');
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected a number at position {start}"));
        }
        Ok(n)
    }

    /// `[+-]hh[:mm[:ss]]` in seconds, hours at most `max_hours`.
    fn hms(&mut self, max_hours: i64) -> Result<i64, String> {
        let sign = match self.peek() {
            Some(b'-') => {
                self.i += 1;
                -1
            }
            Some(b'+') => {
                self.i += 1;
                1
            }
            _ => 1,
        };
        let start = self.i;
        let hours = self.number(3)?;
        if hours > max_hours {
            return Err(format!("hour {hours} at position {start} is out of range"));
        }
        let mut secs = hours * 3600;
        for unit in [60, 1] {
            if self.peek() != Some(b':') {
                break;
            }
            self.i += 1;
            let at = self.i;
            let v = self.number(2)?;
            if v > 59 {
                return Err(format!(
                    "minute/second {v} at position {at} is out of range"
                ));
            }
            secs += v * unit;
        }
        Ok(sign * secs)
    }

    /// An optional `/time` after a rule date (default 02:00).
    fn time(&mut self) -> Result<i64, String> {
        if self.peek() == Some(b'/') {
            self.i += 1;
            self.hms(167)
        } else {
            Ok(7200)
        }
    }

    fn date(&mut self) -> Result<RuleDate, String> {
        let at = self.i;
        match self.peek() {
            Some(b'J') => {
                self.i += 1;
                match self.number(3)? {
                    n @ 1..=365 => Ok(RuleDate::NoLeap(n as u16)),
                    n => Err(format!("day J{n} at position {at} is out of range")),
                }
            }
            Some(b'M') => {
                self.i += 1;
                let month = self.number(2)?;
                self.expect_byte(b'.')?;
                let week = self.number(1)?;
                self.expect_byte(b'.')?;
                let weekday = self.number(1)?;
                if !(1..=12).contains(&month) || !(1..=5).contains(&week) || weekday > 6 {
                    return Err(format!(
                        "rule M{month}.{week}.{weekday} at position {at} is out of range"
                    ));
                }
                Ok(RuleDate::MonthWeekDay {
                    month: month as u8,
                    week: week as u8,
                    weekday: weekday as u8,
                })
            }
            _ => match self.number(3)? {
                n @ 0..=365 => Ok(RuleDate::ZeroBased(n as u16)),
                n => Err(format!("day {n} at position {at} is out of range")),
            },
        }
    }
}

// ---------------------------------------------------------------------------------
// Calendar arithmetic on days since 1970-01-01 (proleptic Gregorian), in i64 so no
// instant chrono can represent overflows.

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of `year`-`month`-`day`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (UTC) calendar year containing the instant `t`.
fn year_of(t: i64) -> i64 {
    let z = t.div_euclid(SECS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let year = yoe + era * 400;
    // Months March..December belong to `year`, January and February to the next.
    if mp >= 10 {
        year + 1
    } else {
        year
    }
}

/// Days since 1970-01-01 of the local date a rule names in `year`.
fn rule_day(date: RuleDate, year: i64) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    match date {
        RuleDate::NoLeap(n) => {
            let n = i64::from(n);
            jan1 + n - 1 + i64::from(is_leap(year) && n >= 60)
        }
        RuleDate::ZeroBased(n) => jan1 + i64::from(n),
        RuleDate::MonthWeekDay {
            month,
            week,
            weekday,
        } => {
            let month = i64::from(month);
            let first = days_from_civil(year, month, 1);
            // 1970-01-01 was a Thursday (4, counting Sunday as 0).
            let first_weekday = (first + 4).rem_euclid(7);
            let mut day =
                1 + (i64::from(weekday) - first_weekday).rem_euclid(7) + 7 * (i64::from(week) - 1);
            while day > days_in_month(year, month) {
                day -= 7;
            }
            first + day - 1
        }
    }
}

#[cfg(test)]
mod tests;
