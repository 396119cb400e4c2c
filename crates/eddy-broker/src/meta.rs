//! Durable broker metadata under `<data-dir>/meta/`: the cluster id, one
//! JSON file per topic, and the producer-id block. Every file is replaced
//! atomically (temp file, fsync, rename, fsync of the directory) so a crash
//! leaves either the old or the new version, never a torn one.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A topic as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    /// Topic-level overrides only; defaults come from the broker.
    pub configs: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterMeta {
    pub cluster_id: String,
    pub node_id: i32,
}

pub struct MetaStore {
    dir: PathBuf,
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl MetaStore {
    pub fn open(data_dir: &Path) -> std::io::Result<MetaStore> {
        let dir = data_dir.join("meta");
        fs::create_dir_all(dir.join("topics"))?;
        Ok(MetaStore { dir })
    }

    /// The cluster id, created on first start.
    pub fn cluster(&self, node_id: i32, configured_id: &str) -> std::io::Result<ClusterMeta> {
        let path = self.dir.join("cluster.json");
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(meta) = serde_json::from_slice::<ClusterMeta>(&bytes) {
                return Ok(meta);
            }
            tracing::warn!(path = %path.display(), "cluster metadata unreadable; writing a new one");
        }
        let cluster_id = if configured_id.is_empty() {
            // Kafka cluster ids are 22-char base64 of a UUID; a plain
            // simple-format UUID keeps it printable and unique.
            uuid::Uuid::new_v4().simple().to_string()[..22].to_string()
        } else {
            configured_id.to_string()
        };
        let meta = ClusterMeta {
            cluster_id,
            node_id,
        };
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?,
        )?;
        Ok(meta)
    }

    fn topic_path(&self, name: &str) -> PathBuf {
        self.dir.join("topics").join(format!("{name}.json"))
    }

    pub fn save_topic(&self, topic: &TopicMeta) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(topic).map_err(std::io::Error::other)?;
        write_atomic(&self.topic_path(&topic.name), &bytes)
    }

    pub fn delete_topic(&self, name: &str) -> std::io::Result<()> {
        fs::remove_file(self.topic_path(name))?;
        fs::File::open(self.dir.join("topics"))?.sync_all()
    }

    pub fn load_topics(&self) -> std::io::Result<Vec<TopicMeta>> {
        let mut topics = Vec::new();
        for entry in fs::read_dir(self.dir.join("topics"))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = fs::read(&path)?;
            match serde_json::from_slice::<TopicMeta>(&bytes) {
                Ok(t) => topics.push(t),
                Err(e) => {
                    return Err(std::io::Error::other(format!(
                        "topic metadata {} is unreadable: {e}",
                        path.display()
                    )))
                }
            }
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Reserves a block of producer ids: the next block's start is made
    /// durable before any id of this block is handed out, so ids are never
    /// reused across crashes.
    pub fn reserve_producer_ids(&self, block_size: i64) -> std::io::Result<i64> {
        let path = self.dir.join("producer-id-block");
        let start = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        write_atomic(&path, (start + block_size).to_string().as_bytes())?;
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_producer_ids_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let t = TopicMeta {
            name: "orders".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            internal: false,
        };
        store.save_topic(&t).unwrap();
        assert_eq!(store.load_topics().unwrap(), vec![t.clone()]);
        store.delete_topic("orders").unwrap();
        assert!(store.load_topics().unwrap().is_empty());
        assert_eq!(store.reserve_producer_ids(1000).unwrap(), 0);
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.reserve_producer_ids(1000).unwrap(), 1000);
        let c1 = store.cluster(0, "").unwrap();
        assert_eq!(store.cluster(0, "").unwrap().cluster_id, c1.cluster_id);
    }
}
