//! IANA time zones read from the system's compiled zone files (TZif, RFC 8536) and parsed
//! by the `tz-rs` crate, exposed as a `chrono::TimeZone` so cron schedules can follow a
//! named zone's wall clock without embedding the tz database in the binary.
//!
//! A zone is looked up as `$TZDIR/<name>` (default `/usr/share/zoneinfo/<name>`), read
//! here (regular files only, size-capped) and handed to `tz::TimeZone::from_tz_data`.
//! Instants after the last listed transition follow the footer's POSIX TZ rule
//! (e.g. `CET-1CEST,M3.5.0,M10.5.0/3`); without a footer rule the last type stays in
//! force.
//!
//! What tz-rs does not accept is an error when the zone is loaded: TZif version 4 files,
//! footers naming a daylight-saving time without its start and end rules (`EST5EDT`),
//! abbreviations over 7 characters. The system's tzdata contains none of these outside
//! the leap-second (`right/`) zones. Where a file lists leap seconds, tz-rs takes them
//! into account when finding the type in force (chrono's wall clock has no 23:59:60).

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where zone files live when `$TZDIR` is not set.
const DEFAULT_TZDIR: &str = "/usr/share/zoneinfo";

/// Real zone files are a few KiB; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A zone loaded from a TZif file. Cheap to clone (the data is shared).
#[derive(Clone)]
pub struct Zone {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    tz: ::tz::TimeZone,
    /// Every UTC offset the zone uses (table and footer rule), largest first: the
    /// candidates when mapping a wall-clock time back to instants.
    offsets: Vec<i32>,
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
                    return Zone::utc(name);
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

    /// Parses the contents of a TZif file. `name` is only recorded, for `name()`.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<Zone, String> {
        if !bytes.starts_with(b"TZif") {
            return Err("not a TZif zone file".into());
        }
        let tz = ::tz::TimeZone::from_tz_data(bytes).map_err(|e| e.to_string())?;
        Zone::new(name, tz)
    }

    fn new(name: &str, tz: ::tz::TimeZone) -> Result<Zone, String> {
        let zone = tz.as_ref();
        let mut offsets: Vec<i32> = zone
            .local_time_types()
            .iter()
            .map(|ty| ty.ut_offset())
            .collect();
        match zone.extra_rule() {
            Some(::tz::timezone::TransitionRule::Fixed(ty)) => offsets.push(ty.ut_offset()),
            Some(::tz::timezone::TransitionRule::Alternate(alt)) => {
                offsets.extend([alt.std().ut_offset(), alt.dst().ut_offset()]);
            }
            None => {}
        }
        // chrono's offsets stay below a day in magnitude; tz-rs does not check that.
        if let Some(bad) = offsets
            .iter()
            .find(|&&o| FixedOffset::east_opt(o).is_none())
        {
            return Err(format!("UTC offset {bad} s is a day or more"));
        }
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets.dedup();
        Ok(Zone {
            inner: Arc::new(Inner {
                name: name.to_string(),
                tz,
                offsets,
            }),
        })
    }

    /// The name the zone was loaded under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// UTC without a zone file (a system without tzdata still has UTC).
    fn utc(name: &str) -> Result<Zone, String> {
        let ty = ::tz::LocalTimeType::new(0, false, Some(b"UTC")).map_err(|e| e.to_string())?;
        let tz = ::tz::TimeZone::new(Vec::new(), vec![ty], Vec::new(), None)
            .map_err(|e| e.to_string())?;
        Zone::new(name, tz)
    }

    /// The local time type in force at the instant `t` (Unix seconds).
    fn type_at(&self, t: i64) -> ::tz::LocalTimeType {
        let zone = self.inner.tz.as_ref();
        match zone.find_local_time_type(t) {
            Ok(ty) => *ty,
            // tz-rs has no answer after the last transition when there is no footer rule
            // (version 1 files, empty footers): the last type stays in force, as in glibc.
            // Should its arithmetic fail for some extreme instant, the same fallback (the
            // table's first or last type) applies.
            Err(_) => {
                let types = zone.local_time_types();
                match zone.transitions().last() {
                    Some(last) if t >= last.unix_leap_time() => types[last.local_time_type_index()],
                    _ => types[0],
                }
            }
        }
    }

    fn offset_for(&self, ty: ::tz::LocalTimeType) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            // Checked when the zone was loaded.
            offset: FixedOffset::east_opt(ty.ut_offset()).unwrap_or(chrono::Utc.fix()),
            ty,
        }
    }

    /// Every transition instant listed in the file's table (not the footer's).
    #[cfg(test)]
    fn table_transitions(&self) -> Vec<i64> {
        let zone = self.inner.tz.as_ref();
        zone.transitions()
            .iter()
            .map(|t| t.unix_leap_time())
            .collect()
    }

    #[cfg(test)]
    fn has_footer_rule(&self) -> bool {
        self.inner.tz.as_ref().extra_rule().is_some()
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
    ty: ::tz::LocalTimeType,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(self.ty.time_zone_designation())
        } else {
            fmt::Display::fmt(&self.offset, f)
        }
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.offset, self.ty.time_zone_designation())
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
        // An instant showing `wall` is `wall - offset` for one of the zone's offsets,
        // and only if that offset is the one in force then. Largest offset first means
        // earliest instant first.
        let mut found = self.inner.offsets.iter().filter_map(|&offset| {
            let ty = self.type_at(wall - i64::from(offset));
            (ty.ut_offset() == offset).then_some(ty)
        });
        match (found.next(), found.next_back()) {
            (None, _) => LocalResult::None,
            (Some(ty), None) => LocalResult::Single(self.offset_for(ty)),
            (Some(early), Some(late)) => {
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

#[cfg(test)]
mod tests;
