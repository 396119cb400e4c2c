//! Shared by the integration tests: they run against the broker named in
//! `EDDY_TEST_BOOTSTRAP` (the test script starts Eddy and sets it), and skip without it.

#![allow(dead_code)] // each test binary uses a different part

use eddy_client::{Admin, Client, ClientConfig, NewTopic};

/// The broker to test against, or `None` (with a note on stderr) to skip.
pub fn bootstrap(test: &str) -> Option<String> {
    match std::env::var("EDDY_TEST_BOOTSTRAP") {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            eprintln!("skipping {test}: EDDY_TEST_BOOTSTRAP is not set");
            None
        }
    }
}

pub async fn client(bootstrap: &str) -> Client {
    Client::connect(ClientConfig::new(bootstrap))
        .await
        .expect("connect to the test broker")
}

/// A topic name no other test run uses.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}-{}", std::process::id())
}

pub async fn create_topic(client: &Client, prefix: &str, partitions: i32) -> String {
    let name = unique_topic(prefix);
    Admin::new(client.clone())
        .create_topics(&[NewTopic::new(&name, partitions)])
        .await
        .expect("create the test topic");
    name
}
