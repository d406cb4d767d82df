//! The synthetic import every phase works on: the request bodies the HTTP phases post and,
//! planned the way the import plans them, the chunks the baselines store or queue, so that
//! every figure counts the same leads.

use bytes::Bytes;
use serde_json::{Value, json};
use shared::job::plan::{ImportPlan, QueuedChunk};
use shared::job::request::ImportRequest;

/// Leads per `POST /leads/import`.
const LEADS_PER_REQUEST: usize = 1_000;
const CREATED_BY: &str = "507f1f77bcf86cd799439011";

/// The synthetic import: `n` leads in requests of `LEADS_PER_REQUEST`. Lead `i` is invalid
/// when `i % 101 == 100`, and repeats the email of lead `i - 1` when `i % 211 == 210`.
pub struct Workload {
    pub bodies: Vec<(String, Bytes)>,
    plans: Vec<ImportPlan>,
}

impl Workload {
    pub fn new(n: usize, batch_size: usize) -> anyhow::Result<Self> {
        Self::named(n, batch_size, "bench")
    }

    /// The same workload with `name` in its import ids and emails, so that it can be imported
    /// beside another one without colliding.
    pub fn named(n: usize, batch_size: usize, name: &str) -> anyhow::Result<Self> {
        let mut bodies = Vec::new();
        let mut plans = Vec::new();
        for (r, start) in (0..n).step_by(LEADS_PER_REQUEST).enumerate() {
            let leads: Vec<Value> = (start..n.min(start + LEADS_PER_REQUEST))
                .map(|i| {
                    let email = if i % 101 == 100 {
                        format!("not-an-email-{i}")
                    } else if i % 211 == 210 && i > start {
                        format!("lead{}@{name}.example.com", i - 1)
                    } else {
                        format!("lead{i}@{name}.example.com")
                    };
                    lead(i, &email)
                })
                .collect();
            let import_id = format!("{name}-{r:06}");
            let (body, plan) = request(&import_id, leads, batch_size)?;
            plans.push(plan);
            bodies.push((import_id, Bytes::from(body)));
        }
        Ok(Workload { bodies, plans })
    }

    pub fn plans(&self) -> &[ImportPlan] {
        &self.plans
    }

    pub fn queued_chunks(&self) -> impl Iterator<Item = QueuedChunk> + '_ {
        self.plans.iter().flat_map(|p| {
            p.chunks.iter().map(|c| QueuedChunk {
                import_id: p.import_id.clone(),
                seq: c.seq,
                created_by: p.created_by.clone(),
                on_existing: p.on_existing,
                leads: c.leads.clone(),
            })
        })
    }

    pub fn valid(&self) -> usize {
        self.plans
            .iter()
            .flat_map(|p| &p.chunks)
            .map(|c| c.leads.len())
            .sum()
    }

    pub fn rejected(&self) -> usize {
        self.plans.iter().map(|p| p.rejected.len()).sum()
    }

    /// Each request's leads as a CSV import of their own (`<id>-csv`): the path with the
    /// query, and the body (a header line, then one record per lead, as a spreadsheet writes).
    pub fn csv_requests(&self) -> anyhow::Result<Vec<(String, Bytes)>> {
        const FIELDS: [&str; 5] = ["fullName", "email", "phone", "status", "source"];
        self.bodies
            .iter()
            .map(|(import_id, body)| {
                let request: Value = serde_json::from_slice(body)?;
                let mut csv = csv::Writer::from_writer(Vec::with_capacity(body.len()));
                csv.write_record(["Full Name", "Email", "Phone", "Lead Status", "Lead Source"])?;
                for lead in request["leads"].as_array().into_iter().flatten() {
                    csv.write_record(FIELDS.map(|f| lead[f].as_str().unwrap_or("")))?;
                }
                let path = format!("/leads/import?importId={import_id}-csv&createdBy={CREATED_BY}");
                Ok((path, Bytes::from(csv.into_inner()?)))
            })
            .collect()
    }
}

fn lead(i: usize, email: &str) -> Value {
    json!({
        "fullName": format!("Lead Number {i}"),
        "email": email,
        "phone": format!("+1 (555) 01{:04}", i % 10_000),
        "status": "NEW",
        "source": "website",
    })
}

/// One import request of `count` valid leads, every email new (`import_id` is in each).
pub fn request_body(import_id: &str, count: usize) -> Bytes {
    let leads: Vec<Value> = (0..count)
        .map(|i| lead(i, &format!("{i}.{import_id}@latency.example.com")))
        .collect();
    Bytes::from(json!({"importId": import_id, "createdBy": CREATED_BY, "leads": leads}).to_string())
}

/// `n` leads that vary as real ones do (names, email domains, phones, statuses and sources
/// drawn from a seeded generator), in requests of `LEADS_PER_REQUEST`, planned as the import
/// plans them: the synthetic workload's leads differ only by a number, which zstd shrinks
/// far better than real leads, so the payload's cost is measured on these too.
pub fn varied_plans(n: usize, batch_size: usize) -> anyhow::Result<Vec<ImportPlan>> {
    const SYLLABLES: [&str; 32] = [
        "an", "ber", "ca", "dor", "el", "fi", "gan", "ha", "is", "jo", "ka", "lin", "ma", "nor",
        "o", "pe", "qui", "ra", "sa", "tin", "u", "va", "wen", "xi", "ya", "zo", "mar", "ley",
        "son", "bert", "ric", "ette",
    ];
    const DOMAINS: [&str; 12] = [
        "gmail.com",
        "yahoo.com",
        "outlook.com",
        "hotmail.com",
        "icloud.com",
        "aol.com",
        "proton.me",
        "gmx.de",
        "example.org",
        "acme-corp.com",
        "mail.ru",
        "web.de",
    ];
    const STATUSES: [&str; 3] = ["NEW", "CONTACTED", "QUALIFIED"];
    const SOURCES: [&str; 5] = ["website", "referral", "advertisement", "event", "partner"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: deterministic, good enough to make text vary.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    fn word(next: &mut impl FnMut() -> u64, syllables: &[&str], most: u64) -> String {
        let count = 2 + next() % most;
        let mut w: String = (0..count)
            .map(|_| syllables[(next() % syllables.len() as u64) as usize])
            .collect();
        w[..1].make_ascii_uppercase();
        w
    }
    let mut plans = Vec::new();
    for (r, start) in (0..n).step_by(LEADS_PER_REQUEST).enumerate() {
        let leads: Vec<Value> = (start..n.min(start + LEADS_PER_REQUEST))
            .map(|i| {
                let first = word(&mut next, &SYLLABLES, 2);
                let last = word(&mut next, &SYLLABLES, 3);
                let pick = |v: u64, len: usize| (v % len as u64) as usize;
                json!({
                    "fullName": format!("{first} {last}"),
                    "email": format!("{}.{}{}@{}", first.to_lowercase(), last.to_lowercase(), i % 997, DOMAINS[pick(next(), DOMAINS.len())]),
                    "phone": format!("+1 {:03} {:03} {:04}", 200 + next() % 800, next() % 1000, next() % 10_000),
                    "status": STATUSES[pick(next(), STATUSES.len())],
                    "source": SOURCES[pick(next(), SOURCES.len())],
                })
            })
            .collect();
        plans.push(request(&format!("varied-{r:06}"), leads, batch_size)?.1);
    }
    Ok(plans)
}

/// A request body of `leads` as import `import_id`, and its plan.
fn request(
    import_id: &str,
    leads: Vec<serde_json::Value>,
    batch_size: usize,
) -> anyhow::Result<(Vec<u8>, ImportPlan)> {
    let body = serde_json::to_vec(&json!({
        "importId": import_id,
        "createdBy": CREATED_BY,
        "leads": leads,
    }))?;
    let request = ImportRequest::parse(&body, usize::MAX)
        .map_err(|p| anyhow::anyhow!("synthetic request refused: {p:?}"))?;
    Ok((body, ImportPlan::new(request, batch_size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_workload_has_its_own_ids_and_emails_and_the_same_shape() {
        let (a, b) = (
            Workload::new(2_500, 50).unwrap(),
            Workload::named(2_500, 50, "other").unwrap(),
        );
        assert_eq!(a.bodies.len(), 3);
        assert_eq!(a.bodies[0].0, "bench-000000");
        assert_eq!(b.bodies[2].0, "other-000002");
        assert_eq!((a.valid(), a.rejected()), (b.valid(), b.rejected()));
        // 24 invalid emails (every 101st) and 11 repeats (every 211th) among 2,500.
        assert_eq!(a.valid(), 2_500 - 24 - 11);
        let emails = |w: &Workload| -> Vec<String> {
            w.queued_chunks()
                .flat_map(|c| {
                    c.leads
                        .into_iter()
                        .map(|l| l.lead.email.as_str().to_owned())
                })
                .collect()
        };
        let (ea, eb) = (emails(&a), emails(&b));
        assert!(eb.iter().all(|e| e.ends_with("@other.example.com")));
        assert!(ea.iter().all(|e| e.ends_with("@bench.example.com")));
    }

    #[test]
    fn varied_leads_are_all_valid_and_differ() {
        let plans = varied_plans(2_000, 50).unwrap();
        assert_eq!(plans.len(), 2);
        let leads: Vec<_> = plans
            .iter()
            .flat_map(|p| p.chunks.iter().flat_map(|c| &c.leads))
            .collect();
        assert!(leads.len() > 1_990, "nearly all valid: {}", leads.len());
        assert_ne!(leads[0].lead.full_name, leads[1].lead.full_name);
        assert_ne!(leads[0].lead.email, leads[1].lead.email);
    }

    #[test]
    fn a_request_body_holds_that_many_valid_leads_with_emails_of_its_own() {
        let body = request_body("lat-7", 3);
        let request = ImportRequest::parse(&body, 10).unwrap();
        let plan = ImportPlan::new(request, 50);
        assert_eq!((plan.total, plan.rejected.len()), (3, 0));
        assert_eq!(
            plan.chunks[0].leads[2].lead.email.as_str(),
            "2.lat-7@latency.example.com"
        );
    }
}
