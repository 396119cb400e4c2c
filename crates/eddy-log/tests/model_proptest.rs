//! Random operation sequences against an in-memory model: every read,
//! header walk and timestamp lookup must agree with it, across rolls,
//! truncation, DeleteRecords, retention and clean or unclean reopens.

mod common;

use common::*;
use eddy_log::batch::{self, encode_batch, SimpleRecord};
use eddy_log::{Log, LogConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        batches: Vec<(u8, u8, u16)>,
    },
    Read {
        at: prop::sample::Index,
        max_bytes: u16,
        cap: Option<prop::sample::Index>,
        min_one: bool,
    },
    Truncate {
        at: prop::sample::Index,
    },
    DeleteRecords {
        at: prop::sample::Index,
    },
    Flush,
    Reopen {
        clean: bool,
    },
    Timestamp {
        ts: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let batch = (1u8..5, 0u8..80, 0u16..1000);
    prop_oneof![
        6 => proptest::collection::vec(batch, 1..4).prop_map(|batches| Op::Append { batches }),
        6 => (any::<prop::sample::Index>(), 0u16..1500, proptest::option::of(any::<prop::sample::Index>()), any::<bool>())
            .prop_map(|(at, max_bytes, cap, min_one)| Op::Read { at, max_bytes, cap, min_one }),
        1 => any::<prop::sample::Index>().prop_map(|at| Op::Truncate { at }),
        1 => any::<prop::sample::Index>().prop_map(|at| Op::DeleteRecords { at }),
        2 => Just(Op::Flush),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        2 => (0u16..1100).prop_map(|ts| Op::Timestamp { ts }),
    ]
}

struct Harness {
    dir: tempfile::TempDir,
    config: LogConfig,
    log: Option<Log>,
    model: Model,
    log_start: i64,
}

impl Harness {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().unwrap()
    }

    /// Model batches from `log_start` on: (index, header).
    fn live(&self) -> Vec<(usize, batch::BatchHeader)> {
        (0..self.model.batches.len())
            .map(|i| (i, self.model.header(i)))
            .filter(|(_, h)| h.next_offset() > self.log_start)
            .collect()
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append { batches } => {
                let mut bytes = Vec::new();
                for (count, value_bytes, ts) in &batches {
                    let records: Vec<SimpleRecord> = (0..*count)
                        .map(|i| SimpleRecord {
                            value: Some(vec![i; *value_bytes as usize]),
                            ..Default::default()
                        })
                        .collect();
                    bytes.extend(encode_batch(&records, *ts as i64, -1, -1, -1));
                }
                let info = self.log().append(&mut bytes, 1, 0).unwrap();
                assert_eq!(info.base_offset, self.model.end_offset());
                for one in batch::split(&bytes) {
                    self.model.batches.push(one.unwrap().to_vec());
                }
            }
            Op::Read {
                at,
                max_bytes,
                cap,
                min_one,
            } => self.check_read(at, max_bytes as usize, cap, min_one),
            Op::Truncate { at } => {
                let end = self.model.end_offset();
                let offset = self.log_start + at.index((end - self.log_start + 1) as usize) as i64;
                self.log().truncate_to(offset).unwrap();
                let keep = self
                    .model
                    .batch_containing(offset)
                    .unwrap_or(self.model.batches.len());
                self.model.batches.truncate(keep);
                let end = self.model.end_offset();
                self.log_start = self.log_start.min(end);
            }
            Op::DeleteRecords { at } => {
                let end = self.model.end_offset();
                let offset = self.log_start + at.index((end - self.log_start + 1) as usize) as i64;
                assert_eq!(self.log().delete_records_before(offset).unwrap(), offset);
                self.log_start = offset;
            }
            Op::Flush => flush(self.log()),
            Op::Reopen { clean } => {
                let log = self.log.take().unwrap();
                if clean {
                    log.close().unwrap();
                } else {
                    // Unclean, but nothing is lost: the OS kept the page cache.
                    drop(log);
                }
                self.log = Some(Log::open(self.dir.path(), self.config.clone(), 0).unwrap());
            }
            Op::Timestamp { ts } => {
                let ts = ts as i64;
                let expected = self
                    .live()
                    .into_iter()
                    .find(|(_, h)| h.max_timestamp >= ts)
                    .map(|(_, h)| (h.base_offset.max(self.log_start), h.max_timestamp));
                assert_eq!(self.log().offset_for_timestamp(ts).unwrap(), expected);
            }
        }
        self.check_invariants();
    }

    fn check_read(
        &mut self,
        at: prop::sample::Index,
        max_bytes: usize,
        cap: Option<prop::sample::Index>,
        min_one: bool,
    ) {
        let end = self.model.end_offset();
        let offset = self.log_start + at.index((end - self.log_start + 1) as usize) as i64;
        let max_offset = cap.map_or(i64::MAX, |c| c.index(end as usize + 2) as i64);
        let read = self
            .log()
            .read(offset, max_bytes, max_offset, min_one)
            .unwrap();
        // Expected: whole batches from the one containing offset, base < max_offset, within max_bytes.
        let mut expected = Vec::new();
        if let Some(first) = self.model.batch_containing(offset) {
            for i in first..self.model.batches.len() {
                let b = &self.model.batches[i];
                if self.model.header(i).base_offset >= max_offset {
                    break;
                }
                if expected.len() + b.len() > max_bytes && !(min_one && expected.is_empty()) {
                    break;
                }
                expected.extend_from_slice(b);
            }
        }
        assert_eq!(
            read.records, expected,
            "read({offset}, {max_bytes}, {max_offset}, {min_one})"
        );
        assert_eq!(
            (read.log_start_offset, read.log_end_offset),
            (self.log_start, end)
        );
    }

    fn check_invariants(&mut self) {
        let (start, end) = (self.log_start, self.model.end_offset());
        let log = self.log.as_ref().unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
        assert!(log.flushed_offset() <= end);
        let live = self.live();
        let headers = log.headers_from(start).unwrap();
        assert_eq!(headers, live.iter().map(|(_, h)| *h).collect::<Vec<_>>());
        let max = live
            .iter()
            .map(|(_, h)| (h.max_timestamp, -h.base_offset))
            .max();
        if let (Some((ts, neg_offset)), Some((log_ts, log_offset))) = (max, log.max_timestamp()) {
            // The log may also remember timestamps of batches below the start
            // that share a segment with live ones; it is never lower.
            assert!(log_ts > ts || (log_ts == ts && log_offset <= -neg_offset));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn log_agrees_with_model(ops in proptest::collection::vec(op(), 1..60), segment_bytes in 200u64..2000, interval in 0u64..300) {
        let config = LogConfig { segment_bytes, index_interval_bytes: interval, retention_ms: -1, ..LogConfig::default() };
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config.clone(), 0).unwrap();
        let mut harness = Harness { dir, config, log: Some(log), model: Model::default(), log_start: 0 };
        for op in ops {
            harness.apply(op);
        }
        harness.apply(Op::Reopen { clean: false });
        harness.apply(Op::Reopen { clean: true });
    }
}
