//! The SQL test corpus: every `tests/sql/*.json` file holds test cases in the shape of
//! ksqlDB's query-translation tests — statements, input records, the expected output
//! records (or the expected error, its phase and part of its message) — run here through
//! the TopologyTestDriver. Add a file to add a feature's cases.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use eddy_sql::catalog::{Catalog, Source};
use eddy_sql::format::{deserialize, serialize, Format};
use eddy_sql::value::Type;
use eddy_streams::{StreamsBuilder, TopologyTestDriver};
use serde_json::Value as Json;

fn encode(format: Format, columns: &[(String, Type)], json: &Json) -> Option<Bytes> {
    if json.is_null() || columns.is_empty() {
        return None;
    }
    // Through the JSON format into values, then into the topic's format.
    let as_json = if columns.len() == 1 && !json.is_object() {
        Format::Json { unwrapped: true }
    } else {
        Format::Json { unwrapped: false }
    };
    let text = match json {
        Json::String(s) if matches!(format, Format::Delimited) => {
            return Some(Bytes::from(s.clone()))
        }
        other => serde_json::to_vec(other).unwrap(),
    };
    let values = deserialize(as_json, columns, Some(&text)).unwrap();
    serialize(format, columns, &values)
        .unwrap()
        .map(Bytes::from)
}

fn decode(
    format: Format,
    columns: &[(String, Type)],
    bytes: Option<&[u8]>,
    unwrap_single: bool,
) -> Json {
    if columns.is_empty() {
        return Json::Null;
    }
    let Some(bytes) = bytes else {
        return Json::Null;
    };
    let values = deserialize(format, columns, Some(bytes)).unwrap();
    let as_json = Format::Json {
        unwrapped: unwrap_single && columns.len() == 1,
    };
    serde_json::from_slice(&serialize(as_json, columns, &values).unwrap().unwrap()).unwrap()
}

fn source_of<'a>(catalog: &'a Catalog, topic: &str) -> &'a Source {
    catalog
        .sources()
        .find(|s| s.topic == topic)
        .unwrap_or_else(|| panic!("no stream or table reads topic {topic}"))
}

fn run_case(file: &str, case: &Json) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let mut catalog = Catalog::default();
    let builder = StreamsBuilder::new();
    let expected_error = case.get("expectedError");
    for sql in case["statements"].as_array().expect("statements") {
        let sql = sql.as_str().expect("a statement is a string");
        let result = eddy_sql::parse_statement(sql)
            .map_err(|e| ("parse", e.to_string()))
            .and_then(|s| {
                eddy_sql::compile::apply(&mut catalog, &builder, &s)
                    .map_err(|e| ("plan", e.to_string()))
            });
        match (result, expected_error) {
            (Ok(()), _) => {}
            (Err((phase, message)), Some(want)) => {
                let (want_phase, want_message) = (
                    want["phase"].as_str().unwrap_or(""),
                    want["message"].as_str().unwrap_or(""),
                );
                if phase != want_phase || !message.contains(want_message) {
                    return Err(format!("{file} / {name}: got the {phase} error {message:?}, expected a {want_phase} error containing {want_message:?}"));
                }
                return Ok(());
            }
            (Err((phase, message)), None) => {
                return Err(format!(
                    "{file} / {name}: {phase} error: {message}\n  in {sql}"
                ))
            }
        }
    }
    if expected_error.is_some() {
        return Err(format!(
            "{file} / {name}: expected an error, every statement passed"
        ));
    }
    let topology = builder
        .build()
        .map_err(|e| format!("{file} / {name}: {e}"))?;
    let mut driver = TopologyTestDriver::new(topology);
    for input in case["inputs"].as_array().cloned().unwrap_or_default() {
        let topic = input["topic"].as_str().expect("input topic");
        let source = source_of(&catalog, topic);
        let key = encode(source.key_format, &source.key_columns, &input["key"]);
        let value = encode(source.value_format, &source.value_columns, &input["value"]);
        let ts = input["timestamp"].as_i64().unwrap_or(0);
        driver
            .pipe_raw(topic, key, value, ts)
            .map_err(|e| format!("{file} / {name}: {e}"))?;
    }
    let mut got: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut want: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for output in case["outputs"].as_array().cloned().unwrap_or_default() {
        let topic = output["topic"].as_str().expect("output topic").to_owned();
        let mut record = serde_json::json!({
            "key": output["key"], "value": output["value"], "timestamp": output["timestamp"]
        });
        if let Some(w) = output.get("window") {
            record["window"] = w.clone();
        }
        want.entry(topic).or_default().push(record);
    }
    for topic in want.keys() {
        let sink = source_of(&catalog, topic);
        let records = driver.written(topic);
        got.insert(
            topic.clone(),
            records
                .iter()
                .map(|r| {
                    // A windowed table's key: the key's bytes, then the window start (8 bytes).
                    // A session's: the key's bytes, then its end and start.
                    let size = sink.window.map(|w| w.size_ms());
                    let (key, window) = match (size, r.key.as_deref()) {
                        (Some(Some(size)), Some(k)) if k.len() >= 8 => {
                            let (inner, start) = k.split_at(k.len() - 8);
                            let start = i64::from_be_bytes(start.try_into().unwrap());
                            (Some(inner), Some(serde_json::json!({"start": start, "end": start + size})))
                        }
                        (Some(None), Some(k)) if k.len() >= 16 => {
                            let (inner, end_start) = k.split_at(k.len() - 16);
                            let end = i64::from_be_bytes(end_start[..8].try_into().unwrap());
                            let start = i64::from_be_bytes(end_start[8..].try_into().unwrap());
                            (Some(inner), Some(serde_json::json!({"start": start, "end": end})))
                        }
                        (_, k) => (k, None),
                    };
                    let mut record = serde_json::json!({
                        "key": decode(sink.key_format, &sink.key_columns, key, true),
                        "value": decode(sink.value_format, &sink.value_columns, r.value.as_deref(), false),
                        "timestamp": r.timestamp_ms,
                    });
                    if let Some(w) = window {
                        record["window"] = w;
                    }
                    record
                })
                .collect(),
        );
    }
    if got != want {
        return Err(format!(
            "{file} / {name}: outputs differ\n  got:  {}\n  want: {}",
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        ));
    }
    Ok(())
}

#[test]
fn the_sql_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let (mut cases, mut failures) = (0, Vec::new());
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for case in doc["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no \"tests\" array"))
        {
            cases += 1;
            if let Err(e) = run_case(&file, case) {
                failures.push(e);
            }
        }
    }
    assert!(cases > 0, "no cases under {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("sql corpus: {cases} cases passed");
}
