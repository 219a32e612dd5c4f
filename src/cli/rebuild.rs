//! `reflector reflect` and `reflector reembed`: rebuild memory from the stored turns after a
//! rule or model change, on the store in `--data-dir`, in this process.
//!
//! `reflect` re-runs the three processors over finished jobs' turns. Each job is leased to
//! this process while it runs (a running server's workers leave it alone; if this process
//! dies, the lease expires and a worker finishes the job). It is idempotent: a re-reflected
//! job replaces the episode it wrote before, facts and rules are de-duplicated, and
//! tombstones keep what users edited or deleted. `reembed` recomputes the vectors of
//! episodes and rules with the configured embedder (run it with the server stopped: a
//! running server keeps the vectors it has cached until it restarts).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::bail;

use crate::config::Config;
use crate::queue::embedded::settle;
use crate::reflect::Reflector;
use crate::server::{embed_service, llm_extractor, worker_config};
use crate::store::Embedded;

fn scope(user: &Option<String>, all: bool) -> anyhow::Result<Option<String>> {
    match (user, all) {
        (Some(_), true) => bail!("give --user U or --all, not both"),
        (None, false) => bail!("give --user U, or --all for every user"),
        (u, _) => Ok(u.clone()),
    }
}

/// `reflector reflect --user U | --all [--since T]`; returns the exit code (1 if a job failed).
pub async fn reflect(
    cfg: Config,
    user: Option<String>,
    all: bool,
    since: Option<String>,
) -> anyhow::Result<i32> {
    let user = scope(&user, all)?;
    let since_ms = match &since {
        None => i64::MIN,
        Some(s) => crate::job::parse_timestamp(s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--since {s:?} is not an RFC 3339 timestamp (e.g. 2024-05-01T00:00:00Z)"
                )
            })?
            .timestamp_millis(),
    };
    let store = super::open_store(&cfg).await?;
    let embed = embed_service(&cfg)?;
    let mut reflector = Reflector::new(store.clone(), embed);
    if let Some(llm) = llm_extractor(&cfg)? {
        reflector = reflector.with_llm(llm);
    }
    let u = user.clone();
    let jobs = store
        .run(move |s| s.rereflection_jobs(u.as_deref(), since_ms))
        .await?;
    let pb = super::locomo::bar(jobs.len() as u64, "reflecting");
    let queue = Arc::new(Mutex::new(jobs.into_iter().collect::<VecDeque<_>>()));
    let wcfg = worker_config(&cfg);
    let lease_ms = wcfg.lease_ms;
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..cfg.workers.max(1) {
        let (queue, reflector, store, pb, wcfg, failed) = (
            queue.clone(),
            reflector.clone(),
            store.clone(),
            pb.clone(),
            wcfg.clone(),
            failed.clone(),
        );
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some(job_id) = next else {
                    return Ok::<_, anyhow::Error>(());
                };
                let claimed = store
                    .run(move |s| s.begin_rereflection(&job_id, lease_ms))
                    .await?;
                if let Some(c) = claimed {
                    let outcome = reflector.process(&c.job).await;
                    if !outcome.all_committed() {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    settle(&reflector, &c, &outcome, &wcfg).await?;
                }
                pb.inc(1);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    pb.finish();
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "re-reflected {} turns{}{}",
        pb.position(),
        user.map(|u| format!(" of {u}")).unwrap_or_default(),
        if failed > 0 {
            format!(
                "; {failed} failed (retried by the workers or dead-lettered: see `reflector dlq list`)"
            )
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `reflector reembed --user U | --all`: recompute the vectors of episodes and rules.
pub async fn reembed(cfg: Config, user: Option<String>, all: bool) -> anyhow::Result<i32> {
    let user = scope(&user, all)?;
    let store = super::open_store(&cfg).await?;
    let embed = embed_service(&cfg)?;
    let u = user.clone();
    let total = store.run(move |s| s.count_embedded(u.as_deref())).await?;
    let pb = super::locomo::bar(total, "re-embedding");
    for what in [Embedded::Episodes, Embedded::Rules] {
        let mut after = 0;
        loop {
            let u = user.clone();
            let batch = store
                .run(move |s| s.texts_to_embed(what, u.as_deref(), after, 64))
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.0;
            let vecs = embed
                .embed(batch.iter().map(|(_, t)| t.clone()).collect())
                .await?;
            let rows: Vec<(i64, Vec<f32>)> = batch.iter().map(|(id, _)| *id).zip(vecs).collect();
            let n = rows.len() as u64;
            store.run(move |s| s.set_embeddings(what, &rows)).await?;
            pb.inc(n);
        }
    }
    pb.finish();
    eprintln!(
        "re-embedded {} memories with {}",
        pb.position(),
        embed.model_id()
    );
    Ok(0)
}
