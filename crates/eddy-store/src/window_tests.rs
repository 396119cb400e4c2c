use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::testing::backends;
use crate::{InMemoryKeyValueStore, KeyValueStore};

type Store = WindowStore<Box<dyn KeyValueStore>>;

fn each_store(mut test: impl FnMut(&mut Store)) {
    for (inner, _dir) in backends("windows") {
        let mut store = WindowStore::new(inner);
        test(&mut store);
    }
}

fn range(store: &Store, key: &[u8], from: i64, to: i64) -> Vec<(i64, Vec<u8>)> {
    let iter = store.fetch_range(key, from, to).unwrap();
    iter.map(|e| e.map(|(t, v)| (t, v.to_vec())))
        .collect::<Result<_>>()
        .unwrap()
}

fn all(store: &Store) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    let iter = store.all().unwrap();
    iter.map(|e| e.map(|(k, t, v)| (k.to_vec(), t, v.to_vec())))
        .collect::<Result<_>>()
        .unwrap()
}

#[test]
fn fetch_range_bounds_are_inclusive() {
    each_store(|store| {
        for t in [10, 20, 30] {
            store.put(b"k", t, format!("v{t}").as_bytes()).unwrap();
        }
        let starts = |from, to| -> Vec<i64> {
            range(store, b"k", from, to)
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        };
        assert_eq!(starts(10, 30), [10, 20, 30]);
        assert_eq!(starts(11, 29), [20]);
        assert_eq!(starts(20, 20), [20]);
        assert_eq!(starts(30, 10), Vec::<i64>::new());
        assert_eq!(starts(31, 40), Vec::<i64>::new());
        assert_eq!(store.fetch(b"k", 20).unwrap().unwrap(), &b"v20"[..]);
        assert_eq!(store.fetch(b"k", 21).unwrap(), None);
        // retain_duplicates = false: a second put replaces.
        store.put(b"k", 20, b"again").unwrap();
        assert_eq!(range(store, b"k", 20, 20), [(20, b"again".to_vec())]);
    });
}

#[test]
fn keys_that_prefix_others_do_not_bleed() {
    let keys: [&[u8]; 6] = [b"", b"a", b"a\0", b"a\0\0", b"ab", b"a\xff"];
    each_store(|store| {
        for (i, key) in keys.iter().enumerate() {
            for t in [-1, 0, 1] {
                store.put(key, t, &[i as u8]).unwrap();
            }
        }
        for (i, key) in keys.iter().enumerate() {
            let got = range(store, key, i64::MIN, i64::MAX);
            assert_eq!(
                got,
                [(-1, vec![i as u8]), (0, vec![i as u8]), (1, vec![i as u8])],
                "{key:?}"
            );
        }
        // all() is in key order, then time order.
        let mut expected: Vec<_> = keys
            .iter()
            .enumerate()
            .flat_map(|(i, k)| [-1, 0, 1].map(|t| (k.to_vec(), t, vec![i as u8])))
            .collect();
        expected.sort();
        assert_eq!(all(store), expected);
    });
}

#[test]
fn negative_and_extreme_timestamps_sort_in_time_order() {
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -1_000,
        -1,
        0,
        1,
        1_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    each_store(|store| {
        for t in times.iter().rev() {
            store.put(b"k", *t, &t.to_be_bytes()).unwrap();
        }
        let got: Vec<i64> = range(store, b"k", i64::MIN, i64::MAX)
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(got, times);
        let got: Vec<i64> = range(store, b"k", -1, i64::MAX)
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(got, &times[3..]);
        let got: Vec<i64> = range(store, b"k", i64::MIN, -1)
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(got, &times[..4]);
        let all_times: Vec<i64> = store
            .fetch_all(i64::MIN, i64::MAX)
            .unwrap()
            .map(|e| e.unwrap().1)
            .collect();
        assert_eq!(all_times, times);
    });
}

#[test]
fn remove_expired_drops_windows_started_before_the_limit() {
    each_store(|store| {
        // More windows than one expiry pass reads, over two keys.
        let count = EXPIRE_CHUNK_ENTRIES as i64 * 2 + 7;
        for t in 0..count {
            store.put(b"x", t, b"v").unwrap();
            store.put(b"y", t, b"v").unwrap();
        }
        assert_eq!(store.remove_expired(i64::MIN).unwrap(), 0);
        assert_eq!(store.remove_expired(100).unwrap(), 200);
        assert_eq!(store.remove_expired(100).unwrap(), 0);
        assert_eq!(range(store, b"x", 0, 100).first().map(|e| e.0), Some(100));
        let removed = store.remove_expired(count - 1).unwrap();
        assert_eq!(removed, 2 * (count as u64 - 1 - 100));
        assert_eq!(all(store).len(), 2);
        // The time entries went too: only the two windows remain in the store.
        assert_eq!(store.inner().all().unwrap().count(), 4);
        assert_eq!(store.remove_expired(i64::MAX).unwrap(), 2);
        assert_eq!(store.inner().all().unwrap().count(), 0);
    });
}

#[test]
fn a_window_put_below_what_expired_expires_again() {
    each_store(|store| {
        store.put(b"k", 100, b"v").unwrap();
        assert_eq!(store.remove_expired(200).unwrap(), 1);
        // Expiry resumes where it ended, but a put before that point is still found.
        store.put(b"k", 50, b"late").unwrap();
        store.put(b"k", 300, b"v").unwrap();
        assert_eq!(store.remove_expired(150).unwrap(), 1);
        assert_eq!(store.remove_expired(250).unwrap(), 0);
        assert_eq!(all(store).len(), 1);
        assert_eq!(store.remove_expired(301).unwrap(), 1);
    });
}

#[test]
fn fetch_all_skips_a_time_entry_left_without_its_window() {
    for (inner, _dir) in backends("windows") {
        let mut store = WindowStore::new(inner);
        store.put(b"k", 5, b"v").unwrap();
        store.put(b"k", 6, b"w").unwrap();
        // As a crash between the two writes of a removal would leave it.
        let mut inner = store.into_inner();
        inner.delete(&window_key(b"k", 5)).unwrap();
        let mut store = WindowStore::new(inner);
        let got: Vec<i64> = store
            .fetch_all(0, 10)
            .unwrap()
            .map(|e| e.unwrap().1)
            .collect();
        assert_eq!(got, [6]);
        assert_eq!(store.remove_expired(10).unwrap(), 2);
        assert_eq!(store.inner().all().unwrap().count(), 0);
    }
}

#[test]
fn corrupt_keys_are_errors_not_panics() {
    let cases: [&[u8]; 5] = [
        &[WINDOW, b'k'],                            // no terminator
        &[WINDOW, b'k', 0, 0, 1, 2],                // short time
        &[WINDOW, b'k', 0, 7, 0, 0],                // bad escape
        &[WINDOW, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], // time too long
        &[BY_TIME, 1, 2],                           // short time entry
    ];
    for bytes in cases {
        let mut inner = InMemoryKeyValueStore::new("w");
        inner.put(bytes, b"v").unwrap();
        let store = WindowStore::new(inner);
        let all: Result<Vec<_>> = store.all().unwrap().collect();
        let by_time: Result<Vec<_>> = store.fetch_all(i64::MIN, i64::MAX).unwrap().collect();
        let err = match bytes[0] {
            WINDOW => all.unwrap_err(),
            _ => by_time.unwrap_err(),
        };
        assert!(
            matches!(
                err,
                StoreError::CorruptKey {
                    layout: "window",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("store \"w\""), "{err}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, i64, u8),
    Remove(Vec<u8>, i64),
    Fetch(Vec<u8>, i64),
    FetchRange(Vec<u8>, i64, i64),
    FetchAll(i64, i64),
    RemoveExpired(i64),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', 0xff]), 0..3)
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        -8i64..8,
        prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), time(), any::<u8>()).prop_map(|(k, t, v)| Op::Put(k, t, v)),
        1 => (key(), time()).prop_map(|(k, t)| Op::Remove(k, t)),
        1 => (key(), time()).prop_map(|(k, t)| Op::Fetch(k, t)),
        2 => (key(), time(), time()).prop_map(|(k, a, b)| Op::FetchRange(k, a, b)),
        1 => (time(), time()).prop_map(|(a, b)| Op::FetchAll(a, b)),
        1 => time().prop_map(Op::RemoveExpired),
    ]
}

type Model = BTreeMap<(Vec<u8>, i64), Vec<u8>>;

fn apply(store: &mut Store, model: &mut Model, op: &Op) {
    match op.clone() {
        Op::Put(k, t, v) => {
            store.put(&k, t, &[v]).unwrap();
            model.insert((k, t), vec![v]);
        }
        Op::Remove(k, t) => {
            store.remove(&k, t).unwrap();
            model.remove(&(k, t));
        }
        Op::Fetch(k, t) => {
            let got = store.fetch(&k, t).unwrap().map(|v| v.to_vec());
            assert_eq!(got.as_ref(), model.get(&(k, t)));
        }
        Op::FetchRange(k, from, to) => {
            let expected: Vec<_> = model
                .iter()
                .filter(|((mk, t), _)| *mk == k && from <= *t && *t <= to)
                .map(|((_, t), v)| (*t, v.clone()))
                .collect();
            assert_eq!(range(store, &k, from, to), expected);
        }
        Op::FetchAll(from, to) => {
            let mut expected: Vec<_> = model
                .iter()
                .filter(|((_, t), _)| from <= *t && *t <= to)
                .map(|((k, t), v)| (*t, k.clone(), v.clone()))
                .collect();
            expected.sort();
            let got: Vec<_> = store
                .fetch_all(from, to)
                .unwrap()
                .map(|e| e.map(|(k, t, v)| (t, k.to_vec(), v.to_vec())))
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(got, expected);
        }
        Op::RemoveExpired(before) => {
            let expired = model.keys().filter(|(_, t)| *t < before).count() as u64;
            model.retain(|(_, t), _| *t >= before);
            assert_eq!(store.remove_expired(before).unwrap(), expired);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn behaves_like_a_sorted_map(ops in prop::collection::vec(op(), 1..60)) {
        each_store(|store| {
            let mut model = Model::new();
            for op in &ops {
                apply(store, &mut model, op);
            }
            let expected: Vec<_> = model.iter().map(|((k, t), v)| (k.clone(), *t, v.clone())).collect();
            assert_eq!(all(store), expected);
        });
    }
}
