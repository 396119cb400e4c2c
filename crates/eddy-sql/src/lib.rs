//! Streaming SQL in ksqlDB's dialect. Three phases, each with its own errors:
//!
//! - [`parse`]: text → statements ([`ast`]), by a parser of our own (ksqlDB's extensions —
//!   `CREATE STREAM`, `EMIT CHANGES`, `WINDOW TUMBLING`, `JOIN … WITHIN` — are not SQL any
//!   general parser accepts). Errors say what was expected, what was found, and where
//!   (line and column).
//! - plan (to come): statements → logical plans checked against the catalog of streams and
//!   tables.
//! - compile: plans → eddy-streams topologies ([`compile`]; stateless queries over streams
//!   so far).
//!
//! # Layout
//!
//! - [`lexer`]: tokens with their positions; identifiers upper-cased unless quoted.
//! - [`ast`]: statements, queries, expressions, types.
//! - [`parse`]: the recursive-descent parser, expressions by precedence climbing.
//! - [`catalog`]: the streams and tables, and the planning of CREATE and DROP.
//! - [`value`]: SQL types and values; [`format`]: the JSON, DELIMITED and KAFKA formats.
//! - [`expr`]: expressions type-checked against the columns in scope, compiled to
//!   closures over a row; [`functions`]: the scalar functions.

pub mod aggregate;
pub mod ast;
pub mod catalog;
pub mod compile;
pub mod datetime;
pub mod expr;
pub mod format;
pub mod functions;
pub mod join;
pub mod lexer;
pub mod parse;
#[cfg(feature = "server")]
pub mod server;
pub mod value;

pub use parse::{parse, parse_statement, parse_with_text, ParseError};
