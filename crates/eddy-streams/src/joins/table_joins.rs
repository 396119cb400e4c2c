//! KTable-KTable joins (primary key and foreign key), as `KTable` methods.

use std::sync::Arc;

use super::{materialize_into, table_store, JoinKind, BOTH_SIDES, LEFT_SIDE};
use crate::ktable::KTable;
use crate::ops::join::{foreign_key, table, Joiner};
use crate::ops::stateless;
use crate::params::Materialized;
use crate::serdes::Serdes;
use crate::topology::{NodeKind, StoreKind, StoreSpec};
use crate::value::Data;

impl<K: Data, V: Data> KTable<K, V> {
    /// Inner join with `other`: a row for each key both tables have.
    pub fn join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, V2, VR> =
            Arc::new(move |l, r| joiner(l.expect(BOTH_SIDES), r.expect(BOTH_SIDES)));
        self.table_join(other, joiner, JoinKind::Inner)
    }

    /// Left join with `other`: a row for each key of this table.
    pub fn left_join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, V2, VR> = Arc::new(move |l, r| joiner(l.expect(LEFT_SIDE), r));
        self.table_join(other, joiner, JoinKind::Left)
    }

    /// Outer join with `other`: a row for each key either table has.
    pub fn outer_join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        self.table_join(other, Arc::new(joiner), JoinKind::Outer)
    }

    /// The same table, kept in a key-value store of its own (named by `materialized`, or
    /// generated): for interactive queries, and for joins that look a derived table up.
    pub fn materialize(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let mut st = self.state.borrow_mut();
        let key = materialized.key.clone().or(self.key.clone());
        let value = materialized.value.clone().or(self.value.clone());
        let (Some(key), Some(value)) = (key, value) else {
            st.error(
                "materializing a table needs key and value serdes: give them with \
                 Materialized::with_key_serde / with_value_serde"
                    .into(),
            );
            return self.clone();
        };
        let (node, store) = materialize_into(
            &mut st,
            self.node,
            &materialized,
            key.clone(),
            value.clone(),
        );
        drop(st);
        KTable::new(
            self.state.clone(),
            node,
            Some(store),
            Some(key),
            Some(value),
        )
    }

    /// Foreign-key inner join (KIP-213): each row joins the row of `other` whose key
    /// `foreign_key` takes from its value, if there is one. Keyed by this table's key.
    pub fn join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, VO, VR> =
            Arc::new(move |l, r| joiner(l.expect(BOTH_SIDES), r.expect(BOTH_SIDES)));
        self.foreign_key_join(other, Arc::new(foreign_key), joiner, false)
    }

    /// Foreign-key left join (KIP-213): as [`Self::join_foreign_key`], and a row whose
    /// foreign key names no row of `other` joins `None`.
    pub fn left_join_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |l, r| joiner(l.expect(LEFT_SIDE), r));
        self.foreign_key_join(other, Arc::new(foreign_key), joiner, true)
    }

    /// Wires the four nodes of `ops/join/foreign_key.rs` and its two topics, named as
    /// Kafka names them (`KTABLE-FK-JOIN-SUBSCRIPTION-...`).
    fn foreign_key_join<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        extract: Arc<dyn Fn(&V) -> KO + Send + Sync>,
        joiner: Joiner<V, VO, VR>,
        left_join: bool,
    ) -> KTable<K, VR> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let serdes = (
            self.key.clone(),
            self.value.clone(),
            other.key.clone(),
            other.value.clone(),
        );
        let (Some(pk), Some(value), Some(fk), Some(other_value)) = serdes else {
            st.error(
                "a foreign-key join sends keys and values of both tables through internal \
                 topics and needs all their serdes: materialize the tables with them \
                 (KTable::materialize)"
                    .into(),
            );
            return KTable::new(state.clone(), self.node, None, None, None);
        };
        let sides = (
            table_store(&mut st, self, "a foreign-key join"),
            table_store(&mut st, other, "a foreign-key join"),
        );
        let (Some((left_parent, left_store)), Some((right_parent, right_store))) = sides else {
            return KTable::new(state.clone(), self.node, None, None, None);
        };
        let registration = st.name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION");
        let serdes = Arc::new(foreign_key::FkSerdes {
            pk: pk.clone(),
            value,
            fk: fk.clone(),
            topic: registration.clone(),
        });
        let send = foreign_key::send_factory(serdes.clone(), extract, left_join);
        let send = st.add(
            registration.clone(),
            NodeKind::Processor(send),
            &[left_parent],
            Vec::new(),
        );
        let subscriptions = st.repartition(
            send,
            &registration,
            fk,
            foreign_key::subscription_serde(pk.clone()),
            None,
        );
        let store = st.name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE");
        st.add_store(StoreSpec {
            name: store.clone(),
            kind: StoreKind::KeyValue,
            persistent: true,
            logged: true,
            serdes: Arc::new((Serdes::bytes(), Serdes::bytes())),
        });
        let subscribe = foreign_key::subscribe_factory::<K, V, KO, VO>(
            serdes.clone(),
            store.clone(),
            right_store.clone(),
        );
        let subscribe = st.processor(
            "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR",
            subscribe,
            subscriptions,
            vec![store.clone(), right_store],
        );
        let update = foreign_key::update_factory::<K, V, KO, VO>(serdes.clone(), store.clone());
        let update = st.processor(
            "KTABLE-FK-JOIN-FOREIGN-PROCESSOR",
            update,
            right_parent,
            vec![store],
        );
        let response = st.name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE");
        let pass = stateless::factory(|ctx, r| ctx.forward(r));
        let answers = st.add(
            response.clone(),
            NodeKind::Processor(pass),
            &[subscribe, update],
            Vec::new(),
        );
        let answers = st.repartition(
            answers,
            &response,
            pk.clone(),
            foreign_key::response_serde(other_value),
            None,
        );
        let resolve = foreign_key::resolve_factory::<K, V, KO, VO, VR>(
            serdes,
            left_store.clone(),
            left_join,
            joiner,
        );
        let node = st.processor(
            "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR",
            resolve,
            answers,
            vec![left_store],
        );
        drop(st);
        KTable::new(state, node, None, Some(pk), None)
    }

    fn table_join<V2: Data, VR: Data>(
        &self,
        other: &KTable<K, V2>,
        joiner: Joiner<V, V2, VR>,
        kind: JoinKind,
    ) -> KTable<K, VR> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let key = self.key.clone().or(other.key.clone());
        let sides = (
            table_store(&mut st, self, "a table-table join"),
            table_store(&mut st, other, "a table-table join"),
        );
        let (Some((this_parent, this_store)), Some((other_parent, other_store))) = sides else {
            return KTable::new(state.clone(), self.node, None, None, None);
        };
        let (this_prefix, other_prefix) = match kind {
            JoinKind::Inner => ("KTABLE-JOINTHIS", "KTABLE-JOINOTHER"),
            JoinKind::Left => ("KTABLE-LEFTTHIS", "KTABLE-LEFTOTHER"),
            JoinKind::Outer => ("KTABLE-OUTERTHIS", "KTABLE-OUTEROTHER"),
        };
        let (left_outer, right_outer) = (kind.left_outer(), kind.right_outer());
        let this_factory = table::join_factory::<K, V, V2, VR>(
            other_store.clone(),
            left_outer,
            right_outer,
            joiner.clone(),
        );
        let this = st.processor(this_prefix, this_factory, this_parent, vec![other_store]);
        let flipped: table::SideJoiner<V2, V, VR> = Arc::new(move |r, l| joiner(l, r));
        let other_factory = table::join_factory::<K, V2, V, VR>(
            this_store.clone(),
            right_outer,
            left_outer,
            flipped,
        );
        let that = st.processor(other_prefix, other_factory, other_parent, vec![this_store]);
        let merge = st.name("KTABLE-MERGE");
        let pass = stateless::factory(|ctx, r| ctx.forward(r));
        let node = st.add(merge, NodeKind::Processor(pass), &[this, that], Vec::new());
        drop(st);
        KTable::new(state, node, None, key, None)
    }
}
