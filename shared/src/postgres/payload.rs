//! `import_jobs.payload`: an import's valid leads, kept so that Postgres, not Redis, holds what
//! was accepted. The leads in `seq` order as [`leads_json`], compressed with zstd at a fast
//! level (JSON of leads shrinks about fourfold, which the import pays a few µs per lead for);
//! chunk `k` holds leads `[k * batch_size, (k + 1) * batch_size)`.

use crate::domain::{CreatedBy, ImportId, OnExisting};
use crate::job::leads_json;
use crate::job::original_rows::{self, OriginalRow};
use crate::job::plan::{ImportPlan, QueuedChunk};

const LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread, reused: making one per call allocated (and freed)
    /// its tables for every request, which the import's profile showed as allocator time.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = match compressor {
            Some(c) => c,
            None => compressor
                .insert(zstd::bulk::Compressor::new(LEVEL).expect("level 1 is a valid zstd level")),
        };
        compressor
            .compress(bytes)
            .expect("compressing into memory cannot fail")
    })
}

/// `import_jobs.rejected_rows`: what the leads refused at import carried, as
/// [`original_rows`] JSON, compressed alike; `None` when no lead was refused.
pub(super) fn encode_rejected(plan: &ImportPlan) -> Option<Vec<u8>> {
    (!plan.rejected_rows.is_empty())
        .then(|| compress(original_rows::encode(&plan.rejected_rows).as_bytes()))
}

pub(super) fn decode_rejected(bytes: &[u8]) -> Result<Vec<OriginalRow>, String> {
    let json = zstd::stream::decode_all(bytes).map_err(|e| format!("rejected rows: {e}"))?;
    let json = String::from_utf8(json).map_err(|_| "rejected rows: not UTF-8".to_owned())?;
    original_rows::decode(&json)
}

/// The column's bytes for a plan.
pub(super) fn encode(plan: &ImportPlan) -> Vec<u8> {
    compress(leads_json::concat(plan.chunks_json()).as_bytes())
}

/// The chunks `seqs` (all of them when `None`) back from the column's bytes. `Err` says what is
/// wrong with a payload that cannot be read, never a lead's value.
pub(super) fn decode(
    bytes: &[u8],
    import_id: &ImportId,
    created_by: &CreatedBy,
    on_existing: OnExisting,
    batch_size: usize,
    seqs: Option<&[u32]>,
) -> Result<Vec<QueuedChunk>, String> {
    let json = zstd::stream::decode_all(bytes).map_err(|e| format!("payload: {e}"))?;
    let json = String::from_utf8(json).map_err(|_| "payload: not UTF-8".to_owned())?;
    let leads = leads_json::decode(&json).map_err(|e| format!("payload: {e}"))?;
    let mut chunks: Vec<QueuedChunk> = leads
        .chunks(batch_size.max(1))
        .enumerate()
        .map(|(seq, leads)| QueuedChunk {
            import_id: import_id.clone(),
            seq: seq as u32,
            created_by: created_by.clone(),
            on_existing,
            leads: leads.to_vec(),
        })
        .collect();
    if let Some(seqs) = seqs {
        chunks.retain(|c| seqs.contains(&c.seq));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::request::ImportRequest;

    #[test]
    fn chunks_come_back_as_planned() {
        let leads: Vec<String> = (0..7)
            .map(|i| format!(r#"{{"fullName":"N {i}","email":"l{i}@x.io"}}"#))
            .collect();
        let body = format!(
            r#"{{"importId":"j","createdBy":"u","onExisting":"update","leads":[{},{{"email":"bad"}}]}}"#,
            leads.join(",")
        );
        let plan = ImportPlan::new(ImportRequest::parse(body.as_bytes(), 100).unwrap(), 3);
        let bytes = encode(&plan);
        let all = decode(
            &bytes,
            &plan.import_id,
            &plan.created_by,
            plan.on_existing,
            3,
            None,
        )
        .unwrap();
        let expected: Vec<QueuedChunk> = plan
            .chunks
            .iter()
            .map(|c| QueuedChunk {
                import_id: plan.import_id.clone(),
                seq: c.seq,
                created_by: plan.created_by.clone(),
                on_existing: plan.on_existing,
                leads: c.leads.clone(),
            })
            .collect();
        assert_eq!(all, expected);
        let some = decode(
            &bytes,
            &plan.import_id,
            &plan.created_by,
            plan.on_existing,
            3,
            Some(&[2]),
        )
        .unwrap();
        assert_eq!(some, expected[2..]);
        assert!(
            decode(
                b"garbage",
                &plan.import_id,
                &plan.created_by,
                plan.on_existing,
                3,
                None
            )
            .is_err()
        );
        let rejected = decode_rejected(&encode_rejected(&plan).unwrap()).unwrap();
        assert_eq!(rejected, plan.rejected_rows);
        assert_eq!(rejected[0].index, 7);
        assert_eq!(rejected[0].values[1].as_deref(), Some("bad"));
    }
}
