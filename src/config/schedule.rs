//! Cron expressions and timezones.

use std::path::Path;
use std::str::FromStr;

use super::Timezone;

const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Parses a cron expression.
///
/// - 6 fields `sec min hour dom mon dow` (a 7th, the year, is allowed) are handed to the
///   `cron` crate as written; its day-of-week numbers run 1 = Sunday … 7 = Saturday, and
///   names (`MON-FRI`) work too.
/// - 5 fields are classic crontab (`min hour dom mon dow`): a `0` seconds field is
///   prepended and the day-of-week field is translated from crontab numbering (0 or 7 =
///   Sunday, 1 = Monday), so `* * * * 1-5` means Monday to Friday as in crontab.
/// - `@hourly`, `@daily`, … are accepted as the `cron` crate knows them.
///
/// An expression that can never fire (`0 0 0 30 2 *`) is an error too.
pub(super) fn parse_cron(expression: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let normalized = match fields.len() {
        _ if expression.trim_start().starts_with('@') => expression.trim().to_string(),
        5 => {
            let dow = classic_day_of_week(fields[4])?;
            format!(
                "0 {} {} {} {} {dow}",
                fields[0], fields[1], fields[2], fields[3]
            )
        }
        6 | 7 => fields.join(" "),
        n => {
            return Err(format!(
                "expected 5 fields (min hour dom mon dow) or 6 to 7 \
                 (sec min hour dom mon dow [year]), got {n}"
            ))
        }
    };
    let schedule = cron::Schedule::from_str(&normalized).map_err(|e| {
        format!(
            "invalid cron expression \"{expression}\": {}",
            cron_reason(&e.to_string())
        )
    })?;
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!("cron expression \"{expression}\" never fires"));
    }
    Ok(schedule)
}

/// The `cron` crate's message is the expression, a caret line under the bad spot, then
/// (not always) a reason; make one line of it.
fn cron_reason(message: &str) -> String {
    let lines: Vec<&str> = message.lines().collect();
    if let Some(reason) = lines.iter().skip(2).rev().find(|l| !l.trim().is_empty()) {
        return reason.trim().to_string();
    }
    if let (Some(expr), Some(caret)) = (lines.first(), lines.get(1)) {
        if let Some(at) = caret.find('^') {
            let token: String = expr
                .chars()
                .skip(at)
                .take_while(|c| !c.is_whitespace())
                .collect();
            if !token.is_empty() {
                return format!("unexpected \"{token}\"");
            }
        }
    }
    message
        .lines()
        .next()
        .unwrap_or("invalid")
        .trim()
        .to_string()
}

/// Crontab day-of-week (0-7, 0 and 7 = Sunday, names, lists, ranges, steps) → the `cron`
/// crate's 1-7 (1 = Sunday), expanded into an explicit list.
fn classic_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let bad =
        || format!("invalid day-of-week field \"{field}\" (use 0-7 or SUN-SAT, 0 and 7 = Sunday)");
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(bad)?,
            ),
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                day_number(a).ok_or_else(bad)?,
                day_number(b).ok_or_else(bad)?,
            )
        } else {
            let day = day_number(range).ok_or_else(bad)?;
            // `n/step` runs from n to the end of the week, as in crontab.
            (day, if part.contains('/') { 6 } else { day })
        };
        if low > high {
            return Err(bad());
        }
        for day in (low..=high).step_by(step) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

fn day_number(text: &str) -> Option<usize> {
    const NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    if let Ok(n) = text.parse::<usize>() {
        return (n <= 7).then_some(n);
    }
    let lower = text.to_ascii_lowercase();
    NAMES.iter().position(|&name| name == lower)
}

/// `"local"` (the default), `"UTC"`, or an IANA name such as `"Europe/Paris"` that exists
/// under /usr/share/zoneinfo. `local` and `UTC` are case-insensitive.
pub(super) fn parse_timezone(name: &str) -> Result<Timezone, String> {
    if name.eq_ignore_ascii_case("local") {
        return Ok(Timezone::Local);
    }
    if name.eq_ignore_ascii_case("utc") {
        return Ok(Timezone::Utc);
    }
    let plausible = !name.is_empty()
        && !name.starts_with('/')
        && name.split('/').all(|part| !part.is_empty() && part != "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if plausible && Path::new(ZONEINFO).join(name).is_file() {
        return Ok(Timezone::Named(name.to_string()));
    }
    Err(format!(
        "unknown timezone \"{name}\"; use \"local\", \"UTC\" or an IANA name found under \
         {ZONEINFO} such as \"Europe/Paris\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_and_seven_field_expressions_are_taken_as_written() {
        assert!(parse_cron("*/10 * * * * *").is_ok());
        assert!(parse_cron("0 30 9 * * Mon-Fri").is_ok());
        assert!(parse_cron("0 0 12 1 1 * 2090").is_ok());
        assert!(parse_cron("0 0 12 1 1 * 2999")
            .unwrap_err()
            .ends_with("unexpected \"2999\""));
        assert_eq!(
            parse_cron("*/10 * * * * *").unwrap().source(),
            "*/10 * * * * *"
        );
    }

    #[test]
    fn five_field_expressions_get_seconds_and_crontab_weekdays() {
        assert_eq!(parse_cron("*/5 * * * *").unwrap().source(), "0 */5 * * * *");
        assert_eq!(
            parse_cron("0 9 * * 1-5").unwrap().source(),
            "0 0 9 * * 2,3,4,5,6"
        );
        assert_eq!(parse_cron("0 9 * * 0").unwrap().source(), "0 0 9 * * 1");
        assert_eq!(
            parse_cron("0 9 * * 5-7").unwrap().source(),
            "0 0 9 * * 1,6,7"
        );
        assert_eq!(
            parse_cron("0 9 * * sat,SUN").unwrap().source(),
            "0 0 9 * * 1,7"
        );
        assert_eq!(
            parse_cron("0 9 * * */2").unwrap().source(),
            "0 0 9 * * 1,3,5,7"
        );
        assert_eq!(parse_cron("0 9 * * 1/3").unwrap().source(), "0 0 9 * * 2,5");
    }

    #[test]
    fn bad_expressions_are_rejected_with_one_line() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * * *",
            "x * * * * *",
            "0 0 25 * * *",
            "61 * * * *",
            "0 9 * * 8",
            "0 9 * * 5-1",
            "0 0 0 30 2 *",
        ] {
            let err = parse_cron(bad).expect_err(bad);
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(parse_cron("0 0 0 30 2 *")
            .unwrap_err()
            .contains("never fires"));
    }

    #[test]
    fn timezones() {
        assert_eq!(parse_timezone("local"), Ok(Timezone::Local));
        assert_eq!(parse_timezone("UTC"), Ok(Timezone::Utc));
        assert_eq!(parse_timezone("utc"), Ok(Timezone::Utc));
        if Path::new(ZONEINFO).join("Europe/Paris").is_file() {
            assert_eq!(
                parse_timezone("Europe/Paris"),
                Ok(Timezone::Named("Europe/Paris".into()))
            );
        }
        for bad in [
            "",
            "Mars/Olympus",
            "../../etc/passwd",
            "/etc/passwd",
            "Europe",
            "zone.tab",
            "Europe//Paris",
        ] {
            assert!(parse_timezone(bad).is_err(), "{bad}");
        }
    }
}
