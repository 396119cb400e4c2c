//! Windowed aggregations over out-of-order and late data, checked against references
//! computed here from the raw input.

use std::collections::BTreeMap;

use eddy_streams::driver::TestTopic;
use eddy_streams::windows::{session_windowed_serde, time_windowed_serde};
use eddy_streams::{
    Consumed, EmitStrategy, Grouped, Materialized, Produced, Serdes, SessionWindows,
    StreamsBuilder, TimeWindows, TopologyTestDriver, Windowed,
};

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

/// Events (key, timestamp) mostly in order, with jitter (out of order) and some very late.
fn events(seed: u64, n: usize) -> Vec<(String, i64)> {
    let mut rng = Rng(seed | 1);
    let mut t = 0i64;
    (0..n)
        .map(|_| {
            t += rng.next(40) as i64;
            let ts = match rng.next(10) {
                0 => (t - 400 - rng.next(400) as i64).max(0), // late, maybe beyond grace
                1..=3 => (t - rng.next(60) as i64).max(0),    // out of order
                _ => t,
            };
            (format!("k{}", rng.next(5)), ts)
        })
        .collect()
}

const INPUT: &str = "clicks";

fn input() -> TestTopic<String, String> {
    TestTopic::new(INPUT, Serdes::string(), Serdes::string())
}

/// Counts per (key, window start) as Kafka Streams defines them: a record counts in each
/// window holding it whose end is after stream time (max timestamp so far, the record's
/// own included) minus grace. Also what emit-final would emit, in order.
struct Reference {
    counts: BTreeMap<(String, i64), i64>,
    dropped: u64,
}

fn reference(events: &[(String, i64)], size: i64, advance: i64, grace: i64) -> Reference {
    let mut counts = BTreeMap::new();
    let mut dropped = 0;
    let mut stream_time = i64::MIN;
    for (k, ts) in events {
        stream_time = stream_time.max(*ts);
        let mut any = false;
        let mut start = (ts / advance) * advance;
        while start > ts - size && start >= 0 {
            if start + size > stream_time - grace {
                *counts.entry((k.clone(), start)).or_insert(0) += 1;
                any = true;
            }
            start -= advance;
        }
        if !any {
            dropped += 1;
        }
    }
    Reference { counts, dropped }
}

fn windowed_count(size: i64, advance: i64, grace: i64, emit: EmitStrategy) -> StreamsBuilder {
    let builder = StreamsBuilder::new();
    builder
        .stream(&[INPUT], Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::inherit())
        .windowed_by(TimeWindows::of_size_and_grace(size, grace).advance_by(advance))
        .emit_strategy(emit)
        .count(Materialized::named("counts"))
        .to_stream()
        .to(
            "counts-out",
            Produced::with(
                time_windowed_serde(Serdes::string(), size),
                Serdes::nullable(Serdes::i64()),
            ),
        );
    builder
}

fn out_topic(size: i64) -> TestTopic<Windowed<String>, Option<i64>> {
    TestTopic::new(
        "counts-out",
        time_windowed_serde(Serdes::string(), size),
        Serdes::nullable(Serdes::i64()),
    )
}

#[test]
fn tumbling_and_hopping_counts_with_late_data_match_the_reference() {
    for (seed, size, advance, grace) in [
        (1, 100, 100, 50),
        (2, 100, 25, 0),
        (3, 60, 20, 200),
        (4, 1000, 1000, 10),
    ] {
        let evs = events(seed, 3_000);
        let want = reference(&evs, size, advance, grace);
        assert!(
            want.dropped > 0 || grace >= 200,
            "the workload has late records"
        );
        let mut d = TopologyTestDriver::new(
            windowed_count(size, advance, grace, EmitStrategy::OnWindowUpdate)
                .build()
                .unwrap(),
        );
        for (k, ts) in &evs {
            d.pipe(&input(), k.clone(), "click".into(), *ts).unwrap();
        }
        // The last update of each window is its count.
        let mut last = BTreeMap::new();
        for r in d.read(&out_topic(size)).unwrap() {
            assert_eq!(r.key.window.end_ms - r.key.window.start_ms, size);
            last.insert((r.key.key, r.key.window.start_ms), r.value.unwrap());
        }
        assert_eq!(
            last, want.counts,
            "seed {seed} size {size} advance {advance} grace {grace}"
        );
        assert_eq!(d.metrics().dropped_records, want.dropped, "seed {seed}");
    }
}

#[test]
fn emit_final_emits_each_closed_window_once_with_its_final_count() {
    let (size, advance, grace) = (100, 100, 50);
    let evs = events(7, 3_000);
    let want = reference(&evs, size, advance, grace);
    let mut d = TopologyTestDriver::new(
        windowed_count(size, advance, grace, EmitStrategy::OnWindowClose)
            .build()
            .unwrap(),
    );
    let mut stream_time = i64::MIN;
    for (k, ts) in &evs {
        d.pipe(&input(), k.clone(), "click".into(), *ts).unwrap();
        stream_time = stream_time.max(*ts);
    }
    let emitted = d.read(&out_topic(size)).unwrap();
    let mut seen = BTreeMap::new();
    let mut last_end = i64::MIN;
    for r in &emitted {
        let id = (r.key.key.clone(), r.key.window.start_ms);
        assert!(
            seen.insert(id.clone(), r.value.unwrap()).is_none(),
            "{id:?} emitted twice"
        );
        assert!(
            r.key.window.end_ms + grace <= stream_time,
            "emitted before it closed"
        );
        assert!(
            r.key.window.end_ms >= last_end,
            "windows emitted out of time order"
        );
        last_end = r.key.window.end_ms;
    }
    // Exactly the windows that closed, with their final counts.
    let closed: BTreeMap<_, _> = want
        .counts
        .into_iter()
        .filter(|((_, start), _)| start + size + grace <= stream_time)
        .collect();
    assert_eq!(seen, closed);
    assert!(!seen.is_empty());
}

#[test]
fn session_counts_merge_sessions_and_retract_the_merged_ones() {
    let gap = 10;
    let builder = StreamsBuilder::new();
    builder
        .stream(&[INPUT], Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::inherit())
        .session_windowed_by(SessionWindows::of_inactivity_gap_and_grace(gap, 5))
        .count(Materialized::named("sessions"))
        .to_stream()
        .to(
            "sessions-out",
            Produced::with(
                session_windowed_serde(Serdes::string()),
                Serdes::nullable(Serdes::i64()),
            ),
        );
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    for ts in [0, 5, 30, 18, 100, 2] {
        d.pipe(&input(), "a".into(), "x".into(), ts).unwrap();
    }
    let out = d
        .read(&TestTopic::new(
            "sessions-out",
            session_windowed_serde(Serdes::string()),
            Serdes::nullable(Serdes::i64()),
        ))
        .unwrap();
    let got: Vec<(i64, i64, Option<i64>)> = out
        .iter()
        .map(|r| (r.key.window.start_ms, r.key.window.end_ms, r.value))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, Some(1)),
            (0, 0, None), // merged into [0,5]
            (0, 5, Some(2)),
            (30, 30, Some(1)),
            // 18 joins no session (13 after 5, 12 before 30), and its own [18,18] ends
            // before stream time 30 minus grace 5: late, dropped.
            (100, 100, Some(1)),
            // 2 would extend [0,5], which ended long before 100 - 5: late, dropped.
        ]
    );
    assert_eq!(d.metrics().dropped_records, 2);
}

#[test]
fn session_counts_match_a_gap_split_reference() {
    let gap = 30;
    let evs = events(11, 2_000);
    let builder = StreamsBuilder::new();
    builder
        .stream(&[INPUT], Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::inherit())
        .session_windowed_by(SessionWindows::of_inactivity_gap_and_grace(gap, 1_000_000))
        .count(Materialized::named("sessions"));
    let mut d = TopologyTestDriver::new(builder.build().unwrap());
    for (k, ts) in &evs {
        d.pipe(&input(), k.clone(), "x".into(), *ts).unwrap();
    }
    // With no record late, sessions are the key's timestamps split where the gap is wider.
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (k, ts) in &evs {
        by_key.entry(k.clone()).or_default().push(*ts);
    }
    let mut want = Vec::new();
    for (k, mut ts) in by_key {
        ts.sort();
        let (mut start, mut end, mut n) = (ts[0], ts[0], 0i64);
        for t in ts {
            if t - end > gap {
                want.push((k.clone(), start, end, n));
                start = t;
                n = 0;
            }
            end = t;
            n += 1;
        }
        want.push((k, start, end, n));
    }
    let store: Vec<(String, i64, i64, i64)> = d.session_store("sessions").unwrap();
    let mut got = store;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn stores_restored_from_their_changelogs_equal_the_originals_and_carry_on_alike() {
    let (size, advance, grace) = (100, 50, 30);
    let evs = events(21, 2_000);
    let (first, second) = evs.split_at(1_000);
    let run = |restart: bool| {
        let mut d = TopologyTestDriver::with_partitions(
            windowed_count(size, advance, grace, EmitStrategy::OnWindowClose)
                .build()
                .unwrap(),
            3,
        );
        for (k, ts) in first {
            d.pipe(&input(), k.clone(), "c".into(), *ts).unwrap();
        }
        if restart {
            let mut before: Vec<(String, i64, i64)> = d.window_store("counts").unwrap();
            d.restart().unwrap();
            let mut after: Vec<(String, i64, i64)> = d.window_store("counts").unwrap();
            before.sort();
            after.sort();
            assert_eq!(
                before, after,
                "restored window store differs from the original"
            );
            assert!(!after.is_empty());
        }
        for (k, ts) in second {
            d.pipe(&input(), k.clone(), "c".into(), *ts).unwrap();
        }
        let mut out: Vec<(String, i64, Option<i64>)> = d
            .read(&out_topic(size))
            .unwrap()
            .into_iter()
            .map(|r| (r.key.key, r.key.window.start_ms, r.value))
            .collect();
        out.sort();
        out
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn session_and_count_stores_survive_a_restart() {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream(&[INPUT], Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::inherit());
    grouped.count(Materialized::named("totals"));
    grouped
        .session_windowed_by(SessionWindows::of_inactivity_gap_and_grace(30, 100))
        .count(Materialized::named("sessions"));
    let mut d = TopologyTestDriver::with_partitions(builder.build().unwrap(), 2);
    for (k, ts) in events(5, 1_500) {
        d.pipe(&input(), k, "c".into(), ts).unwrap();
    }
    let totals: Vec<(String, i64)> = d.key_value_store("totals").unwrap();
    let sessions: Vec<(String, i64, i64, i64)> = d.session_store("sessions").unwrap();
    d.restart().unwrap();
    let sorted = |mut v: Vec<(String, i64)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(d.key_value_store("totals").unwrap()), sorted(totals));
    let mut again: Vec<(String, i64, i64, i64)> = d.session_store("sessions").unwrap();
    let mut sessions = sessions;
    again.sort();
    sessions.sort();
    assert_eq!(again, sessions);
}
