//! Every [`KeyValueStore`] engine against a `BTreeMap` model.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::kv::{KeyValueIter, KeyValueStore, KEY_BYTES_MAX};
use crate::testing::backends;
use crate::{Result, StoreError};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn entries(iter: Result<KeyValueIter<'_>>) -> Entries {
    iter.unwrap()
        .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_>>()
        .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Range(Option<Vec<u8>>, Option<Vec<u8>>),
    RangeRev(Option<Vec<u8>>, Option<Vec<u8>>),
    Prefix(Vec<u8>),
    Flush,
}

/// Short keys over a few bytes (0x00 and 0xff included), so that equal
/// keys, prefixes and empty keys come up often.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', 0xff]), 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(any::<u8>(), 0..8);
    prop_oneof![
        5 => (key(), value).prop_map(|(k, v)| Op::Put(k, v)),
        2 => key().prop_map(Op::Delete),
        2 => key().prop_map(Op::Get),
        2 => (prop::option::of(key()), prop::option::of(key())).prop_map(|(a, b)| Op::Range(a, b)),
        1 => (prop::option::of(key()), prop::option::of(key())).prop_map(|(a, b)| Op::RangeRev(a, b)),
        1 => key().prop_map(Op::Prefix),
        1 => Just(Op::Flush),
    ]
}

fn expected_range(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: &Option<Vec<u8>>,
    to: &Option<Vec<u8>>,
) -> Entries {
    model
        .iter()
        .filter(|(k, _)| {
            from.as_ref().is_none_or(|f| *k >= f) && to.as_ref().is_none_or(|t| *k < t)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn apply(store: &mut dyn KeyValueStore, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, op: Op) {
    match op {
        Op::Put(k, v) => {
            store.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        Op::Delete(k) => {
            store.delete(&k).unwrap();
            model.remove(&k);
        }
        Op::Get(k) => {
            let got = store.get(&k).unwrap().map(|v| v.to_vec());
            assert_eq!(got.as_ref(), model.get(&k), "get {k:?}");
        }
        Op::Range(from, to) => {
            let got = entries(store.range(from.as_deref(), to.as_deref()));
            assert_eq!(
                got,
                expected_range(model, &from, &to),
                "range {from:?}..{to:?}"
            );
        }
        Op::RangeRev(from, to) => {
            let mut want = expected_range(model, &from, &to);
            want.reverse();
            let got = entries(store.range_rev(from.as_deref(), to.as_deref()));
            assert_eq!(got, want, "range_rev {from:?}..{to:?}");
        }
        Op::Prefix(p) => {
            let want: Entries = model
                .iter()
                .filter(|(k, _)| k.starts_with(&p))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(entries(store.prefix_scan(&p)), want, "prefix {p:?}");
        }
        Op::Flush => store.flush().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_engine_behaves_like_a_sorted_map(ops in prop::collection::vec(op(), 1..80)) {
        for (mut store, _dir) in backends("kv") {
            let mut model = BTreeMap::new();
            for op in ops.clone() {
                apply(store.as_mut(), &mut model, op);
            }
            let want: Entries = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(entries(store.all()), want);
            if !store.is_persistent() {
                assert_eq!(store.approximate_num_entries(), model.len() as u64);
            }
        }
    }
}

#[test]
fn keys_over_the_limit_are_refused_by_every_engine() {
    for (mut store, _dir) in backends("big-keys") {
        let big = vec![7u8; KEY_BYTES_MAX + 1];
        let err = store.put(&big, b"v").unwrap_err();
        assert!(matches!(err, StoreError::KeyTooLarge { key_bytes, .. } if key_bytes == big.len()));
        assert!(err.to_string().contains("store \"big-keys\""), "{err}");
        assert_eq!(store.get(&big).unwrap(), None);
        store.delete(&big).unwrap();
        let largest = vec![7u8; KEY_BYTES_MAX];
        store.put(&largest, b"v").unwrap();
        assert_eq!(store.get(&largest).unwrap().unwrap(), &b"v"[..]);
    }
}

#[test]
fn reversed_and_empty_ranges_are_empty_not_errors() {
    for (mut store, _dir) in backends("ranges") {
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
        assert_eq!(entries(store.range(Some(b"b"), None)).len(), 1);
        assert_eq!(entries(store.range(Some(b"b"), Some(b"a"))), []);
        assert_eq!(entries(store.range_rev(Some(b"b"), Some(b"a"))), []);
        assert_eq!(entries(store.range(Some(b"a"), Some(b"a"))), []);
        assert_eq!(entries(store.range(None, Some(b""))), []);
    }
}
