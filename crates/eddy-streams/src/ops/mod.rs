//! The DSL's operators, as topology nodes. One file per family.

pub(crate) mod aggregate;
pub(crate) mod join;
pub(crate) mod sink;
pub(crate) mod sliding_aggregate;
pub(crate) mod source;
pub(crate) mod stateless;
pub(crate) mod table;
pub(crate) mod window_aggregate;
