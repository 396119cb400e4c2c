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
#[derive(Debug)]
pub struct UnkeyedState {
    /// Sticky: bytes after which to move on to the next partition (`batch.size`).
    switch_after_bytes: usize,
    /// Per topic: the current partition (or round-robin cursor) and bytes sent to it.
    topics: HashMap<String, (usize, usize)>,
    /// Where each topic starts, so that separate producers do not all pile onto partition 0.
    start: std::collections::hash_map::RandomState,
}

impl UnkeyedState {
    pub fn new(switch_after_bytes: usize) -> UnkeyedState {
        assert!(switch_after_bytes > 0);
        UnkeyedState {
            switch_after_bytes,
            topics: HashMap::new(),
            start: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The partition for an unkeyed record of `size_bytes` to `topic`. Sticky moves on after
    /// `batch.size` bytes, whether or not a batch filled (KIP-794): moving on only when a
    /// batch fills would leave every lightly loaded producer on one partition.
    pub fn choose(
        &mut self,
        strategy: Partitioner,
        topic: &str,
        partition_count: usize,
        size_bytes: usize,
    ) -> i32 {
        assert!(partition_count > 0, "a topic has at least one partition");
        let start = &self.start;
        let (current, bytes) = self.topics.entry(topic.to_owned()).or_insert_with(|| {
            use std::hash::BuildHasher;
            (start.hash_one(topic) as usize, 0)
        });
        match strategy {
            Partitioner::RoundRobin => *current = current.wrapping_add(1),
            Partitioner::Sticky => {
                if *bytes > 0 && *bytes + size_bytes > self.switch_after_bytes {
                    *current = current.wrapping_add(1);
                    *bytes = 0;
                }
                *bytes += size_bytes;
            }
        }
        (*current % partition_count) as i32
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
    fn round_robin_cycles_and_sticky_moves_on_after_a_batch_worth() {
        let mut state = UnkeyedState::new(100);
        let rr: Vec<i32> = (0..6)
            .map(|_| state.choose(Partitioner::RoundRobin, "t", 3, 10))
            .collect();
        assert!(rr.windows(2).all(|w| (w[0] + 1) % 3 == w[1]), "{rr:?}");

        let mut state = UnkeyedState::new(100);
        let sticky: Vec<i32> = (0..12)
            .map(|_| state.choose(Partitioner::Sticky, "s", 3, 30))
            .collect();
        // 30-byte records, 100 bytes per partition: three records each, then the next one.
        for chunk in sticky.chunks(3) {
            assert!(chunk.iter().all(|&p| p == chunk[0]), "{sticky:?}");
        }
        for w in sticky.chunks(3).collect::<Vec<_>>().windows(2) {
            assert_eq!((w[0][0] + 1) % 3, w[1][0], "{sticky:?}");
        }
        // A record bigger than the threshold still goes somewhere, alone.
        let big = state.choose(Partitioner::Sticky, "s", 3, 1000);
        assert_eq!(state.choose(Partitioner::Sticky, "s", 3, 1), (big + 1) % 3);
    }
}
