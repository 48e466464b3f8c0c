//! Maps a key path (`services.api.backoff`) back to a line and column of the config text.
//!
//! `serde_yaml` values carry no positions, so this re-reads the source with a small
//! structural scanner: block mappings and sequences by indentation, flow collections
//! (`{ file: x, vars: {...} }`, `[a, b]`) by brackets, scalars skipped. It only runs on text
//! that already parsed as YAML, and on anything it does not understand it degrades to the
//! nearest ancestor it did find (ultimately 1:1) — it never fails and never loops.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
    /// The `n`-th repeat (1-based) of a key: keys that differ in YAML (`1`, `"1"`) but
    /// read as the same text. Shown like [`Seg::Key`]; located at that repeat.
    Repeat(String, usize),
}

/// One thing wrong in a config, at a path of keys and indexes.
pub(super) struct Problem {
    pub(super) path: Vec<Seg>,
    pub(super) message: String,
}

/// The path of key `key` under `path`.
pub(super) fn child(path: &[Seg], key: &str) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(Seg::Key(key.to_string()));
    p
}

/// `services.api.depends_on[1]`.
pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) | Seg::Repeat(key, _) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// 1-based line and column (in characters).
pub(crate) type Pos = (usize, usize);

/// Deeper nesting than this is left unexplored (serde_yaml refuses far less anyway).
const MAX_DEPTH: usize = 200;

#[derive(Debug)]
enum Node {
    Leaf,
    Map(MapNode),
    Seq(Vec<(Pos, Node)>),
}

/// A mapping's entries in text order, and where each key's entries are, first occurrence
/// first: a lookup costs the same in a services mapping of 100,000 keys.
#[derive(Debug)]
struct MapNode {
    entries: Vec<(Pos, Node)>,
    keys: std::collections::HashMap<String, Vec<usize>>,
}

impl MapNode {
    fn node(list: Vec<(String, Pos, Node)>) -> Node {
        let mut keys = std::collections::HashMap::with_capacity(list.len());
        let mut entries = Vec::with_capacity(list.len());
        for (key, pos, node) in list {
            keys.entry(key).or_insert_with(Vec::new).push(entries.len());
            entries.push((pos, node));
        }
        Node::Map(MapNode { entries, keys })
    }

    /// The `repeat`-th occurrence of `key` (0 = the first), or the last one the text has.
    fn get(&self, key: &str, repeat: usize) -> Option<&(Pos, Node)> {
        let found = self.keys.get(key)?;
        self.entries.get(*found.get(repeat).or(found.last())?)
    }
}

pub(crate) struct Locator {
    root: Node,
}

impl Locator {
    pub(crate) fn new(text: &str) -> Locator {
        let chars: Vec<char> = text.chars().collect();
        let mut line_starts = vec![0];
        line_starts.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, &c)| c == '\n')
                .map(|(i, _)| i + 1),
        );
        let mut scanner = Scanner {
            s: chars,
            i: 0,
            line_starts,
            depth: 0,
        };
        let root = scanner.block(-1);
        Locator { root }
    }

    /// Position of the last key of `path` that exists in the text: the key itself when
    /// found, else its nearest ancestor, else 1:1.
    pub(crate) fn locate(&self, path: &[Seg]) -> Pos {
        self.locate_prefix(path).0
    }

    /// The position [`locate`](Self::locate) gives, and how many segments were found.
    fn locate_prefix(&self, path: &[Seg]) -> (Pos, usize) {
        let mut node = &self.root;
        let mut best = (1, 1);
        let mut found = 0;
        for seg in path {
            let next = match (seg, node) {
                (Seg::Key(key), Node::Map(map)) => map.get(key, 0),
                (Seg::Repeat(key, n), Node::Map(map)) => map.get(key, *n),
                (Seg::Index(i), Node::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some((pos, child)) => {
                    best = *pos;
                    node = child;
                    found += 1;
                }
                None => break,
            }
        }
        (best, found)
    }
}

fn is_blank(c: Option<char>) -> bool {
    matches!(c, None | Some(' ' | '\t' | '\r' | '\n'))
}

fn is_flow_indicator(c: char) -> bool {
    matches!(c, ',' | '[' | ']' | '{' | '}')
}

struct Scanner {
    s: Vec<char>,
    i: usize,
    line_starts: Vec<usize>,
    depth: usize,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn pos(&self) -> Pos {
        // line_starts[0] == 0, so the partition point is at least 1.
        let line = self.line_starts.partition_point(|&start| start <= self.i);
        (line, self.i - self.line_starts[line - 1] + 1)
    }

    fn column(&self) -> usize {
        self.pos().1 - 1
    }

    fn is_dash(&self) -> bool {
        self.peek() == Some('-') && is_blank(self.at(1))
    }

    fn comment_starts_here(&self) -> bool {
        self.peek() == Some('#') && (self.i == 0 || is_blank(self.s.get(self.i - 1).copied()))
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.i += 1;
        }
    }

    /// Moves to the end of the current line (onto its `\n`).
    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.i += 1;
        }
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n')) || self.comment_starts_here()
    }

    /// Skips spaces, comments, line breaks, a BOM, directives and document markers.
    fn skip_blank(&mut self) {
        loop {
            self.skip_spaces();
            match self.peek() {
                Some('\n' | '\u{feff}') => self.i += 1,
                Some('#') => self.skip_line(),
                Some('%') if self.column() == 0 => self.skip_line(),
                Some(c @ ('-' | '.'))
                    if self.column() == 0
                        && self.at(1) == Some(c)
                        && self.at(2) == Some(c)
                        && is_blank(self.at(3)) =>
                {
                    self.i += 3
                }
                _ => return,
            }
        }
    }

    /// Skips an anchor, tag or alias name.
    fn skip_token(&mut self) {
        while !is_blank(self.peek()) && !self.peek().is_some_and(is_flow_indicator) {
            self.i += 1;
        }
    }

    /// The node in the block below, if it is indented deeper than `parent`.
    fn block(&mut self, parent: isize) -> Node {
        self.skip_blank();
        if self.peek().is_none() || self.column() as isize <= parent {
            return Node::Leaf;
        }
        self.node_here(parent)
    }

    /// The node starting at the current character; `parent` is the indentation of the
    /// enclosing block collection (-1 at the root).
    fn node_here(&mut self, parent: isize) -> Node {
        if self.depth >= MAX_DEPTH {
            self.i = self.s.len();
            return Node::Leaf;
        }
        self.depth += 1;
        let node = self.node_here_inner(parent);
        self.depth -= 1;
        node
    }

    fn node_here_inner(&mut self, parent: isize) -> Node {
        while matches!(self.peek(), Some('&' | '!')) {
            self.skip_token();
            self.skip_spaces();
            if self.at_line_end() {
                return self.block(parent);
            }
        }
        let col = self.column();
        match self.peek() {
            None => Node::Leaf,
            Some('-') if self.is_dash() => self.block_seq(col),
            Some('{' | '[') => self.flow(),
            Some('|' | '>') => {
                self.skip_continuation(parent);
                Node::Leaf
            }
            Some('"' | '\'') => {
                let start = self.i;
                self.quoted();
                let after = self.i;
                self.skip_spaces();
                if self.peek() == Some(':') && is_blank(self.at(1)) {
                    self.i = start;
                    return self.block_map(col);
                }
                self.i = after;
                self.skip_continuation(parent);
                Node::Leaf
            }
            Some(_) if self.plain_key_ahead() => self.block_map(col),
            Some(_) => {
                self.skip_continuation(parent);
                Node::Leaf
            }
        }
    }

    /// Skips the rest of this line and every following line that is blank or indented
    /// deeper than `parent`: the body of a block scalar or a multi-line plain scalar.
    fn skip_continuation(&mut self, parent: isize) {
        loop {
            self.skip_line();
            let line_end = self.i;
            self.skip_blank();
            if self.peek().is_none() {
                return;
            }
            if self.column() as isize <= parent {
                self.i = line_end;
                return;
            }
        }
    }

    /// The value after `key:` or `- ` on the same line or in the block below. A mapping
    /// value may be a sequence at the key's own indentation (`key:\n- a`).
    fn value(&mut self, indent: usize, same_indent_seq: bool) -> Node {
        self.skip_spaces();
        while matches!(self.peek(), Some('&' | '!')) {
            self.skip_token();
            self.skip_spaces();
        }
        if !self.at_line_end() {
            return self.node_here(indent as isize);
        }
        self.skip_blank();
        if self.peek().is_none() {
            return Node::Leaf;
        }
        let col = self.column();
        if col > indent {
            self.node_here(indent as isize)
        } else if same_indent_seq && col == indent && self.is_dash() {
            self.node_here(indent as isize - 1)
        } else {
            Node::Leaf
        }
    }

    fn block_map(&mut self, indent: usize) -> Node {
        let mut entries = Vec::new();
        loop {
            self.skip_blank();
            if self.peek().is_none() {
                break;
            }
            let col = self.column();
            if col < indent || (col == indent && self.is_dash()) {
                break;
            }
            if col > indent {
                // Something this scanner did not consume; skip it rather than give up.
                self.skip_line();
                continue;
            }
            let pos = self.pos();
            let key = match self.peek() {
                Some('"' | '\'') => Some(self.quoted()),
                _ => self.plain_key(),
            };
            self.skip_spaces();
            match key {
                Some(key) if self.peek() == Some(':') => {
                    self.i += 1;
                    let value = self.value(indent, true);
                    entries.push((key, pos, value));
                }
                _ => self.skip_line(),
            }
        }
        MapNode::node(entries)
    }

    fn block_seq(&mut self, indent: usize) -> Node {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            if self.peek().is_none() {
                break;
            }
            let col = self.column();
            if col < indent || (col == indent && !self.is_dash()) {
                break;
            }
            if col > indent {
                self.skip_line();
                continue;
            }
            let pos = self.pos();
            self.i += 1;
            let value = self.value(indent, false);
            items.push((pos, value));
        }
        Node::Seq(items)
    }

    /// Does a plain `key:` start here (a `:` followed by a blank before the line ends)?
    fn plain_key_ahead(&self) -> bool {
        let mut j = self.i;
        while let Some(&c) = self.s.get(j) {
            match c {
                '\n' => return false,
                ':' if is_blank(self.s.get(j + 1).copied()) => return true,
                '#' if j > self.i && is_blank(self.s.get(j - 1).copied()) => return false,
                _ => j += 1,
            }
        }
        false
    }

    /// Reads a plain block key up to (not including) its `:`.
    fn plain_key(&mut self) -> Option<String> {
        if !self.plain_key_ahead() {
            return None;
        }
        let start = self.i;
        while !(self.peek() == Some(':') && is_blank(self.at(1))) {
            self.i += 1;
        }
        Some(
            self.s[start..self.i]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        )
    }

    /// Reads a quoted scalar (the cursor is on its quote) and returns its decoded text.
    fn quoted(&mut self) -> String {
        let quote = self.peek();
        self.i += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            if quote == Some('\'') {
                if c == '\'' {
                    if self.peek() != Some('\'') {
                        break;
                    }
                    self.i += 1;
                }
                out.push(c);
            } else if c == '"' {
                break;
            } else if c == '\\' {
                self.escape(&mut out);
            } else {
                out.push(c);
            }
        }
        out
    }

    fn escape(&mut self, out: &mut String) {
        let Some(c) = self.peek() else { return };
        self.i += 1;
        let hex_len = match c {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if hex_len > 0 {
            let end = (self.i + hex_len).min(self.s.len());
            let digits: String = self.s[self.i..end].iter().collect();
            self.i = end;
            if let Some(ch) = u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
            {
                out.push(ch);
            }
            return;
        }
        let decoded = match c {
            '0' => '\0',
            'a' => '\x07',
            'b' => '\x08',
            't' => '\t',
            'n' => '\n',
            'v' => '\x0b',
            'f' => '\x0c',
            'r' => '\r',
            'e' => '\x1b',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            '\n' => return,
            other => other,
        };
        out.push(decoded);
    }

    fn skip_flow_blank(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => self.i += 1,
                Some('#') if self.comment_starts_here() => self.skip_line(),
                _ => return,
            }
        }
    }

    /// A `{...}` or `[...]` collection; the cursor is on its opening bracket.
    fn flow(&mut self) -> Node {
        let is_map = self.peek() == Some('{');
        self.i += 1;
        let mut entries = Vec::new();
        let mut items = Vec::new();
        loop {
            self.skip_flow_blank();
            let start = self.i;
            match self.peek() {
                None => break,
                Some('}' | ']') => {
                    self.i += 1;
                    break;
                }
                Some(',') => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let pos = self.pos();
            if self.peek() == Some('?') && is_blank(self.at(1)) {
                self.i += 1;
                self.skip_flow_blank();
            }
            let (key, node) = self.flow_node();
            self.skip_flow_blank();
            let mut value = None;
            if self.peek() == Some(':') {
                self.i += 1;
                self.skip_flow_blank();
                value = Some(match self.peek() {
                    None | Some(',' | '}' | ']') => Node::Leaf,
                    _ => self.flow_node().1,
                });
            }
            if is_map {
                if let Some(key) = key {
                    entries.push((key, pos, value.unwrap_or(Node::Leaf)));
                }
            } else {
                // `[a: 1]` is a single-pair mapping; nothing in the config needs its inside.
                items.push((pos, if value.is_some() { Node::Leaf } else { node }));
            }
            if self.i == start {
                self.i += 1;
            }
        }
        if is_map {
            MapNode::node(entries)
        } else {
            Node::Seq(items)
        }
    }

    /// A node inside a flow collection, with its text when it is a scalar.
    fn flow_node(&mut self) -> (Option<String>, Node) {
        while matches!(self.peek(), Some('&' | '!')) {
            self.skip_token();
            self.skip_flow_blank();
        }
        match self.peek() {
            Some('{' | '[') if self.depth < MAX_DEPTH => {
                self.depth += 1;
                let node = self.flow();
                self.depth -= 1;
                (None, node)
            }
            Some('"' | '\'') => (Some(self.quoted()), Node::Leaf),
            Some('*') => {
                self.skip_token();
                (None, Node::Leaf)
            }
            _ => (Some(self.plain_flow()), Node::Leaf),
        }
    }

    fn plain_flow(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ends = match c {
                '\n' => true,
                ':' => is_blank(self.at(1)) || self.at(1).is_some_and(is_flow_indicator),
                '#' => self.comment_starts_here(),
                c => is_flow_indicator(c),
            };
            if ends {
                break;
            }
            self.i += 1;
        }
        self.s[start..self.i]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    }
}

#[cfg(test)]
mod tests;
