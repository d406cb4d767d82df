//! What a test reads back from Redis and Postgres: the stream, its consumer group and dead
//! letters, and the stored leads.

use super::app::TestApp;
use redis::AsyncCommands;
use serde_json::Value;
use std::collections::HashMap;

impl TestApp {
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn xlen(&self) -> u64 {
        self.redis
            .clone()
            .xlen(self.key("lead:imports"))
            .await
            .unwrap()
    }

    pub async fn pending_count(&self) -> u64 {
        let reply: Value = redis_value_json(
            redis::cmd("XPENDING")
                .arg(self.key("lead:imports"))
                .arg("lead-import-processors")
                .query_async::<redis::Value>(&mut self.redis.clone())
                .await
                .unwrap(),
        );
        reply[0].as_u64().unwrap_or(0)
    }

    /// XINFO GROUPS of the stream: one map of fields per consumer group.
    pub async fn stream_groups(&self) -> Vec<HashMap<String, redis::Value>> {
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.key("lead:imports"))
            .query_async(&mut self.redis.clone())
            .await
            .unwrap()
    }

    /// Reads up to `count` new entries as consumer `consumer`, which then "dies": they stay
    /// pending under it. Returns their ids.
    pub async fn read_as_ghost(&self, consumer: &str, count: usize) -> Vec<String> {
        let queue = self.sibling(&[("CONSUMER_NAME", consumer)]).queue;
        queue.ensure_group().await.unwrap();
        queue
            .read_new(count, std::time::Duration::ZERO)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    }

    /// Entries of the dead-letter stream, as field maps (with their ids under `id`).
    pub async fn dead_letters(&self) -> Vec<HashMap<String, String>> {
        let reply: redis::streams::StreamRangeReply = self
            .redis
            .clone()
            .xrange_all(self.key("lead:imports:dead"))
            .await
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|e| {
                let mut m: HashMap<String, String> = e
                    .map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            redis::from_redis_value_ref::<String>(v).unwrap_or_default(),
                        )
                    })
                    .collect();
                m.insert("id".into(), e.id);
                m
            })
            .collect()
    }

    pub async fn lead_count(&self, import_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM leads WHERE import_id = $1")
            .bind(import_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

fn redis_value_json(v: redis::Value) -> Value {
    match v {
        redis::Value::Int(i) => Value::from(i),
        redis::Value::Array(items) => {
            Value::Array(items.into_iter().map(redis_value_json).collect())
        }
        redis::Value::BulkString(b) => Value::from(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => Value::from(s),
        _ => Value::Null,
    }
}
