//! The messages: routing keys, the job body's decoding, the properties every publish
//! carries (persistent, priority, `mandatory`, publisher confirms), and the dead-letter copy
//! with its reason headers.

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use serde_json::{Value, json};

use super::connection::AmqpSettings;
use super::{
    DLQ_BODY_KEEP, H_ATTEMPTS, H_BODY_BYTES, H_DEAD_AT, H_JOB_ID, H_REASON, H_ROUTING_KEY,
    MAX_ROUTING_KEY,
};
use crate::job::{Priority, ReflectionJob};
use crate::store::now_ms;

/// The routing key of a job: `reflection.<user_id>`, any characters (dots included; the
/// binding is `reflection.#`), cut at a character boundary to AMQP's 255 bytes.
pub fn routing_key(user_id: &str) -> String {
    let mut k = format!("reflection.{user_id}");
    if k.len() > MAX_ROUTING_KEY {
        let mut cut = MAX_ROUTING_KEY;
        while !k.is_char_boundary(cut) {
            cut -= 1;
        }
        k.truncate(cut);
    }
    k
}

/// Decode and check a job body; the error is the dead-letter reason, naming the problem.
pub fn decode_job(body: &[u8], max_bytes: usize) -> Result<ReflectionJob, String> {
    if body.len() > max_bytes {
        return Err(format!(
            "body is {} bytes, over the {max_bytes}-byte limit (max_body_bytes)",
            body.len()
        ));
    }
    let job = ReflectionJob::from_json(body)?;
    for (field, v) in [
        ("job_id", &job.job_id),
        ("user_id", &job.user_id),
        ("session_id", &job.session_id),
    ] {
        if v.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
        if v.len() > 256 {
            return Err(format!("{field} is {} bytes, over 256", v.len()));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("{field} contains control characters"));
        }
    }
    if !job.metadata.is_object() {
        return Err(format!(
            "metadata must be an object, got {}",
            crate::job::json_kind(&job.metadata)
        ));
    }
    Ok(job)
}

pub(super) fn lstr(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

pub(super) fn header_str(props: &BasicProperties, key: &str) -> Option<String> {
    let h = props.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

pub(super) fn header_int(props: &BasicProperties, key: &str) -> Option<i64> {
    let h = props.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(*v as i64),
        AMQPValue::LongUInt(v) => Some(*v as i64),
        AMQPValue::ShortInt(v) => Some(*v as i64),
        AMQPValue::ShortUInt(v) => Some(*v as i64),
        AMQPValue::ShortShortInt(v) => Some(*v as i64),
        AMQPValue::ShortShortUInt(v) => Some(*v as i64),
        _ => None,
    }
}

pub(super) fn persistent(
    priority: Priority,
    job_id: Option<&str>,
    headers: FieldTable,
) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_delivery_mode(2)
        .with_priority(priority.as_i64() as u8)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers);
    if let Some(id) = job_id {
        p = p.with_message_id(ShortString::from(id));
    }
    p
}

pub(super) fn mandatory() -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    }
}

/// Wait for a publisher confirm; a nack or a returned (unroutable) message is an error.
pub(super) async fn confirmed(pc: lapin::PublisherConfirm, what: &str) -> anyhow::Result<()> {
    let c = pc
        .await
        .map_err(|e| anyhow::anyhow!("{what}: no confirm: {e}"))?;
    if c.is_nack() {
        anyhow::bail!("{what}: the broker refused the message (nack)");
    }
    if let Some(ret) = c.take_message() {
        anyhow::bail!(
            "{what}: unroutable ({} {}): no queue bound for routing key {:?}",
            ret.reply_code,
            ret.reply_text,
            ret.delivery.routing_key.as_str()
        );
    }
    Ok(())
}

/// What the API shows of a dead-lettered message.
pub(super) fn describe_dead(d: &lapin::message::Delivery) -> Value {
    let body = String::from_utf8_lossy(&d.data[..d.data.len().min(512)]).into_owned();
    json!({
        "job_id": header_str(&d.properties, H_JOB_ID),
        "reason": header_str(&d.properties, H_REASON),
        "attempts": header_int(&d.properties, H_ATTEMPTS),
        "routing_key": header_str(&d.properties, H_ROUTING_KEY),
        "dead_at": header_str(&d.properties, H_DEAD_AT),
        "body_bytes": header_int(&d.properties, H_BODY_BYTES).unwrap_or(d.data.len() as i64),
        "body_start": body,
    })
}

/// Publish a copy of `d` to the DLQ with the reason (confirmed). Oversized bodies keep
/// their first 64 KiB.
pub(super) async fn dead_letter(
    ch: &Channel,
    s: &AmqpSettings,
    d: &lapin::message::Delivery,
    reason: &str,
    attempts: u32,
    job_id: Option<&str>,
) -> anyhow::Result<()> {
    let mut h = d.properties.headers().clone().unwrap_or_default();
    h.insert(H_REASON.into(), lstr(reason));
    h.insert(H_ATTEMPTS.into(), AMQPValue::LongLongInt(attempts as i64));
    if let Some(id) = job_id {
        h.insert(H_JOB_ID.into(), lstr(id));
    }
    if header_str(&d.properties, H_ROUTING_KEY).is_none() {
        h.insert(H_ROUTING_KEY.into(), lstr(d.routing_key.as_str()));
    }
    h.insert(
        H_DEAD_AT.into(),
        lstr(&crate::store::ms_to_rfc3339(now_ms())),
    );
    let body = if d.data.len() > s.max_job_bytes {
        h.insert(
            H_BODY_BYTES.into(),
            AMQPValue::LongLongInt(d.data.len() as i64),
        );
        &d.data[..DLQ_BODY_KEEP.min(d.data.len())]
    } else {
        &d.data[..]
    };
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(h);
    let pc = ch
        .basic_publish("".into(), s.dlq.as_str().into(), mandatory(), body, props)
        .await?;
    confirmed(pc, "dead-lettering").await?;
    metrics::counter!("reflector_amqp_dead_lettered_total").increment(1);
    Ok(())
}
