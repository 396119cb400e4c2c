//! Expressions checked against a row's columns and computed: SQL's operators with NULLs,
//! the scalar functions, and type errors that say where they are.

use eddy_sql::ast::{SelectItem, Statement};
use eddy_sql::expr::{compile, Scope, ScopeColumn};
use eddy_sql::parse_statement;
use eddy_sql::value::{Type, Value};

fn scope() -> Scope {
    let col = |q: &str, n: &str, ty: Type| ScopeColumn {
        qualifier: Some(q.into()),
        name: n.into(),
        ty,
    };
    Scope {
        columns: vec![
            col("T", "I", Type::Int),
            col("T", "B", Type::Bigint),
            col("T", "D", Type::Double),
            col("T", "S", Type::String),
            col("T", "N", Type::String),
            col("T", "P", Type::Decimal(6, 2)),
            col("T", "A", Type::Array(Box::new(Type::String))),
            col(
                "T",
                "ST",
                Type::Struct(vec![
                    ("ZIP".into(), Type::Int),
                    ("CITY".into(), Type::String),
                ]),
            ),
            col("U", "I", Type::Int),
        ],
    }
}

fn row() -> Vec<Value> {
    vec![
        Value::Int(7),
        Value::Bigint(10_000_000_000),
        Value::Double(2.5),
        Value::String("Hello World".into()),
        Value::Null,
        Value::Decimal(12345, 2),
        Value::Array(vec![Value::String("x".into()), Value::String("y".into())]),
        Value::Struct(vec![
            ("ZIP".into(), Value::Int(94107)),
            ("CITY".into(), Value::String("SF".into())),
        ]),
        Value::Int(3),
    ]
}

fn select_expr(sql_expr: &str) -> eddy_sql::ast::Expr {
    let Statement::Query(q) = parse_statement(&format!("SELECT {sql_expr} FROM t")).unwrap() else {
        panic!()
    };
    let SelectItem::Expr { expr, .. } = q.select.into_iter().next().unwrap() else {
        panic!()
    };
    expr
}

fn eval(sql_expr: &str) -> Value {
    let c = compile(&select_expr(sql_expr), &scope()).unwrap_or_else(|e| panic!("{sql_expr}: {e}"));
    c.eval(&row())
}

fn plan_error(sql_expr: &str) -> String {
    match compile(&select_expr(sql_expr), &scope()) {
        Ok(c) => panic!("{sql_expr} compiled to {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn operators_with_sql_null_semantics() {
    assert_eq!(eval("T.I + 1"), Value::Int(8));
    assert_eq!(eval("T.I * B"), Value::Bigint(70_000_000_000));
    assert_eq!(eval("T.I / 2"), Value::Int(3));
    assert_eq!(eval("T.I % 4"), Value::Int(3));
    assert_eq!(eval("T.I / 0"), Value::Null, "division by zero is NULL");
    assert_eq!(eval("D * 2"), Value::Double(5.0));
    assert_eq!(eval("P + 1"), Value::Decimal(12445, 2));
    assert_eq!(eval("P * 2"), Value::Decimal(24690, 2));
    assert_eq!(eval("T.I > 5 AND D < 3"), Value::Boolean(true));
    assert_eq!(eval("N = 'x'"), Value::Null);
    assert_eq!(eval("N = 'x' AND FALSE"), Value::Boolean(false));
    assert_eq!(eval("N = 'x' OR TRUE"), Value::Boolean(true));
    assert_eq!(eval("NOT (N = 'x')"), Value::Null);
    assert_eq!(eval("N IS NULL"), Value::Boolean(true));
    assert_eq!(eval("S IS NOT NULL"), Value::Boolean(true));
    assert_eq!(eval("T.I BETWEEN 1 AND 7"), Value::Boolean(true));
    assert_eq!(eval("T.I NOT BETWEEN 1 AND 7"), Value::Boolean(false));
    assert_eq!(eval("T.I IN (1, 7, 9)"), Value::Boolean(true));
    assert_eq!(eval("S LIKE 'Hello%'"), Value::Boolean(true));
    assert_eq!(eval("S LIKE 'H_llo W%d'"), Value::Boolean(true));
    assert_eq!(eval("S LIKE 'hello%'"), Value::Boolean(false));
    assert_eq!(eval("'50%' LIKE '50!%' ESCAPE '!'"), Value::Boolean(true));
    assert_eq!(eval("S || '!'"), Value::String("Hello World!".into()));
    assert_eq!(eval("S + '?'"), Value::String("Hello World?".into()));
    assert_eq!(
        eval("CASE WHEN T.I > 10 THEN 'big' WHEN T.I > 5 THEN 'mid' ELSE 'small' END"),
        Value::String("mid".into())
    );
    assert_eq!(eval("CASE T.I WHEN 7 THEN 1 ELSE 2 END"), Value::Int(1));
    assert_eq!(eval("CASE WHEN FALSE THEN 1 END"), Value::Null);
    assert_eq!(eval("CAST(T.I AS STRING)"), Value::String("7".into()));
    assert_eq!(eval("CAST('42' AS BIGINT)"), Value::Bigint(42));
    assert_eq!(eval("CAST('x' AS INT)"), Value::Null);
    assert_eq!(eval("CAST(D AS DECIMAL(4, 1))"), Value::Decimal(25, 1));
    assert_eq!(eval("CAST(P AS DOUBLE)"), Value::Double(123.45));
    assert_eq!(
        eval("A[1]"),
        Value::String("x".into()),
        "arrays count from 1"
    );
    assert_eq!(eval("A[-1]"), Value::String("y".into()));
    assert_eq!(eval("A[5]"), Value::Null);
    assert_eq!(eval("ST->CITY"), Value::String("SF".into()));
    assert_eq!(eval("MAP('k' := 1)['k']"), Value::Int(1));
    assert_eq!(eval("ARRAY[1, 2, 3][2]"), Value::Int(2));
    assert_eq!(eval("U.I - T.I"), Value::Int(-4));
}

#[test]
fn scalar_functions() {
    assert_eq!(eval("UCASE(S)"), Value::String("HELLO WORLD".into()));
    assert_eq!(eval("LCASE(S)"), Value::String("hello world".into()));
    assert_eq!(eval("LEN(S)"), Value::Int(11));
    assert_eq!(eval("SUBSTRING(S, 7)"), Value::String("World".into()));
    assert_eq!(eval("SUBSTRING(S, 1, 5)"), Value::String("Hello".into()));
    assert_eq!(eval("SUBSTRING(S, -5, 3)"), Value::String("Wor".into()));
    assert_eq!(
        eval("CONCAT(S, N, '!')"),
        Value::String("Hello World!".into())
    );
    assert_eq!(eval("TRIM('  x  ')"), Value::String("x".into()));
    assert_eq!(
        eval("REPLACE(S, 'World', 'Eddy')"),
        Value::String("Hello Eddy".into())
    );
    assert_eq!(eval("INSTR(S, 'World')"), Value::Int(7));
    assert_eq!(eval("LPAD('7', 3, '0')"), Value::String("007".into()));
    assert_eq!(eval("ABS(-3)"), Value::Int(3));
    assert_eq!(eval("ROUND(D)"), Value::Bigint(3));
    assert_eq!(eval("ROUND(P, 1)"), Value::Decimal(12350, 2));
    assert_eq!(eval("FLOOR(P)"), Value::Decimal(12300, 2));
    assert_eq!(eval("CEIL(P)"), Value::Decimal(12400, 2));
    assert_eq!(eval("SQRT(16)"), Value::Double(4.0));
    assert_eq!(eval("COALESCE(N, S)"), Value::String("Hello World".into()));
    assert_eq!(eval("IFNULL(N, 'none')"), Value::String("none".into()));
    assert_eq!(eval("NULLIF(T.I, 7)"), Value::Null);
    assert_eq!(eval("UCASE(N)"), Value::Null, "NULL in, NULL out");
}

#[test]
fn type_errors_say_what_and_where() {
    let e = plan_error("S + 1");
    assert!(
        e.contains("arithmetic needs numbers, not a STRING") && e.contains("column 8"),
        "{e}"
    );
    let e = plan_error("T.I = 'x'");
    assert!(
        e.contains("cannot compare a INTEGER with a STRING") && e.contains("column 14"),
        "{e}"
    );
    let e = plan_error("I");
    assert!(e.contains("column I is ambiguous"), "{e}");
    let e = plan_error("NOPE + 1");
    assert!(
        e.contains("column NOPE cannot be resolved; the columns are T.I"),
        "{e}"
    );
    let e = plan_error("ST->ZZ");
    assert!(e.contains("no field ZZ; its fields are ZIP, CITY"), "{e}");
    let e = plan_error("UCASE(T.I)");
    assert!(
        e.contains("argument 1 of UCASE must be a STRING, not a INTEGER"),
        "{e}"
    );
    let e = plan_error("FROBNICATE(S)");
    assert!(e.contains("unknown function FROBNICATE"), "{e}");
    let e = plan_error("COUNT(*)");
    assert!(e.contains("COUNT is an aggregate function"), "{e}");
    let e = plan_error("S AND TRUE");
    assert!(e.contains("AND needs a BOOLEAN, not a STRING"), "{e}");
    let e = plan_error("CAST(A AS INT)");
    assert!(e.contains("cannot CAST ARRAY<STRING> to INTEGER"), "{e}");
    let e = plan_error("SUBSTRING(S)");
    assert!(e.contains("SUBSTRING takes 2 to 3 arguments, not 1"), "{e}");
}
