//! Stateless operators (filter, map, flatMap, peek, ...): a shared closure per operator,
//! one node per task around it.

use std::sync::Arc;

use crate::error::Result;
use crate::processor::{Context, Node};
use crate::record::Record;
use crate::topology::NodeFactory;

type Step = dyn Fn(&mut Context<'_>, Record) -> Result<()> + Send + Sync;

struct FnNode(Arc<Step>);

impl Node for FnNode {
    fn process(&mut self, ctx: &mut Context<'_>, record: Record) -> Result<()> {
        (self.0)(ctx, record)
    }
}

/// A node factory for an operator that is just a function of the record.
pub(crate) fn factory(
    step: impl Fn(&mut Context<'_>, Record) -> Result<()> + Send + Sync + 'static,
) -> NodeFactory {
    let step: Arc<Step> = Arc::new(step);
    Arc::new(move || Box::new(FnNode(step.clone())))
}
