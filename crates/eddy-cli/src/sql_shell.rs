//! `eddy sql`: a shell for the SQL engine over its REST API, in the manner of ksqlDB's CLI.
//! Statements end with `;` and may span lines; answers are printed as tables; a push
//! query's rows print as they come until its LIMIT, or Ctrl-C (which closes it on the
//! server). `SET`/`UNSET` keep properties in the shell, sent with every statement.
//! `RUN SCRIPT 'file.sql'` runs a file's statements; `eddy sql -f file.sql` runs a file
//! and exits, non-zero at the first error. History is kept in `~/.eddy_sql_history`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use eddy_sql::ast::Statement;
use serde_json::{json, Value as Json};

use crate::http_client::HttpClient;

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The SQL server (`eddy start`'s --http-addr).
    #[arg(
        long,
        short = 's',
        env = "EDDY_SQL_SERVER",
        default_value = "127.0.0.1:8088"
    )]
    pub server: String,
    /// Run the statements of this file, then exit (non-zero at the first error).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Run these statements, then exit.
    #[arg(long, short = 'e')]
    pub execute: Option<String>,
}

struct Shell {
    server: String,
    client: HttpClient,
    properties: BTreeMap<String, String>,
}

pub async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let client = HttpClient::connect(&args.server).await?;
    let mut shell = Shell {
        server: args.server.clone(),
        client,
        properties: BTreeMap::new(),
    };
    if let Some(text) = &args.execute {
        return shell.run_text(text).await;
    }
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
        return shell.run_text(&text).await;
    }
    shell.interactive().await
}

impl Shell {
    async fn interactive(&mut self) -> anyhow::Result<()> {
        use rustyline::error::ReadlineError;
        let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".eddy_sql_history"));
        let mut editor = rustyline::DefaultEditor::new()?;
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        println!(
            "eddy sql — connected to {}. Statements end with ';'. Ctrl-D quits.",
            self.server
        );
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "eddy> "
            } else {
                "   ...> "
            };
            let (ed, line) = tokio::task::spawn_blocking(move || {
                let line = editor.readline(prompt);
                (editor, line)
            })
            .await?;
            editor = ed;
            match line {
                Ok(line) => {
                    let trimmed = line.trim();
                    if buffer.is_empty()
                        && matches!(trimmed.to_ascii_lowercase().as_str(), "exit" | "quit")
                    {
                        break;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if !complete(&buffer) {
                        continue;
                    }
                    let text = std::mem::take(&mut buffer);
                    let _ = editor.add_history_entry(text.trim());
                    if let Err(e) = self.run_text(&text).await {
                        println!("{e:#}");
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        Ok(())
    }

    /// Runs every statement of `text` in order; stops at the first error.
    async fn run_text(&mut self, text: &str) -> anyhow::Result<()> {
        let statements = eddy_sql::parse_with_text(text).map_err(|e| anyhow!("{e}"))?;
        for (statement, own) in statements {
            self.run_statement(&statement, &own).await?;
        }
        Ok(())
    }

    async fn run_statement(&mut self, statement: &Statement, text: &str) -> anyhow::Result<()> {
        match statement {
            Statement::RunScript { path } => {
                let script = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("RUN SCRIPT: cannot read {path}: {e}"))?;
                Box::pin(self.run_text(&script)).await
            }
            Statement::Set { name, value } => {
                self.properties.insert(name.clone(), value.clone());
                println!("Successfully changed local property '{name}' to '{value}'.");
                Ok(())
            }
            Statement::Unset { name } => {
                match self.properties.remove(name) {
                    Some(old) => {
                        println!("Successfully unset local property '{name}' (value was '{old}').")
                    }
                    None => println!("Local property '{name}' was not set."),
                }
                Ok(())
            }
            Statement::Query(q) => self.query(text, q.emit.is_some()).await,
            _ => {
                let body =
                    json!({"ksql": format!("{text};"), "streamsProperties": self.properties});
                let (status, answer) = self.client.post_json("/ksql", &body).await?;
                if status != 200 {
                    bail!("{}", error_message(&answer));
                }
                for entity in answer.as_array().into_iter().flatten() {
                    print_entity(entity);
                }
                Ok(())
            }
        }
    }

    async fn query(&mut self, text: &str, push: bool) -> anyhow::Result<()> {
        let body = json!({"sql": format!("{text};"), "properties": self.properties});
        let (status, mut lines) = self.client.post("/query-stream", &body).await?;
        if status != 200 {
            let bytes = lines.rest().await?;
            let answer: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
            bail!("{}", error_message(&answer));
        }
        let header: Json = serde_json::from_str(&lines.next_line().await?.unwrap_or_default())?;
        let names: Vec<String> = header["columnNames"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n.as_str().unwrap_or_default().to_owned())
            .collect();
        if !push {
            let mut rows = Vec::new();
            while let Some(line) = lines.next_line().await? {
                if let Ok(Json::Array(values)) = serde_json::from_str::<Json>(&line) {
                    rows.push(values.iter().map(cell).collect());
                }
            }
            print_table(&names, &rows);
            println!("Query terminated");
            return Ok(());
        }
        // A push query: rows as they come, widths from the header.
        let widths: Vec<usize> = names.iter().map(|n| n.len().max(12)).collect();
        println!("{}", rule(&widths));
        println!("{}", line_of(&names, &widths));
        println!("{}", rule(&widths));
        let query_id = header["queryId"].as_str().unwrap_or_default().to_owned();
        loop {
            tokio::select! {
                line = lines.next_line() => match line? {
                    Some(line) => {
                        let Ok(parsed) = serde_json::from_str::<Json>(&line) else { continue };
                        match parsed {
                            Json::Array(values) => {
                                let cells: Vec<String> = values.iter().map(cell).collect();
                                println!("{}", line_of(&cells, &widths));
                            }
                            other => println!("{}", error_message(&other)),
                        }
                    }
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => {
                    let mut control = HttpClient::connect(&self.server).await?;
                    let _ = control.post_json("/close-query", &json!({"queryId": query_id})).await;
                    break;
                }
            }
        }
        println!("Query terminated");
        // The streaming connection may still be draining: start a fresh one.
        self.client = HttpClient::connect(&self.server).await?;
        Ok(())
    }
}

/// Whether `buffer` holds whole statements: it ends with `;` outside quotes and comments.
fn complete(buffer: &str) -> bool {
    let (mut quote, mut last) = (None::<char>, None);
    let mut chars = buffer.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '-' if chars.peek() == Some(&'-') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                    continue;
                }
                c if c.is_whitespace() => continue,
                _ => {}
            },
        }
        last = Some(c);
    }
    quote.is_none() && last == Some(';')
}

fn error_message(answer: &Json) -> String {
    answer["message"]
        .as_str()
        .map_or_else(|| answer.to_string(), str::to_owned)
}

fn cell(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rule(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
    }
    s
}

fn line_of(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::from("|");
    for (c, w) in cells.iter().zip(widths) {
        s.push_str(&format!(" {c:<w$} |"));
    }
    s
}

fn print_table(headers: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(String::len).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    println!("{}", rule(&widths));
    println!("{}", line_of(headers, &widths));
    println!("{}", rule(&widths));
    for row in rows {
        println!("{}", line_of(row, &widths));
    }
    println!("{}", rule(&widths));
}

fn strings(values: &[&Json]) -> Vec<String> {
    values.iter().map(|v| cell(v)).collect()
}

fn print_entity(entity: &Json) {
    let list = |field: &str| entity[field].as_array().cloned().unwrap_or_default();
    let h = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match entity["@type"].as_str().unwrap_or_default() {
        "currentStatus" => print_table(
            &h(&["Message"]),
            &[vec![cell(&entity["commandStatus"]["message"])]],
        ),
        t @ ("streams" | "tables") => {
            let title = if t == "streams" {
                "Stream Name"
            } else {
                "Table Name"
            };
            let rows: Vec<Vec<String>> = list(t)
                .iter()
                .map(|s| {
                    strings(&[
                        &s["name"],
                        &s["topic"],
                        &s["keyFormat"],
                        &s["valueFormat"],
                        &s["isWindowed"],
                    ])
                })
                .collect();
            print_table(
                &h(&[
                    title,
                    "Kafka Topic",
                    "Key Format",
                    "Value Format",
                    "Windowed",
                ]),
                &rows,
            );
        }
        "queries" => {
            let rows: Vec<Vec<String>> = list("queries")
                .iter()
                .map(|q| {
                    strings(&[
                        &q["id"],
                        &q["queryType"],
                        &q["state"],
                        &q["sinks"][0],
                        &q["sinkKafkaTopics"][0],
                        &q["queryString"],
                    ])
                })
                .collect();
            print_table(
                &h(&[
                    "Query ID",
                    "Query Type",
                    "Status",
                    "Sink Name",
                    "Sink Kafka Topic",
                    "Query String",
                ]),
                &rows,
            );
        }
        "kafka_topics" => {
            let rows: Vec<Vec<String>> = list("topics")
                .iter()
                .map(|t| {
                    let replicas = t["replicaInfo"].as_array().cloned().unwrap_or_default();
                    vec![
                        cell(&t["name"]),
                        replicas.len().to_string(),
                        replicas.iter().map(cell).collect::<Vec<_>>().join(" "),
                    ]
                })
                .collect();
            print_table(
                &h(&["Kafka Topic", "Partitions", "Partition Replicas"]),
                &rows,
            );
        }
        "properties" => {
            let rows: Vec<Vec<String>> = list("properties")
                .iter()
                .map(|p| strings(&[&p["name"], &p["scope"], &p["value"]]))
                .collect();
            print_table(&h(&["Property", "Scope", "Value"]), &rows);
        }
        "function_names" => {
            let rows: Vec<Vec<String>> = list("functions")
                .iter()
                .map(|f| strings(&[&f["name"], &f["type"]]))
                .collect();
            print_table(&h(&["Function Name", "Type"]), &rows);
        }
        "sourceDescription" => print_source(&entity["sourceDescription"]),
        "source_descriptions" => list("sourceDescriptions").iter().for_each(print_source),
        "queryDescription" => {
            let q = &entity["queryDescription"];
            println!("ID                   : {}", cell(&q["id"]));
            println!("Query type           : {}", cell(&q["queryType"]));
            println!("SQL                  : {}", cell(&q["statementText"]));
            println!("State                : {}", cell(&q["state"]));
            print_fields(&q["fields"]);
            println!(
                "Sources that this query reads from: {}",
                cell(&q["sources"])
            );
            println!("Sinks that this query writes to: {}", cell(&q["sinks"]));
            println!("\nExecution plan\n--------------\n{}", cell(&q["topology"]));
        }
        _ => println!(
            "{}",
            serde_json::to_string_pretty(entity).unwrap_or_default()
        ),
    }
}

fn print_fields(fields: &Json) {
    let rows: Vec<Vec<String>> = fields
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut t = cell(&f["schema"]["type"]);
            match f["type"].as_str() {
                Some("KEY") => t.push_str(" (key)"),
                Some("PRIMARY") => t.push_str(" (primary key)"),
                _ => {}
            }
            vec![cell(&f["name"]), t]
        })
        .collect();
    print_table(&["Field".to_owned(), "Type".to_owned()], &rows);
}

fn print_source(s: &Json) {
    println!("Name                 : {}", cell(&s["name"]));
    println!("Type                 : {}", cell(&s["type"]));
    println!(
        "Kafka topic          : {} (partitions: {})",
        cell(&s["topic"]),
        cell(&s["partitions"])
    );
    println!("Key format           : {}", cell(&s["keyFormat"]));
    println!("Value format         : {}", cell(&s["valueFormat"]));
    print_fields(&s["fields"]);
    let ids = |f: &str| {
        s[f].as_array()
            .into_iter()
            .flatten()
            .map(|q| cell(&q["id"]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "Queries that read from this source : {}",
        ids("readQueries")
    );
    println!(
        "Queries that write into this source: {}",
        ids("writeQueries")
    );
}

#[cfg(test)]
mod tests {
    use super::complete;

    #[test]
    fn a_statement_is_complete_at_a_semicolon_outside_quotes_and_comments() {
        assert!(complete("SHOW STREAMS;"));
        assert!(complete("SELECT *\nFROM t;\n  "));
        assert!(!complete("SELECT 'a;"));
        assert!(!complete("SELECT 'a;' FROM t"));
        assert!(complete("SELECT 'a;' FROM t;"));
        assert!(!complete("SHOW STREAMS -- the end;"));
        assert!(complete("SHOW STREAMS; -- done"));
    }
}
