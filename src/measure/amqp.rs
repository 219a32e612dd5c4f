//! `reflector amqp-bench`: what the broker costs a job, measured on the broker at
//! `RABBITMQ_URL`. Messages are real job bodies (~600 bytes of wire JSON), published the
//! way the relay publishes them (persistent, `mandatory`, priority, publisher confirms) to
//! a topic exchange and a durable queue of the benchmark's own, deleted afterwards.
//!
//! Three figures:
//! 1. publish-with-confirm latency, one message at a time (p50 / p99 / max, ms);
//! 2. publish throughput with up to `--inflight` confirms outstanding (jobs/s);
//! 3. consume throughput with manual acks, prefetch `--prefetch` (jobs/s).
//!
//! Output: a table on stdout and, last, one JSON line with every figure.

use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;

use reflector::job::{Priority, ReflectionJob};
use reflector::queue::amqp::{redact_url, routing_key};

/// Flags of `reflector amqp-bench`.
#[derive(Debug, Clone, Args)]
pub struct MeasureArgs {
    /// Broker URL (the password is never printed).
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    pub rabbitmq_url: String,
    /// Messages for the one-at-a-time latency figure.
    #[arg(long, default_value_t = 2000)]
    pub sequential: usize,
    /// Messages for the throughput figures.
    #[arg(long, default_value_t = 20000)]
    pub messages: usize,
    /// Confirms outstanding at once in the throughput run.
    #[arg(long, default_value_t = 500)]
    pub inflight: usize,
    /// Consumer prefetch in the consume run.
    #[arg(long, default_value_t = 100)]
    pub prefetch: u16,
}

const EXCHANGE: &str = "reflector_bench_exchange";
const QUEUE: &str = "reflector_bench_queue";

fn job_body(i: usize) -> Vec<u8> {
    let job = ReflectionJob {
        job_id: uuid::Uuid::now_v7().to_string(),
        user_id: format!("bench.user-{}", i % 100),
        session_id: "s1".into(),
        user_message: "I moved to Berlin two weeks ago and I started a new job at a bakery. Please always answer in German from now on.".into(),
        assistant_response: "Congratulations on the move and the new job! Ich antworte ab jetzt auf Deutsch.".into(),
        timestamp: chrono::Utc::now(),
        priority: Priority::Normal,
        metadata: json!({"speaker": "Ana", "interaction_id": format!("bench-{i}"), "timezone": "Europe/Berlin"}),
        retry_count: 0,
        max_retries: 3,
        created_at: chrono::Utc::now(),
    };
    serde_json::to_vec(&job).expect("a job serialises")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run the measurement; exit code 0, or an error naming what failed.
pub async fn run(args: MeasureArgs) -> anyhow::Result<i32> {
    let url = redact_url(&args.rabbitmq_url);
    let conn = Connection::connect(&args.rabbitmq_url, ConnectionProperties::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to RabbitMQ at {url}: {e}"))?;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    let _ = ch
        .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
        .await;
    let mut args_q = FieldTable::default();
    args_q.insert(
        "x-max-priority".into(),
        lapin::types::AMQPValue::ShortShortUInt(reflector::queue::amqp::MAX_PRIORITY),
    );
    ch.queue_declare(QUEUE.into(), QueueDeclareOptions::durable(), args_q)
        .await?;
    ch.queue_bind(
        QUEUE.into(),
        EXCHANGE.into(),
        "reflection.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let publish = |i: usize| {
        let body = job_body(i);
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                EXCHANGE.into(),
                routing_key(&format!("bench.user-{}", i % 100))
                    .as_str()
                    .into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_priority(1),
            )
            .await
        }
    };

    // 1. One at a time.
    let mut lat = Vec::with_capacity(args.sequential);
    for i in 0..args.sequential {
        let t = Instant::now();
        let c = publish(i).await?.await?;
        anyhow::ensure!(
            c.is_ack() && c.take_message().is_none(),
            "message {i} not confirmed"
        );
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );

    // 2. Pipelined publishing.
    let t = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(args.inflight);
    for i in 0..args.messages {
        if pending.len() >= args.inflight.max(1) {
            let pc: lapin::PublisherConfirm = pending.pop_front().expect("not empty");
            anyhow::ensure!(pc.await?.is_ack(), "a message was not confirmed");
        }
        pending.push_back(publish(i).await?);
    }
    for pc in pending {
        anyhow::ensure!(pc.await?.is_ack(), "a message was not confirmed");
    }
    let publish_rate = args.messages as f64 / t.elapsed().as_secs_f64();

    // 3. Consume everything published (both runs) with manual acks.
    let total = args.sequential + args.messages;
    let sub = conn.create_channel().await?;
    sub.basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = sub
        .basic_consume(
            QUEUE.into(),
            "reflector-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let t = Instant::now();
    let mut got = 0;
    while got < total {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| anyhow::anyhow!("consume stalled after {got} of {total} messages"))?
            .ok_or_else(|| anyhow::anyhow!("consumer cancelled"))??;
        serde_json::from_slice::<ReflectionJob>(&d.data)?;
        d.acker.ack(BasicAckOptions::default()).await?;
        got += 1;
    }
    let consume_rate = total as f64 / t.elapsed().as_secs_f64();
    let _ = ch
        .queue_delete(QUEUE.into(), QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(EXCHANGE.into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "done".into()).await;

    println!(
        "RabbitMQ at {url}: job bodies of ~{} bytes, persistent, mandatory, confirmed",
        job_body(0).len()
    );
    println!(
        "  publish + confirm, one at a time ({} msgs): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        args.sequential
    );
    println!(
        "  publish, {} confirms in flight ({} msgs): {publish_rate:.0} jobs/s",
        args.inflight, args.messages
    );
    println!(
        "  consume + ack, prefetch {} ({total} msgs): {consume_rate:.0} jobs/s",
        args.prefetch
    );
    println!(
        "{}",
        json!({
            "publish_confirm_p50_ms": p50, "publish_confirm_p99_ms": p99, "publish_confirm_max_ms": max,
            "publish_jobs_per_s": publish_rate, "consume_jobs_per_s": consume_rate,
            "sequential": args.sequential, "messages": args.messages, "inflight": args.inflight,
            "prefetch": args.prefetch,
        })
    );
    Ok(0)
}
