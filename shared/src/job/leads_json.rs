//! Valid leads as JSON, `[{index, line?, fullName, email, phone?, status, source,
//! attributes?}]`: the one format
//! a chunk's leads travel in (a stream entry's `leads` field) and are kept in (the durable
//! payload of an import, compressed, in Postgres). Reading them back goes through the same
//! constructors a request does, so text from Redis or an older deploy is never trusted.

use crate::domain::Lead;
use crate::job::plan::IndexedLead;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One lead in the JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLead<'a> {
    index: u32,
    /// A CSV lead's line; absent for JSON imports (and in entries written before lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(borrow)]
    full_name: Cow<'a, str>,
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    phone: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    /// Absent when empty (and in entries written before attributes).
    #[serde(borrow, default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// The leads as JSON.
pub fn encode<'a>(leads: impl IntoIterator<Item = &'a IndexedLead>) -> String {
    let wire: Vec<WireLead> = leads
        .into_iter()
        .map(|l| WireLead {
            index: l.index,
            line: l.line,
            full_name: Cow::Borrowed(l.lead.full_name.as_str()),
            email: Cow::Borrowed(l.lead.email.as_str()),
            phone: l.lead.phone.as_ref().map(|p| Cow::Borrowed(p.as_str())),
            status: Cow::Borrowed(l.lead.status.as_str()),
            source: Cow::Borrowed(l.lead.source.as_str()),
            attributes: l
                .lead
                .attributes
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
                .collect(),
        })
        .collect();
    serde_json::to_string(&wire).expect("leads serialize")
}

/// Several chunks' JSON (each from [`encode`]) as one array, byte for byte what [`encode`] of
/// all their leads writes: the durable payload is made from the entries' JSON.
pub fn concat(chunks: &[String]) -> String {
    let mut json = String::with_capacity(chunks.iter().map(String::len).sum::<usize>() + 2);
    json.push('[');
    for chunk in chunks {
        let leads = chunk
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .unwrap_or_default();
        if leads.is_empty() {
            continue;
        }
        if json.len() > 1 {
            json.push(',');
        }
        json.push_str(leads);
    }
    json.push(']');
    json
}

/// Reads leads back, each through [`Lead::from_fields`]; `Err` says which field of which
/// lead breaks its rule, never its value.
pub fn decode(text: &str) -> Result<Vec<IndexedLead>, String> {
    // serde's message may quote the offending value: only its category and position are kept.
    let wire: Vec<WireLead> = serde_json::from_str(text).map_err(|e| {
        format!(
            "field leads is not a list of leads ({:?} error at column {})",
            e.classify(),
            e.column()
        )
    })?;
    wire.into_iter()
        .map(|w| {
            Lead::from_fields(
                &w.full_name,
                &w.email,
                w.phone.as_deref(),
                Some(&w.status),
                Some(&w.source),
                w.attributes.iter().map(|(k, v)| (&**k, &**v)),
            )
            .map(|lead| IndexedLead {
                index: w.index,
                line: w.line,
                lead,
            })
            .map_err(|e| {
                format!(
                    "lead {}: field {} breaks its rule ({})",
                    w.index, e.field, e.code
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenated_are_the_json_of_all_their_leads() {
        let lead = |i: u32| IndexedLead {
            index: i,
            line: i.is_multiple_of(2).then_some(i + 1),
            lead: Lead::from_fields(
                &format!("N \"{i}\""),
                &format!("l{i}@x.io"),
                None,
                None,
                None,
                [("Note", "a,b]")],
            )
            .unwrap(),
        };
        let leads: Vec<IndexedLead> = (0..5).map(lead).collect();
        let chunks: Vec<String> = leads.chunks(2).map(encode).collect();
        assert_eq!(concat(&chunks), encode(&leads));
        assert_eq!(decode(&concat(&chunks)).unwrap(), leads);
        assert_eq!(concat(&[]), "[]");
        assert_eq!(concat(&[encode(&[])]), "[]");
    }
}
