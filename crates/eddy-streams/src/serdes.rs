//! Serdes: how keys and values become bytes on topics and in stores, and back.
//!
//! Encodings match Kafka's own serdes so a Java or librdkafka client reads what Eddy writes:
//! strings as UTF-8, `i64`/`i32` as big-endian (Kafka's LongSerializer/IntegerSerializer),
//! `f64` as big-endian IEEE 754 (DoubleSerializer), JSON through serde_json.
//!
//! Types in the DSL are never null. A topic record whose key or value is null decodes with
//! [`Serdes::unit`] (for keyless streams: the key is `()`), with [`Serdes::nullable`] (the
//! type becomes `Option<T>`), or fails like any bad bytes and goes to the deserialization
//! exception handler. Tables treat a null value as a tombstone before the serde sees it.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::value::Data;

/// Why bytes could not become a value (or a value bytes).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{serde} serde on topic {topic:?}: {detail}")]
pub struct SerdeError {
    pub serde: &'static str,
    pub topic: String,
    pub detail: String,
}

/// Serializer and deserializer of one type.
pub trait Serde<T>: Send + Sync + 'static {
    /// The bytes of `value`; `None` writes a null.
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Bytes>, SerdeError>;
    /// The value of `data` (`None`: a null on the topic).
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError>;
}

/// A shared serde.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

/// The built-in serdes.
pub struct Serdes;

impl Serdes {
    pub fn string() -> SerdeRef<String> {
        Arc::new(StringSerde)
    }
    pub fn bytes() -> SerdeRef<Bytes> {
        Arc::new(BytesSerde)
    }
    pub fn i64() -> SerdeRef<i64> {
        Arc::new(I64Serde)
    }
    pub fn i32() -> SerdeRef<i32> {
        Arc::new(I32Serde)
    }
    pub fn f64() -> SerdeRef<f64> {
        Arc::new(F64Serde)
    }
    /// `()`: writes null, reads anything (keyless streams).
    pub fn unit() -> SerdeRef<()> {
        Arc::new(UnitSerde)
    }
    /// JSON through serde_json.
    pub fn json<T: Data + Serialize + DeserializeOwned + Sync>() -> SerdeRef<T> {
        Arc::new(JsonSerde(PhantomData))
    }
    /// `Option<T>`: null is `None`, anything else goes through `inner`.
    pub fn nullable<T: Data>(inner: SerdeRef<T>) -> SerdeRef<Option<T>> {
        Arc::new(Nullable(inner))
    }
}

fn error(serde: &'static str, topic: &str, detail: impl Into<String>) -> SerdeError {
    SerdeError {
        serde,
        topic: topic.to_owned(),
        detail: detail.into(),
    }
}

fn non_null<'a>(
    serde: &'static str,
    topic: &str,
    data: Option<&'a [u8]>,
) -> Result<&'a [u8], SerdeError> {
    data.ok_or_else(|| {
        error(
            serde,
            topic,
            "null where a value was required (use Serdes::nullable or Serdes::unit for nullable data)",
        )
    })
}

struct StringSerde;
impl Serde<String> for StringSerde {
    fn serialize(&self, _: &str, v: &String) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(Bytes::copy_from_slice(v.as_bytes())))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<String, SerdeError> {
        let b = non_null("string", topic, data)?;
        String::from_utf8(b.to_vec()).map_err(|e| error("string", topic, format!("not UTF-8: {e}")))
    }
}

struct BytesSerde;
impl Serde<Bytes> for BytesSerde {
    fn serialize(&self, _: &str, v: &Bytes) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(v.clone()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(non_null("bytes", topic, data)?))
    }
}

fn fixed<const N: usize>(
    serde: &'static str,
    topic: &str,
    data: Option<&[u8]>,
) -> Result<[u8; N], SerdeError> {
    let b = non_null(serde, topic, data)?;
    b.try_into().map_err(|_| {
        error(
            serde,
            topic,
            format!("{} bytes where {N} were expected", b.len()),
        )
    })
}

struct I64Serde;
impl Serde<i64> for I64Serde {
    fn serialize(&self, _: &str, v: &i64) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(Bytes::copy_from_slice(&v.to_be_bytes())))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i64, SerdeError> {
        Ok(i64::from_be_bytes(fixed("i64", topic, data)?))
    }
}

struct I32Serde;
impl Serde<i32> for I32Serde {
    fn serialize(&self, _: &str, v: &i32) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(Bytes::copy_from_slice(&v.to_be_bytes())))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i32, SerdeError> {
        Ok(i32::from_be_bytes(fixed("i32", topic, data)?))
    }
}

struct F64Serde;
impl Serde<f64> for F64Serde {
    fn serialize(&self, _: &str, v: &f64) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(Bytes::copy_from_slice(&v.to_be_bytes())))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<f64, SerdeError> {
        Ok(f64::from_be_bytes(fixed("f64", topic, data)?))
    }
}

struct UnitSerde;
impl Serde<()> for UnitSerde {
    fn serialize(&self, _: &str, _: &()) -> Result<Option<Bytes>, SerdeError> {
        Ok(None)
    }
    fn deserialize(&self, _: &str, _: Option<&[u8]>) -> Result<(), SerdeError> {
        Ok(())
    }
}

struct JsonSerde<T>(PhantomData<fn() -> T>);
impl<T: Data + Serialize + DeserializeOwned + Sync> Serde<T> for JsonSerde<T> {
    fn serialize(&self, topic: &str, v: &T) -> Result<Option<Bytes>, SerdeError> {
        serde_json::to_vec(v)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| error("json", topic, e.to_string()))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T, SerdeError> {
        serde_json::from_slice(non_null("json", topic, data)?)
            .map_err(|e| error("json", topic, e.to_string()))
    }
}

struct Nullable<T>(SerdeRef<T>);
impl<T: Data> Serde<Option<T>> for Nullable<T> {
    fn serialize(&self, topic: &str, v: &Option<T>) -> Result<Option<Bytes>, SerdeError> {
        match v {
            Some(v) => self.0.serialize(topic, v),
            None => Ok(None),
        }
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Option<T>, SerdeError> {
        data.map(|d| self.0.deserialize(topic, Some(d))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Data + PartialEq>(s: SerdeRef<T>, v: T) {
        let bytes = s.serialize("t", &v).unwrap();
        assert_eq!(s.deserialize("t", bytes.as_deref()).unwrap(), v);
    }

    #[test]
    fn built_ins_round_trip() {
        round_trip(Serdes::string(), "héllo".to_string());
        round_trip(Serdes::i64(), -42);
        round_trip(Serdes::i32(), i32::MIN);
        round_trip(Serdes::f64(), 2.5);
        round_trip(Serdes::bytes(), Bytes::from_static(b"\0\x01"));
        round_trip(Serdes::unit(), ());
        round_trip(Serdes::nullable(Serdes::string()), None);
        round_trip(Serdes::nullable(Serdes::string()), Some("x".into()));
        round_trip(Serdes::json::<Vec<u32>>(), vec![1, 2, 3]);
    }

    #[test]
    fn kafka_encodings() {
        let b = Serdes::i64().serialize("t", &1).unwrap().unwrap();
        assert_eq!(&b[..], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(Serdes::unit().serialize("t", &()).unwrap(), None);
    }

    #[test]
    fn bad_input_is_an_error_that_says_what() {
        let e = Serdes::i64()
            .deserialize("orders", Some(b"abc"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "i64 serde on topic \"orders\": 3 bytes where 8 were expected"
        );
        let e = Serdes::string().deserialize("t", None).unwrap_err();
        assert!(e.detail.contains("null"), "{e}");
        assert!(Serdes::string().deserialize("t", Some(&[0xff])).is_err());
        assert!(Serdes::json::<Vec<u32>>()
            .deserialize("t", Some(b"{"))
            .is_err());
    }
}
