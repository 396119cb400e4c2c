//! ListOffsets by timestamp answers with the first *record* whose
//! timestamp reaches the target, as Kafka does, inside batches of many
//! records, compressed or not; MAX_TIMESTAMP names the record carrying it.

mod common;

use common::*;
use eddy_log::batch::{self, recompress, set_log_append_time, SimpleRecord};
use eddy_log::compression::{GZIP, LZ4, NONE, SNAPPY, ZSTD};
use eddy_log::Log;

/// Each stored record as (offset, timestamp), batch by batch, with each
/// batch's max timestamp.
fn record_times(model: &Model) -> Vec<(i64, Vec<(i64, i64)>)> {
    model
        .batches
        .iter()
        .map(|bytes| {
            let plain = recompress(bytes, NONE, 1 << 24).unwrap();
            let header = batch::validate(&plain).unwrap();
            let records = batch::decode_records(&plain).unwrap();
            let times = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let ts = if header.is_log_append_time() {
                        header.max_timestamp
                    } else {
                        header.base_timestamp + r.timestamp_delta_ms
                    };
                    (header.base_offset + i as i64, ts)
                })
                .collect();
            (header.max_timestamp, times)
        })
        .collect()
}

/// Kafka's rule, by brute force: in the first batch whose max timestamp
/// reaches the target, the first record at or after the log start that
/// does; a batch with no such record (its max timestamp lied) is passed.
fn expected(batches: &[(i64, Vec<(i64, i64)>)], log_start: i64, target: i64) -> Option<(i64, i64)> {
    batches
        .iter()
        .filter(|(max, _)| *max >= target)
        .find_map(|(_, times)| {
            times
                .iter()
                .copied()
                .find(|&(offset, ts)| offset >= log_start && ts >= target)
        })
}

fn check_all(log: &Log, model: &Model) {
    let batches = record_times(model);
    for target in -5..1_400 {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected(&batches, log.log_start_offset(), target),
            "ts {target}"
        );
    }
}

/// `count` records with timestamps jittered around `base_ms`, not sorted.
fn jittered(rng: &mut Rng, count: usize, base_ms: i64) -> Vec<u8> {
    let records: Vec<_> = (0..count)
        .map(|i| SimpleRecord {
            timestamp_delta_ms: rng.below(30) as i64 - 5,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'x'; 1 + rng.below(60) as usize]),
            headers: vec![],
        })
        .collect();
    batch::encode_batch(&records, base_ms, -1, -1, -1)
}

#[test]
fn lookup_finds_the_record_in_plain_and_compressed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::new(17);
    let codecs = [NONE, GZIP, SNAPPY, LZ4, ZSTD];
    for i in 0..120 {
        let count = 1 + rng.below(8) as usize;
        let plain = jittered(&mut rng, count, i * 10);
        let codec = codecs[i as usize % codecs.len()];
        append(
            &mut log,
            &mut model,
            recompress(&plain, codec, 1 << 20).unwrap(),
            0,
        );
    }
    assert!(log.segment_count() > 3);
    check_all(&log, &model);

    // A record inside a batch, not its base: the old batch-granularity answer differs.
    let (_, times) = &record_times(&model)[7];
    let (offset, ts) = *times
        .iter()
        .skip(1)
        .find(|(o, t)| times.iter().all(|(o2, t2)| o2 >= o || t2 < t))
        .expect("batch 7 has an inner record that is the first to reach its timestamp");
    assert_eq!(log.offset_for_timestamp(ts).unwrap(), Some((offset, ts)));

    // Every record is the MAX_TIMESTAMP answer's: the first carrying the max.
    let all: Vec<(i64, i64)> = record_times(&model)
        .into_iter()
        .flat_map(|(_, t)| t)
        .collect();
    let max_ts = all.iter().map(|&(_, t)| t).max().unwrap();
    let first = all.iter().find(|&&(_, t)| t == max_ts).unwrap().0;
    assert_eq!(log.max_timestamp(), Some((max_ts, first)));

    // Inside a batch: nothing before the log start is returned.
    let start = model.header(10).base_offset + 1;
    log.delete_records_before(start).unwrap();
    check_all(&log, &model);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config(), 0).unwrap();
    check_all(&log, &model);
}

#[test]
fn log_append_time_batches_use_the_max_timestamp_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::new(3);
    for (i, codec) in [NONE, ZSTD, NONE, SNAPPY].into_iter().enumerate() {
        let mut bytes = jittered(&mut rng, 5, 100);
        set_log_append_time(&mut bytes, 1_000 + 100 * i as i64);
        append(
            &mut log,
            &mut model,
            recompress(&bytes, codec, 1 << 20).unwrap(),
            0,
        );
    }
    check_all(&log, &model);
    assert_eq!(log.offset_for_timestamp(1_150).unwrap(), Some((10, 1_200)));
    assert_eq!(log.max_timestamp(), Some((1_300, 15)));
}

#[test]
fn a_lying_max_timestamp_moves_the_search_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    let records = vec![SimpleRecord::default(); 3];
    // Records at 10, header claims 500.
    let mut liar = batch::encode_batch(&records, 10, -1, -1, -1);
    liar[35..43].copy_from_slice(&500i64.to_be_bytes());
    let crc = crc32c::crc32c(&liar[batch::crc_start()..]);
    liar[17..21].copy_from_slice(&crc.to_be_bytes());
    append(&mut log, &mut model, liar, 0);
    append(
        &mut log,
        &mut model,
        batch::encode_batch(&records, 400, -1, -1, -1),
        0,
    );
    assert_eq!(log.offset_for_timestamp(300).unwrap(), Some((3, 400)));
    assert_eq!(log.offset_for_timestamp(5).unwrap(), Some((0, 10)));
    // No record carries the claimed 500: the batch's base offset answers.
    assert_eq!(log.max_timestamp(), Some((500, 0)));
}

#[test]
fn unreadable_compressed_records_answer_at_batch_granularity() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), 0).unwrap();
    let mut model = Model::default();
    let records = vec![SimpleRecord::default(); 4];
    let plain = batch::encode_batch(&records, 50, -1, -1, -1);
    append(&mut log, &mut model, plain.clone(), 0);
    // A gzip batch whose body is not gzip, with a valid CRC: what a broken producer could send.
    let mut garbage = batch::encode_batch(&records, 100, -1, -1, -1);
    garbage[22] |= GZIP as u8;
    let crc = crc32c::crc32c(&garbage[batch::crc_start()..]);
    garbage[17..21].copy_from_slice(&crc.to_be_bytes());
    append(&mut log, &mut model, garbage, 0);
    assert_eq!(log.offset_for_timestamp(60).unwrap(), Some((4, 100)));
    assert_eq!(log.max_timestamp(), Some((100, 4)));
    assert_eq!(log.offset_for_timestamp(50).unwrap(), Some((0, 50)));
}
