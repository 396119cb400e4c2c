//! Arbitrary bytes through the record batch checks the log applies to what producers
//! send and to what it reads back from disk: `split`, `BatchHeader::parse`, `validate`,
//! `decode_records`. Must never panic or allocate absurdly.

#![no_main]

use eddy_log::batch::{self, BatchHeader};
use libfuzzer_sys::fuzz_target;

/// Where the stored CRC-32C sits in a v2 batch header (see `eddy_log::batch`).
const CRC_FIELD: std::ops::Range<usize> = 17..21;

fuzz_target!(|data: &[u8]| {
    check(data);
    // libFuzzer cannot forge a CRC-32C, so without this only the seeds would ever get
    // past `validate` into the record parser. Seal a copy and check that too.
    if data.len() >= batch::HEADER_BYTES {
        let mut sealed = data.to_vec();
        let crc = crc32c::crc32c(&sealed[batch::crc_start()..]);
        sealed[CRC_FIELD].copy_from_slice(&crc.to_be_bytes());
        check(&sealed);
    }
});

fn check(data: &[u8]) {
    if let Ok(header) = BatchHeader::parse(data) {
        assert!(header.total_bytes() >= batch::HEADER_BYTES);
    }
    let whole = batch::validate(data);
    let mut batches = 0;
    for one in batch::split(data) {
        let Ok(one) = one else { break };
        batches += 1;
        // split yields exactly one batch's bytes: its header must say so.
        let header = BatchHeader::parse(one).expect("split yields parseable batches");
        assert_eq!(header.total_bytes(), one.len());
        let Ok(valid) = batch::validate(one) else {
            continue;
        };
        assert_eq!(valid, header);
        // What the log computes from a batch it accepted.
        let _ = (
            valid.compression(),
            valid.is_transactional(),
            valid.last_sequence(),
        );
        if let Ok(records) = batch::decode_records(one) {
            // check_header bounds the count by the bytes; decoding must agree with it.
            assert_eq!(records.len(), valid.records_count as usize);
        }
    }
    if let Ok(header) = whole {
        assert_eq!(batches, 1, "a valid batch is one batch to split");
        assert_eq!(header.total_bytes(), data.len());
    }
}
