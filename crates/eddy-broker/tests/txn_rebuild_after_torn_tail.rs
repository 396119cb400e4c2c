//! Transaction state rebuilt from the log after a crash: a marker torn by
//! the crash is cut by recovery, and with it the end of its transaction —
//! the aborted index loses that entry and the transaction is open again
//! (holding the LSO) until the coordinator writes the marker anew.

use std::fs::OpenOptions;

use eddy_broker::producer_state::ProducerStates;
use eddy_log::batch::{
    encode_batch_with_attributes, encode_end_txn_marker, EndTxnMarker, SimpleRecord,
    ATTR_TRANSACTIONAL,
};
use eddy_log::{Log, LogConfig};

fn data(pid: i64, count: usize) -> Vec<u8> {
    let records: Vec<SimpleRecord> = (0..count)
        .map(|i| SimpleRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 10]),
            ..Default::default()
        })
        .collect();
    encode_batch_with_attributes(&records, 1_000, pid, 0, 0, ATTR_TRANSACTIONAL)
}

fn marker(pid: i64, commit: bool) -> Vec<u8> {
    let m = EndTxnMarker {
        producer_id: pid,
        producer_epoch: 0,
        coordinator_epoch: 1,
        commit,
    };
    encode_end_txn_marker(&m, 1_000)
}

/// Offsets: 0-1 pid 1, 2 pid 2, 3 ABORT(2), 4 COMMIT(1), 5 pid 3, 6 ABORT(3).
/// Returns the length of the last marker.
fn write_log(dir: &std::path::Path) -> usize {
    let mut log = Log::open(dir, LogConfig::default(), 0).unwrap();
    let mut last = 0;
    for mut b in [
        data(1, 2),
        data(2, 1),
        marker(2, false),
        marker(1, true),
        data(3, 1),
        marker(3, false),
    ] {
        last = b.len();
        log.append(&mut b, 0, 1_000).unwrap();
    }
    drop(log); // no close(): an unclean stop
    last
}

fn rebuilt(dir: &std::path::Path) -> ProducerStates {
    let log = Log::open(dir, LogConfig::default(), 0).unwrap();
    let headers = log.headers_from(log.log_start_offset()).unwrap();
    ProducerStates::rebuild_from_log(&log, &headers)
}

#[test]
fn whole_log_rebuilds_both_aborts() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let s = rebuilt(dir.path());
    assert_eq!(s.aborted().aborted_transactions(0, 7), vec![(2, 2), (3, 5)]);
    assert_eq!(s.aborted().aborted_transactions(4, 7), vec![(3, 5)]);
    assert_eq!(s.ongoing_transactions(), vec![]);
    assert_eq!(s.first_unstable_offset(7), None);
    assert_eq!(s.get(1).unwrap().coordinator_epoch, 1);
}

#[test]
fn torn_marker_reopens_its_transaction() {
    let template = tempfile::tempdir().unwrap();
    let marker_len = write_log(template.path());
    let segment = template.path().join("00000000000000000000.log");
    let full = std::fs::metadata(&segment).unwrap().len();
    for cut in 1..marker_len as u64 {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(template.path()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        let torn = dir.path().join("00000000000000000000.log");
        OpenOptions::new()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(full - cut)
            .unwrap();
        let s = rebuilt(dir.path());
        assert_eq!(
            s.aborted().aborted_transactions(0, 7),
            vec![(2, 2)],
            "cut {cut}"
        );
        assert_eq!(s.ongoing_transactions(), vec![(3, 5)], "cut {cut}");
        assert_eq!(s.first_unstable_offset(6), Some(5), "cut {cut}");
    }
}
