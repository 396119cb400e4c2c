//! Which partition a record goes to. Keyed records hash exactly like the Java client
//! (murmur2 of the key bytes), so Eddy and Java producers put the same key in the same place.

use std::collections::HashMap;

/// How records without a key (and without an explicit partition) are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Fill one partition's batch, then move to the next (KIP-480): fewer, fuller batches.
    #[default]
    Sticky,
    /// One record per partition in turn.
    RoundRobin,
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % partitions`, as in Java.
pub fn partition_for_key(key: &[u8], partition_count: usize) -> i32 {
    assert!(partition_count > 0, "a topic has at least one partition");
    let positive = murmur2(key) & 0x7fff_ffff;
    (positive as usize % partition_count) as i32
}

/// Per-topic state for records without a key.
#[derive(Debug, Default)]
pub struct UnkeyedState {
    /// Next partition per topic: the sticky choice, or the round-robin cursor.
    next: HashMap<String, usize>,
}

impl UnkeyedState {
    /// The partition for an unkeyed record of `topic`.
    pub fn choose(&mut self, strategy: Partitioner, topic: &str, partition_count: usize) -> i32 {
        assert!(partition_count > 0, "a topic has at least one partition");
        let next = self.next.entry(topic.to_owned()).or_insert(0);
        let chosen = *next % partition_count;
        if strategy == Partitioner::RoundRobin {
            *next = next.wrapping_add(1);
        }
        chosen as i32
    }

    /// Called when `topic`'s sticky partition filled a batch: stick to the next one.
    pub fn batch_full(&mut self, topic: &str) {
        if let Some(next) = self.next.get_mut(topic) {
            *next = next.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn keyed_partition_is_the_positive_hash_modulo() {
        // (-790332482 & 0x7fffffff) % 50 == 1357151166 % 50 == 16
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        for n in 1..20 {
            let p = partition_for_key(b"a-little-bit-long-string", n);
            assert!((0..n as i32).contains(&p));
        }
    }

    #[test]
    fn round_robin_cycles_and_sticky_sticks_until_a_batch_fills() {
        let mut state = UnkeyedState::default();
        let rr: Vec<i32> = (0..6)
            .map(|_| state.choose(Partitioner::RoundRobin, "t", 3))
            .collect();
        assert_eq!(rr, [0, 1, 2, 0, 1, 2]);

        let mut state = UnkeyedState::default();
        assert_eq!(state.choose(Partitioner::Sticky, "s", 3), 0);
        assert_eq!(state.choose(Partitioner::Sticky, "s", 3), 0);
        state.batch_full("s");
        assert_eq!(state.choose(Partitioner::Sticky, "s", 3), 1);
        assert_eq!(state.choose(Partitioner::Sticky, "other", 3), 0);
    }
}
