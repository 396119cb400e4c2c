use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::testing::backends;
use crate::{InMemoryKeyValueStore, KeyValueStore};

type Store = SessionStore<Box<dyn KeyValueStore>>;

fn each_store(mut test: impl FnMut(&mut Store)) {
    for (inner, _dir) in backends("sessions") {
        let mut store = SessionStore::new(inner);
        test(&mut store);
    }
}

/// (key, start, end, value) of each session.
fn list(iter: WindowIter<'_, Session>) -> Vec<(Vec<u8>, i64, i64, Vec<u8>)> {
    iter.map(|s| s.map(|s| (s.key.to_vec(), s.start_ms, s.end_ms, s.value.to_vec())))
        .collect::<Result<_>>()
        .unwrap()
}

fn spans(iter: WindowIter<'_, Session>) -> Vec<(i64, i64)> {
    list(iter).into_iter().map(|(_, s, e, _)| (s, e)).collect()
}

#[test]
fn find_sessions_returns_overlapping_sessions_in_end_order() {
    each_store(|store| {
        for (start, end) in [(0, 10), (20, 30), (40, 40), (5, 50)] {
            store.put(b"k", start, end, b"v").unwrap();
        }
        store.put(b"other", 0, 100, b"v").unwrap();
        // Bounds touch inclusively, as in Kafka's findSessions.
        assert_eq!(
            spans(store.find_sessions(b"k", 10, 20).unwrap()),
            [(0, 10), (20, 30), (5, 50)]
        );
        assert_eq!(spans(store.find_sessions(b"k", 11, 19).unwrap()), [(5, 50)]);
        assert_eq!(spans(store.find_sessions(b"k", 31, 39).unwrap()), [(5, 50)]);
        assert_eq!(
            spans(store.find_sessions(b"k", 40, 40).unwrap()),
            [(40, 40), (5, 50)]
        );
        assert_eq!(spans(store.find_sessions(b"k", 51, 100).unwrap()), []);
        assert_eq!(spans(store.find_sessions(b"k", i64::MIN, -1).unwrap()), []);
        assert_eq!(
            spans(store.fetch(b"k").unwrap()),
            [(0, 10), (20, 30), (40, 40), (5, 50)]
        );
        assert_eq!(
            store.fetch_session(b"k", 20, 30).unwrap().unwrap(),
            &b"v"[..]
        );
        assert_eq!(store.fetch_session(b"k", 20, 31).unwrap(), None);
        store.remove(b"k", 20, 30).unwrap();
        assert_eq!(
            spans(store.fetch(b"k").unwrap()),
            [(0, 10), (40, 40), (5, 50)]
        );
    });
}

#[test]
fn keys_that_prefix_others_do_not_bleed() {
    let keys: [&[u8]; 5] = [b"", b"a", b"a\0", b"ab", b"a\xff"];
    each_store(|store| {
        for (i, key) in keys.iter().enumerate() {
            store.put(key, i64::MIN, i64::MAX, &[i as u8]).unwrap();
            store.put(key, -5, -1, &[i as u8]).unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            let got = list(store.find_sessions(key, i64::MIN, i64::MAX).unwrap());
            let expected = [
                (key.to_vec(), -5, -1, vec![i as u8]),
                (key.to_vec(), i64::MIN, i64::MAX, vec![i as u8]),
            ];
            assert_eq!(got, expected, "{key:?}");
        }
        let all_keys: Vec<Vec<u8>> = list(store.fetch_all().unwrap())
            .into_iter()
            .map(|s| s.0)
            .collect();
        let mut expected: Vec<Vec<u8>> =
            keys.iter().flat_map(|k| [k.to_vec(), k.to_vec()]).collect();
        expected.sort();
        assert_eq!(all_keys, expected);
    });
}

#[test]
fn a_session_ending_before_it_starts_is_refused() {
    each_store(|store| {
        let err = store.put(b"k", 5, 4, b"v").unwrap_err();
        assert!(
            err.to_string()
                .contains("starts at 5 ms, after its end at 4 ms"),
            "{err}"
        );
        assert_eq!(list(store.fetch_all().unwrap()), []);
    });
}

#[test]
fn a_session_put_below_what_expired_expires_again() {
    each_store(|store| {
        store.put(b"k", 90, 100, b"v").unwrap();
        assert_eq!(store.remove_expired(200).unwrap(), 1);
        store.put(b"k", 40, 50, b"late").unwrap();
        store.put(b"k", 300, 300, b"v").unwrap();
        assert_eq!(store.remove_expired(150).unwrap(), 1);
        assert_eq!(store.remove_expired(250).unwrap(), 0);
        assert_eq!(store.remove_expired(301).unwrap(), 1);
    });
}

#[test]
fn remove_expired_goes_by_session_end() {
    each_store(|store| {
        let count = EXPIRE_CHUNK_ENTRIES as i64 + 3;
        for end in 0..count {
            store.put(b"k", end - 1_000, end, b"v").unwrap();
        }
        store.put(b"long", i64::MIN, i64::MAX, b"v").unwrap();
        assert_eq!(store.remove_expired(i64::MIN).unwrap(), 0);
        assert_eq!(store.remove_expired(10).unwrap(), 10);
        assert_eq!(spans(store.fetch(b"k").unwrap()).first(), Some(&(-990, 10)));
        assert_eq!(store.remove_expired(count).unwrap(), count as u64 - 10);
        assert_eq!(spans(store.fetch_all().unwrap()), [(i64::MIN, i64::MAX)]);
        assert_eq!(store.inner().all().unwrap().count(), 2);
        assert_eq!(store.remove_expired(i64::MAX).unwrap(), 0);
    });
}

#[test]
fn corrupt_keys_are_errors_not_panics() {
    let mut reversed = session_key(b"k", 0, 0);
    let start = reversed.len() - 8;
    reversed[start..].copy_from_slice(&session_key(b"k", 9, 9)[start..]); // start 9 > end 0
    let cases: Vec<Vec<u8>> = vec![
        vec![SESSION, b'k', 0, 0, 1, 2],
        session_key(b"k", 0, 0)[..18].to_vec(),
        reversed,
        vec![BY_END, 0x80, 0, 0, 0, 0, 0, 0, 0, b'k'],
    ];
    for bytes in cases {
        let mut inner = InMemoryKeyValueStore::new("s");
        inner.put(&bytes, b"v").unwrap();
        let mut store = SessionStore::new(inner);
        let err = match bytes[0] {
            SESSION => store
                .fetch_all()
                .unwrap()
                .collect::<Result<Vec<_>>>()
                .unwrap_err(),
            _ => store.remove_expired(i64::MAX).unwrap_err(),
        };
        assert!(
            matches!(
                err,
                StoreError::CorruptKey {
                    layout: "session",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, i64, i64, u8),
    Remove(Vec<u8>, i64, i64),
    Find(Vec<u8>, i64, i64),
    Fetch(Vec<u8>),
    RemoveExpired(i64),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, b'a', 0xff]), 0..3)
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![-6i64..6, prop::sample::select(vec![i64::MIN, i64::MAX]),]
}

fn span() -> impl Strategy<Value = (i64, i64)> {
    (time(), time()).prop_map(|(a, b)| (a.min(b), a.max(b)))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), span(), any::<u8>()).prop_map(|(k, (s, e), v)| Op::Put(k, s, e, v)),
        1 => (key(), span()).prop_map(|(k, (s, e))| Op::Remove(k, s, e)),
        2 => (key(), time(), time()).prop_map(|(k, a, b)| Op::Find(k, a, b)),
        1 => key().prop_map(Op::Fetch),
        1 => time().prop_map(Op::RemoveExpired),
    ]
}

/// Keyed as the store orders sessions: key, end, start.
type Model = BTreeMap<(Vec<u8>, i64, i64), Vec<u8>>;

fn expected(
    model: &Model,
    keep: impl Fn(&[u8], i64, i64) -> bool,
) -> Vec<(Vec<u8>, i64, i64, Vec<u8>)> {
    model
        .iter()
        .filter(|((k, end, start), _)| keep(k, *start, *end))
        .map(|((k, end, start), v)| (k.clone(), *start, *end, v.clone()))
        .collect()
}

fn apply(store: &mut Store, model: &mut Model, op: Op) {
    match op {
        Op::Put(k, s, e, v) => {
            store.put(&k, s, e, &[v]).unwrap();
            model.insert((k, e, s), vec![v]);
        }
        Op::Remove(k, s, e) => {
            store.remove(&k, s, e).unwrap();
            model.remove(&(k, e, s));
        }
        Op::Find(k, earliest_end, latest_start) => {
            let want = expected(model, |mk, s, e| {
                mk == k && e >= earliest_end && s <= latest_start
            });
            assert_eq!(
                list(store.find_sessions(&k, earliest_end, latest_start).unwrap()),
                want
            );
        }
        Op::Fetch(k) => {
            let want = expected(model, |mk, _, _| mk == k);
            assert_eq!(list(store.fetch(&k).unwrap()), want);
        }
        Op::RemoveExpired(before) => {
            let expired = model.keys().filter(|(_, e, _)| *e < before).count() as u64;
            model.retain(|(_, e, _), _| *e >= before);
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
            for op in ops.clone() {
                apply(store, &mut model, op);
            }
            assert_eq!(list(store.fetch_all().unwrap()), expected(&model, |_, _, _| true));
        });
    }
}
