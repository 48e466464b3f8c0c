//! `${VAR}` and `${VAR:-default}` expansion for the few config values that are not handed
//! to a shell (working_dir, env values and file paths, health_check.url).

/// Nested defaults (`${A:-${B:-x}}`) deeper than this are refused instead of recursing on
/// hostile input.
const MAX_NESTING: usize = 16;

/// Expands `${NAME}` and `${NAME:-default}` (the default is used when NAME is unset or
/// empty, and may itself contain references). `$$` and a `$` not followed by `{` are kept
/// literally, so `$$` stays `$$` and `$${X}` stays `$${X}`. An unset variable without a
/// default, an unterminated `${` or any other `${...}` form is an error.
pub(crate) fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    expand_nested(s, lookup, 0)
}

fn expand_nested(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err("variable defaults nested too deeply".to_string());
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                out.push_str(&s[literal_start..i]);
                let close = matching_brace(bytes, i + 2)
                    .ok_or_else(|| format!("unterminated \"${{\" in \"{s}\""))?;
                out.push_str(&substitute(&s[i + 2..close], lookup, depth)?);
                i = close + 1;
                literal_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&s[literal_start..]);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `from`, counting nested braces.
fn matching_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (offset, &b) in bytes.get(from..)?.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(from + offset);
                }
            }
            _ => {}
        }
    }
    None
}

fn substitute(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, String> {
    let name_len = body
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
        .count();
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() {
        return Err(invalid(body));
    }
    if rest.is_empty() {
        return lookup(name).ok_or_else(|| format!("variable ${{{name}}} is not set"));
    }
    let Some(default) = rest.strip_prefix(":-") else {
        return Err(invalid(body));
    };
    match lookup(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => expand_nested(default, lookup, depth + 1),
    }
}

fn invalid(body: &str) -> String {
    format!("invalid variable reference \"${{{body}}}\"; use ${{NAME}} or ${{NAME:-default}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ex(s: &str) -> Result<String, String> {
        expand(s, &env)
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(ex("${HOME}/app").as_deref(), Ok("/home/u/app"));
        assert_eq!(ex("a${HOME}b${HOME}").as_deref(), Ok("a/home/ub/home/u"));
        assert_eq!(ex("${UNSET:-/tmp}").as_deref(), Ok("/tmp"));
        assert_eq!(ex("${EMPTY:-x}").as_deref(), Ok("x"));
        assert_eq!(ex("${EMPTY}").as_deref(), Ok(""));
        assert_eq!(ex("${HOME:-x}").as_deref(), Ok("/home/u"));
        assert_eq!(ex("${UNSET:-}").as_deref(), Ok(""));
        assert_eq!(ex("${UNSET:-${HOME}/d}").as_deref(), Ok("/home/u/d"));
        assert_eq!(ex("${UNSET:-{x}}").as_deref(), Ok("{x}"));
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        assert_eq!(ex("pa$$word").as_deref(), Ok("pa$$word"));
        assert_eq!(ex("$${HOME}").as_deref(), Ok("$${HOME}"));
        assert_eq!(ex("$HOME $ x$").as_deref(), Ok("$HOME $ x$"));
        assert_eq!(ex("ünï${HOME}ç").as_deref(), Ok("ünï/home/uç"));
    }

    #[test]
    fn unset_and_malformed_references_are_errors() {
        assert_eq!(
            ex("${FOO}/x"),
            Err("variable ${FOO} is not set".to_string())
        );
        assert_eq!(
            ex("${UNSET:-${FOO}}"),
            Err("variable ${FOO} is not set".to_string())
        );
        assert!(ex("${HOME").unwrap_err().contains("unterminated"));
        for bad in ["${}", "${1A}", "${A-b}", "${A:?x}", "${ A}"] {
            assert!(
                ex(bad).unwrap_err().contains("invalid variable reference"),
                "{bad}"
            );
        }
        let deep = format!("{}x{}", "${U:-".repeat(40), "}".repeat(40));
        assert!(ex(&deep).unwrap_err().contains("nested too deeply"));
    }
}
