//! CREATE STREAM/TABLE and DROP planned against the catalog, and the mistakes ksqlDB
//! refuses, each named with where it is.

use eddy_sql::ast::SourceKind;
use eddy_sql::catalog::{Catalog, Create};
use eddy_sql::format::Format;
use eddy_sql::parse_statement;
use eddy_sql::value::Type;

fn create(catalog: &Catalog, sql: &str) -> Result<Create, String> {
    catalog
        .plan_create(&parse_statement(sql).unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn streams_and_tables_are_declared_as_ksqldb_declares_them() {
    let mut c = Catalog::default();
    let Create::Add(s) = create(
        &c,
        "CREATE STREAM pageviews (user_id STRING KEY, viewtime BIGINT, page STRING) \
         WITH (kafka_topic='pageviews', value_format='JSON', partitions=4, timestamp='viewtime')",
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(s.kind, SourceKind::Stream);
    assert_eq!(s.topic, "pageviews");
    assert_eq!(s.key_columns, vec![("USER_ID".to_string(), Type::String)]);
    assert_eq!(s.value_columns.len(), 2);
    assert_eq!(s.value_format, Format::Json { unwrapped: false });
    assert_eq!(s.key_format, Format::Kafka);
    assert_eq!(s.timestamp, Some(("VIEWTIME".into(), None)));
    assert_eq!(s.partitions, Some(4));
    c.insert(s);

    let Create::Add(t) = create(
        &c,
        "CREATE TABLE users (id BIGINT PRIMARY KEY, name STRING) \
         WITH (KAFKA_TOPIC='users', FORMAT='JSON')",
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(t.key_format, Format::Json { unwrapped: true });
    c.insert(t);

    assert_eq!(
        create(&c, "CREATE STREAM IF NOT EXISTS pageviews (a INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON')"),
        Ok(Create::Exists)
    );
    assert!(matches!(
        create(&c, "CREATE OR REPLACE STREAM pageviews (a INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON')"),
        Ok(Create::Add(_))
    ));
    let drop = parse_statement("DROP TABLE users DELETE TOPIC").unwrap();
    assert_eq!(c.plan_drop(&drop).unwrap().unwrap().topic, "users");
    let wrong = parse_statement("DROP STREAM users").unwrap();
    let e = c.plan_drop(&wrong).unwrap_err().to_string();
    assert!(e.contains("USERS is a TABLE, not a STREAM"), "{e}");
    assert_eq!(
        c.plan_drop(&parse_statement("DROP STREAM IF EXISTS nope").unwrap())
            .unwrap(),
        None
    );
}

#[test]
fn mistakes_are_refused_with_where_they_are() {
    let mut c = Catalog::default();
    let cases = [
        ("CREATE STREAM s (a INT) WITH (VALUE_FORMAT='JSON')", "needs the topic it reads"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s')", "needs VALUE_FORMAT"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='AVRO')", "unknown VALUE_FORMAT AVRO"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', COLOUR='red')", "unknown property COLOUR"),
        ("CREATE STREAM s (a INT, a STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')", "column A is declared twice (first at line 1, column 18)"),
        ("CREATE STREAM s (rowtime BIGINT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')", "ROWTIME is a pseudo column"),
        ("CREATE STREAM s (k INT PRIMARY KEY) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')", "PRIMARY KEY is for tables"),
        ("CREATE TABLE t (k INT KEY, v INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON')", "declared PRIMARY KEY"),
        ("CREATE TABLE t (v INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON')", "needs a PRIMARY KEY column"),
        ("CREATE STREAM s (a INT, b INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='KAFKA')", "value: the KAFKA format carries a single column"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', TIMESTAMP='ts')", "TIMESTAMP names TS, which is not a column"),
        ("CREATE STREAM s (ts STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', TIMESTAMP='ts')", "give its TIMESTAMP_FORMAT"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=0)", "PARTITIONS=0"),
        ("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC=5, VALUE_FORMAT='JSON')", "KAFKA_TOPIC takes a quoted string"),
    ];
    for (sql, want) in cases {
        let e = create(&c, sql).unwrap_err();
        assert!(
            e.contains(want) && e.contains("line 1, column"),
            "{sql}\n{e}"
        );
    }
    let Create::Add(s) = create(
        &c,
        "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')",
    )
    .unwrap() else {
        panic!()
    };
    c.insert(s);
    let e = create(
        &c,
        "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')",
    )
    .unwrap_err();
    assert!(
        e.contains("STREAM S already exists") && e.contains("column 15"),
        "{e}"
    );
    let e = create(
        &c,
        "CREATE OR REPLACE TABLE s (a INT PRIMARY KEY) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')",
    )
    .unwrap_err();
    assert!(e.contains("already exists"), "{e}");
}
