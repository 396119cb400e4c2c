//! A process is killed (SIGKILL) while writing to a persistent store: on
//! reopen, everything flushed before is there, and whatever else survived
//! is whole, never torn.

#![cfg(feature = "persistent")]

mod support;

use eddy_store::{KeyValueStore, PersistentKeyValueStore};

const FLUSHED_KEYS: u32 = 10_000;
/// Bounds the child's writing if the parent never kills it.
const KEYS_MAX: u32 = 2_000_000;

fn value_of(key: u32) -> Vec<u8> {
    key.to_le_bytes().repeat(25)
}

#[test]
fn flushed_writes_survive_a_kill_and_the_rest_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = support::spawn("child_writes_until_killed", dir.path());
    writer.wait_for("flushed");
    std::thread::sleep(std::time::Duration::from_millis(150));
    writer.kill();

    let store = PersistentKeyValueStore::open("kill", dir.path().join("store")).unwrap();
    let mut next = 0u32;
    for entry in store.all().unwrap() {
        let (key, value) = entry.unwrap();
        let key = u32::from_be_bytes(key[..].try_into().unwrap());
        // Keys were written in order, so what survived is a prefix of them.
        assert_eq!(key, next, "gap in the surviving keys");
        assert_eq!(value, value_of(key), "value of key {key}");
        next += 1;
    }
    assert!(
        next >= FLUSHED_KEYS,
        "only {next} of the {FLUSHED_KEYS} flushed keys survived"
    );
    eprintln!("{next} keys survived the kill ({FLUSHED_KEYS} flushed before the parent waited)");
}

/// The other process of the test above; does nothing when run by hand.
#[test]
#[ignore = "run as a child process by the test above"]
fn child_writes_until_killed() {
    let Some(dir) = support::child_dir() else {
        return;
    };
    let mut store = PersistentKeyValueStore::open("kill", dir.join("store")).unwrap();
    for key in 0..KEYS_MAX {
        store.put(&key.to_be_bytes(), &value_of(key)).unwrap();
        if key + 1 == FLUSHED_KEYS {
            store.flush().unwrap();
            support::report("flushed");
        } else if key % 1_000 == 0 {
            store.flush().unwrap();
        }
    }
    support::hold();
}
