//! `eddy topic ...`: topic administration.

use std::io::Write;

use anyhow::Context;
use eddy_client::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, NewTopic};

use crate::{parse_key_value, BootstrapArgs};

#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions (the broker's num.partitions when omitted).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replication factor (the broker's default.replication.factor when omitted).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List topics with their partition counts.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show a topic's partitions (leader, replicas, offsets) and configs.
    Describe {
        name: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a topic.
    Delete {
        name: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Set or reset topic configs; keys not named are left as they are.
    AlterConfig {
        name: String,
        /// Set a config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Reset a config to its default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

pub async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let topic = NewTopic {
                name: name.clone(),
                partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                configs,
            };
            admin.create_topics(&[topic]).await?;
            println!("created topic {name}");
        }
        TopicCommand::List { bootstrap } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let mut out = std::io::stdout().lock();
            for topic in admin.list_topics().await? {
                writeln!(out, "{}\t{}", topic.name, topic.partitions.len())?;
            }
        }
        TopicCommand::Describe { name, bootstrap } => {
            let admin = Admin::new(bootstrap.connect().await?);
            describe(&admin, &name).await?;
        }
        TopicCommand::Delete { name, bootstrap } => {
            let admin = Admin::new(bootstrap.connect().await?);
            admin.delete_topics(&[&name]).await?;
            println!("deleted topic {name}");
        }
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            bootstrap,
        } => {
            if set.is_empty() && delete.is_empty() {
                anyhow::bail!("nothing to change\nhint: pass --set KEY=VALUE or --delete KEY");
            }
            let admin = Admin::new(bootstrap.connect().await?);
            let ops: Vec<AlterConfigOp> = set
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .chain(delete.into_iter().map(AlterConfigOp::Delete))
                .collect();
            admin
                .alter_configs(&ConfigResource::Topic(name.clone()), &ops)
                .await?;
            println!("altered {} config(s) of topic {name}", ops.len());
        }
    }
    Ok(())
}

async fn describe(admin: &Admin, name: &str) -> anyhow::Result<()> {
    let topic = admin
        .describe_topic(name)
        .await
        .with_context(|| format!("describe topic {name}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Topic: {}\tTopicId: {}\tPartitions: {}",
        topic.name,
        topic.topic_id,
        topic.partitions.len()
    )?;
    writeln!(
        out,
        "Partition\tLeader\tReplicas\tIsr\tEarliest\tLatest\tRecords"
    )?;
    for p in &topic.partitions {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            p.partition,
            p.leader,
            join(&p.replicas),
            join(&p.isr),
            p.earliest_offset,
            p.latest_offset,
            (p.latest_offset - p.earliest_offset).max(0)
        )?;
    }
    writeln!(out, "Configs:")?;
    for config in &topic.configs {
        writeln!(out, "  {}", config_line(config))?;
    }
    Ok(())
}

fn join(ids: &[i32]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

fn config_line(config: &ConfigEntry) -> String {
    let value = match (&config.value, config.is_sensitive) {
        (_, true) => "(sensitive)".to_owned(),
        (Some(v), false) => v.clone(),
        (None, false) => "(unset)".to_owned(),
    };
    let source = match config.source {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker | ConfigSource::DynamicDefaultBroker => "broker, dynamic",
        ConfigSource::StaticBroker => "broker",
        ConfigSource::Default => "default",
        ConfigSource::Other(_) => "other",
    };
    format!("{}={} ({source})", config.name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_show_value_and_source() {
        let entry = ConfigEntry {
            name: "retention.ms".into(),
            value: Some("60000".into()),
            read_only: false,
            is_sensitive: false,
            source: ConfigSource::DynamicTopic,
        };
        assert_eq!(config_line(&entry), "retention.ms=60000 (topic)");
        let secret = ConfigEntry {
            is_sensitive: true,
            source: ConfigSource::Default,
            ..entry
        };
        assert_eq!(config_line(&secret), "retention.ms=(sensitive) (default)");
    }
}
