//! Join operators, one file per family under `join/`:
//!
//! - `windowed`: KStream-KStream, sliding-window joins over two window stores and, for
//!   left/outer joins, a store of records still waiting for a partner (KIP-633).
//! - `lookup`: KStream-KTable, a stream record looks the table's current row up.
//! - `table`: KTable-KTable, each side's update looks the other side up; and the node
//!   that materializes a derived table so that joins can look it up.
//! - `foreign_key`: KTable-KTable on a key taken from the left value (KIP-213), through
//!   a subscription topic and a response topic.
//!
//! Every joiner is erased to one shape, `Fn(Option<&V1>, Option<&V2>) -> VR`: the DSL
//! wraps the user's typed joiner (`Fn(&V1, &V2)` for inner joins, `Fn(&V1, Option<&V2>)`
//! for left joins) and the operators only ever pass `None` where the join kind allows it.

pub(crate) mod foreign_key;
pub(crate) mod lookup;
pub(crate) mod table;
pub(crate) mod windowed;

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use crate::serdes::{Serde, SerdeError, SerdeRef};
use crate::value::Data;

/// A value joiner: left value, right value (`None`: no partner) → result.
pub(crate) type Joiner<V1, V2, VR> = Arc<dyn Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync>;

/// A list of values in one store entry: a join buffers every record, and several records
/// of a key can share a timestamp (Kafka's join stores "retain duplicates"; here a window
/// holds the list of them).
///
/// ```text
/// per value: i32 length (big-endian; -1 for a value its serde writes as null), then the bytes
/// ```
pub(crate) struct ListSerde<V>(SerdeRef<V>);

/// Values longer than this cannot be framed (the length is an i32, as Kafka frames bytes).
const VALUE_BYTES_MAX: usize = i32::MAX as usize;

pub(crate) fn list_serde<V: Data>(inner: SerdeRef<V>) -> SerdeRef<Vec<V>> {
    Arc::new(ListSerde(inner))
}

fn list_error(topic: &str, detail: impl Into<String>) -> SerdeError {
    SerdeError {
        serde: "join list",
        topic: topic.to_owned(),
        detail: detail.into(),
    }
}

impl<V: Data> Serde<Vec<V>> for ListSerde<V> {
    fn serialize(&self, topic: &str, values: &Vec<V>) -> Result<Option<Bytes>, SerdeError> {
        let mut out = Vec::new();
        for v in values {
            match self.0.serialize(topic, v)? {
                Some(b) if b.len() > VALUE_BYTES_MAX => {
                    return Err(list_error(
                        topic,
                        format!("a value of {} bytes is too long", b.len()),
                    ));
                }
                Some(b) => {
                    out.put_i32(b.len() as i32);
                    out.put_slice(&b);
                }
                None => out.put_i32(-1),
            }
        }
        Ok(Some(Bytes::from(out)))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Vec<V>, SerdeError> {
        let mut rest = data.ok_or_else(|| list_error(topic, "null where a list was stored"))?;
        let mut values = Vec::new();
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(list_error(topic, "a length cut short"));
            };
            let len = i32::from_be_bytes(*len);
            rest = tail;
            if len == -1 {
                values.push(self.0.deserialize(topic, None)?);
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| list_error(topic, format!("negative length {len}")))?;
            if len > rest.len() {
                return Err(list_error(
                    topic,
                    format!("a value of {len} bytes where {} remain", rest.len()),
                ));
            }
            let (value, tail) = rest.split_at(len);
            values.push(self.0.deserialize(topic, Some(value))?);
            rest = tail;
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::Serdes;

    #[test]
    fn lists_round_trip_with_nulls_and_empty_values() {
        let serde = list_serde(Serdes::nullable(Serdes::string()));
        let values = vec![
            Some("a".to_string()),
            None,
            Some(String::new()),
            Some("long".repeat(50)),
        ];
        let bytes = serde.serialize("t", &values).unwrap().unwrap();
        assert_eq!(serde.deserialize("t", Some(&bytes)).unwrap(), values);
        assert_eq!(
            serde.deserialize("t", Some(&[])).unwrap(),
            Vec::<Option<String>>::new()
        );
    }

    #[test]
    fn truncated_lists_are_errors_not_panics() {
        let serde = list_serde(Serdes::string());
        let bytes = serde
            .serialize("t", &vec!["abc".to_string()])
            .unwrap()
            .unwrap();
        for cut in 0..bytes.len() {
            let r = serde.deserialize("t", Some(&bytes[..cut]));
            assert_eq!(r.is_ok(), cut == 0, "cut at {cut}");
        }
        assert!(serde
            .deserialize("t", Some(&(-7i32).to_be_bytes()))
            .is_err());
    }
}
