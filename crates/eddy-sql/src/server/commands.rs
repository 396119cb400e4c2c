//! The command topic: every statement that changes what runs, in the order it was
//! accepted, one partition, kept forever. A record's value is JSON: the statement's text
//! and the properties it ran with. At start the engine reads it from the beginning to its
//! end and runs each command again.

use std::collections::BTreeMap;

use eddy_client::{
    Admin, Client, Consumer, ConsumerConfig, IsolationLevel, NewTopic, OffsetSpec, Producer,
    ProducerRecord, SeekTo,
};
use serde_json::{json, Value as Json};

/// One command as read back.
#[derive(Debug, Clone)]
pub struct Command {
    pub offset: i64,
    pub statement: String,
    pub properties: BTreeMap<String, String>,
}

/// Creates the command topic unless it exists: one partition keeps the commands in order,
/// and nothing ever deletes them.
pub async fn create_topic(admin: &Admin, topic: &str) -> eddy_client::Result<()> {
    if admin.client().topic(topic).await.is_ok() {
        return Ok(());
    }
    let created = admin
        .create_topics(&[NewTopic::new(topic, 1)
            .with_config("cleanup.policy", "delete")
            .with_config("retention.ms", "-1")])
        .await;
    match created {
        Err(e) if !e.to_string().contains("TOPIC_ALREADY_EXISTS") => Err(e),
        _ => Ok(()),
    }
}

/// Appends a command; its offset once the broker acknowledged it (acks=all).
pub async fn write(
    producer: &Producer,
    topic: &str,
    statement: &str,
    properties: &BTreeMap<String, String>,
) -> eddy_client::Result<i64> {
    let value = json!({"statement": statement, "streamsProperties": properties});
    let record = ProducerRecord::new(topic, value.to_string())
        .with_key("command")
        .with_partition(0);
    let delivered = producer.send(record).await?.await?;
    Ok(delivered.offset)
}

/// Every command in the topic, in order.
pub async fn read_all(client: &Client, topic: &str) -> eddy_client::Result<Vec<Command>> {
    let admin = eddy_client::Admin::new(client.clone());
    let end = admin
        .list_offsets(topic, &[0], OffsetSpec::Latest)
        .await?
        .get(&0)
        .and_then(|o| o.offset)
        .unwrap_or(0);
    let mut out = Vec::new();
    if end == 0 {
        return Ok(out);
    }
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            fetch_max_wait_ms: 100,
            auto_offset_reset: Some(OffsetSpec::Earliest),
            isolation_level: IsolationLevel::ReadCommitted,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign(topic, Some(&[0])).await?;
    consumer.seek(topic, 0, SeekTo::Earliest).await?;
    while consumer.position(topic, 0).unwrap_or(0) < end {
        for record in consumer.poll().await? {
            let Some(value) = record.value else { continue };
            match parse(&value) {
                Some((statement, properties)) => out.push(Command {
                    offset: record.offset,
                    statement,
                    properties,
                }),
                None => tracing::warn!(
                    offset = record.offset,
                    "a record of the command topic is not a command; skipped"
                ),
            }
        }
    }
    Ok(out)
}

fn parse(value: &[u8]) -> Option<(String, BTreeMap<String, String>)> {
    let json: Json = serde_json::from_slice(value).ok()?;
    let statement = json.get("statement")?.as_str()?.to_owned();
    let properties = json
        .get("streamsProperties")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some((statement, properties))
}
