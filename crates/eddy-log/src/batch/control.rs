//! Control batches: Kafka's transaction markers (`EndTransactionMarker`).
//!
//! A transaction coordinator ends a transaction by writing, to every
//! partition the transaction touched, one batch with the *control* and
//! *transactional* attribute bits set, the producer's id and epoch, base
//! sequence -1 and exactly one record:
//!
//! ```text
//! key:   version i16 (0) | type i16 (0 = ABORT, 1 = COMMIT)
//! value: version i16 (0) | coordinator_epoch i32
//! ```
//!
//! Readers (consumers, the broker's own state rebuild) tell the two kinds
//! apart by the key; newer key/value versions may append fields, so only
//! the prefix is read and a longer value is accepted, as Kafka does.

use super::*;

/// Attribute bit of a transactional batch.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit of a control batch.
pub const ATTR_CONTROL: i16 = 0x20;
/// Control record type of an abort marker (the key's second field).
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// One decoded transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

/// Builds the marker batch (base offset 0: the log assigns it).
pub fn encode_end_txn_marker(marker: &EndTxnMarker, timestamp_ms: i64) -> Vec<u8> {
    let kind = if marker.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = SimpleRecord {
        timestamp_delta_ms: 0,
        key: Some(key),
        value: Some(value),
        headers: Vec::new(),
    };
    encode_batch_with_attributes(
        &[record],
        timestamp_ms,
        marker.producer_id,
        marker.producer_epoch,
        -1,
        ATTR_TRANSACTIONAL | ATTR_CONTROL,
    )
}

/// Decodes a stored control batch as a transaction marker. A control batch
/// whose key is not a marker (Kafka has others, e.g. leader change) is
/// `Ok(None)`: callers skip it.
pub fn decode_end_txn_marker(batch: &[u8]) -> Result<Option<EndTxnMarker>, BatchError> {
    let header = validate_stored(batch)?;
    if !header.is_control() {
        return Err(BatchError::Malformed("not a control batch"));
    }
    let records = decode_records(batch)?;
    let [record] = records.as_slice() else {
        return Err(BatchError::Malformed("a control batch holds one record"));
    };
    let key = record
        .key
        .as_deref()
        .ok_or(BatchError::Malformed("control record without key"))?;
    if key.len() < 4 {
        return Err(BatchError::Malformed("control record key too short"));
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => false,
        CONTROL_TYPE_COMMIT => true,
        _ => return Ok(None),
    };
    let value = record
        .value
        .as_deref()
        .ok_or(BatchError::Malformed("transaction marker without value"))?;
    if value.len() < 6 {
        return Err(BatchError::Malformed("transaction marker value too short"));
    }
    Ok(Some(EndTxnMarker {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
        commit,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn marker_round_trip(pid in 0i64..i64::MAX, epoch in 0i16..i16::MAX,
                             coordinator_epoch in any::<i32>(), commit in any::<bool>(),
                             ts in 0i64..1 << 45) {
            let marker = EndTxnMarker { producer_id: pid, producer_epoch: epoch, coordinator_epoch, commit };
            let bytes = encode_end_txn_marker(&marker, ts);
            let h = validate(&bytes).unwrap();
            prop_assert!(h.is_control() && h.is_transactional());
            prop_assert_eq!(h.base_sequence, -1);
            prop_assert_eq!(h.records_count, 1);
            prop_assert_eq!((h.producer_id, h.producer_epoch), (pid, epoch));
            prop_assert_eq!(decode_end_txn_marker(&bytes).unwrap(), Some(marker));
        }
    }

    #[test]
    fn kafka_layout_of_a_commit_marker() {
        let marker = EndTxnMarker {
            producer_id: 5,
            producer_epoch: 2,
            coordinator_epoch: 7,
            commit: true,
        };
        let bytes = encode_end_txn_marker(&marker, 1_000);
        let records = decode_records(&bytes).unwrap();
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(records[0].value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
        assert_eq!(i16::from_be_bytes([bytes[21], bytes[22]]), 0x30);
    }

    #[test]
    fn other_control_types_and_data_batches() {
        let data = encode_batch(&[SimpleRecord::default()], 0, 1, 0, 0);
        assert!(decode_end_txn_marker(&data).is_err());
        let record = SimpleRecord {
            key: Some(vec![0, 0, 0, 2]),
            value: Some(vec![0; 8]),
            ..Default::default()
        };
        let leader_change = encode_batch_with_attributes(&[record], 0, -1, -1, -1, ATTR_CONTROL);
        assert_eq!(decode_end_txn_marker(&leader_change).unwrap(), None);
    }
}
