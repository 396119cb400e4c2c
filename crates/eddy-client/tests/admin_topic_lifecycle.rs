//! Create, list, describe, alter and delete a topic through the admin API.

mod common;

use eddy_client::{Admin, AlterConfigOp, ConfigResource, KafkaCode, NewTopic};

#[tokio::test]
async fn admin_topic_lifecycle() {
    let Some(bootstrap) = common::bootstrap("admin_topic_lifecycle") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let admin = Admin::new(client.clone());
    let name = common::unique_topic("admin");

    let topic = NewTopic::new(&name, 3).with_config("retention.ms", "3600000");
    admin
        .create_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let again = admin.create_topics(&[topic]).await.unwrap_err();
    assert_eq!(
        again.kafka_code(),
        Some(KafkaCode::TOPIC_ALREADY_EXISTS),
        "{again}"
    );

    let listed = admin.list_topics().await.unwrap();
    let ours = listed.iter().find(|t| t.name == name).expect("listed");
    assert_eq!(ours.partitions.len(), 3);

    let described = admin.describe_topic(&name).await.unwrap();
    assert_eq!(described.partitions.len(), 3);
    for (i, p) in described.partitions.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert!(p.leader >= 0, "partition {i} has a leader");
        assert_eq!((p.earliest_offset, p.latest_offset), (0, 0));
    }
    let retention = described.configs.iter().find(|c| c.name == "retention.ms");
    assert_eq!(
        retention.and_then(|c| c.value.as_deref()),
        Some("3600000"),
        "configs: {:?}",
        described.configs
    );

    let resource = ConfigResource::Topic(name.clone());
    let set = AlterConfigOp::Set("retention.ms".into(), "7200000".into());
    admin.alter_configs(&resource, &[set]).await.unwrap();
    let configs = admin.describe_configs(&resource).await.unwrap();
    let retention = configs.iter().find(|c| c.name == "retention.ms");
    assert_eq!(retention.and_then(|c| c.value.as_deref()), Some("7200000"));

    admin.delete_topics(&[&name]).await.unwrap();
    let listed = admin.list_topics().await.unwrap();
    assert!(
        listed.iter().all(|t| t.name != name),
        "deleted topic still listed"
    );
}

#[tokio::test]
async fn unknown_topic_is_named_in_the_error() {
    let Some(bootstrap) = common::bootstrap("unknown_topic_is_named_in_the_error") else {
        return;
    };
    let client = common::client(&bootstrap).await;
    let name = common::unique_topic("missing");
    let err = Admin::new(client).describe_topic(&name).await.unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
}
