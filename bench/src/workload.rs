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
        let mut bodies = Vec::new();
        let mut plans = Vec::new();
        for (r, start) in (0..n).step_by(LEADS_PER_REQUEST).enumerate() {
            let leads: Vec<Value> = (start..n.min(start + LEADS_PER_REQUEST))
                .map(|i| {
                    let email = if i % 101 == 100 {
                        format!("not-an-email-{i}")
                    } else if i % 211 == 210 && i > start {
                        format!("lead{}@bench.example.com", i - 1)
                    } else {
                        format!("lead{i}@bench.example.com")
                    };
                    json!({
                        "fullName": format!("Lead Number {i}"),
                        "email": email,
                        "phone": format!("+1 (555) 01{:04}", i % 10_000),
                        "status": "NEW",
                        "source": "website",
                    })
                })
                .collect();
            let import_id = format!("bench-{r:06}");
            let body = serde_json::to_vec(&json!({
                "importId": import_id,
                "createdBy": CREATED_BY,
                "leads": leads,
            }))?;
            let request = ImportRequest::parse(&body, usize::MAX)
                .map_err(|p| anyhow::anyhow!("synthetic request refused: {p:?}"))?;
            plans.push(ImportPlan::new(request, batch_size));
            bodies.push((import_id, Bytes::from(body)));
        }
        Ok(Workload { bodies, plans })
    }

    pub fn queued_chunks(&self) -> impl Iterator<Item = QueuedChunk> + '_ {
        self.plans.iter().flat_map(|p| {
            p.chunks.iter().map(|c| QueuedChunk {
                import_id: p.import_id.clone(),
                seq: c.seq,
                created_by: p.created_by.clone(),
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
}
