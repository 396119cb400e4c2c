//! `SubscribedTopicRegex`: the subset of RE2/J syntax Eddy matches.
//!
//! Kafka compiles the pattern with RE2/J and subscribes a member to every
//! topic whose whole name matches. The workspace has no regex crate, and a
//! topic name is at most 249 characters of `[a-zA-Z0-9._-]`, so Eddy has a
//! small engine of its own: literals, `.`, escapes (`\.`, `\d`, `\w`, `\s`
//! and their negations), character classes (`[a-z0-9_]`, `[^.]`), groups
//! (`(...)`, `(?:...)`), alternation, the quantifiers `*`, `+`, `?`,
//! `{n}`, `{n,}`, `{n,m}` (lazy forms too: the same for a whole-name
//! match), and the anchors `^` and `$`. That covers what clients send:
//! librdkafka joins its subscriptions as `(^a.*)|(^b)`. Anything else
//! (lookaround, backreferences, named classes, flags) is refused with
//! INVALID_REGULAR_EXPRESSION rather than matched wrongly.
//!
//! The pattern compiles to a Thompson automaton that is simulated a set of
//! states per character: time is linear in the name, whatever the pattern
//! (no backtracking blow-up), and the automaton's size is bounded.

/// Longest pattern accepted, in characters.
pub const PATTERN_CHARS_MAX: usize = 1000;
/// Largest automaton a pattern may compile to (counted repetition copies).
const PROGRAM_STATES_MAX: usize = 10_000;
/// Deepest group nesting.
const GROUP_DEPTH_MAX: usize = 64;
/// Largest `{n,m}` bound.
const REPEAT_MAX: u32 = 1000;

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

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Atom(Atom),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inst {
    Atom(Atom),
    Split(usize, usize),
    Jmp(usize),
    AssertStart,
    AssertEnd,
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    program: Vec<Inst>,
}

impl Pattern {
    /// Compiles `source`, or says what in it Eddy does not match.
    pub fn compile(source: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = source.chars().collect();
        if chars.len() > PATTERN_CHARS_MAX {
            return Err(format!("longer than {PATTERN_CHARS_MAX} characters"));
        }
        let mut parser = Parser {
            chars,
            pos: 0,
            depth: 0,
        };
        let node = parser.alternation()?;
        if parser.pos != parser.chars.len() {
            return Err("an unmatched ')'".into());
        }
        let mut program = Vec::new();
        emit(&node, &mut program)?;
        program.push(Inst::Match);
        Ok(Pattern { program })
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        let len = chars.len();
        let mut current = Vec::new();
        let mut seen = vec![false; self.program.len()];
        self.add(0, 0, len, &mut seen, &mut current);
        for (i, c) in chars.iter().enumerate() {
            let mut next = Vec::new();
            seen.iter_mut().for_each(|s| *s = false);
            for &pc in &current {
                if let Inst::Atom(a) = &self.program[pc] {
                    if a.matches(*c) {
                        self.add(pc + 1, i + 1, len, &mut seen, &mut next);
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            current = next;
        }
        current.iter().any(|pc| self.program[*pc] == Inst::Match)
    }

    /// Adds `pc` and every state reachable from it without reading a
    /// character at position `pos`.
    fn add(&self, pc: usize, pos: usize, len: usize, seen: &mut [bool], out: &mut Vec<usize>) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if std::mem::replace(&mut seen[pc], true) {
                continue;
            }
            match &self.program[pc] {
                Inst::Jmp(to) => stack.push(*to),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::AssertStart if pos == 0 => stack.push(pc + 1),
                Inst::AssertEnd if pos == len => stack.push(pc + 1),
                Inst::AssertStart | Inst::AssertEnd => {}
                Inst::Atom(_) | Inst::Match => out.push(pc),
            }
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn alternation(&mut self) -> Result<Node, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alternatives.push(self.sequence()?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.pop().expect("one alternative")
        } else {
            Node::Alt(alternatives)
        })
    }

    fn sequence(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().expect("one item"),
            _ => Node::Concat(items),
        })
    }

    fn quantified(&mut self, mut node: Node) -> Result<Node, String> {
        loop {
            let bounds = match self.peek() {
                Some('*') => (0, None),
                Some('+') => (1, None),
                Some('?') => (0, Some(1)),
                Some('{') => (0, Some(0)),
                _ => return Ok(node),
            };
            let counted = self.next() == Some('{');
            let (min, max) = if counted { self.counted()? } else { bounds };
            if matches!(node, Node::Start | Node::End | Node::Repeat(..)) {
                return Err("a quantifier after an anchor or another quantifier".into());
            }
            // A lazy or possessive suffix changes nothing for a whole-name match.
            if matches!(self.peek(), Some('?' | '+')) {
                self.pos += 1;
            }
            node = Node::Repeat(Box::new(node), min, max);
        }
    }

    /// `{n}`, `{n,}` or `{n,m}`, the `{` already read.
    fn counted(&mut self) -> Result<(u32, Option<u32>), String> {
        let number = |p: &mut Parser| {
            let start = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            let digits: String = p.chars[start..p.pos].iter().collect();
            (!digits.is_empty()).then(|| digits.parse::<u32>().unwrap_or(u32::MAX))
        };
        let min = number(self).ok_or("a '{' without a count")?;
        let max = if self.peek() == Some(',') {
            self.pos += 1;
            number(self)
        } else {
            Some(min)
        };
        if self.next() != Some('}') {
            return Err("an unclosed '{'".into());
        }
        if min > REPEAT_MAX || max.is_some_and(|m| m > REPEAT_MAX || m < min) {
            return Err(format!(
                "a repetition count over {REPEAT_MAX} or out of order"
            ));
        }
        Ok((min, max))
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.next().expect("caller peeked");
        Ok(match c {
            '.' => Node::Atom(Atom::Any),
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => Node::Atom(escape(self.next().ok_or("a trailing backslash")?)?),
            '[' => Node::Atom(self.class()?),
            '(' => self.group()?,
            '*' | '+' | '?' | '{' => return Err(format!("'{c}' with nothing to repeat")),
            c => Node::Atom(Atom::Char(c)),
        })
    }

    fn group(&mut self) -> Result<Node, String> {
        if self.peek() == Some('?') {
            if self.chars.get(self.pos + 1) != Some(&':') {
                return Err("lookaround, named groups and flags".into());
            }
            self.pos += 2;
        }
        self.depth += 1;
        if self.depth > GROUP_DEPTH_MAX {
            return Err(format!("groups nested deeper than {GROUP_DEPTH_MAX}"));
        }
        let inner = self.alternation()?;
        self.depth -= 1;
        if self.next() != Some(')') {
            return Err("an unclosed '('".into());
        }
        Ok(inner)
    }

    fn class(&mut self) -> Result<Atom, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        loop {
            let c = match self.next().ok_or("an unclosed '['")? {
                ']' if !ranges.is_empty() => return Ok(Atom::Class(ranges, negated)),
                '\\' => match escape(self.next().ok_or("a trailing backslash")?)? {
                    Atom::Char(c) => c,
                    Atom::Class(more, false) => {
                        ranges.extend(more);
                        continue;
                    }
                    _ => return Err("a negated escape inside a class".into()),
                },
                '[' => return Err("a nested or named class".into()),
                c => c,
            };
            let hi = match (self.peek(), self.chars.get(self.pos + 1)) {
                (Some('-'), Some(hi)) if *hi != ']' => *hi,
                _ => {
                    ranges.push((c, c));
                    continue;
                }
            };
            if hi < c || hi == '\\' || hi == '[' {
                return Err(format!("the range '{c}-{hi}'"));
            }
            self.pos += 2;
            ranges.push((c, hi));
        }
    }
}

fn escape(c: char) -> Result<Atom, String> {
    let digits = vec![('0', '9')];
    let word = vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
    let space = vec![(' ', ' '), ('\t', '\r')];
    Ok(match c {
        'd' => Atom::Class(digits, false),
        'D' => Atom::Class(digits, true),
        'w' => Atom::Class(word, false),
        'W' => Atom::Class(word, true),
        's' => Atom::Class(space, false),
        'S' => Atom::Class(space, true),
        't' => Atom::Char('\t'),
        'n' => Atom::Char('\n'),
        c if c.is_ascii_punctuation() => Atom::Char(c),
        c => return Err(format!("the escape '\\{c}'")),
    })
}

/// Appends the automaton of `node` to `program`.
fn emit(node: &Node, program: &mut Vec<Inst>) -> Result<(), String> {
    if program.len() > PROGRAM_STATES_MAX {
        return Err(format!("more than {PROGRAM_STATES_MAX} automaton states"));
    }
    match node {
        Node::Empty => {}
        Node::Atom(a) => program.push(Inst::Atom(a.clone())),
        Node::Start => program.push(Inst::AssertStart),
        Node::End => program.push(Inst::AssertEnd),
        Node::Concat(items) => {
            for item in items {
                emit(item, program)?;
            }
        }
        Node::Alt(alternatives) => {
            let mut jumps = Vec::new();
            for (i, alt) in alternatives.iter().enumerate() {
                if i + 1 == alternatives.len() {
                    emit(alt, program)?;
                    break;
                }
                let split = program.len();
                program.push(Inst::Split(split + 1, 0));
                emit(alt, program)?;
                jumps.push(program.len());
                program.push(Inst::Jmp(0));
                let next = program.len();
                program[split] = Inst::Split(split + 1, next);
            }
            let end = program.len();
            for j in jumps {
                program[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(inner, min, max) => emit_repeat(inner, *min, *max, program)?,
    }
    Ok(())
}

fn emit_repeat(
    inner: &Node,
    min: u32,
    max: Option<u32>,
    program: &mut Vec<Inst>,
) -> Result<(), String> {
    for _ in 0..min {
        emit(inner, program)?;
    }
    match max {
        None => {
            let split = program.len();
            program.push(Inst::Split(split + 1, 0));
            emit(inner, program)?;
            program.push(Inst::Jmp(split));
            let end = program.len();
            program[split] = Inst::Split(split + 1, end);
        }
        Some(max) => {
            let mut splits = Vec::new();
            for _ in min..max {
                splits.push(program.len());
                program.push(Inst::Split(0, 0));
                emit(inner, program)?;
            }
            let end = program.len();
            for s in splits {
                program[s] = Inst::Split(s + 1, end);
            }
        }
    }
    if program.len() > PROGRAM_STATES_MAX {
        return Err(format!("more than {PROGRAM_STATES_MAX} automaton states"));
    }
    Ok(())
}
