//! Rows through ksqlDB's formats and back, and records that do not fit their schema.

use eddy_sql::format::{deserialize, serialize, Format};
use eddy_sql::value::{Type, Value};

fn cols() -> Vec<(String, Type)> {
    vec![
        ("ID".into(), Type::Bigint),
        ("NAME".into(), Type::String),
        ("PRICE".into(), Type::Decimal(6, 2)),
        ("OK".into(), Type::Boolean),
        ("SCORE".into(), Type::Double),
    ]
}

fn row() -> Vec<Value> {
    vec![
        Value::Bigint(42),
        Value::String("a, \"quoted\" name".into()),
        Value::Decimal(1999, 2),
        Value::Boolean(true),
        Value::Null,
    ]
}

#[test]
fn json_and_delimited_round_trip() {
    for format in [Format::Json { unwrapped: false }, Format::Delimited] {
        let bytes = serialize(format, &cols(), &row()).unwrap().unwrap();
        assert_eq!(
            deserialize(format, &cols(), Some(&bytes)).unwrap(),
            row(),
            "{format:?}"
        );
    }
    let json = serialize(Format::Json { unwrapped: false }, &cols(), &row())
        .unwrap()
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed["PRICE"], serde_json::json!(19.99));
    assert_eq!(parsed["SCORE"], serde_json::Value::Null);
}

#[test]
fn json_reads_fields_case_insensitively_and_missing_ones_as_null() {
    let got = deserialize(
        Format::Json { unwrapped: false },
        &cols(),
        Some(br#"{"id": 7, "Name": "x", "price": "3.5", "extra": [1]}"#),
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            Value::Bigint(7),
            Value::String("x".into()),
            Value::Decimal(350, 2),
            Value::Null,
            Value::Null
        ]
    );
    // Nested types.
    let nested = vec![
        ("TAGS".into(), Type::Array(Box::new(Type::Int))),
        (
            "ATTRS".into(),
            Type::Map(Box::new(Type::String), Box::new(Type::String)),
        ),
        ("ADDR".into(), Type::Struct(vec![("ZIP".into(), Type::Int)])),
    ];
    let got = deserialize(
        Format::Json { unwrapped: false },
        &nested,
        Some(br#"{"TAGS": [1, 2], "ATTRS": {"a": "b"}, "ADDR": {"zip": 94107}}"#),
    )
    .unwrap();
    assert_eq!(got[0], Value::Array(vec![Value::Int(1), Value::Int(2)]));
    assert_eq!(
        got[2],
        Value::Struct(vec![("ZIP".into(), Value::Int(94107))])
    );
    let back = serialize(Format::Json { unwrapped: false }, &nested, &got)
        .unwrap()
        .unwrap();
    assert_eq!(
        deserialize(Format::Json { unwrapped: false }, &nested, Some(&back)).unwrap(),
        got
    );
}

#[test]
fn kafka_format_and_unwrapped_keys() {
    let one = vec![("K".into(), Type::Bigint)];
    let bytes = serialize(Format::Kafka, &one, &[Value::Bigint(5)])
        .unwrap()
        .unwrap();
    assert_eq!(bytes, 5i64.to_be_bytes());
    assert_eq!(
        deserialize(Format::Kafka, &one, Some(&bytes)).unwrap(),
        vec![Value::Bigint(5)]
    );
    assert_eq!(
        serialize(Format::Kafka, &one, &[Value::Null]).unwrap(),
        None
    );
    let s = vec![("K".into(), Type::String)];
    let bytes = serialize(
        Format::Json { unwrapped: true },
        &s,
        &[Value::String("k1".into())],
    )
    .unwrap()
    .unwrap();
    assert_eq!(bytes, br#""k1""#);
    assert!(Format::Kafka
        .check(&cols())
        .unwrap_err()
        .contains("single column"));
    assert!(Format::Kafka
        .check(&[("B".into(), Type::Boolean)])
        .unwrap_err()
        .contains("not B BOOLEAN"));
    assert!(Format::Delimited
        .check(&[("A".into(), Type::Array(Box::new(Type::Int)))])
        .is_err());
}

#[test]
fn records_that_do_not_fit_are_errors_that_say_why() {
    let json = Format::Json { unwrapped: false };
    let e = deserialize(json, &cols(), Some(b"not json")).unwrap_err();
    assert!(e.0.contains("not JSON"), "{e}");
    let e = deserialize(json, &cols(), Some(br#"{"ID": "seven"}"#)).unwrap_err();
    assert!(e.0.contains("ID") && e.0.contains("is not a BIGINT"), "{e}");
    let e = deserialize(json, &cols(), Some(br#"[1, 2]"#)).unwrap_err();
    assert!(
        e.0.contains("expected a JSON object with fields ID, NAME"),
        "{e}"
    );
    let e = deserialize(json, &cols(), Some(br#"{"PRICE": 123456.7}"#)).unwrap_err();
    assert!(e.0.contains("does not fit in a DECIMAL(6, 2)"), "{e}");
    let e = deserialize(Format::Delimited, &cols(), Some(b"1,x")).unwrap_err();
    assert!(
        e.0.contains("2 fields where the schema has 5 columns"),
        "{e}"
    );
    let e = deserialize(Format::Kafka, &[("K".into(), Type::Int)], Some(b"abc")).unwrap_err();
    assert!(e.0.contains("takes 4 bytes"), "{e}");
    // A tombstone is every column NULL.
    assert_eq!(
        deserialize(json, &cols(), None).unwrap(),
        vec![Value::Null; 5]
    );
}
