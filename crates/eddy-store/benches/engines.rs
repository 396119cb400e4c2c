//! The state-store engines side by side, on the load a stream task puts on
//! its stores: random puts of small records with a commit (flush) every
//! 10,000 puts, as Kafka Streams flushes its stores at each commit; then
//! point gets and 100-key range scans. The figures and the choice they led
//! to are in `docs/decisions/state-store-engine.md`.
//!
//! ```text
//! cargo bench -p eddy-store                          # 1,000,000 records
//! EDDY_BENCH_RECORDS=100000 cargo bench -p eddy-store  # a quicker look
//! ```
//!
//! Engines: eddy-store's `InMemoryKeyValueStore` and `PersistentKeyValueStore`
//! (fjall) through the `KeyValueStore` trait, exactly as eddy-streams calls
//! them, and redb (copy-on-write B-tree) directly, in its best case: the
//! puts of a commit are applied in one write transaction, and all gets and
//! scans share one read transaction. Both engines get the same cache
//! (`PersistentStoreConfig::default().block_cache_bytes`). CPU time is the whole process's
//! (user + system, from /proc/self/stat), so it includes the engines'
//! background threads; after the put phase the process is left to go idle
//! and the CPU spent meanwhile (LSM flushes and compactions) is added to it.
//! Plain std timing; no criterion.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eddy_store::{
    InMemoryKeyValueStore, KeyValueStore, PersistentKeyValueStore, PersistentStoreConfig,
};
use rand::{Rng, SeedableRng};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
const COMMIT_EVERY_PUTS: usize = 10_000;
const SCAN_ENTRIES: usize = 100;
/// /proc reports CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_S: f64 = 100.0;
/// The process counts as idle below 2% of one core over a 200 ms sample.
const IDLE_SAMPLE: Duration = Duration::from_millis(200);
const IDLE_CPU_S_MAX: f64 = 0.004;
const SETTLE_MAX: Duration = Duration::from_secs(60);

/// An engine as the benchmark drives it.
trait Engine {
    fn put(&mut self, key: &[u8], value: &[u8]);
    /// The end of a stream task's commit: make the puts so far durable.
    fn commit(&mut self);
    /// Called once between the put phase and the read phases.
    fn prepare_reads(&mut self) {}
    fn get(&self, key: &[u8]) -> bool;
    /// Reads up to `n` entries from `from` on; returns how many there were.
    fn scan(&self, from: &[u8], n: usize) -> usize;
}

struct Store<S>(S);

impl<S: KeyValueStore> Engine for Store<S> {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.0.put(key, value).expect("put");
    }
    fn commit(&mut self) {
        self.0.flush().expect("flush");
    }
    fn get(&self, key: &[u8]) -> bool {
        self.0.get(key).expect("get").is_some()
    }
    fn scan(&self, from: &[u8], n: usize) -> usize {
        let iter = self.0.range(Some(from), None).expect("range");
        iter.take(n)
            .map(|e| e.expect("scan").1.len())
            .filter(|&len| len > 0)
            .count()
    }
}

const REDB_TABLE: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("kv");

struct Redb {
    db: redb::Database,
    pending: Vec<(Vec<u8>, Vec<u8>)>,
    read: Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl Redb {
    fn open(path: &Path) -> Redb {
        Redb {
            // The same cache as the persistent store's (redb's default is 1 GiB).
            db: redb::Database::builder()
                .set_cache_size(PersistentStoreConfig::default().block_cache_bytes as usize)
                .create(path)
                .expect("redb create"),
            pending: Vec::with_capacity(COMMIT_EVERY_PUTS),
            read: None,
        }
    }
}

impl Engine for Redb {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.pending.push((key.to_vec(), value.to_vec()));
    }
    fn commit(&mut self) {
        let txn = self.db.begin_write().expect("begin_write");
        {
            let mut table = txn.open_table(REDB_TABLE).expect("open_table");
            for (k, v) in self.pending.drain(..) {
                table.insert(&k[..], &v[..]).expect("insert");
            }
        }
        txn.commit().expect("commit"); // durable (fsync) by default
    }
    fn prepare_reads(&mut self) {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().expect("begin_read");
        self.read = Some(txn.open_table(REDB_TABLE).expect("open_table"));
    }
    fn get(&self, key: &[u8]) -> bool {
        let table = self.read.as_ref().expect("prepare_reads");
        table.get(key).expect("get").is_some()
    }
    fn scan(&self, from: &[u8], n: usize) -> usize {
        let table = self.read.as_ref().expect("prepare_reads");
        let iter = table.range::<&[u8]>(from..).expect("range");
        iter.take(n)
            .map(|e| e.expect("scan").1.value().len())
            .filter(|&len| len > 0)
            .count()
    }
}

/// User + system CPU seconds of the whole process, all threads.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("stat tick count");
    (ticks(11) + ticks(12)) / TICKS_PER_S
}

/// Waits until background threads stop using CPU; returns the CPU seconds
/// they used meanwhile.
fn settle() -> f64 {
    let (start, cpu_start) = (Instant::now(), cpu_s());
    loop {
        let before = cpu_s();
        std::thread::sleep(IDLE_SAMPLE);
        if cpu_s() - before < IDLE_CPU_S_MAX || start.elapsed() > SETTLE_MAX {
            // The sleeping sample itself used no CPU worth counting.
            return cpu_s() - cpu_start;
        }
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    let entries = std::fs::read_dir(path).into_iter().flatten().flatten();
    entries.map(|e| dir_bytes(&e.path())).sum()
}

struct Phase {
    name: &'static str,
    ops: usize,
    wall_s: f64,
    cpu_s: f64,
}

fn measure(name: &'static str, ops: usize, work: impl FnOnce()) -> Phase {
    let (start, cpu_start) = (Instant::now(), cpu_s());
    work();
    Phase {
        name,
        ops,
        wall_s: start.elapsed().as_secs_f64(),
        cpu_s: cpu_s() - cpu_start,
    }
}

struct Workload {
    keys: Vec<[u8; KEY_BYTES]>,
    /// Values are 100-byte windows of this random pool (incompressible).
    pool: Vec<u8>,
    gets: usize,
    scans: usize,
}

impl Workload {
    fn new(records: usize) -> Workload {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let keys = (0..records).map(|_| rng.gen()).collect();
        let pool = (0..1 << 20).map(|_| rng.gen()).collect();
        Workload {
            keys,
            pool,
            gets: records,
            scans: records / 10,
        }
    }

    fn value(&self, i: usize) -> &[u8] {
        let at = (i * 7_919) % (self.pool.len() - VALUE_BYTES);
        &self.pool[at..at + VALUE_BYTES]
    }

    /// Visits the keys in another pseudo-random order than they were put.
    fn key(&self, i: usize) -> &[u8] {
        &self.keys[(i * 1_000_003) % self.keys.len()]
    }
}

/// Time spent in commits: how long a stream task would stall at each one.
#[derive(Default)]
struct Commits {
    count: usize,
    total: Duration,
    max: Duration,
}

impl Commits {
    fn time(&mut self, engine: &mut dyn Engine) {
        let start = Instant::now();
        engine.commit();
        let took = start.elapsed();
        self.count += 1;
        self.total += took;
        self.max = self.max.max(took);
    }
}

fn run(engine: &mut dyn Engine, w: &Workload) -> (Vec<Phase>, Commits) {
    let mut commits = Commits::default();
    let mut put = measure("put+commit", w.keys.len(), || {
        for (i, key) in w.keys.iter().enumerate() {
            engine.put(key, w.value(i));
            if (i + 1) % COMMIT_EVERY_PUTS == 0 {
                commits.time(engine);
            }
        }
        commits.time(engine);
    });
    put.cpu_s += settle();
    engine.prepare_reads();
    let get = measure("get", w.gets, || {
        let found = (0..w.gets).filter(|&i| engine.get(w.key(i))).count();
        assert_eq!(found, w.gets, "every key was put");
    });
    let scan = measure("scan 100", w.scans, || {
        let read: usize = (0..w.scans)
            .map(|i| engine.scan(w.key(i), SCAN_ENTRIES))
            .sum();
        assert!(read >= w.scans, "scans read entries");
    });
    (vec![put, get, scan], commits)
}

fn report(engine: &str, (phases, commits): (Vec<Phase>, Commits), disk: Option<u64>) {
    for p in &phases {
        println!(
            "{engine:<10} {:<11} {:>9} {:>8.2} {:>12.0} {:>14.2}",
            p.name,
            p.ops,
            p.wall_s,
            p.ops as f64 / p.wall_s,
            p.cpu_s / (p.ops as f64 / 1e6),
        );
    }
    let mean_ms = commits.total.as_secs_f64() * 1e3 / commits.count.max(1) as f64;
    let max_ms = commits.max.as_secs_f64() * 1e3;
    print!(
        "{engine:<10} {:<11} {} commits: mean {mean_ms:.1} ms, max {max_ms:.1} ms",
        "", commits.count
    );
    match disk {
        Some(bytes) => println!(
            "; {:.1} MiB on disk at the end",
            bytes as f64 / (1 << 20) as f64
        ),
        None => println!(),
    }
}

fn main() {
    // `cargo test --benches` runs this binary without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let records: usize = std::env::var("EDDY_BENCH_RECORDS")
        .map_or(1_000_000, |n| n.parse().expect("EDDY_BENCH_RECORDS"));
    let w = Workload::new(records);
    let scratch = tempfile::tempdir().expect("tempdir");
    println!(
        "{records} records of {KEY_BYTES}-byte random keys and {VALUE_BYTES}-byte values, \
         a commit every {COMMIT_EVERY_PUTS} puts; {} gets; {} scans of {SCAN_ENTRIES} keys",
        w.gets, w.scans
    );
    println!(
        "{:<10} {:<11} {:>9} {:>8} {:>12} {:>14}",
        "engine", "phase", "ops", "wall s", "ops/s", "cpu-s/M ops"
    );
    let mut memory = Store(InMemoryKeyValueStore::new("bench"));
    report("in-memory", run(&mut memory, &w), None);
    drop(memory);

    let path: PathBuf = scratch.path().join("fjall");
    let mut fjall = Store(PersistentKeyValueStore::open("bench", &path).expect("open fjall"));
    let results = run(&mut fjall, &w);
    report("fjall", results, Some(dir_bytes(&path)));
    drop(fjall);

    let path = scratch.path().join("redb");
    let mut redb = Redb::open(&path);
    let results = run(&mut redb, &w);
    report("redb", results, Some(dir_bytes(&path)));
}
