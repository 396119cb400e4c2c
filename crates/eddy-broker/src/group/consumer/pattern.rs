//! `SubscribedTopicRegex`: the subset of RE2/J syntax Eddy matches.
//!
//! Kafka compiles the pattern with RE2/J and subscribes a member to every
//! topic whose whole name matches. The workspace has no regex crate, and a
//! topic name is at most 249 characters of `[a-zA-Z0-9._-]`, so Eddy
//! matches a subset itself: literals, `.`, escapes (`\.`, `\d`, `\w`),
//! character classes (`[a-z0-9_]`, `[^.]`), the quantifiers `*`, `+`, `?`
//! on a single atom, top-level alternation `a|b`, and `^`/`$` at the ends.
//! Groups, counted repetition and lookaround are refused with
//! INVALID_REGULAR_EXPRESSION rather than matched wrongly. Matching
//! simulates the pattern's automaton (a set of positions per character),
//! so its time is linear in the name and cannot blow up.

/// Kafka's bound on what a client may send; patterns are short in practice.
pub const PATTERN_CHARS_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Char(char),
    Any,
    /// Ranges (inclusive) and whether the class is negated.
    Class(Vec<(char, char)>, bool),
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Class(ranges, negated) => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    One,
    Optional,
    Many,
}

/// A compiled pattern: alternatives, each a sequence of quantified atoms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    alternatives: Vec<Vec<(Atom, Times)>>,
}

impl Pattern {
    /// Compiles `source`, or says what part of RE2/J syntax it uses that
    /// Eddy does not match.
    pub fn compile(source: &str) -> Result<Pattern, String> {
        if source.chars().count() > PATTERN_CHARS_MAX {
            return Err(format!("longer than {PATTERN_CHARS_MAX} characters"));
        }
        let alternatives = split_alternatives(source)
            .into_iter()
            .map(compile_sequence)
            .collect::<Result<_, _>>()?;
        Ok(Pattern { alternatives })
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.alternatives
            .iter()
            .any(|seq| matches_sequence(seq, name))
    }
}

/// Splits on `|` outside classes and escapes.
fn split_alternatives(source: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_class, mut escaped) = (0, false, false);
    for (i, c) in source.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '|' if !in_class => {
                parts.push(&source[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&source[start..]);
    parts
}

fn compile_sequence(source: &str) -> Result<Vec<(Atom, Times)>, String> {
    let source = source.strip_prefix('^').unwrap_or(source);
    let source = match source.strip_suffix('$') {
        Some(s) if !s.ends_with('\\') => s,
        _ => source,
    };
    let mut chars = source.chars().peekable();
    let mut seq: Vec<(Atom, Times)> = Vec::new();
    while let Some(c) = chars.next() {
        let atom = match c {
            '.' => Atom::Any,
            '\\' => escape(chars.next().ok_or("a trailing backslash")?)?,
            '[' => class(&mut chars)?,
            '*' | '+' | '?' => {
                let Some((atom, Times::One)) = seq.pop() else {
                    return Err(format!("'{c}' must follow a single character or class"));
                };
                match c {
                    '*' => seq.push((atom, Times::Many)),
                    '?' => seq.push((atom, Times::Optional)),
                    _ => {
                        seq.push((atom.clone(), Times::One));
                        seq.push((atom, Times::Many));
                    }
                }
                continue;
            }
            '(' | ')' | '{' | '}' | ']' | '^' | '$' => {
                return Err(format!(
                    "'{c}' (groups, counted repetition and inner anchors are not supported)"
                ));
            }
            c => Atom::Char(c),
        };
        seq.push((atom, Times::One));
    }
    Ok(seq)
}

fn escape(c: char) -> Result<Atom, String> {
    Ok(match c {
        'd' => Atom::Class(vec![('0', '9')], false),
        'w' => Atom::Class(vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')], false),
        c if c.is_ascii_punctuation() => Atom::Char(c),
        c => return Err(format!("the escape '\\{c}'")),
    })
}

fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Atom, String> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        let c = match chars.next().ok_or("an unclosed '['")? {
            ']' if !ranges.is_empty() => return Ok(Atom::Class(ranges, negated)),
            '\\' => match escape(chars.next().ok_or("a trailing backslash")?)? {
                Atom::Char(c) => c,
                Atom::Class(more, false) => {
                    ranges.extend(more);
                    continue;
                }
                _ => return Err("an escape inside a class".into()),
            },
            '[' => return Err("a nested class".into()),
            c => c,
        };
        if chars.peek() == Some(&'-') {
            let mut ahead = chars.clone();
            ahead.next();
            if let Some(hi) = ahead.next().filter(|h| *h != ']') {
                if hi < c {
                    return Err(format!("the empty range '{c}-{hi}'"));
                }
                chars.next();
                chars.next();
                ranges.push((c, hi));
                continue;
            }
        }
        ranges.push((c, c));
    }
}

fn matches_sequence(seq: &[(Atom, Times)], name: &str) -> bool {
    // states[i]: the next piece to match is i (i == len: matched all).
    let mut states = vec![false; seq.len() + 1];
    states[0] = true;
    close(seq, &mut states);
    for c in name.chars() {
        let mut next = vec![false; seq.len() + 1];
        for (i, (atom, times)) in seq.iter().enumerate() {
            if states[i] && atom.matches(c) {
                match times {
                    Times::Many => next[i] = true,
                    Times::One | Times::Optional => next[i + 1] = true,
                }
            }
        }
        close(seq, &mut next);
        if !next.contains(&true) {
            return false;
        }
        states = next;
    }
    states[seq.len()]
}

/// Adds the positions reachable by skipping optional pieces.
fn close(seq: &[(Atom, Times)], states: &mut [bool]) {
    for i in 0..seq.len() {
        if states[i] && seq[i].1 != Times::One {
            states[i + 1] = true;
        }
    }
}
