//! Appends many batches over many small segments and reads them back from
//! every offset, before and after reopening.

mod common;

use common::*;
use eddy_log::batch::{self, encode_batch, SimpleRecord};
use eddy_log::{Log, LogConfig, LogError};

fn fill(log: &mut Log, model: &mut Model, batches: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..batches {
        let count = 1 + rng.below(5) as usize;
        let value_bytes = rng.below(60) as usize;
        append(
            log,
            model,
            batch(count, value_bytes, 1_000 + i as i64),
            1_000,
        );
    }
}

/// For every offset, the read starts with the batch containing it, and
/// holds whole batches that match what was appended, within `max_bytes`.
fn check_every_offset(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.end_offset());
    for offset in 0..model.end_offset() {
        let first = model.batch_containing(offset).unwrap();
        let read = log.read(offset, 300, i64::MAX, true).unwrap();
        let expected = model.concat(first);
        assert!(expected.starts_with(&read.records), "offset {offset}");
        assert!(read.records.len() <= 300 || read.records.len() == model.batches[first].len());
        assert!(read.records.len() >= model.batches[first].len());
        // Maximal: the next batch would not have fit.
        let taken = batch::split(&read.records).count();
        if let Some(next) = model.batches.get(first + taken) {
            assert!(
                read.records.len() + next.len() > 300,
                "offset {offset}: read stopped early"
            );
        }
    }
    assert_eq!(read_all(log), model.concat(0));
}

#[test]
fn round_trip_across_many_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    fill(&mut log, &mut model, 300, 1);
    assert!(
        log.segment_count() > 20,
        "only {} segments",
        log.segment_count()
    );
    check_every_offset(&log, &model);
    let headers = log.headers_from(0).unwrap();
    assert_eq!(headers.len(), model.batches.len());
    for (i, h) in headers.iter().enumerate() {
        assert_eq!(*h, model.header(i));
        assert_eq!(h.partition_leader_epoch, 7);
    }
    let middle = model.header(150);
    assert_eq!(log.headers_from(middle.base_offset + 1).unwrap()[0], middle);

    log.close().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_every_offset(&log, &model);
    fill(&mut log, &mut model, 50, 2);
    check_every_offset(&log, &model);

    drop(log); // unclean: nothing flushed, every segment is scanned
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_every_offset(&log, &model);
}

#[test]
fn read_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    fill(&mut log, &mut model, 40, 3);
    let end = log.log_end_offset();

    assert!(log
        .read(end, 1000, i64::MAX, true)
        .unwrap()
        .records
        .is_empty());
    let out_of_range = |r: Result<_, LogError>| matches!(r, Err(LogError::OffsetOutOfRange { .. }));
    assert!(out_of_range(log.read(end + 1, 1000, i64::MAX, true)));
    assert!(out_of_range(log.read(-1, 1000, i64::MAX, true)));

    // Too small for the first batch: nothing unless min_one_batch (KIP-74).
    assert!(log.read(0, 10, i64::MAX, false).unwrap().records.is_empty());
    assert_eq!(
        log.read(0, 10, i64::MAX, true).unwrap().records,
        model.batches[0]
    );
    assert_eq!(
        log.read(0, 0, i64::MAX, true).unwrap().records,
        model.batches[0]
    );

    // max_offset excludes batches whose base offset reaches it.
    for i in [1, 10, 39] {
        let max_offset = model.header(i).base_offset;
        let read = log.read(0, 1 << 20, max_offset, true).unwrap();
        assert_eq!(read.records, model.batches[..i].concat());
        let inside = log.read(0, 1 << 20, max_offset + 1, true).unwrap();
        assert_eq!(inside.records, model.batches[..=i].concat());
    }
    assert!(log.read(5, 1 << 20, 0, true).unwrap().records.is_empty());
    let read = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!((read.log_start_offset, read.log_end_offset), (0, end));
}

#[test]
fn invalid_batches_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config, 0).unwrap();
    let good = batch(1, 10, 5);
    let mut bad_crc = batch(1, 10, 5);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut two = [good.clone(), bad_crc].concat();
    assert!(matches!(
        log.append(&mut two, 0, 0),
        Err(LogError::InvalidBatch(
            batch::BatchError::CrcMismatch { .. }
        ))
    ));
    let mut torn = [good.clone(), good[..good.len() - 3].to_vec()].concat();
    assert!(matches!(
        log.append(&mut torn, 0, 0),
        Err(LogError::InvalidBatch(_))
    ));
    let mut large = [good.clone(), batch(1, 300, 5)].concat();
    assert!(matches!(
        log.append(&mut large, 0, 0),
        Err(LogError::BatchTooLarge { max: 200, .. })
    ));
    assert!(matches!(
        log.append(&mut [], 0, 0),
        Err(LogError::InvalidBatch(_))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));

    let mut ok = [good.clone(), good].concat();
    let info = log.append(&mut ok, 3, 0).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.batches.len()),
        (0, 1, 2)
    );
    assert_eq!(info.batches[1].base_offset, 1);
    assert_eq!(info.batches[1].partition_leader_epoch, 3);
    assert_eq!(log.read(0, 1000, i64::MAX, true).unwrap().records, ok);
}

#[test]
fn append_info_reports_max_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    let r = |delta| SimpleRecord {
        timestamp_delta_ms: delta,
        ..Default::default()
    };
    let mut records = [
        encode_batch(&[r(0), r(5)], 100, -1, -1, -1),
        encode_batch(&[r(0), r(50), r(1)], 100, -1, -1, -1),
        encode_batch(&[r(0)], 150, -1, -1, -1),
    ]
    .concat();
    let info = log.append(&mut records, 0, 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 5));
    assert_eq!((info.max_timestamp, info.offset_of_max_timestamp), (150, 2));
    // AppendInfo names the batch; the log's MAX_TIMESTAMP answer names the record.
    assert_eq!(log.max_timestamp(), Some((150, 3)));
}
