//! The parser over statements as ksqlDB's documentation writes them, and its errors: each
//! names the problem and where it is.

use eddy_sql::ast::*;
use eddy_sql::{parse, parse_statement};

fn ok(sql: &str) -> Statement {
    parse_statement(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"))
}

fn err(sql: &str) -> String {
    match parse_statement(sql) {
        Ok(s) => panic!("{sql} parsed: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn create_stream_and_table_with_columns_and_properties() {
    let s = ok("CREATE STREAM pageviews (viewtime BIGINT, user_id VARCHAR KEY, page_id STRING, \
                tags ARRAY<STRING>, props MAP<STRING, DOUBLE>, addr STRUCT<street STRING, zip INT>, \
                price DECIMAL(10, 2)) \
                WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=4, TIMESTAMP='viewtime');");
    let Statement::CreateSource {
        kind,
        name,
        columns,
        properties,
        ..
    } = s
    else {
        panic!()
    };
    assert_eq!(kind, SourceKind::Stream);
    assert_eq!(name.name, "PAGEVIEWS");
    assert_eq!(columns.len(), 7);
    assert!(columns[1].key && columns[1].name.name == "USER_ID");
    assert_eq!(columns[3].ty, SqlType::Array(Box::new(SqlType::String)));
    assert_eq!(
        columns[5].ty,
        SqlType::Struct(vec![
            ("STREET".into(), SqlType::String),
            ("ZIP".into(), SqlType::Int)
        ])
    );
    assert_eq!(
        columns[6].ty,
        SqlType::Decimal {
            precision: 10,
            scale: 2
        }
    );
    assert_eq!(properties[2].value, Literal::Int(4));
    assert_eq!(properties[0].value, Literal::String("pageviews".into()));

    let s = ok(
        "CREATE TABLE IF NOT EXISTS users (id STRING PRIMARY KEY, `Name` STRING) \
                WITH (kafka_topic='users', value_format='json')",
    );
    let Statement::CreateSource {
        kind,
        if_not_exists,
        columns,
        ..
    } = s
    else {
        panic!()
    };
    assert_eq!(kind, SourceKind::Table);
    assert!(if_not_exists && columns[0].primary_key);
    assert_eq!(columns[1].name.name, "Name", "quoted names keep their case");
}

#[test]
fn persistent_queries_with_windows_joins_and_emit() {
    let s = ok("CREATE TABLE pageviews_per_region AS \
                SELECT regionid, COUNT(*) AS cnt, WINDOWSTART AS ws \
                FROM pageviews_enriched \
                WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 30 SECONDS) \
                WHERE regionid IS NOT NULL AND viewtime BETWEEN 0 AND 100 \
                GROUP BY regionid HAVING COUNT(*) > 1 EMIT CHANGES;");
    let Statement::CreateAsSelect { kind, query, .. } = s else {
        panic!()
    };
    assert_eq!(kind, SourceKind::Table);
    assert_eq!(
        query.window,
        Some(WindowSpec::Tumbling {
            size_ms: 60_000,
            retention_ms: None,
            grace_ms: Some(30_000)
        })
    );
    assert_eq!(query.group_by.len(), 1);
    assert!(query.having.is_some());
    assert_eq!(query.emit, Some(Emit::Changes));
    let SelectItem::Expr { expr, alias } = &query.select[1] else {
        panic!()
    };
    assert!(
        matches!(&expr.kind, ExprKind::Function { name, star: true, .. } if name.name == "COUNT")
    );
    assert_eq!(alias.as_ref().unwrap().name, "CNT");

    let s = ok("CREATE STREAM shipped AS SELECT o.id, s.warehouse FROM orders o \
                LEFT JOIN shipments s WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 10 MINUTES ON o.id = s.order_id \
                FULL OUTER JOIN returns AS r WITHIN 1 DAY ON o.id = r.order_id \
                PARTITION BY s.warehouse EMIT CHANGES");
    let Statement::CreateAsSelect { query, .. } = s else {
        panic!()
    };
    assert_eq!(query.from.source.alias.as_ref().unwrap().name, "O");
    assert_eq!(query.from.joins.len(), 2);
    assert_eq!(query.from.joins[0].kind, JoinKind::Left);
    assert_eq!(
        query.from.joins[0].within,
        Some(Within {
            before_ms: 3_600_000,
            after_ms: 7_200_000,
            grace_ms: Some(600_000)
        })
    );
    assert_eq!(query.from.joins[1].kind, JoinKind::Full);
    assert_eq!(query.partition_by.len(), 1);

    for (sql, want) in [
        (
            "SELECT * FROM s WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS) GROUP BY k EMIT FINAL",
            WindowSpec::Hopping { size_ms: 30_000, advance_ms: 10_000, retention_ms: None, grace_ms: None },
        ),
        (
            "SELECT * FROM s WINDOW SESSION (5 MINUTES, RETENTION 1 DAY) GROUP BY k",
            WindowSpec::Session { gap_ms: 300_000, retention_ms: Some(86_400_000), grace_ms: None },
        ),
    ] {
        let Statement::Query(q) = ok(sql) else { panic!() };
        assert_eq!(q.window, Some(want), "{sql}");
    }
}

#[test]
fn expressions_bind_as_sql_does() {
    let Statement::Query(q) = ok("SELECT a + b * c - d, NOT x = 1 OR y AND z, \
        CASE WHEN a > 1 THEN 'big' ELSE 'small' END, CAST(a AS DOUBLE), s->f[0], m['k'], \
        a NOT IN (1, 2), name NOT LIKE 'a%', -5, ARRAY[1, 2], MAP('a' := 1), \
        STRUCT(f := 1), COUNT(DISTINCT u), x || y FROM t WHERE ROWTIME > 0 LIMIT 10")
    else {
        panic!()
    };
    assert_eq!(q.limit, Some(10));
    let exprs: Vec<&Expr> = q
        .select
        .iter()
        .map(|s| match s {
            SelectItem::Expr { expr, .. } => expr,
            _ => panic!(),
        })
        .collect();
    // (a + (b * c)) - d
    let ExprKind::Binary {
        op: BinaryOp::Sub,
        left,
        ..
    } = &exprs[0].kind
    else {
        panic!("{:?}", exprs[0])
    };
    let ExprKind::Binary {
        op: BinaryOp::Add,
        right,
        ..
    } = &left.kind
    else {
        panic!()
    };
    assert!(matches!(
        right.kind,
        ExprKind::Binary {
            op: BinaryOp::Mul,
            ..
        }
    ));
    // (NOT (x = 1)) OR (y AND z)
    let ExprKind::Binary {
        op: BinaryOp::Or,
        left,
        right,
    } = &exprs[1].kind
    else {
        panic!()
    };
    assert!(matches!(
        left.kind,
        ExprKind::Unary {
            op: UnaryOp::Not,
            ..
        }
    ));
    assert!(matches!(
        right.kind,
        ExprKind::Binary {
            op: BinaryOp::And,
            ..
        }
    ));
    assert!(matches!(exprs[2].kind, ExprKind::Case { .. }));
    assert!(matches!(
        exprs[3].kind,
        ExprKind::Cast {
            ty: SqlType::Double,
            ..
        }
    ));
    assert!(matches!(exprs[4].kind, ExprKind::Subscript { .. }));
    assert!(matches!(
        exprs[6].kind,
        ExprKind::InList { negated: true, .. }
    ));
    assert!(matches!(
        exprs[7].kind,
        ExprKind::Like { negated: true, .. }
    ));
    assert_eq!(exprs[8].kind, ExprKind::Literal(Literal::Int(-5)));
    assert!(matches!(
        &exprs[12].kind,
        ExprKind::Function { distinct: true, .. }
    ));
    assert!(matches!(
        exprs[13].kind,
        ExprKind::Binary {
            op: BinaryOp::Concat,
            ..
        }
    ));
}

#[test]
fn the_other_statements() {
    assert!(matches!(
        ok("INSERT INTO s (a, b) VALUES (1, 'x')"),
        Statement::InsertValues { .. }
    ));
    assert!(matches!(
        ok("INSERT INTO s SELECT * FROM t EMIT CHANGES"),
        Statement::InsertSelect { .. }
    ));
    assert!(matches!(
        ok("DROP TABLE IF EXISTS t DELETE TOPIC"),
        Statement::Drop {
            kind: SourceKind::Table,
            if_exists: true,
            delete_topic: true,
            ..
        }
    ));
    assert_eq!(
        ok("SHOW STREAMS EXTENDED"),
        Statement::Show {
            what: ShowKind::Streams,
            extended: true
        }
    );
    assert_eq!(
        ok("list topics"),
        Statement::Show {
            what: ShowKind::Topics,
            extended: false
        }
    );
    assert!(matches!(
        ok("DESCRIBE EXTENDED pageviews"),
        Statement::Describe { extended: true, .. }
    ));
    assert!(matches!(
        ok("DESCRIBE STREAMS"),
        Statement::Describe {
            target: DescribeTarget::Streams,
            ..
        }
    ));
    assert!(matches!(
        ok("EXPLAIN CTAS_T_1"),
        Statement::Explain(ExplainTarget::QueryId(_))
    ));
    assert!(matches!(
        ok("EXPLAIN SELECT * FROM t"),
        Statement::Explain(ExplainTarget::Statement(_))
    ));
    assert_eq!(ok("TERMINATE ALL"), Statement::Terminate { query: None });
    assert_eq!(
        ok("SET 'auto.offset.reset' = 'earliest'"),
        Statement::Set {
            name: "auto.offset.reset".into(),
            value: "earliest".into()
        }
    );
    assert_eq!(
        ok("UNSET 'auto.offset.reset'"),
        Statement::Unset {
            name: "auto.offset.reset".into()
        }
    );
    assert_eq!(
        ok("RUN SCRIPT 'x.sql'"),
        Statement::RunScript {
            path: "x.sql".into()
        }
    );
    let many = parse("SHOW TABLES; -- a comment\n/* and another */ SHOW QUERIES;;").unwrap();
    assert_eq!(many.len(), 2);
}

#[test]
fn errors_name_the_problem_and_where_it_is() {
    let e = err("CREATE STREAM s (a INT, b FLOAT) WITH (kafka_topic='t')");
    assert!(
        e.contains("line 1, column 27") && e.contains("unknown type FLOAT"),
        "{e}"
    );
    let e = err("SELECT a,\n  FROM t");
    assert!(
        e.contains("line 2, column 3") && e.contains("expected an expression, found FROM"),
        "{e}"
    );
    let e = err("SELECT * FROM t WINDOW TUMBLING (ADVANCE BY 1 SECOND)");
    assert!(
        e.contains("a TUMBLING window needs SIZE") && e.contains("column 24"),
        "{e}"
    );
    let e = err("SELECT * FROM t EMIT SOON");
    assert!(
        e.contains("expected CHANGES or FINAL after EMIT, found SOON"),
        "{e}"
    );
    let e = err("SELECT 'unclosed FROM t");
    assert!(e.contains("column 8") && e.contains("never closed"), "{e}");
    let e = err("CREAT STREAM s");
    assert!(e.contains("CREAT does not start a statement"), "{e}");
    let e = err("SELECT * FROM a JOIN b WITHIN 5 FORTNIGHTS ON a.x = b.x");
    assert!(
        e.contains("expected a time unit") && e.contains("FORTNIGHTS"),
        "{e}"
    );
    let e = err("SHOW TABLES SHOW STREAMS");
    assert!(e.contains("column 13"), "{e}");
    let e = err("CREATE STREAM s (a INT) AS SELECT * FROM t");
    assert!(e.contains("drop the column list"), "{e}");
}

mod robustness {
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "(",
        ")",
        ",",
        "*",
        "'x'",
        "`q`",
        "1",
        "2.5",
        "-",
        "+",
        "->",
        "[",
        "]",
        "CASE",
        "WHEN",
        "THEN",
        "END",
        "CAST",
        "AS",
        "INT",
        "ARRAY",
        "<",
        ">",
        "MAP",
        "STRUCT",
        ":=",
        "WINDOW",
        "TUMBLING",
        "SIZE",
        "1 SECOND",
        "JOIN",
        "WITHIN",
        "ON",
        "GROUP BY",
        "EMIT CHANGES",
        "CREATE",
        "STREAM",
        "TABLE",
        "WITH",
        "=",
        "a",
        "b.c",
        ";",
        "NOT",
        "IN",
        "BETWEEN",
        "AND",
        "OR",
        "LIKE",
        "IS NULL",
        "INSERT INTO",
        "VALUES",
        "/*",
        "--",
        "\n",
        "'",
        "\"",
    ];

    proptest! {
        /// Any sequence of SQL-looking pieces parses or fails with a position inside the
        /// text; it never panics.
        #[test]
        fn never_panics_and_errors_point_into_the_text(
            picks in proptest::collection::vec(0..PIECES.len(), 0..40)
        ) {
            let text: String = picks.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join(" ");
            if let Err(e) = eddy_sql::parse(&text) {
                prop_assert!(e.pos.offset <= text.len(), "{e} for {text:?}");
                prop_assert!(e.pos.line >= 1 && e.pos.column >= 1);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = eddy_sql::parse(&text);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for text in [
        format!(
            "SELECT {}1{} FROM t",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("SELECT {}1 FROM t", "- ".repeat(100_000)),
        format!("SELECT {}TRUE FROM t", "NOT ".repeat(100_000)),
        format!(
            "SELECT {}1{} FROM t",
            "ARRAY[".repeat(50_000),
            "]".repeat(50_000)
        ),
    ] {
        let e = parse_statement(&text).unwrap_err();
        assert!(e.message.contains("nested more than"), "{e}");
    }
}
