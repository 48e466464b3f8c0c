//! The locator against hand-counted positions.

use super::*;

fn at(text: &str, path: &str) -> Pos {
    let segs: Vec<Seg> = path
        .split('.')
        .map(|p| match p.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(p.to_string()),
        })
        .collect();
    Locator::new(text).locate(&segs)
}

const DOC: &str = "\
# comment
version: \"1\"
env: { file: .env, vars: { A: 1, \"B\": 'x' } }
services:
  api:
    command: python3 app.py   # trailing comment
    depends_on:
    - db
    - 'cache'
    hooks:
      on_start: { success: { command: \"a: b\", timeout: 5s } }
    skip: |
      test -n x
      key: not a key
    backoff: 5s
  db:
    command: >-
      long
      folded
    env:
      vars:
        X: \"multi
          line\"
        Y: 2
  \"quoted name\":
    command: [not, a, string]
";

#[test]
fn block_keys_are_found() {
    assert_eq!(at(DOC, "version"), (2, 1));
    assert_eq!(at(DOC, "services"), (4, 1));
    assert_eq!(at(DOC, "services.api"), (5, 3));
    assert_eq!(at(DOC, "services.api.command"), (6, 5));
    assert_eq!(at(DOC, "services.api.backoff"), (15, 5));
    assert_eq!(at(DOC, "services.db"), (16, 3));
    assert_eq!(at(DOC, "services.db.env.vars.Y"), (24, 9));
    assert_eq!(at(DOC, "services.quoted name.command"), (26, 5));
}

#[test]
fn flow_keys_and_sequence_items_are_found() {
    assert_eq!(at(DOC, "env.file"), (3, 8));
    assert_eq!(at(DOC, "env.vars.A"), (3, 28));
    assert_eq!(at(DOC, "env.vars.B"), (3, 34));
    assert_eq!(at(DOC, "services.api.depends_on.0"), (8, 5));
    assert_eq!(at(DOC, "services.api.depends_on.1"), (9, 5));
    assert_eq!(
        at(DOC, "services.api.hooks.on_start.success.timeout"),
        (11, 47)
    );
}

#[test]
fn missing_keys_fall_back_to_the_nearest_ancestor() {
    assert_eq!(at(DOC, "services.api.nope.deeper"), (5, 3));
    assert_eq!(at(DOC, "services.api.depends_on.7"), (7, 5));
    assert_eq!(at(DOC, "services.db.env.vars.Z"), (21, 7));
    assert_eq!(at(DOC, "nothing"), (1, 1));
    assert_eq!(at("", "services"), (1, 1));
    assert_eq!(at("just a scalar", "services"), (1, 1));
}

#[test]
fn sequences_of_mappings_and_same_indent_sequences() {
    let text = "list:\n- name: a\n  x: 1\n-\n  name: b\nafter:\n  - k: v\n    j: w\nlast: 0\n";
    assert_eq!(at(text, "list.0.x"), (3, 3));
    assert_eq!(at(text, "list.1.name"), (5, 3));
    assert_eq!(at(text, "after.0.j"), (8, 5));
    assert_eq!(at(text, "last"), (9, 1));
}

#[test]
fn a_repeated_key_is_found_at_its_own_occurrence() {
    let text = "services:\n  1: {command: a}\n  x: {command: b}\n  \"1\": {command: c}\n";
    let services = Seg::Key("services".into());
    let locator = Locator::new(text);
    let first = [services.clone(), Seg::Key("1".into())];
    let again = [services.clone(), Seg::Repeat("1".into(), 1)];
    assert_eq!(locator.locate(&first), (2, 3));
    assert_eq!(locator.locate(&again), (4, 3));
    // A repeat the scanner did not see falls back to the last one it did.
    assert_eq!(
        locator.locate(&[services, Seg::Repeat("1".into(), 5)]),
        (4, 3)
    );
    assert_eq!(display_path(&again), "services.1");
}

#[test]
fn anchors_tags_markers_and_crlf() {
    let text = "---\r\nbase: &b\r\n  a: 1\r\nother: !!map\r\n  <<: *b\r\n  c: 2\r\n...\r\n";
    assert_eq!(at(text, "base.a"), (3, 3));
    assert_eq!(at(text, "other.c"), (6, 3));
}

#[test]
fn odd_input_never_panics_or_hangs() {
    for text in [
        "{",
        "[",
        "{a: [1, {b: ",
        "\"unterminated",
        "'x''",
        "a: \"\\",
        "- - - x",
        "? a\n: b\n",
        ":",
        "a:\n\t- b",
        "{a: 1}: x\n",
        "a: |\n",
        "\u{feff}a: 1",
        "a:\n  b: 1\n c: 2\n  d: 3",
    ] {
        let _ = at(text, "a.b.c");
    }
    let deep = "[".repeat(10_000);
    let _ = at(&deep, "a");
    let deep_block: String = (0..500)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let _ = at(&deep_block, "k0.k1.k2");
}

/// xorshift: deterministic pseudo-random input without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> serde_yaml::Value {
    use serde_yaml::Value;
    const KEYS: &[&str] = &[
        "a", "command", "a b", "x: y", "#c", "-d", "'q'", "\"dq\"", "é", "k:v", "[x]", "? q", "",
        "- z", "true",
    ];
    const SCALARS: &[&str] = &[
        "plain",
        "two\nlines\n",
        "  lead",
        "x: y",
        "# no",
        "- item",
        "{a: 1}",
        "",
        "multi\nline\ntext",
        "'",
        "tab\there",
    ];
    match if depth >= 4 {
        rng.below(2)
    } else {
        rng.below(5)
    } {
        0 => Value::String(SCALARS[rng.below(SCALARS.len())].to_string()),
        1 => Value::Number((rng.below(100) as u64).into()),
        2 => Value::Sequence(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_yaml::Mapping::new();
            for _ in 0..rng.below(5) {
                let key = KEYS[rng.below(KEYS.len())].to_string();
                map.insert(Value::String(key), random_value(rng, depth + 1));
            }
            Value::Mapping(map)
        }
    }
}

fn every_path(v: &serde_yaml::Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        serde_yaml::Value::Mapping(map) => {
            for (k, child) in map {
                prefix.push(Seg::Key(k.as_str().unwrap_or_default().to_string()));
                out.push(prefix.clone());
                every_path(child, prefix, out);
                prefix.pop();
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Seg::Index(i));
                out.push(prefix.clone());
                every_path(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_of_serialized_documents_is_found_exactly() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let value = random_value(&mut rng, 0);
        let Ok(text) = serde_yaml::to_string(&value) else {
            continue;
        };
        let locator = Locator::new(&text);
        let mut paths = Vec::new();
        every_path(&value, &mut Vec::new(), &mut paths);
        for path in paths {
            let (pos, found) = locator.locate_prefix(&path);
            assert_eq!(
                found,
                path.len(),
                "{} at {pos:?} in:\n{text}",
                display_path(&path)
            );
        }
    }
}

#[test]
fn random_bytes_never_panic_or_hang() {
    const ALPHABET: &[char] = &[
        'a', ':', ' ', '\n', '-', '{', '}', '[', ']', ',', '"', '\'', '#', '|', '>', '&', '*', '!',
        '?', '\\', '\t', '%', '.',
    ];
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let text: String = (0..rng.below(80))
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        let _ = Locator::new(&text).locate(&[
            Seg::Key("a".into()),
            Seg::Index(0),
            Seg::Key("a".into()),
        ]);
    }
}
