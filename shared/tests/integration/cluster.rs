//! Cluster mode (`REDIS_CLUSTER=true`) against a real Redis Cluster of three primaries, as
//! ElastiCache Serverless and cluster-mode-enabled groups present themselves: imports and
//! drains go through, every key of the service sits in the one slot of its hash tag, every
//! command path works (the scripts with their KEYS, pipelines and MULTIs, XINFO in the
//! scripts, CONFIG GET, the blocking read), the app signs in on every node as the template's
//! ACL user, and without the hash tag the cluster refuses what the service sends (CROSSSLOT),
//! which is why the app refuses such a prefix at startup.

use crate::redrive::{DEAD_ON_SECOND_DELIVERY, dead_letter_and_redrive};
use crate::support::app::TestApp;
use crate::support::cache_acl::{RotatingPassword, acl_setuser};
use crate::support::drain::scheduled_event;
use crate::support::leads::synthetic_leads;
use crate::support::private_servers::spawn_app_on_cluster;
use local_servers::RedisCluster;
use redis::Value;
use shared::app::{App, StartupError};
use shared::aws::lambda::DrainFunction;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const IMPORTS: usize = 5;
const LEADS_PER_IMPORT: usize = 240;
/// Every 17th lead has an invalid email: 14 of each import's 240 fail.
const BAD_EVERY: usize = 17;

#[tokio::test]
async fn imports_drain_through_a_three_node_cluster_with_every_key_in_one_slot() {
    // Started on this test's thread: the nodes stop when it ends.
    let cluster = RedisCluster::start().expect("a three-node redis cluster");
    // A blank prefix is cluster mode's default, {leads}.
    let mut t = spawn_app_on_cluster(&cluster, &[("REDIS_KEY_PREFIX", "")]).await;
    assert_eq!(t.prefix, "{leads}");

    // The app signs in as the template's cache user, with its access string, on every node
    // (ACL SETUSER goes to all of them).
    let _: () = acl_setuser("lead-import", "cluster-password", &t.prefix)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let password =
        RotatingPassword::new("lead-import", "cluster-password", Duration::from_secs(600));
    // The reconciler looks at every unfinished job on every invocation, so that its
    // pipelines run too.
    t.sign_in_with(password.clone(), &[("RECONCILE_AFTER_MS", "0")]);

    let ids: Vec<String> = (0..IMPORTS).map(|i| format!("cluster-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        t.post_accepted(
            id,
            &synthetic_leads(LEADS_PER_IMPORT, &format!("c{i}"), BAD_EVERY, 0),
        )
        .await;
    }
    assert!(
        password.times_asked() >= 1,
        "the app's connections signed in with the source's credentials"
    );
    // Redis loses an entry (as in a failover): the reconciler's pipelines (XRANGE to find it
    // gone, XADD to queue it again) run in cluster mode too.
    let first: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(t.key("lead:imports"))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let deleted: i64 = redis::cmd("XDEL")
        .arg(t.key("lead:imports"))
        .arg(&first.ids[0].id)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert_eq!(deleted, 1);

    let report = t.drain_all().await;
    let valid_per_import = LEADS_PER_IMPORT - LEADS_PER_IMPORT / BAD_EVERY;
    assert_eq!(report.leads_stored, (IMPORTS * valid_per_import) as u64);
    assert_eq!(report.dead_lettered, 0);
    for id in &ids {
        let doc = t.assert_job_accounted(id, LEADS_PER_IMPORT as u64).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        assert_eq!(doc["progress"]["successful"], valid_per_import);
    }

    // One slot for every key, and only because of the tag: the same names without it fall
    // in several slots, held by different nodes.
    let mut keys = vec![t.key("lead:imports"), t.key("lead:imports:dead")];
    keys.extend(ids.iter().map(|id| t.key(&format!("import:job:{id}"))));
    let mut untagged = vec!["lead:imports".to_owned(), "lead:imports:dead".to_owned()];
    untagged.extend(ids.iter().map(|id| format!("import:job:{id}")));
    let slots = keyslots(&t, &keys).await;
    assert_eq!(slots.len(), 1, "every key in one slot: {keys:?}");
    let spread = keyslots(&t, &untagged).await;
    let ranges = slot_ranges(&t).await;
    let owners: BTreeSet<u16> = spread
        .iter()
        .map(|slot| {
            ranges
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(slot))
                .map(|(_, _, port)| *port)
                .expect("every slot is served")
        })
        .collect();
    assert!(
        spread.len() > 1 && owners.len() > 1,
        "without the tag the keys spread over slots {spread:?} on nodes {owners:?}"
    );
    for key in &keys[2..] {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut t.redis.clone())
            .await
            .unwrap();
        assert_eq!(exists, 1, "{key} is in the cluster");
    }

    // XINFO (inside the trim and idle-consumer scripts, and here): one group, nothing pending;
    // the drain's consumer, idle with nothing pending, is removed by idle_consumers.lua.
    let groups = t.stream_groups().await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["pending"], Value::Int(0));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        t.app
            .queue
            .remove_idle_consumers(Duration::ZERO)
            .await
            .unwrap(),
        1
    );

    // CONFIG GET: the template's user may not (ElastiCache refuses it to everyone), and the
    // drain went on without it; a user who may reads the policy from a node of the cluster.
    let refused = t.app.queue.maxmemory_policy().await.unwrap_err();
    assert_eq!(refused.code(), Some("NOPERM"), "{refused}");
    assert_eq!(
        t.sibling(&[])
            .queue
            .maxmemory_policy()
            .await
            .unwrap()
            .as_deref(),
        Some("noeviction")
    );

    // XREADGROUP … BLOCK on the blocking connection: each node's response timeout covers the
    // whole block, so an idle drain waits its BLOCK_TIMEOUT and returns without an error.
    let idle = DrainFunction::new(t.sibling(&[("BLOCK_TIMEOUT", "1500")])).await;
    let started = Instant::now();
    let report = idle
        .handle(scheduled_event(30_000))
        .await
        .expect("a blocked read is no error");
    assert_eq!(report.entries, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the read blocked for {:?}",
        started.elapsed()
    );

    // Without the tag: what enqueue.lua does (the job's hash and the stream in one script)
    // and what dead-lettering does (a MULTI over the stream and its dead letters) are refused
    // by the cluster. With a tag, the same script goes through.
    let enqueue = redis::Script::new(include_str!("../../src/redis/enqueue.lua"));
    let mut invocation = enqueue.key("import:job:probe");
    invocation
        .key("lead:imports")
        .arg(60)
        .arg(0)
        .arg("probe")
        .arg("u1")
        .arg("fail")
        .arg("[]");
    let refused = invocation
        .invoke_async::<Value>(&mut t.redis.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    let mut multi = redis::pipe();
    multi
        .atomic()
        .cmd("XADD")
        .arg("lead:imports:dead")
        .arg("*")
        .arg("reason")
        .arg("probe")
        .ignore()
        .cmd("XACK")
        .arg("lead:imports")
        .arg("lead-import-processors")
        .arg("0-1")
        .ignore();
    let refused = multi
        .query_async::<()>(&mut t.redis.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    let mut tagged = enqueue.key("{probe}import:job:probe");
    tagged
        .key("{probe}lead:imports")
        .arg(60)
        .arg(0)
        .arg("probe")
        .arg("u1")
        .arg("fail")
        .arg("[]");
    let ids: Vec<String> = tagged.invoke_async(&mut t.redis.clone()).await.unwrap();
    assert_eq!(ids.len(), 1);

    // So the app refuses to start in cluster mode with a prefix that has no tag.
    let vars = t.env(&[("REDIS_KEY_PREFIX", "leads:")]);
    let Err(err) = App::from_lookup(|k| vars.get(k).cloned()).await else {
        panic!("an untagged prefix was accepted in cluster mode")
    };
    assert!(matches!(err, StartupError::Config(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("configuration: REDIS_KEY_PREFIX must be a prefix holding a hash tag"),
        "{err}"
    );
}

#[tokio::test]
async fn dead_letters_are_moved_and_redriven_atomically_in_cluster_mode() {
    let cluster = RedisCluster::start().expect("a three-node redis cluster");
    let t = spawn_app_on_cluster(&cluster, &DEAD_ON_SECOND_DELIVERY).await;
    dead_letter_and_redrive(&t).await;
}

/// The distinct slots of `keys`, as the cluster computes them.
async fn keyslots(t: &TestApp, keys: &[String]) -> BTreeSet<u16> {
    let mut slots = BTreeSet::new();
    for key in keys {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut t.redis.clone())
            .await
            .unwrap();
        slots.insert(slot);
    }
    slots
}

/// CLUSTER SLOTS: each range of slots with the port of the node that serves it.
async fn slot_ranges(t: &TestApp) -> Vec<(u16, u16, u16)> {
    let reply: Vec<Vec<Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    reply
        .iter()
        .map(|range| {
            let number = |v: &Value| redis::from_redis_value_ref::<u16>(v).unwrap();
            let Value::Array(primary) = &range[2] else {
                panic!("CLUSTER SLOTS: {range:?}")
            };
            (number(&range[0]), number(&range[1]), number(&primary[1]))
        })
        .collect()
}
