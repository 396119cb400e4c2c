use super::*;
use crate::txn::records::{decode_value, encode_value};

fn ids() -> impl FnMut() -> Result<i64, i16> {
    let mut next = 100;
    move || {
        next += 1;
        Ok(next)
    }
}

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_string(), p)
}

fn ready(step: InitStep) -> TxnMetadata {
    match step {
        InitStep::Ready(m) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn prepared(step: EndStep) -> TxnMetadata {
    match step {
        EndStep::Prepare(m) => m,
        other => panic!("expected Prepare, got {other:?}"),
    }
}

/// A fresh id with one open transaction on `a-0`.
fn ongoing() -> TxnMetadata {
    let m = TxnMetadata::new("tx", 7, 60_000, 1_000);
    m.add_partitions(7, 0, &[tp("a", 0)], 2_000)
        .expect("add")
        .expect("changed")
}

#[test]
fn add_starts_a_transaction_and_is_idempotent() {
    let m = ongoing();
    assert_eq!(m.state, TxnState::Ongoing);
    assert_eq!(m.start_ms, 2_000);
    assert_eq!(m.add_partitions(7, 0, &[tp("a", 0)], 3_000), Ok(None));
    let more = m
        .add_partitions(7, 0, &[tp("b", 1)], 3_000)
        .unwrap()
        .unwrap();
    assert_eq!(more.partitions.len(), 2);
    assert_eq!(more.start_ms, 2_000, "adding keeps the start time");
}

#[test]
fn add_with_stale_epoch_or_id_is_fenced() {
    let m = ongoing();
    assert_eq!(
        m.add_partitions(7, 1, &[tp("a", 1)], 0),
        Err(codes::PRODUCER_FENCED)
    );
    assert_eq!(
        m.add_partitions(8, 0, &[tp("a", 1)], 0),
        Err(codes::INVALID_PRODUCER_ID_MAPPING)
    );
}

#[test]
fn v1_commit_prepares_then_completes_without_bump() {
    let m = ongoing();
    let p = prepared(m.end(7, 0, true, false, 5_000, &mut ids()).unwrap());
    assert_eq!((p.state, p.producer_epoch), (TxnState::PrepareCommit, 0));
    assert_eq!(p.marker_producer(), (7, 0));
    // While prepared: everything else waits.
    assert_eq!(
        p.add_partitions(7, 0, &[tp("a", 0)], 0),
        Err(codes::CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        p.init((-1, -1), 1000, 0, &mut ids()),
        Err(codes::CONCURRENT_TRANSACTIONS)
    );
    let c = p.complete(6_000);
    assert_eq!(c.state, TxnState::CompleteCommit);
    // A retried v1 commit is answered from the completed state.
    assert_eq!(
        c.end(7, 0, true, false, 0, &mut ids()),
        Ok(EndStep::Done(7, 0))
    );
    assert_eq!(
        c.end(7, 0, false, false, 0, &mut ids()),
        Err(codes::INVALID_TXN_STATE)
    );
    // The next add starts a fresh transaction.
    let n = c
        .add_partitions(7, 0, &[tp("z", 0)], 7_000)
        .unwrap()
        .unwrap();
    assert_eq!(n.partitions.len(), 1);
    assert_eq!((n.state, n.start_ms), (TxnState::Ongoing, 7_000));
}

#[test]
fn v2_end_bumps_the_epoch_every_time_and_retries_are_answered() {
    let m = ongoing();
    let p = prepared(m.end(7, 0, true, true, 5_000, &mut ids()).unwrap());
    assert_eq!((p.producer_epoch, p.last_producer_epoch), (1, 0));
    assert_eq!(p.marker_producer(), (7, 1), "markers carry the new epoch");
    let c = p.complete(6_000);
    assert_eq!(
        c.end(7, 0, true, true, 0, &mut ids()),
        Ok(EndStep::Done(7, 1))
    );
    // The old epoch cannot start a new transaction.
    assert_eq!(
        c.add_partitions(7, 0, &[tp("a", 0)], 0),
        Err(codes::PRODUCER_FENCED)
    );
    let next = c.add_partitions(7, 1, &[tp("a", 0)], 0).unwrap().unwrap();
    let p2 = prepared(next.end(7, 1, false, true, 0, &mut ids()).unwrap());
    assert_eq!((p2.state, p2.producer_epoch), (TxnState::PrepareAbort, 2));
}

#[test]
fn v2_end_at_epoch_exhaustion_moves_to_a_new_producer_id() {
    let mut m = ongoing();
    m.producer_epoch = EPOCH_MAX;
    let p = prepared(m.end(7, EPOCH_MAX, true, true, 0, &mut ids()).unwrap());
    assert_eq!(
        (p.producer_id, p.producer_epoch, p.prev_producer_id),
        (101, 0, 7)
    );
    assert_eq!(
        p.marker_producer(),
        (7, EPOCH_MAX),
        "markers go to the old id"
    );
    let c = p.complete(1);
    assert_eq!(
        c.end(7, EPOCH_MAX, true, true, 0, &mut ids()),
        Ok(EndStep::Done(101, 0))
    );
}

#[test]
fn v2_abort_of_an_empty_transaction_bumps() {
    let m = TxnMetadata::new("tx", 7, 60_000, 0);
    let p = prepared(m.end(7, 0, false, true, 0, &mut ids()).unwrap());
    assert_eq!((p.state, p.producer_epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(
        m.end(7, 0, true, false, 0, &mut ids()),
        Err(codes::INVALID_TXN_STATE),
        "committing nothing with v1 is a state error"
    );
}

#[test]
fn init_bumps_and_fences_an_open_transaction() {
    let m = ongoing();
    let step = m.init((-1, -1), 30_000, 9_000, &mut ids()).unwrap();
    let InitStep::AbortFirst(f) = step else {
        panic!("expected AbortFirst");
    };
    assert_eq!((f.state, f.producer_epoch), (TxnState::PrepareAbort, 1));
    assert!(f.v2, "the fencing abort's epoch was bumped at prepare");
    assert_eq!(f.marker_producer(), (7, 1));
    let done = f.complete(10_000);
    let r = ready(done.init((-1, -1), 30_000, 11_000, &mut ids()).unwrap());
    assert_eq!(
        (r.state, r.producer_epoch, r.timeout_ms),
        (TxnState::Empty, 2, 30_000)
    );
    assert!(r.partitions.is_empty());
    // The old producer is fenced now.
    assert_eq!(
        r.add_partitions(7, 0, &[tp("a", 0)], 0),
        Err(codes::PRODUCER_FENCED)
    );
}

#[test]
fn init_with_kip360_expected_epoch() {
    let m = TxnMetadata::new("tx", 7, 60_000, 0);
    assert_eq!(
        m.init((7, 3), 1000, 0, &mut ids()),
        Err(codes::PRODUCER_FENCED)
    );
    let r = ready(m.init((7, 0), 1000, 0, &mut ids()).unwrap());
    assert_eq!(r.producer_epoch, 1);
    // The answer was lost and the producer asks again with its old epoch.
    let again = ready(r.init((7, 0), 1000, 0, &mut ids()).unwrap());
    assert_eq!(again.producer_epoch, 1);
}

#[test]
fn init_at_epoch_exhaustion_allocates_a_new_id() {
    let mut m = TxnMetadata::new("tx", 7, 60_000, 0);
    m.producer_epoch = EPOCH_MAX;
    let r = ready(m.init((-1, -1), 1000, 0, &mut ids()).unwrap());
    assert_eq!(
        (r.producer_id, r.producer_epoch, r.prev_producer_id),
        (101, 0, 7)
    );
}

#[test]
fn timeout_aborts_with_a_bump() {
    let m = ongoing();
    assert!(!m.timed_out(2_000 + 60_000));
    assert!(m.timed_out(2_000 + 60_001));
    let a = m.abort_timed_out(70_000, &mut ids()).unwrap();
    assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
    let c = a.complete(70_001);
    assert_eq!(c.state, TxnState::CompleteAbort);
    assert!(!c.timed_out(i64::MAX));
    // The timed-out producer's commit is fenced.
    assert_eq!(
        c.end(7, 0, true, false, 0, &mut ids()),
        Err(codes::PRODUCER_FENCED)
    );
}

#[test]
fn idle_ids_expire_but_open_ones_do_not() {
    let m = TxnMetadata::new("tx", 7, 60_000, 0);
    assert!(!m.expired(100, 100));
    assert!(m.expired(101, 100));
    assert!(!ongoing().expired(i64::MAX, 100));
}

#[test]
fn every_persisted_state_replays_to_the_same_metadata() {
    let o = ongoing();
    let pc = prepared(o.end(7, 0, true, true, 1, &mut ids()).unwrap());
    let pa = prepared(o.end(7, 0, false, false, 1, &mut ids()).unwrap());
    for m in [
        TxnMetadata::new("tx", 7, 1, 0),
        o.clone(),
        pc.clone(),
        pa.clone(),
        pc.complete(2),
        pa.complete(2),
    ] {
        let back = decode_value("tx", &encode_value(&m)).expect("decodes");
        assert_eq!(back, m);
        assert_eq!(back.marker_producer(), m.marker_producer());
    }
}

#[test]
fn state_names_round_trip() {
    for b in 0..=7 {
        let s = TxnState::from_byte(b).unwrap();
        assert_eq!(TxnState::from_name(s.name()), Some(s));
        assert_eq!(s as i8, b);
    }
    assert_eq!(TxnState::from_byte(8), None);
}
