//! Redis key names, all behind one optional prefix (docs/design.md lists them).
//!
//! In a Redis Cluster (ElastiCache Serverless, cluster-mode-enabled groups) a script or a
//! MULTI may only touch keys of one hash slot, and `enqueue.lua` touches a job's hash and the
//! stream together. So in cluster mode the prefix must hold a hash tag (`{leads}`): Redis then
//! hashes only the tag, and every key of the service lands in the same slot.

/// The names of everything this service keeps in Redis. With an empty prefix these are the
/// seed's names, so its monitoring commands (`XLEN lead:imports`, ...) keep working.
#[derive(Debug, Clone)]
pub struct Keys {
    pub stream: String,
    pub group: String,
    pub dead_letters: String,
    /// `lead:drains`: the drains running now, scored by their deadline (epoch ms).
    pub drains: String,
    /// `lead:drains:starting`: drains asked to start that have not yet, scored by when the
    /// ask expires (epoch ms).
    pub drains_starting: String,
    job_prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            stream: format!("{prefix}lead:imports"),
            group: "lead-import-processors".to_owned(),
            dead_letters: format!("{prefix}lead:imports:dead"),
            drains: format!("{prefix}lead:drains"),
            drains_starting: format!("{prefix}lead:drains:starting"),
            job_prefix: format!("{prefix}import:job:"),
        }
    }

    /// `import:job:{importId}`: the job's status cache. Callers pass a parsed `ImportId` or an
    /// id read back from our own stream, so nothing outside the id charset reaches a key.
    pub fn job(&self, import_id: &str) -> String {
        format!("{}{import_id}", self.job_prefix)
    }

    /// `import:job:{importId}:errors`: the errors of the job's chunks, beside its status cache
    /// (so a poll reads only the few it shows).
    pub fn job_errors(&self, import_id: &str) -> String {
        format!("{}{import_id}:errors", self.job_prefix)
    }
}

/// `REDIS_KEY_PREFIX`'s default with `REDIS_CLUSTER=true`: a hash tag alone.
pub const CLUSTER_DEFAULT_PREFIX: &str = "{leads}";

/// The hash tag that keys starting with `prefix` hash to, as Redis Cluster finds it: the text
/// between the first `{` and the first `}` after it, if not empty. `None` means that each key
/// would be hashed whole, so the service's keys would spread over slots. What follows the
/// prefix cannot change that: it is a fixed name, or an import id, which holds no `{` or `}`.
pub fn hash_tag(prefix: &str) -> Option<&str> {
    let open = prefix.find('{')?;
    let rest = &prefix[open + 1..];
    let tag = &rest[..rest.find('}')?];
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::redis::cluster_routing::Slot;

    /// Every key name the service uses under `prefix`, a few job keys included.
    fn all_keys(prefix: &str) -> Vec<String> {
        let k = Keys::new(prefix);
        vec![
            k.stream.clone(),
            k.dead_letters.clone(),
            k.job("a"),
            k.job_errors("a"),
            k.job("0190f2c4-1b2a-7c3d-8e4f-5a6b7c8d9e0f"),
            k.job("import.2024-01-01:batch_7"),
        ]
    }

    #[test]
    fn a_hash_tag_puts_every_key_in_one_slot_and_only_a_hash_tag_does() {
        // redis-rs's own slot function (CRC16 of the tag, as the server computes it) is the
        // judge: `hash_tag` must agree with it on every prefix.
        for prefix in [
            CLUSTER_DEFAULT_PREFIX,
            "{leads}:",
            "app:{t1}:",
            "}{x}",
            "",
            "leads:",
            "{}",
            "{}{leads}",
            "{leads",
            "leads}",
        ] {
            let slots: Vec<Slot> = all_keys(prefix).iter().map(Slot::for_key).collect();
            let one_slot = slots.iter().all(|s| *s == slots[0]);
            assert_eq!(
                hash_tag(prefix).is_some(),
                one_slot,
                "prefix {prefix:?}: hash_tag says {:?}",
                hash_tag(prefix)
            );
        }
        assert_eq!(hash_tag(CLUSTER_DEFAULT_PREFIX), Some("leads"));
        assert_eq!(hash_tag("app:{t1}:"), Some("t1"));
        assert_eq!(
            hash_tag("{}{leads}"),
            None,
            "the first {{}} is empty: no tag"
        );
    }

    #[test]
    fn no_prefix_gives_the_seed_names() {
        let k = Keys::new("");
        assert_eq!(
            (k.stream.as_str(), k.group.as_str()),
            ("lead:imports", "lead-import-processors")
        );
        assert_eq!(k.dead_letters, "lead:imports:dead");
        assert_eq!(k.job("abc"), "import:job:abc");
    }

    #[test]
    fn a_prefix_applies_to_every_key() {
        let k = Keys::new("t1:");
        assert_eq!(
            (k.stream.as_str(), k.job("a").as_str()),
            ("t1:lead:imports", "t1:import:job:a")
        );
    }
}
