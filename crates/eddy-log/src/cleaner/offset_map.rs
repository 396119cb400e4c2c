//! The key → latest offset map of the dirty section, bounded in memory.
//!
//! Kafka stores 16-byte MD5 digests of keys; Eddy stores the keys
//! themselves (no collision can ever drop a live record) and counts each
//! entry as its key length plus [`ENTRY_OVERHEAD_BYTES`] against
//! `log.cleaner.dedupe.buffer.size`.

use std::collections::HashMap;

use super::filter::parse_records;
use super::plan::CleanPlan;
use super::read::BatchReader;
use super::CleanerLimits;
use crate::batch;
use crate::error::LogError;

/// Approximate bytes per map entry besides the key: hash table slot,
/// `Vec` header and offset.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 48;

#[derive(Default)]
pub(crate) struct OffsetMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl OffsetMap {
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }

    fn insert(&mut self, key: &[u8], offset: i64) {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = (*latest).max(offset);
            return;
        }
        self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
        self.latest.insert(key.to_vec(), offset);
    }
}

/// Maps the dirty section from `plan.first_dirty`, batch by batch, until
/// the next batch could overflow the buffer. Returns the map and the
/// offset it covers up to (the new first dirty offset). The first batch
/// is always taken, so every pass makes progress.
pub(crate) fn build(
    plan: &CleanPlan,
    limits: &CleanerLimits,
) -> Result<(OffsetMap, i64), LogError> {
    let mut map = OffsetMap::default();
    let mut any = false;
    for segment in plan
        .segments
        .iter()
        .filter(|s| s.next_offset > plan.first_dirty)
    {
        let mut reader = BatchReader::new(segment);
        while let Some((_, header, bytes)) = reader.next_batch()? {
            if header.next_offset() <= plan.first_dirty
                || header.is_control()
                || header.is_transactional()
            {
                continue;
            }
            // A batch whose records do not parse (a producer's garbage
            // under a valid CRC) is kept as it is and maps nothing.
            let Ok((_, section)) = batch::records_bytes(bytes, limits.decompressed_bytes_max)
            else {
                continue;
            };
            let Ok(records) = parse_records(&section, &header) else {
                continue;
            };
            let mut keys = Vec::with_capacity(records.len());
            for r in &records {
                let offset = header.base_offset + r.offset_delta;
                if let (Some(key), true) = (r.key, offset >= plan.first_dirty) {
                    keys.push((key, offset));
                }
            }
            let added: usize = keys
                .iter()
                .map(|(k, _)| k.len() + ENTRY_OVERHEAD_BYTES)
                .sum();
            if any && map.bytes + added > limits.dedupe_buffer_bytes {
                return Ok((map, header.base_offset.max(plan.first_dirty)));
            }
            keys.iter().for_each(|(k, o)| map.insert(k, *o));
            any = true;
        }
    }
    Ok((map, plan.dirty_end))
}
