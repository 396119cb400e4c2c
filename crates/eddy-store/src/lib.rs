//! State stores for eddy-streams: what Kafka Streams calls
//! `KeyValueStore`, `WindowStore` and `SessionStore`, in memory or on
//! disk, and the state directory that holds a task's stores, lock and
//! checkpoint. Plain synchronous code over bytes and files; serdes,
//! changelogging and caching live in eddy-streams.
//!
//! # Layout
//!
//! - `kv`: the [`KeyValueStore`] trait — bytes in, bytes out, keys in
//!   lexicographic byte order.
//! - `memory`: [`InMemoryKeyValueStore`], a `BTreeMap`.
//! - `persistent`: [`PersistentKeyValueStore`] on the fjall LSM engine
//!   (cargo feature `persistent`, on by default; the choice is in
//!   `docs/decisions/state-store-engine.md`).
//! - `encoding`: the order-keeping byte encodings of keys and times that
//!   the window and session layouts share.
//! - `window`: [`WindowStore`], a layout over any [`KeyValueStore`].
//! - `session`: [`SessionStore`], likewise.
//! - `state_dir`: [`StateDirectory`] and [`TaskDirectory`] — per-task
//!   directories and locks, and the checkpoint lifecycle under
//!   at-least-once and exactly-once.
//! - `checkpoint`: the `.checkpoint` file, written atomically.
//! - `error`: [`StoreError`].
//!
//! # Example
//!
//! ```
//! use eddy_store::{InMemoryKeyValueStore, KeyValueStore, WindowStore};
//!
//! let mut counts = WindowStore::new(InMemoryKeyValueStore::new("counts"));
//! counts.put(b"alice", 60_000, b"3").unwrap();
//! counts.put(b"alice", 120_000, b"5").unwrap();
//! counts.put(b"alicia", 60_000, b"1").unwrap();
//!
//! let alice: Vec<(i64, Vec<u8>)> = counts
//!     .fetch_range(b"alice", 0, 120_000)
//!     .unwrap()
//!     .map(|w| w.map(|(start, value)| (start, value.to_vec())))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(alice, [(60_000, b"3".to_vec()), (120_000, b"5".to_vec())]);
//!
//! // Retention passed for the first window.
//! assert_eq!(counts.remove_expired(120_000).unwrap(), 2);
//! assert_eq!(counts.inner().approximate_num_entries(), 2); // a window and its time entry
//! ```

mod checkpoint;
mod encoding;
mod error;
mod kv;
mod memory;
#[cfg(feature = "persistent")]
mod persistent;
mod session;
mod state_dir;
mod window;

#[cfg(test)]
mod kv_tests;
#[cfg(test)]
mod testing;

pub use checkpoint::{ChangelogPartition, Checkpoint, CHECKPOINT_ENTRIES_MAX};
pub use error::{Result, StoreError};
pub use kv::{prefix_end, KeyValue, KeyValueIter, KeyValueStore, KEY_BYTES_MAX};
pub use memory::InMemoryKeyValueStore;
#[cfg(feature = "persistent")]
pub use persistent::{PersistentKeyValueStore, PersistentStoreConfig};
pub use session::{Session, SessionStore};
pub use state_dir::{ProcessingGuarantee, Recovery, StateDirectory, TaskDirectory, TaskId};
pub use window::{WindowEntry, WindowIter, WindowStore};
