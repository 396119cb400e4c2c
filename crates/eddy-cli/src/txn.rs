//! `eddy txn ...`: transaction administration with the commands and columns of Kafka's
//! `kafka-transactions` (list, describe, describe-producers).
//!
//! The tables are built by plain functions over the admin client's answers
//! ([`list_rows`], [`describe_row`], [`producer_rows`]), so their format is tested without
//! a broker.

use std::io::Write;

use eddy_client::txn_admin::TRANSACTIONAL_ID_NOT_FOUND;
use eddy_client::{
    Admin, Error, ProducerDescription, TransactionDescription, TransactionFilter,
    TransactionListing,
};

use crate::BootstrapArgs;

#[derive(Debug, clap::Subcommand)]
pub enum TxnCommand {
    /// List transactions: transactional id, coordinator, producer id, state.
    List {
        /// Only transactions in this state (repeatable): Empty, Ongoing, PrepareCommit,
        /// PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence, Dead.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only transactions of this producer id (repeatable).
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
        /// Only transactions open for longer than this many ms.
        #[arg(long)]
        duration_filter_ms: Option<i64>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Describe one transactional id's current transaction, from its coordinator.
    Describe {
        transactional_id: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Show the producers with state on a partition (open transactions among them).
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

pub const LIST_HEADERS: &[&str] = &[
    "TransactionalId",
    "Coordinator",
    "ProducerId",
    "TransactionState",
];

pub const DESCRIBE_HEADERS: &[&str] = &[
    "CoordinatorId",
    "TransactionalId",
    "ProducerId",
    "ProducerEpoch",
    "TransactionState",
    "TransactionTimeoutMs",
    "CurrentTransactionStartTimeMs",
    "TransactionDurationMs",
    "TopicPartitions",
];

pub const PRODUCER_HEADERS: &[&str] = &[
    "ProducerId",
    "ProducerEpoch",
    "LatestCoordinatorEpoch",
    "LastSequence",
    "LastTimestamp",
    "CurrentTransactionStartOffset",
];

pub async fn run(command: TxnCommand) -> anyhow::Result<()> {
    let table = match command {
        TxnCommand::List {
            states,
            producer_ids,
            duration_filter_ms,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let filter = TransactionFilter {
                states,
                producer_ids,
                duration_min_ms: duration_filter_ms,
            };
            let listed = admin.list_transactions(&filter).await.map_err(explain)?;
            render_table(LIST_HEADERS, &list_rows(&listed))
        }
        TxnCommand::Describe {
            transactional_id,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let described = match admin.describe_transaction(&transactional_id).await {
                Err(Error::Kafka { code, .. }) if code == TRANSACTIONAL_ID_NOT_FOUND => {
                    anyhow::bail!(
                        "transactional id {transactional_id:?} is not known to its coordinator\nhint: `eddy txn list` shows the transactional ids there are"
                    )
                }
                other => other.map_err(explain)?,
            };
            render_table(DESCRIBE_HEADERS, &[describe_row(&described, now_ms())])
        }
        TxnCommand::DescribeProducers {
            topic,
            partition,
            bootstrap,
        } => {
            let admin = Admin::new(bootstrap.connect().await?);
            let producers = admin
                .describe_producers(&topic, partition)
                .await
                .map_err(explain)?;
            render_table(PRODUCER_HEADERS, &producer_rows(&producers))
        }
    };
    std::io::stdout().lock().write_all(table.as_bytes())?;
    Ok(())
}

/// A broker without the API gets a hint on top of the client's error.
fn explain(e: Error) -> anyhow::Error {
    match e {
        Error::UnsupportedApi { .. } | Error::UnsupportedVersion { .. } => anyhow::anyhow!(
            "{e}\nhint: this broker does not support transaction administration; it needs a version with transactions (Kafka 3.0+, or an Eddy with transaction support)"
        ),
        e => e.into(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn list_rows(listed: &[TransactionListing]) -> Vec<Vec<String>> {
    listed
        .iter()
        .map(|t| {
            vec![
                t.transactional_id.clone(),
                t.coordinator.to_string(),
                t.producer_id.to_string(),
                t.state.clone(),
            ]
        })
        .collect()
}

/// The describe row at `now_ms`; like `kafka-transactions`, `None` for the start time and
/// duration when no transaction is open, partitions as `topic-partition` joined by commas.
pub fn describe_row(d: &TransactionDescription, now_ms: i64) -> Vec<String> {
    let none = || "None".to_owned();
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect();
    vec![
        d.coordinator.to_string(),
        d.transactional_id.clone(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.state.clone(),
        d.timeout_ms.to_string(),
        d.start_time_ms.map_or_else(none, |ms| ms.to_string()),
        // A clock behind the coordinator's must not print a negative duration.
        d.start_time_ms
            .map_or_else(none, |ms| (now_ms - ms).max(0).to_string()),
        partitions.join(","),
    ]
}

pub fn producer_rows(producers: &[ProducerDescription]) -> Vec<Vec<String>> {
    let none = || "None".to_owned();
    producers
        .iter()
        .map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                p.coordinator_epoch.map_or_else(none, |e| e.to_string()),
                p.last_sequence.to_string(),
                p.last_timestamp_ms.to_string(),
                p.current_txn_start_offset
                    .map_or_else(none, |o| o.to_string()),
            ]
        })
        .collect()
}

/// Left-aligned columns, each as wide as its widest cell, separated by a tab-free gap
/// (cells never contain spaces, so the output splits on whitespace).
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(start_time_ms: Option<i64>) -> TransactionDescription {
        TransactionDescription {
            coordinator: 1,
            transactional_id: "copier-1".into(),
            producer_id: 4000,
            producer_epoch: 3,
            state: "Ongoing".into(),
            timeout_ms: 60_000,
            start_time_ms,
            partitions: vec![("in".into(), 0), ("out".into(), 2)],
        }
    }

    #[test]
    fn describe_prints_kafka_transactions_columns() {
        let row = describe_row(&described(Some(1_000)), 3_500);
        assert_eq!(row.len(), DESCRIBE_HEADERS.len());
        assert_eq!(
            row,
            [
                "1",
                "copier-1",
                "4000",
                "3",
                "Ongoing",
                "60000",
                "1000",
                "2500",
                "in-0,out-2"
            ]
        );
    }

    #[test]
    fn no_open_transaction_prints_none() {
        let d = TransactionDescription {
            state: "Empty".into(),
            partitions: vec![],
            ..described(None)
        };
        let row = describe_row(&d, 3_500);
        assert_eq!(&row[6..], ["None", "None", ""]);
        // A coordinator clock ahead of ours: duration 0, not negative.
        assert_eq!(describe_row(&described(Some(9_000)), 3_500)[7], "0");
    }

    #[test]
    fn list_rows_follow_the_headers() {
        let rows = list_rows(&[TransactionListing {
            transactional_id: "t".into(),
            coordinator: 1,
            producer_id: 7,
            state: "CompleteCommit".into(),
        }]);
        assert_eq!(rows, vec![vec!["t", "1", "7", "CompleteCommit"]]);
        let table = render_table(LIST_HEADERS, &rows);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], LIST_HEADERS);
        assert_eq!(lines[1], ["t", "1", "7", "CompleteCommit"]);
    }

    #[test]
    fn producer_rows_print_absent_values_as_none() {
        let rows = producer_rows(&[
            ProducerDescription {
                producer_id: 9,
                producer_epoch: 0,
                last_sequence: 41,
                last_timestamp_ms: 1_700_000_000_000,
                coordinator_epoch: None,
                current_txn_start_offset: None,
            },
            ProducerDescription {
                producer_id: 10,
                producer_epoch: 2,
                last_sequence: 4,
                last_timestamp_ms: 5,
                coordinator_epoch: Some(0),
                current_txn_start_offset: Some(120),
            },
        ]);
        assert_eq!(rows[0], ["9", "0", "None", "41", "1700000000000", "None"]);
        assert_eq!(rows[1], ["10", "2", "0", "4", "5", "120"]);
    }

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let table = render_table(&["A", "Bee"], &[vec!["long-cell".into(), "x".into()]]);
        assert_eq!(table, "A          Bee\nlong-cell  x\n");
    }
}
