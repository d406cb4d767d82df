//! Redis key names, all behind one optional prefix (docs/design.md lists them).

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
