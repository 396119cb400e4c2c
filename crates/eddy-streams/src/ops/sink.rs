//! A sink node: encodes records for a topic and hands them to the task's output.

use crate::error::Result;
use crate::processor::{Context, Node};
use crate::record::{OutRecord, Record};
use crate::topology::Encoder;

pub(crate) struct SinkNode {
    topic: String,
    encode: Encoder,
}

impl SinkNode {
    pub fn new(topic: String, encode: Encoder) -> SinkNode {
        SinkNode { topic, encode }
    }
}

impl Node for SinkNode {
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        let (key, value) = (self.encode)(&self.topic, &record)?;
        ctx.emit(OutRecord {
            topic: self.topic.clone(),
            partition: None,
            key,
            value,
            timestamp_ms: record.timestamp_ms,
            headers: record.headers,
        });
        Ok(())
    }
}
