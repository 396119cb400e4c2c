//! Joins, with Kafka Streams' semantics (3.x/4.x): KStream-KStream windowed joins,
//! KStream-KTable lookups and KTable-KTable joins, inner, left and outer.
//!
//! # Joiners
//!
//! A joiner gets the left value first. Its shape says which side may be missing:
//! `Fn(&V1, &V2) -> VR` for inner joins, `Fn(&V1, Option<&V2>) -> VR` for left joins,
//! `Fn(Option<&V1>, Option<&V2>) -> VR` for outer joins (never both `None`).
//!
//! # Semantics
//!
//! - **KStream-KStream** ([`KStream::join`], [`KStream::left_join`],
//!   [`KStream::outer_join`]): records of one key join when their timestamps are within
//!   the [`JoinWindows`]. Both sides are buffered in logged window stores
//!   (`KSTREAM-JOINTHIS-<n>-store`, `KSTREAM-JOINOTHER-<n>-store`; `OUTER...` for the
//!   sides an outer join emits alone). A record without a partner is not emitted at once
//!   (KIP-633): it waits in `KSTREAM-OUTERSHARED-<n>-store` and is emitted with `None` once
//!   stream time passes its timestamp + after (right records: + before) + grace, unless a
//!   partner came in between. A record arriving after that point is late: dropped and
//!   counted, never joined (KAFKA-16123; Kafka versions without it still join a late
//!   record with what their stores hold). Likewise a record joins only records whose
//!   windows are still open, so a record emitted alone never finds a partner later. A
//!   joined result carries the larger of the two timestamps, an unjoined one its own.
//!   Details in `ops/join/windowed.rs`.
//! - **KStream-KTable** ([`KStream::join_table`], [`KStream::left_join_table`]): a stream
//!   record looks up the table's current row; table updates never produce output.
//! - **KTable-KTable** ([`KTable::join`], [`KTable::left_join`], [`KTable::outer_join`]):
//!   an update on either side looks up the other side and emits the new result as a
//!   [`Change`](crate::Change) (`new: None` is a tombstone: the result row is gone).
//!   Results carry the updating record's timestamp (Kafka: the larger of both rows'
//!   timestamps, which its timestamped stores keep; equal for records processed in
//!   timestamp order).
//! - **Foreign-key KTable-KTable** ([`KTable::join_foreign_key`],
//!   [`KTable::left_join_foreign_key`], KIP-213): a row joins the row of the other table
//!   whose key its value names, through a subscription topic (by foreign key) and a
//!   response topic (back by primary key), as Kafka does; answers for a row that changed
//!   since are dropped. Results are `Change`s without old values. Details in
//!   `ops/join/foreign_key.rs`.
//!
//! Records are joined on equal keys, so both inputs must be partitioned alike: a stream
//! whose key was changed (`select_key`, `map`, ...) goes through a repartition topic
//! first, as Kafka does; the join's nodes and stores then sit in one sub-topology.
//!
//! # Tables the join must look up
//!
//! Joins with a table read its store. Tables from `StreamsBuilder::table` and from
//! aggregations have one; a derived table (`filter`, `map_values`, a join result) has
//! none, and a join materializes it first (a node under it writes every change into a new
//! logged store, `KTABLE-MATERIALIZE-STATE-STORE-<n>`), or [`KTable::materialize`] does it
//! by hand with a chosen name. Kafka computes such rows on read instead (value getters);
//! a store costs space but keeps one way of reading a table, and it is queryable.
//!
//! Not here yet: KStream-GlobalKTable joins (there are no global tables).
//!
//! # Example
//!
//! ```
//! use eddy_streams::driver::TestTopic;
//! use eddy_streams::{
//!     Consumed, Joined, Materialized, Produced, Serdes, StreamsBuilder, TopologyTestDriver,
//! };
//!
//! let builder = StreamsBuilder::new();
//! let strings = || Consumed::with(Serdes::string(), Serdes::string());
//! let users = builder.table("users", strings(), Materialized::new());
//! builder
//!     .stream(&["clicks"], strings())
//!     .left_join_table(
//!         &users,
//!         |page, name| format!("{page} by {}", name.map_or("?", |n| n)),
//!         Joined::inherit(),
//!     )
//!     .to("enriched", Produced::with(Serdes::string(), Serdes::string()));
//! let mut driver = TopologyTestDriver::new(builder.build().unwrap());
//! let topic = |name| TestTopic::new(name, Serdes::string(), Serdes::string());
//! driver.pipe(&topic("users"), "u1".into(), "Ada".into(), 1).unwrap();
//! driver.pipe(&topic("clicks"), "u1".into(), "/home".into(), 2).unwrap();
//! driver.pipe(&topic("clicks"), "u2".into(), "/home".into(), 3).unwrap();
//! let out: Vec<String> = driver
//!     .read(&topic("enriched"))
//!     .unwrap()
//!     .into_iter()
//!     .map(|r| r.value)
//!     .collect();
//! assert_eq!(out, ["/home by Ada", "/home by ?"]);
//! ```

use std::sync::Arc;

use crate::builder::BuilderState;
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::ops::join::{self, lookup, table, windowed, Joiner};
use crate::params::Materialized;
use crate::serdes::{SerdeRef, Serdes};
use crate::topology::{NodeKind, StoreKind, StoreSpec};
use crate::value::Data;

mod global_joins;
mod table_joins;

pub use global_joins::GlobalKTable;

const BOTH_SIDES: &str = "an inner join calls its joiner with both values";
const LEFT_SIDE: &str = "a left join calls its joiner with the left value";

/// How close in time two records must be to join, and how long after that an
/// out-of-order record is still accepted (Kafka's `JoinWindows`).
///
/// A left record at `t` joins right records in `[t - before_ms, t + after_ms]`; a right
/// record at `t` joins left records in `[t - after_ms, t + before_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
}

impl JoinWindows {
    /// Records at most `difference_ms` apart join; records up to `grace_ms` behind a
    /// closing window are still accepted.
    pub fn of_time_difference_and_grace(difference_ms: i64, grace_ms: i64) -> JoinWindows {
        assert!(
            difference_ms >= 0,
            "the time difference of a join window must not be negative"
        );
        assert!(
            grace_ms >= 0,
            "the grace period of a join window must not be negative"
        );
        JoinWindows {
            before_ms: difference_ms,
            after_ms: difference_ms,
            grace_ms,
        }
    }

    pub fn of_time_difference_without_grace(difference_ms: i64) -> JoinWindows {
        JoinWindows::of_time_difference_and_grace(difference_ms, 0)
    }

    /// How much older a right record may be than a left one it joins.
    pub fn before(self, before_ms: i64) -> JoinWindows {
        JoinWindows { before_ms, ..self }.checked()
    }

    /// How much newer a right record may be than a left one it joins.
    pub fn after(self, after_ms: i64) -> JoinWindows {
        JoinWindows { after_ms, ..self }.checked()
    }

    /// Width of the window around a record: `before + after`.
    pub fn size_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms)
    }

    fn checked(self) -> JoinWindows {
        // As Kafka: one bound may be negative (a window entirely before or after the
        // record), but the window may not be empty.
        assert!(
            self.size_ms() >= 0,
            "a join window must not be empty: before + after must be >= 0"
        );
        self
    }
}

/// Serdes, names and logging of a stream-stream join (Kafka's `StreamJoined`).
pub struct StreamJoined<K, V1, V2> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V1>>,
    pub(crate) other_value: Option<SerdeRef<V2>>,
    pub(crate) name: Option<String>,
    pub(crate) store_name: Option<String>,
    pub(crate) logged: bool,
}

impl<K: Data, V1: Data, V2: Data> StreamJoined<K, V1, V2> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V1>, other_value: SerdeRef<V2>) -> Self {
        StreamJoined {
            key: Some(key),
            value: Some(value),
            other_value: Some(other_value),
            name: None,
            store_name: None,
            logged: true,
        }
    }

    /// The streams' own serdes (an error at build time where one has none).
    pub fn inherit() -> Self {
        StreamJoined {
            key: None,
            value: None,
            other_value: None,
            name: None,
            store_name: None,
            logged: true,
        }
    }

    /// Names the processors (`<name>-this-windowed`, `<name>-other-windowed`,
    /// `<name>-merge`), repartition topics (`<name>-left-repartition`,
    /// `<name>-right-repartition`) and, unless [`Self::with_store_name`] says otherwise,
    /// the stores.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Stores `<name>-this-join-store`, `<name>-other-join-store` and
    /// `<name>-outer-shared-join-store` (left joins: `<name>-left-shared-join-store`).
    pub fn with_store_name(mut self, name: &str) -> Self {
        self.store_name = Some(name.to_owned());
        self
    }

    /// No changelogs: after a restart the join forgets its buffered records.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logged = false;
        self
    }
}

/// Serdes and name of a stream-table join: the stream's, needed when the stream is
/// repartitioned first (Kafka's `Joined`).
pub struct Joined<K, V> {
    pub(crate) key: Option<SerdeRef<K>>,
    pub(crate) value: Option<SerdeRef<V>>,
    pub(crate) name: Option<String>,
}

impl<K: Data, V: Data> Joined<K, V> {
    pub fn with(key: SerdeRef<K>, value: SerdeRef<V>) -> Self {
        Joined {
            key: Some(key),
            value: Some(value),
            name: None,
        }
    }

    pub fn inherit() -> Self {
        Joined {
            key: None,
            value: None,
            name: None,
        }
    }

    /// Names the join processor and its repartition topic `<name>-repartition`.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    Inner,
    Left,
    Outer,
}

impl JoinKind {
    /// Left values without a partner produce results.
    fn left_outer(self) -> bool {
        self != JoinKind::Inner
    }
    /// Right values without a partner produce results.
    fn right_outer(self) -> bool {
        self == JoinKind::Outer
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Inner join with `other`: each pair of records of one key within `windows`.
    pub fn join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, V2, VR> =
            Arc::new(move |l, r| joiner(l.expect(BOTH_SIDES), r.expect(BOTH_SIDES)));
        self.windowed_join(other, joiner, windows, joined, JoinKind::Inner)
    }

    /// Left join with `other`: as [`Self::join`], and each record of this stream that
    /// found no partner by the time its window closed, with `None`.
    pub fn left_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, V2, VR> = Arc::new(move |l, r| joiner(l.expect(LEFT_SIDE), r));
        self.windowed_join(other, joiner, windows, joined, JoinKind::Left)
    }

    /// Outer join with `other`: as [`Self::left_join`], and the same for `other`'s records.
    pub fn outer_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
    ) -> KStream<K, VR> {
        self.windowed_join(other, Arc::new(joiner), windows, joined, JoinKind::Outer)
    }

    /// Inner join with `table`: each record joins the table's current row of its key, if
    /// there is one.
    pub fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VT, VR> =
            Arc::new(move |l, r| joiner(l.expect(BOTH_SIDES), r.expect(BOTH_SIDES)));
        self.lookup_join(table, joiner, joined, false)
    }

    /// Left join with `table`: each record joins the table's current row of its key, or
    /// `None`.
    pub fn left_join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V>,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, VT, VR> = Arc::new(move |l, r| joiner(l.expect(LEFT_SIDE), r));
        self.lookup_join(table, joiner, joined, true)
    }

    fn windowed_join<V2: Data, VR: Data>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V, V2, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, V2>,
        kind: JoinKind,
    ) -> KStream<K, VR> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let serdes = (
            joined
                .key
                .clone()
                .or(self.key.clone())
                .or(other.key.clone()),
            joined.value.clone().or(self.value.clone()),
            joined.other_value.clone().or(other.value.clone()),
        );
        let (Some(key), Some(left_value), Some(right_value)) = serdes else {
            st.error(
                concat!(
                    "a stream-stream join keeps both sides in window stores and needs serdes ",
                    "for the key and both values: give them with StreamJoined::with"
                )
                .into(),
            );
            return KStream::new(state.clone(), self.node, None, None, false);
        };
        // Repartitioning first, then naming, keeps Kafka's numbering: the same program
        // gets the same store and changelog names.
        let topic = |side: &str| joined.name.as_ref().map(|n| format!("{n}-{side}"));
        let left = co_partitioned(&mut st, self, &key, &left_value, topic("left"));
        let right = co_partitioned(&mut st, other, &key, &right_value, topic("right"));
        let names = WindowedNames::new(&mut st, &joined, kind);
        let (left_list, right_list) = (join::list_serde(left_value), join::list_serde(right_value));
        let outer_store = (kind != JoinKind::Inner).then(|| names.outer_store.clone());
        let stores = names.add_stores(
            &mut st,
            windows,
            joined.logged,
            kind,
            &key,
            &left_list,
            &right_list,
        );
        let this = st.add(
            names.this,
            NodeKind::Processor(windowed::tag_left::<V, V2>()),
            &[left],
            Vec::new(),
        );
        let that = st.add(
            names.other,
            NodeKind::Processor(windowed::tag_right::<V, V2>()),
            &[right],
            Vec::new(),
        );
        let factory = windowed::factory(windowed::WindowedJoin {
            left_store: names.left_store,
            right_store: names.right_store,
            outer_store,
            windows,
            left_outer: kind.left_outer(),
            right_outer: kind.right_outer(),
            key: key.clone(),
            left_list,
            right_list,
            joiner,
        });
        let node = st.add(
            names.merge,
            NodeKind::Processor(factory),
            &[this, that],
            stores,
        );
        drop(st);
        KStream::new(state, node, Some(key), None, false)
    }

    fn lookup_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: Joiner<V, VT, VR>,
        joined: Joined<K, V>,
        left: bool,
    ) -> KStream<K, VR> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let key = joined
            .key
            .clone()
            .or(self.key.clone())
            .or(table.key.clone());
        let Some((_, store)) = table_store(&mut st, table, "a stream-table join") else {
            return KStream::new(state.clone(), self.node, None, None, false);
        };
        let mut parent = self.node;
        if self.repartition_required {
            let (Some(k), Some(v)) = (key.clone(), joined.value.clone().or(self.value.clone()))
            else {
                st.error(
                    concat!(
                        "a stream-table join repartitions the stream by its new key first and ",
                        "needs the stream's key and value serdes: give them with Joined::with"
                    )
                    .into(),
                );
                return KStream::new(state.clone(), self.node, None, None, false);
            };
            parent = co_partitioned(&mut st, self, &k, &v, joined.name.clone());
        }
        let name = joined.name.clone().unwrap_or_else(|| {
            st.name(if left {
                "KSTREAM-LEFTJOIN"
            } else {
                "KSTREAM-JOIN"
            })
        });
        let factory = lookup::factory::<K, V, VT, VR>(store.clone(), left, joiner);
        let node = st.add(name, NodeKind::Processor(factory), &[parent], vec![store]);
        drop(st);
        KStream::new(state, node, key, None, false)
    }
}

/// Names of a stream-stream join's processors and stores, as Kafka gives them: a
/// `KSTREAM-WINDOWED` node under each input (here it tags records with their side), the
/// joining processors' names (here they only name the stores) and `KSTREAM-MERGE` (here
/// the node that joins).
struct WindowedNames {
    this: String,
    other: String,
    merge: String,
    left_store: String,
    right_store: String,
    outer_store: String,
}

impl WindowedNames {
    fn new<K: Data, V1: Data, V2: Data>(
        st: &mut BuilderState,
        joined: &StreamJoined<K, V1, V2>,
        kind: JoinKind,
    ) -> Self {
        let shared = if kind == JoinKind::Outer {
            "outer"
        } else {
            "left"
        };
        let stores = |base: &str| {
            (
                format!("{base}-this-join-store"),
                format!("{base}-other-join-store"),
                format!("{base}-{shared}-shared-join-store"),
            )
        };
        if let Some(name) = &joined.name {
            let (left_store, right_store, outer_store) =
                stores(joined.store_name.as_deref().unwrap_or(name));
            return WindowedNames {
                this: format!("{name}-this-windowed"),
                other: format!("{name}-other-windowed"),
                merge: format!("{name}-merge"),
                left_store,
                right_store,
                outer_store,
            };
        }
        let this = st.name("KSTREAM-WINDOWED");
        let other = st.name("KSTREAM-WINDOWED");
        let join_this = st.name(if kind.right_outer() {
            "KSTREAM-OUTERTHIS"
        } else {
            "KSTREAM-JOINTHIS"
        });
        let join_other = st.name(if kind.left_outer() {
            "KSTREAM-OUTEROTHER"
        } else {
            "KSTREAM-JOINOTHER"
        });
        let merge = st.name("KSTREAM-MERGE");
        let index = join_this.rsplit('-').next().unwrap_or_default().to_owned();
        let (left_store, right_store, outer_store) = match &joined.store_name {
            Some(base) => stores(base),
            None => (
                format!("{join_this}-store"),
                format!("{join_other}-store"),
                format!("KSTREAM-OUTERSHARED-{index}-store"),
            ),
        };
        WindowedNames {
            this,
            other,
            merge,
            left_store,
            right_store,
            outer_store,
        }
    }

    /// Declares the join's stores: a window store per side (records buffered for the
    /// other side) and, for left and outer joins, the outer store; returns their names.
    #[allow(clippy::too_many_arguments)]
    fn add_stores<K: Data, V1: Data, V2: Data>(
        &self,
        st: &mut BuilderState,
        windows: JoinWindows,
        logged: bool,
        kind: JoinKind,
        key: &SerdeRef<K>,
        left: &SerdeRef<Vec<V1>>,
        right: &SerdeRef<Vec<V2>>,
    ) -> Vec<String> {
        let window_store = |name: &str, serdes: Arc<dyn std::any::Any + Send + Sync>| StoreSpec {
            name: name.to_owned(),
            kind: StoreKind::Window {
                size_ms: windows.size_ms(),
                retention_ms: windows.size_ms().saturating_add(windows.grace_ms),
            },
            persistent: true,
            logged,
            serdes,
        };
        st.add_store(window_store(
            &self.left_store,
            Arc::new((key.clone(), left.clone())),
        ));
        st.add_store(window_store(
            &self.right_store,
            Arc::new((key.clone(), right.clone())),
        ));
        let mut stores = vec![self.left_store.clone(), self.right_store.clone()];
        if kind != JoinKind::Inner {
            st.add_store(StoreSpec {
                name: self.outer_store.clone(),
                kind: StoreKind::KeyValue,
                persistent: true,
                logged,
                serdes: Arc::new((Serdes::bytes(), Serdes::bytes())),
            });
            stores.push(self.outer_store.clone());
        }
        stores
    }
}

/// The node a join reads `stream` from: the stream itself, or the stream sent through
/// `<name>-repartition` (a generated name by default) when its key changed since it was
/// last partitioned.
fn co_partitioned<K: Data, V: Data>(
    st: &mut BuilderState,
    stream: &KStream<K, V>,
    key: &SerdeRef<K>,
    value: &SerdeRef<V>,
    name: Option<String>,
) -> usize {
    if !stream.repartition_required {
        return stream.node;
    }
    let name = name.unwrap_or_else(|| st.name("KSTREAM-REPARTITION"));
    st.repartition(stream.node, &name, key.clone(), value.clone(), None)
}

/// The node writing `table`'s store, and the store; a table without one (derived by
/// `filter`, `map_values` or a join) is materialized first.
fn table_store<K: Data, V: Data>(
    st: &mut BuilderState,
    table: &KTable<K, V>,
    join: &str,
) -> Option<(usize, String)> {
    if let Some(store) = &table.store {
        return Some((table.node, store.clone()));
    }
    let (Some(key), Some(value)) = (table.key.clone(), table.value.clone()) else {
        st.error(format!(
            "{join} reads the table's rows from a store, and the table has none (it was derived \
             by filter, map_values or a join) nor the serdes to make one: materialize it first \
             with KTable::materialize(Materialized::new().with_key_serde(..).with_value_serde(..))"
        ));
        return None;
    };
    Some(materialize_into(
        st,
        table.node,
        &Materialized::new(),
        key,
        value,
    ))
}

fn materialize_into<K: Data, V: Data>(
    st: &mut BuilderState,
    parent: usize,
    materialized: &Materialized<K, V>,
    key: SerdeRef<K>,
    value: SerdeRef<V>,
) -> (usize, String) {
    let store = materialized
        .name
        .clone()
        .unwrap_or_else(|| st.name("KTABLE-MATERIALIZE-STATE-STORE"));
    st.add_store(StoreSpec {
        name: store.clone(),
        kind: StoreKind::KeyValue,
        persistent: materialized.persistent,
        logged: materialized.logged,
        serdes: Arc::new((key, value)),
    });
    let factory = table::materialize_factory::<K, V>(store.clone());
    let node = st.processor("KTABLE-MATERIALIZE", factory, parent, vec![store.clone()]);
    (node, store)
}
