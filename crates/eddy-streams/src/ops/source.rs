//! A source node: the task decodes the consumed record (it knows the source's serdes and
//! timestamp extractor); the node passes it on.

use crate::error::Result;
use crate::processor::{Context, Node};
use crate::record::Record;

pub(crate) struct SourceNode;

impl Node for SourceNode {
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        ctx.forward(record)
    }
}
