//! Generated leads.

use serde_json::Value;

/// `n` leads as JSON objects; every `bad_every`-th has an invalid email, every
/// `dup_every`-th repeats the email of the lead before it.
pub fn synthetic_leads(n: usize, tag: &str, bad_every: usize, dup_every: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let email = if bad_every > 0 && i % bad_every == bad_every - 1 {
                format!("not-an-email-{i}")
            } else if dup_every > 0 && i % dup_every == dup_every - 1 && i > 0 {
                format!("lead{}@{tag}.example.com", i - 1)
            } else {
                format!("lead{i}@{tag}.example.com")
            };
            serde_json::json!({"fullName": format!("Lead {i}"), "email": email, "phone": "+1 (555) 010-0000", "source": "website"})
        })
        .collect()
}
