//! Unit tests of the transaction state machine and the error classification.

use super::*;

fn kafka(code: i16) -> Error {
    Error::Kafka {
        code: KafkaCode(code),
        context: "test".to_owned(),
        message: None,
    }
}

fn open() -> TxnState {
    let mut txn = TxnState::new();
    txn.start_init().unwrap();
    txn.initialized(true);
    txn.begin().unwrap();
    txn
}

#[test]
fn calls_follow_the_phases() {
    let mut txn = TxnState::new();
    assert!(matches!(txn.begin(), Err(Error::TxnState(_))));
    assert!(matches!(txn.check_open("send"), Err(Error::TxnState(_))));
    txn.start_init().unwrap();
    assert!(txn.start_init().is_err(), "init runs once at a time");
    txn.initialized(false);
    assert!(txn.start_commit().is_err(), "nothing open");
    assert!(txn.start_abort().is_err(), "nothing open");
    txn.begin().unwrap();
    assert!(txn.begin().is_err(), "one transaction at a time");
    txn.check_open("send").unwrap();
    assert!(!txn.started());
    let tp = TopicPartition::new("t", 1);
    assert_eq!(txn.missing([tp.clone(), tp.clone()]), vec![tp.clone()]);
    txn.partitions_added(std::slice::from_ref(&tp));
    assert!(txn.missing([tp]).is_empty());
    assert!(txn.started());
    txn.start_commit().unwrap();
    assert!(txn.check_open("send").is_err(), "no sends while committing");
    txn.check_sending().unwrap();
    txn.check_committing().unwrap();
    txn.completed();
    assert!(!txn.started(), "the next transaction starts empty");
    assert!(matches!(txn.phase(), Phase::Ready));
}

#[test]
fn an_abortable_failure_allows_only_abort() {
    let mut txn = open();
    let e = txn.fail(kafka(6 /* NOT_LEADER_OR_FOLLOWER, after retries */));
    assert!(e.txn_requires_abort() && !e.is_fatal_txn());
    let later = txn.fail(kafka(7));
    assert_eq!(
        later.kafka_code(),
        Some(KafkaCode(6)),
        "the first cause is kept"
    );
    for refused in [
        txn.check_open("send"),
        txn.start_commit(),
        txn.check_sending(),
    ] {
        assert!(refused.unwrap_err().txn_requires_abort());
    }
    txn.start_abort().unwrap();
    let during = txn.check_sending().unwrap_err();
    assert!(
        during.txn_requires_abort(),
        "queued batches fail with the abort"
    );
    txn.start_abort().unwrap(); // an abort that did not finish may be called again
    txn.completed();
    txn.begin().unwrap();
}

#[test]
fn a_fatal_failure_is_final() {
    let mut txn = open();
    let e = txn.fail(classify_produce(kafka(KafkaCode::INVALID_PRODUCER_EPOCH.0)));
    assert!(e.is_fatal_txn());
    assert_eq!(e.kafka_code(), Some(KafkaCode::INVALID_PRODUCER_EPOCH));
    assert!(
        txn.fail(kafka(6)).is_fatal_txn(),
        "fatal wins over later errors"
    );
    let refused = [
        txn.check_open("send"),
        txn.start_commit(),
        txn.start_abort(),
        txn.begin(),
        txn.start_init(),
    ];
    for r in refused {
        let r = r.unwrap_err();
        assert!(r.is_fatal_txn());
        assert_eq!(r.kafka_code(), Some(KafkaCode::INVALID_PRODUCER_EPOCH));
    }
}

#[test]
fn commit_failing_before_end_txn_becomes_abortable() {
    let mut txn = open();
    txn.start_commit().unwrap();
    txn.fail(kafka(KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0));
    assert!(txn.check_committing().unwrap_err().txn_requires_abort());
    txn.start_abort().unwrap();
}

#[test]
fn init_timeouts_may_be_retried_but_fencing_is_fatal() {
    let mut txn = TxnState::new();
    txn.start_init().unwrap();
    let timeout = Error::Timeout {
        what: "InitProducerId".into(),
        timeout_ms: 1,
    };
    let e = txn.init_failed(timeout);
    assert!(!e.is_fatal_txn() && !e.txn_requires_abort());
    txn.start_init().unwrap();
    let e = txn.init_failed(kafka(KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0));
    assert!(e.is_fatal_txn());
    assert!(txn.start_init().unwrap_err().is_fatal_txn());
}

#[test]
fn coordinator_errors_are_classified_like_java() {
    use Call::*;
    let retry_refind = Outcome::Retry { refind: true };
    let retry = Outcome::Retry { refind: false };
    for call in [
        InitProducerId,
        AddPartitions,
        AddOffsets,
        TxnOffsetCommit,
        EndTxn,
    ] {
        assert_eq!(classify(call, KafkaCode::NOT_COORDINATOR), retry_refind);
        assert_eq!(
            classify(call, KafkaCode::COORDINATOR_NOT_AVAILABLE),
            retry_refind
        );
        assert_eq!(
            classify(call, KafkaCode::COORDINATOR_LOAD_IN_PROGRESS),
            retry
        );
        assert_eq!(classify(call, KafkaCode::CONCURRENT_TRANSACTIONS), retry);
        assert_eq!(classify(call, KafkaCode::PRODUCER_FENCED), Outcome::Fatal);
        assert_eq!(
            classify(call, KafkaCode::INVALID_PRODUCER_EPOCH),
            Outcome::Fatal
        );
        let auth = KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        assert_eq!(classify(call, auth), Outcome::Fatal);
    }
    let invalid_state = KafkaCode::INVALID_TXN_STATE;
    assert_eq!(classify(AddPartitions, invalid_state), Outcome::Abortable);
    assert_eq!(classify(AddOffsets, invalid_state), Outcome::Abortable);
    assert_eq!(classify(EndTxn, invalid_state), Outcome::Fatal);
    assert_eq!(classify(EndTxn, TRANSACTION_ABORTABLE), Outcome::Abortable);
    // ILLEGAL_GENERATION: the consumer lost its partitions meanwhile.
    assert_eq!(classify(TxnOffsetCommit, KafkaCode(22)), Outcome::Abortable);
    assert_eq!(classify_error(&kafka(35)), Outcome::Fatal);
    let timeout = Error::Timeout {
        what: "x".into(),
        timeout_ms: 1,
    };
    assert_eq!(classify_error(&timeout), retry_refind);
}
