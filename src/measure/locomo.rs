//! `reflector eval locomo FILE --out R.jsonl`: ask every question of a LoCoMo file (already
//! imported with `reflector import`) through recall, and write what was retrieved as the
//! JSONL that `../shared/tools/locomo_score.py` scores (docs/MEMORY.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use reflector::cli::client::Client;
use reflector::cli::locomo::{bar, fan_out, read_file, selected, urlencode};

/// A conversation's questions, by position in its `qa` list.
#[derive(Debug, Clone)]
pub struct Question {
    pub sample_id: String,
    pub qa_index: usize,
    pub question: String,
}

/// Every question of the selected conversations.
pub fn questions(path: &Path, samples: &[String]) -> anyhow::Result<Vec<Question>> {
    let convs = read_file(path)?;
    let mut out = Vec::new();
    for (sample, c) in selected(&convs, samples)? {
        for (i, qa) in c["qa"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            out.push(Question {
                sample_id: sample.to_string(),
                qa_index: i,
                question: qa["question"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    Ok(out)
}

/// Ask every question through the context endpoint; write the scorer's JSONL.
pub async fn eval(
    path: &Path,
    out: &Path,
    samples: &[String],
    k: usize,
    server: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let qs = questions(path, samples)?;
    let client = Client::new(server)?;
    let pb = bar(qs.len() as u64, "asking");
    let mut set = fan_out(qs, concurrency, &pb, |q| {
        let c = client.clone();
        async move {
            let path = format!(
                "/api/memory/context/{}?limit={k}&query={}",
                urlencode(&q.sample_id),
                urlencode(&q.question)
            );
            let r = c.get_json(&path).await;
            (q, r)
        }
    })
    .await?;
    let mut results: BTreeMap<(String, usize), Value> = BTreeMap::new();
    while let Some(res) = set.join_next().await {
        let (q, r) = res?;
        let ctx = r?;
        let retrieved: Vec<Value> = ctx["memories"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| json!({"text": m["text"], "evidence": m["evidence"], "tier": m["tier"]}))
            .collect();
        results.insert(
            (q.sample_id.clone(), q.qa_index),
            json!({"sample_id": q.sample_id, "qa_index": q.qa_index, "retrieved": retrieved}),
        );
    }
    pb.finish();
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?,
    );
    for v in results.values() {
        writeln!(f, "{v}")?;
    }
    f.flush()?;
    println!("wrote {} results to {}", results.len(), out.display());
    Ok(())
}
