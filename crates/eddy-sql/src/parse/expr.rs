//! Expressions, by precedence climbing; predicates (`IS`, `IN`, `BETWEEN`, `LIKE`) bind
//! as comparisons, `NOT` below them.

use super::query::is_clause_word;
use super::{ParseError, Parser, Result, DEPTH_MAX};
use crate::ast::*;
use crate::lexer::Tok;

/// Binding strength of binary operators, weakest first.
fn precedence(tok: &Tok) -> Option<(u8, BinaryOp)> {
    Some(match tok {
        Tok::Word(w) if w == "OR" => (1, BinaryOp::Or),
        Tok::Word(w) if w == "AND" => (2, BinaryOp::And),
        Tok::Eq => (4, BinaryOp::Eq),
        Tok::NotEq => (4, BinaryOp::NotEq),
        Tok::Lt => (4, BinaryOp::Lt),
        Tok::LtEq => (4, BinaryOp::LtEq),
        Tok::Gt => (4, BinaryOp::Gt),
        Tok::GtEq => (4, BinaryOp::GtEq),
        Tok::Concat => (5, BinaryOp::Concat),
        Tok::Plus => (6, BinaryOp::Add),
        Tok::Minus => (6, BinaryOp::Sub),
        Tok::Star => (7, BinaryOp::Mul),
        Tok::Slash => (7, BinaryOp::Div),
        Tok::Percent => (7, BinaryOp::Mod),
        _ => return None,
    })
}

/// Where `IS`, `IN`, `BETWEEN`, `LIKE` and `NOT` (before those) bind: as comparisons.
const PREDICATE: u8 = 4;
const NOT_PREFIX: u8 = 3;

impl Parser {
    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.expr_above(0)
    }

    pub(super) fn expr_above(&mut self, min: u8) -> Result<Expr> {
        if self.depth >= DEPTH_MAX {
            return Err(ParseError {
                message: format!("expression nested more than {DEPTH_MAX} deep"),
                pos: self.pos(),
            });
        }
        self.depth += 1;
        let result = self.expr_above_inner(min);
        self.depth -= 1;
        result
    }

    pub(super) fn expr_above_inner(&mut self, min: u8) -> Result<Expr> {
        let mut left = if self.is_word("NOT") && min <= NOT_PREFIX {
            let pos = self.pos();
            self.advance();
            let e = self.expr_above(NOT_PREFIX)?;
            Expr {
                kind: ExprKind::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(e),
                },
                pos,
            }
        } else {
            self.unary()?
        };
        loop {
            // Predicates: IS [NOT] NULL, [NOT] IN / BETWEEN / LIKE.
            if min <= PREDICATE {
                if let Some(e) = self.predicate(&left)? {
                    left = e;
                    continue;
                }
            }
            let Some((prec, op)) = precedence(self.peek()) else {
                break;
            };
            if prec < min {
                break;
            }
            let pos = left.pos;
            self.advance();
            let right = self.expr_above(prec + 1)?;
            left = Expr {
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                pos,
            };
        }
        Ok(left)
    }

    pub(super) fn predicate(&mut self, left: &Expr) -> Result<Option<Expr>> {
        let pos = left.pos;
        let boxed = || Box::new(left.clone());
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            self.expect_word("NULL")?;
            return Ok(Some(Expr {
                kind: ExprKind::IsNull {
                    expr: boxed(),
                    negated,
                },
                pos,
            }));
        }
        let negated = self.is_word("NOT")
            && matches!(self.peek_at(1), Tok::Word(w) if w == "IN" || w == "BETWEEN" || w == "LIKE");
        if negated {
            self.advance();
        }
        if self.eat_word("IN") {
            self.expect(&Tok::LParen)?;
            let list = self.expr_list()?;
            self.expect(&Tok::RParen)?;
            return Ok(Some(Expr {
                kind: ExprKind::InList {
                    expr: boxed(),
                    list,
                    negated,
                },
                pos,
            }));
        }
        if self.eat_word("BETWEEN") {
            let low = self.expr_above(PREDICATE + 1)?;
            self.expect_word("AND")?;
            let high = self.expr_above(PREDICATE + 1)?;
            return Ok(Some(Expr {
                kind: ExprKind::Between {
                    expr: boxed(),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                },
                pos,
            }));
        }
        if self.eat_word("LIKE") {
            let pattern = self.expr_above(PREDICATE + 1)?;
            let escape = if self.eat_word("ESCAPE") {
                Some(self.string("an escape character in quotes")?)
            } else {
                None
            };
            return Ok(Some(Expr {
                kind: ExprKind::Like {
                    expr: boxed(),
                    pattern: Box::new(pattern),
                    escape,
                    negated,
                },
                pos,
            }));
        }
        Ok(None)
    }

    pub(super) fn unary(&mut self) -> Result<Expr> {
        let pos = self.pos();
        if self.eat(&Tok::Minus) {
            // Through expr_above, which bounds the nesting of `- - - x`.
            let e = self.expr_above(8)?;
            return Ok(match e.kind {
                ExprKind::Literal(Literal::Int(i)) => Expr {
                    kind: ExprKind::Literal(Literal::Int(-i)),
                    pos,
                },
                ExprKind::Literal(Literal::Decimal(d)) => Expr {
                    kind: ExprKind::Literal(Literal::Decimal(format!("-{d}"))),
                    pos,
                },
                _ => Expr {
                    kind: ExprKind::Unary {
                        op: UnaryOp::Neg,
                        expr: Box::new(e),
                    },
                    pos,
                },
            });
        }
        if self.eat(&Tok::Plus) {
            return self.expr_above(8);
        }
        self.postfix()
    }

    pub(super) fn postfix(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = e.pos;
            if self.eat(&Tok::LBracket) {
                let index = self.expr()?;
                self.expect(&Tok::RBracket)?;
                e = Expr {
                    kind: ExprKind::Subscript {
                        expr: Box::new(e),
                        index: Box::new(index),
                    },
                    pos,
                };
            } else if self.eat(&Tok::Arrow) {
                let field = self.ident("a field name after '->'")?;
                e = Expr {
                    kind: ExprKind::Field {
                        expr: Box::new(e),
                        field,
                    },
                    pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    pub(super) fn primary(&mut self) -> Result<Expr> {
        let pos = self.pos();
        let lit = |kind| Ok(Expr { kind, pos });
        match self.peek().clone() {
            Tok::Int(i) => {
                self.advance();
                lit(ExprKind::Literal(Literal::Int(i)))
            }
            Tok::Decimal(d) => {
                self.advance();
                lit(ExprKind::Literal(Literal::Decimal(d)))
            }
            Tok::Str(s) => {
                self.advance();
                lit(ExprKind::Literal(Literal::String(s)))
            }
            Tok::LParen => {
                self.advance();
                let e = self.expr()?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Quoted(_) => self.column_or_call(),
            Tok::Word(w) => match w.as_str() {
                "TRUE" | "FALSE" => {
                    self.advance();
                    lit(ExprKind::Literal(Literal::Boolean(w == "TRUE")))
                }
                "NULL" => {
                    self.advance();
                    lit(ExprKind::Literal(Literal::Null))
                }
                "CASE" => self.case(),
                "CAST" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let e = self.expr()?;
                    self.expect_word("AS")?;
                    let ty = self.sql_type()?;
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Cast {
                        expr: Box::new(e),
                        ty,
                    })
                }
                "ARRAY" if self.peek_at(1) == &Tok::LBracket => {
                    self.advance();
                    self.advance();
                    let items = if self.at(&Tok::RBracket) {
                        Vec::new()
                    } else {
                        self.expr_list()?
                    };
                    self.expect(&Tok::RBracket)?;
                    lit(ExprKind::Array(items))
                }
                "MAP" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let mut entries = Vec::new();
                    if !self.at(&Tok::RParen) {
                        loop {
                            let k = self.expr()?;
                            self.assign()?;
                            entries.push((k, self.expr()?));
                            if !self.eat(&Tok::Comma) {
                                break;
                            }
                        }
                    }
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Map(entries))
                }
                "STRUCT" if self.peek_at(1) == &Tok::LParen => {
                    self.advance();
                    self.advance();
                    let mut fields = Vec::new();
                    if !self.at(&Tok::RParen) {
                        loop {
                            let name = self.ident("a field name")?;
                            self.assign()?;
                            fields.push((name, self.expr()?));
                            if !self.eat(&Tok::Comma) {
                                break;
                            }
                        }
                    }
                    self.expect(&Tok::RParen)?;
                    lit(ExprKind::Struct(fields))
                }
                _ => self.column_or_call(),
            },
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// `:=` in MAP(..) and STRUCT(..).
    pub(super) fn assign(&mut self) -> Result<()> {
        if self.eat(&Tok::Colon) && self.eat(&Tok::Eq) {
            Ok(())
        } else {
            Err(self.unexpected("':='"))
        }
    }

    pub(super) fn column_or_call(&mut self) -> Result<Expr> {
        if matches!(self.peek(), Tok::Word(w) if is_reserved(w)) {
            return Err(self.unexpected("an expression"));
        }
        let first = self.ident("a column or function name")?;
        let pos = first.pos;
        if self.eat(&Tok::LParen) {
            let distinct = self.eat_word("DISTINCT");
            let (args, star) = if self.eat(&Tok::Star) {
                (Vec::new(), true)
            } else if self.at(&Tok::RParen) {
                (Vec::new(), false)
            } else {
                (self.expr_list()?, false)
            };
            self.expect(&Tok::RParen)?;
            return Ok(Expr {
                kind: ExprKind::Function {
                    name: first,
                    args,
                    star,
                    distinct,
                },
                pos,
            });
        }
        if self.at(&Tok::Dot) && matches!(self.peek_at(1), Tok::Word(_) | Tok::Quoted(_)) {
            self.advance();
            let name = self.ident("a column name")?;
            return Ok(Expr {
                kind: ExprKind::Column {
                    qualifier: Some(first),
                    name,
                },
                pos,
            });
        }
        Ok(Expr {
            kind: ExprKind::Column {
                qualifier: None,
                name: first,
            },
            pos,
        })
    }

    pub(super) fn case(&mut self) -> Result<Expr> {
        let pos = self.pos();
        self.expect_word("CASE")?;
        let operand = if self.is_word("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_word("WHEN") {
            let cond = self.expr()?;
            self.expect_word("THEN")?;
            whens.push((cond, self.expr()?));
        }
        if whens.is_empty() {
            return Err(self.unexpected("WHEN"));
        }
        let otherwise = if self.eat_word("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_word("END")?;
        Ok(Expr {
            kind: ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            pos,
        })
    }
}

/// Words that are never a column (quote a column so named: `FROM`).
fn is_reserved(w: &str) -> bool {
    is_clause_word(w)
        || matches!(
            w,
            "SELECT"
                | "FROM"
                | "BY"
                | "AS"
                | "AND"
                | "OR"
                | "NOT"
                | "WHEN"
                | "THEN"
                | "ELSE"
                | "END"
                | "IS"
                | "IN"
                | "BETWEEN"
                | "LIKE"
        )
}
