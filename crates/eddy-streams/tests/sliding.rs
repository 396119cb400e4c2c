//! Sliding windows (KIP-450) with the TopologyTestDriver: a worked example step by step,
//! out-of-order input against the definition computed here, late records, emit-final, and
//! a restart from the changelogs.

use std::collections::{BTreeMap, BTreeSet};

use eddy_streams::driver::TestTopic;
use eddy_streams::windows::time_windowed_serde;
use eddy_streams::{
    Consumed, EmitStrategy, Grouped, Materialized, Produced, Serdes, SlidingWindows,
    StreamsBuilder, TopologyTestDriver, Windowed,
};

const INPUT: &str = "events";
const OUT: &str = "sliding-out";

fn input() -> TestTopic<String, i64> {
    TestTopic::new(INPUT, Serdes::string(), Serdes::i64())
}

fn out(d: i64) -> TestTopic<Windowed<String>, Option<i64>> {
    TestTopic::new(
        OUT,
        time_windowed_serde(Serdes::string(), d),
        Serdes::nullable(Serdes::i64()),
    )
}

/// Counts (or sums of the values) per key and sliding window.
fn sliding(d: i64, grace: i64, emit: EmitStrategy, sum: bool) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let windowed = builder
        .stream(&[INPUT], Consumed::with(Serdes::string(), Serdes::i64()))
        .group_by_key(Grouped::inherit())
        .sliding_windowed_by(SlidingWindows::of_time_difference_and_grace(d, grace))
        .emit_strategy(emit);
    let table = if sum {
        windowed.reduce(|a, b| a + b, Materialized::named("agg"))
    } else {
        windowed.count(Materialized::named("agg"))
    };
    table.to_stream().to(
        OUT,
        Produced::with(
            time_windowed_serde(Serdes::string(), d),
            Serdes::nullable(Serdes::i64()),
        ),
    );
    TopologyTestDriver::new(builder.build().unwrap())
}

/// (start, end, value) of what was emitted since the last read.
fn emitted(driver: &mut TopologyTestDriver, d: i64) -> Vec<(i64, i64, i64)> {
    driver
        .read(&out(d))
        .unwrap()
        .into_iter()
        .map(|r| (r.key.window.start_ms, r.key.window.end_ms, r.value.unwrap()))
        .collect()
}

#[test]
fn a_worked_example_step_by_step() {
    let d = 10;
    let mut driver = sliding(d, 1_000, EmitStrategy::OnWindowUpdate, false);
    let mut pipe = |t: i64| driver.pipe(&input(), "a".into(), 1, t).unwrap();
    pipe(10);
    pipe(15);
    pipe(30);
    // Out of order: joins [5,15] and [11,21], creates its left window and its right window
    // (15 is already there); 10's right window exists.
    pipe(12);
    let mut got = emitted(&mut driver, d);
    let tail = got.split_off(4);
    assert_eq!(
        got,
        vec![(0, 10, 1), (5, 15, 2), (11, 21, 1), (20, 30, 1)],
        "in order: left windows, and 10's right window when 15 arrives"
    );
    let tail: BTreeSet<_> = tail.into_iter().collect();
    assert_eq!(
        tail,
        [(5, 15, 3), (11, 21, 2), (2, 12, 2), (13, 23, 1)].into(),
        "the out-of-order record's updates and new windows"
    );
}

/// Every window the records define, with its count and sum: left windows `[t-d, t]` and
/// right windows `[t+1, t+1+d]` holding at least one record.
fn definition(records: &[(String, i64, i64)], d: i64) -> BTreeMap<(String, i64), (i64, i64)> {
    let mut by_key: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (k, t, v) in records {
        by_key.entry(k).or_default().push((*t, *v));
    }
    let mut out = BTreeMap::new();
    for (k, recs) in by_key {
        let mut starts = BTreeSet::new();
        for (t, _) in &recs {
            starts.insert(t - d);
            if recs.iter().any(|(u, _)| *u > *t && *u <= t + 1 + d) {
                starts.insert(t + 1);
            }
        }
        for s in starts {
            let inside: Vec<i64> = recs
                .iter()
                .filter(|(t, _)| *t >= s && *t <= s + d)
                .map(|(_, v)| *v)
                .collect();
            out.insert(
                (k.to_owned(), s),
                (inside.len() as i64, inside.iter().sum()),
            );
        }
    }
    out
}

/// xorshift64*: a seeded sequence without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn out_of_order_input_gives_the_windows_the_definition_gives() {
    for (seed, d, n) in [
        (1u64, 0i64, 300usize),
        (2, 5, 600),
        (3, 20, 800),
        (4, 100, 400),
    ] {
        let mut rng = Rng(seed * 7919 + 1);
        let mut t = 1_000i64;
        let records: Vec<(String, i64, i64)> = (0..n)
            .map(|_| {
                t += rng.next(8) as i64;
                // A third out of order, by up to 50 ms (within the grace below).
                let ts = if rng.next(3) == 0 {
                    t - rng.next(50) as i64
                } else {
                    t
                };
                (format!("k{}", rng.next(3)), ts, rng.next(100) as i64)
            })
            .collect();
        let want = definition(&records, d);
        for sum in [false, true] {
            let mut driver = sliding(d, 10_000, EmitStrategy::OnWindowUpdate, sum);
            for (k, ts, v) in &records {
                driver.pipe(&input(), k.clone(), *v, *ts).unwrap();
            }
            let store: BTreeMap<(String, i64), i64> = driver
                .window_store::<String, i64>("agg")
                .unwrap()
                .into_iter()
                .map(|(k, s, v)| ((k, s), v))
                .collect();
            let expected: BTreeMap<(String, i64), i64> = want
                .iter()
                .map(|(w, (count, total))| (w.clone(), if sum { *total } else { *count }))
                .collect();
            assert_eq!(store, expected, "seed {seed} d {d} sum {sum}");
            // Every emitted window is one of the definition's.
            for (s, e, _) in emitted(&mut driver, d) {
                assert_eq!(e - s, d);
                assert!(
                    want.keys().any(|(_, start)| *start == s),
                    "window {s} emitted"
                );
            }
            assert_eq!(driver.metrics().dropped_records, 0);
        }
    }
}

#[test]
fn late_records_update_only_open_windows_and_are_dropped_when_none_is() {
    let d = 10;
    let mut driver = sliding(d, 0, EmitStrategy::OnWindowUpdate, false);
    driver.pipe(&input(), "a".into(), 1, 100).unwrap();
    // Its left window [85,95] has closed (it ends before stream time 100 minus no grace);
    // [90,100] ends right at the close time, which Kafka still counts as open, so the
    // record joins it; its right window [96,106] is made (holding 100). Not dropped.
    driver.pipe(&input(), "a".into(), 1, 95).unwrap();
    // Late for every window: dropped and counted.
    driver.pipe(&input(), "a".into(), 1, 50).unwrap();
    assert_eq!(
        emitted(&mut driver, d),
        vec![(90, 100, 1), (90, 100, 2), (96, 106, 1)]
    );
    assert_eq!(driver.metrics().dropped_records, 1);
}

#[test]
fn emit_final_emits_each_window_once_when_it_closes() {
    let d = 10;
    let mut driver = sliding(d, 5, EmitStrategy::OnWindowClose, false);
    for t in [10, 15, 12] {
        driver.pipe(&input(), "a".into(), 1, t).unwrap();
    }
    assert_eq!(emitted(&mut driver, d), vec![], "nothing closed yet");
    // Stream time 40, close 35: every window ending at or before 35 closes.
    driver.pipe(&input(), "a".into(), 1, 40).unwrap();
    let got = emitted(&mut driver, d);
    assert_eq!(
        got,
        vec![(0, 10, 1), (2, 12, 2), (5, 15, 3), (11, 21, 2), (13, 23, 1)]
    );
    driver.pipe(&input(), "a".into(), 1, 41).unwrap();
    assert_eq!(emitted(&mut driver, d), vec![], "no window closed twice");
}

#[test]
fn a_restart_restores_windows_records_and_stream_time() {
    let d = 20;
    let records: Vec<(String, i64, i64)> = (0..200)
        .map(|i| {
            (
                format!("k{}", i % 3),
                1_000 + (i * 7 % 50) as i64 + i as i64 * 3,
                1,
            )
        })
        .collect();
    let mut driver = sliding(d, 10_000, EmitStrategy::OnWindowUpdate, false);
    for (i, (k, ts, v)) in records.iter().enumerate() {
        if i == 100 {
            driver.restart().unwrap();
        }
        driver.pipe(&input(), k.clone(), *v, *ts).unwrap();
    }
    let store: BTreeMap<(String, i64), i64> = driver
        .window_store::<String, i64>("agg")
        .unwrap()
        .into_iter()
        .map(|(k, s, v)| ((k, s), v))
        .collect();
    let want: BTreeMap<(String, i64), i64> = definition(&records, d)
        .into_iter()
        .map(|(w, (count, _))| (w, count))
        .collect();
    assert_eq!(store, want);
}
