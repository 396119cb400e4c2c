//! Queries: `SELECT .. FROM .. [JOIN ..] [WINDOW ..] [WHERE ..] [GROUP BY ..]
//! [PARTITION BY ..] [HAVING ..] [EMIT ..] [LIMIT ..]`.

use super::{ParseError, Parser, Result};
use crate::ast::*;
use crate::lexer::Tok;

impl Parser {
    pub(super) fn query(&mut self) -> Result<Query> {
        let pos = self.pos();
        self.expect_word("SELECT")?;
        let mut select = Vec::new();
        loop {
            select.push(self.select_item()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect_word("FROM")?;
        let from = self.from()?;
        let mut q = Query {
            select,
            from,
            window: None,
            filter: None,
            group_by: Vec::new(),
            partition_by: Vec::new(),
            having: None,
            emit: None,
            limit: None,
            pos,
        };
        if self.eat_word("WINDOW") {
            q.window = Some(self.window()?);
        }
        if self.eat_word("WHERE") {
            q.filter = Some(self.expr()?);
        }
        if self.eat_word("GROUP") {
            self.expect_word("BY")?;
            q.group_by = self.expr_list()?;
        }
        if self.eat_word("PARTITION") {
            self.expect_word("BY")?;
            q.partition_by = self.expr_list()?;
        }
        if self.eat_word("HAVING") {
            q.having = Some(self.expr()?);
        }
        if self.eat_word("EMIT") {
            q.emit = Some(if self.eat_word("CHANGES") {
                Emit::Changes
            } else if self.eat_word("FINAL") {
                Emit::Final
            } else {
                return Err(self.unexpected("CHANGES or FINAL after EMIT"));
            });
        }
        if self.eat_word("LIMIT") {
            q.limit = Some(self.int("a row count after LIMIT")? as u64);
        }
        Ok(q)
    }

    pub(super) fn expr_list(&mut self) -> Result<Vec<Expr>> {
        let mut out = vec![self.expr()?];
        while self.eat(&Tok::Comma) {
            out.push(self.expr()?);
        }
        Ok(out)
    }

    pub(super) fn select_item(&mut self) -> Result<SelectItem> {
        if self.at(&Tok::Star) {
            let pos = self.pos();
            self.advance();
            return Ok(SelectItem::Wildcard(pos));
        }
        if matches!(self.peek(), Tok::Word(_) | Tok::Quoted(_))
            && self.peek_at(1) == &Tok::Dot
            && self.peek_at(2) == &Tok::Star
        {
            let alias = self.ident("a source name")?;
            self.advance();
            self.advance();
            return Ok(SelectItem::QualifiedWildcard(alias));
        }
        let expr = self.expr()?;
        let alias = if self.eat_word("AS") {
            Some(self.ident("a column alias")?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    pub(super) fn aliased_source(&mut self) -> Result<AliasedSource> {
        let name = self.ident("a stream or table name")?;
        // `name AS alias` or `name alias`.
        let explicit = self.eat_word("AS");
        let bare = match self.peek() {
            Tok::Word(w) => !is_clause_word(w),
            Tok::Quoted(_) => true,
            _ => false,
        };
        let alias = if explicit || bare {
            Some(self.ident("an alias")?)
        } else {
            None
        };
        Ok(AliasedSource { name, alias })
    }

    pub(super) fn from(&mut self) -> Result<From> {
        let source = self.aliased_source()?;
        let mut joins = Vec::new();
        loop {
            let pos = self.pos();
            let kind = if self.eat_word("JOIN") {
                JoinKind::Inner
            } else if self.eat_word("INNER") {
                self.expect_word("JOIN")?;
                JoinKind::Inner
            } else if self.eat_word("LEFT") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Left
            } else if self.eat_word("RIGHT") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Right
            } else if self.eat_word("FULL") {
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                JoinKind::Full
            } else if self.is_word("OUTER") {
                self.advance();
                self.expect_word("JOIN")?;
                JoinKind::Full
            } else {
                break;
            };
            let source = self.aliased_source()?;
            let within = if self.eat_word("WITHIN") {
                Some(self.within()?)
            } else {
                None
            };
            self.expect_word("ON")?;
            let on = self.expr()?;
            joins.push(Join {
                kind,
                source,
                within,
                on,
                pos,
            });
        }
        Ok(From { source, joins })
    }

    pub(super) fn within(&mut self) -> Result<Within> {
        let (before_ms, after_ms) = if self.eat(&Tok::LParen) {
            let before = self.duration()?;
            self.expect(&Tok::Comma)?;
            let after = self.duration()?;
            self.expect(&Tok::RParen)?;
            (before, after)
        } else {
            let d = self.duration()?;
            (d, d)
        };
        let grace_ms = self.grace()?;
        Ok(Within {
            before_ms,
            after_ms,
            grace_ms,
        })
    }

    pub(super) fn grace(&mut self) -> Result<Option<i64>> {
        if self.eat_word("GRACE") {
            self.expect_word("PERIOD")?;
            return Ok(Some(self.duration()?));
        }
        Ok(None)
    }

    /// `n UNIT`, in milliseconds.
    pub(super) fn duration(&mut self) -> Result<i64> {
        let pos = self.pos();
        let n = self.int("a duration, e.g. 5 MINUTES")?;
        let Tok::Word(unit) = self.peek().clone() else {
            return Err(
                self.unexpected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
            );
        };
        let ms: i64 = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(
                    self.unexpected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
                )
            }
        };
        self.advance();
        n.checked_mul(ms).ok_or_else(|| ParseError {
            message: format!("the duration {n} {unit} is too long"),
            pos,
        })
    }

    pub(super) fn window(&mut self) -> Result<WindowSpec> {
        let kind = self.ident("TUMBLING, HOPPING or SESSION")?;
        self.expect(&Tok::LParen)?;
        let (mut size, mut advance, mut retention, mut grace, mut gap) =
            (None, None, None, None, None);
        let mut first = true;
        loop {
            if !first && !self.eat(&Tok::Comma) {
                break;
            }
            let pos = self.pos();
            if first && kind.name == "SESSION" {
                gap = Some(self.duration()?);
            } else if self.eat_word("SIZE") {
                size = Some(self.duration()?);
            } else if self.eat_word("ADVANCE") {
                self.expect_word("BY")?;
                advance = Some(self.duration()?);
            } else if self.eat_word("RETENTION") {
                retention = Some(self.duration()?);
            } else if self.eat_word("GRACE") {
                self.expect_word("PERIOD")?;
                grace = Some(self.duration()?);
            } else {
                return Err(ParseError {
                    message: format!(
                        "expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD, found {}",
                        self.peek()
                    ),
                    pos,
                });
            }
            first = false;
        }
        self.expect(&Tok::RParen)?;
        let missing = |what: &str| ParseError {
            message: format!("a {} window needs {what}", kind.name),
            pos: kind.pos,
        };
        Ok(match kind.name.as_str() {
            "TUMBLING" => WindowSpec::Tumbling {
                size_ms: size.ok_or_else(|| missing("SIZE"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            "HOPPING" => WindowSpec::Hopping {
                size_ms: size.ok_or_else(|| missing("SIZE"))?,
                advance_ms: advance.ok_or_else(|| missing("ADVANCE BY"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            "SESSION" => WindowSpec::Session {
                gap_ms: gap.ok_or_else(|| missing("a gap, e.g. SESSION (5 MINUTES)"))?,
                retention_ms: retention,
                grace_ms: grace,
            },
            other => {
                return Err(ParseError {
                    message: format!("unknown window type {other}: TUMBLING, HOPPING or SESSION"),
                    pos: kind.pos,
                })
            }
        })
    }
}

/// Words that end a FROM item (so they are not taken as an alias).
pub(super) fn is_clause_word(w: &str) -> bool {
    matches!(
        w,
        "WINDOW"
            | "WHERE"
            | "GROUP"
            | "PARTITION"
            | "HAVING"
            | "EMIT"
            | "LIMIT"
            | "JOIN"
            | "INNER"
            | "LEFT"
            | "RIGHT"
            | "FULL"
            | "OUTER"
            | "WITHIN"
            | "ON"
    )
}
