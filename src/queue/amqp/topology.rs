//! The broker topology: every exchange, queue and binding, declared on each new connection.
//!
//! Entities the original Python service declares (its `queue/producer.py` and consumer) are
//! declared here with exactly its type, durability and arguments, in its order, so that the
//! original producer and consumer are never refused (406 PRECONDITION_FAILED) on a broker we
//! set up, nor we on one they set up:
//!
//! | # | entity | name | type and arguments | owner |
//! |---|---|---|---|---|
//! | 1 | exchange | `memory_reflection_exchange` | topic, durable | original |
//! | 2 | queue | `memory_reflection_queue` | durable; `x-dead-letter-exchange` = `<exchange>.dlx`, `x-dead-letter-routing-key` = `failed`, `x-max-retries` = `max_retries` | original |
//! | 3 | binding | queue 2 ← exchange 1 | `reflection.#` (the original binds `reflection.*` too) | ours |
//! | 4 | exchange | `memory_reflection_exchange.dlx` | topic, durable | original |
//! | 5 | queue | `memory_reflection_dlq` | durable, no arguments | original |
//! | 6 | binding | queue 5 ← exchange 4 | `failed` | original |
//! | 7 | queue | `memory_reflection_queue.priority` | durable; `x-max-priority` = 3, dead-letters like queue 2 | ours |
//!
//! Delay queues (`<queue>.retry.<ms>ms`) are ours and declared when a retry first needs one.
//!
//! An entity that already exists with other settings (an operator's older deployment, say a
//! direct dead-letter exchange) does not stop the service: RabbitMQ's 406 names one
//! difference at a time, so the declaration is brought in line with what the broker holds,
//! difference by difference, each logged as a warning, until the broker accepts it (an
//! accepted re-declaration changes nothing: the entity is used as found). The differences
//! are kept in [`FoundEntity`] and shown by queue-status and health.

use std::collections::BTreeMap;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ErrorKind, ExchangeKind};
use serde::Serialize;
use serde_json::{Value, json};

use super::message::lstr;
use super::{AmqpSettings, DLQ_ROUTING_KEY, MAX_PRIORITY};

/// The routing key our intake binding uses: `reflection.#` matches user ids with dots,
/// which the original's `reflection.*` drops.
pub const INTAKE_BINDING: &str = "reflection.#";

/// At most this many differences are reconciled per entity before giving up.
const MAX_DIFFERENCES: usize = 8;

/// Who declares an entity besides us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// The original Python service declares it too, with these exact settings.
    Original,
    /// Only this service declares it.
    Ours,
}

/// An exchange or a queue as we declare it.
#[derive(Debug, Clone)]
struct Declaration {
    /// `"exchange"` or `"queue"`.
    entity: &'static str,
    name: String,
    owner: Owner,
    /// Exchange type (`topic`, `direct`, …); empty for a queue.
    kind: String,
    durable: bool,
    auto_delete: bool,
    /// `internal` for an exchange, `exclusive` for a queue.
    internal_or_exclusive: bool,
    arguments: BTreeMap<String, AMQPValue>,
}

impl Declaration {
    fn exchange(name: String, kind: &str, owner: Owner) -> Self {
        Self {
            entity: "exchange",
            name,
            owner,
            kind: kind.to_string(),
            durable: true,
            auto_delete: false,
            internal_or_exclusive: false,
            arguments: BTreeMap::new(),
        }
    }

    fn queue(name: String, arguments: BTreeMap<String, AMQPValue>, owner: Owner) -> Self {
        Self {
            entity: "queue",
            name,
            owner,
            kind: String::new(),
            durable: true,
            auto_delete: false,
            internal_or_exclusive: false,
            arguments,
        }
    }

    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        let table = FieldTable::from(
            self.arguments
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        );
        if self.entity == "exchange" {
            let kind = match self.kind.as_str() {
                "topic" => ExchangeKind::Topic,
                "direct" => ExchangeKind::Direct,
                "fanout" => ExchangeKind::Fanout,
                "headers" => ExchangeKind::Headers,
                other => ExchangeKind::Custom(other.to_string()),
            };
            let opts = ExchangeDeclareOptions {
                durable: self.durable,
                auto_delete: self.auto_delete,
                internal: self.internal_or_exclusive,
                ..ExchangeDeclareOptions::default()
            };
            ch.exchange_declare(self.name.as_str().into(), kind, opts, table)
                .await
        } else {
            let opts = QueueDeclareOptions {
                durable: self.durable,
                auto_delete: self.auto_delete,
                exclusive: self.internal_or_exclusive,
                ..QueueDeclareOptions::default()
            };
            ch.queue_declare(self.name.as_str().into(), opts, table)
                .await
                .map(|_| ())
        }
    }

    /// Bring this declaration in line with one difference the broker named; false when the
    /// difference cannot be read (the declaration is then left as it is).
    fn adopt(&mut self, d: &Difference) -> bool {
        let flag = |v: &Option<(String, String)>| v.as_ref().map(|(v, _)| v == "true");
        match d.argument.as_str() {
            "type" if self.entity == "exchange" => match &d.current {
                Some((v, _)) => self.kind = v.clone(),
                None => return false,
            },
            "durable" => match flag(&d.current) {
                Some(b) => self.durable = b,
                None => return false,
            },
            "auto_delete" => match flag(&d.current) {
                Some(b) => self.auto_delete = b,
                None => return false,
            },
            "internal" | "exclusive" => match flag(&d.current) {
                Some(b) => self.internal_or_exclusive = b,
                None => return false,
            },
            arg => match &d.current {
                None => {
                    if self.arguments.remove(arg).is_none() {
                        return false;
                    }
                }
                Some((v, ty)) => match typed_value(v, ty) {
                    Some(value) => {
                        self.arguments.insert(arg.to_string(), value);
                    }
                    None => return false,
                },
            },
        }
        true
    }

    /// The declaration as JSON: `{"type"?, "durable", "arguments"}`.
    fn describe(&self) -> Value {
        let args: serde_json::Map<String, Value> = self
            .arguments
            .iter()
            .map(|(k, v)| (k.clone(), amqp_json(v)))
            .collect();
        let mut v = json!({"durable": self.durable, "arguments": args});
        if self.entity == "exchange" {
            v["type"] = json!(self.kind);
        }
        v
    }
}

/// One difference named by a 406: the argument, and the broker's current value with its
/// type (`None`: the broker's entity has no such argument).
#[derive(Debug, Clone, PartialEq)]
struct Difference {
    argument: String,
    current: Option<(String, String)>,
}

/// Read RabbitMQ's equivalence error, for example
/// `inequivalent arg 'type' for exchange 'x' in vhost '/': received 'topic' but current is 'direct'`
/// or `… received none but current is the value 'x.dlx' of type 'longstr'`
/// (rabbit_misc:assert_args_equivalence, RabbitMQ 3.x). `None` for any other message.
fn parse_difference(msg: &str) -> Option<Difference> {
    let rest = msg.split("inequivalent arg '").nth(1)?;
    let argument = rest.split('\'').next()?.to_string();
    let current = rest.rsplit("but current is ").next()?.trim();
    let current = if current.starts_with("none") {
        None
    } else if let Some(v) = current.strip_prefix("the value '") {
        let (value, tail) = v.split_once("' of type '")?;
        Some((value.to_string(), tail.trim_end_matches('\'').to_string()))
    } else {
        let v = current.strip_prefix('\'')?.strip_suffix('\'')?;
        Some((v.to_string(), "longstr".to_string()))
    };
    Some(Difference { argument, current })
}

/// An argument value of RabbitMQ's type name (as its errors print them).
fn typed_value(v: &str, ty: &str) -> Option<AMQPValue> {
    Some(match ty {
        "longstr" => lstr(v),
        "bool" => AMQPValue::Boolean(v == "true"),
        "byte" => AMQPValue::ShortShortInt(v.parse().ok()?),
        "short" => AMQPValue::ShortInt(v.parse().ok()?),
        "signedint" => AMQPValue::LongInt(v.parse().ok()?),
        "long" => AMQPValue::LongLongInt(v.parse().ok()?),
        "unsignedbyte" => AMQPValue::ShortShortUInt(v.parse().ok()?),
        "unsignedshort" => AMQPValue::ShortUInt(v.parse().ok()?),
        "unsignedint" => AMQPValue::LongUInt(v.parse().ok()?),
        _ => return None,
    })
}

/// An integer argument encoded as the original's client library (pamqp) encodes a Python
/// int: the smallest signed type that holds it (`b`, `s`, `I`, else `l`).
fn pamqp_int(v: i64) -> AMQPValue {
    if let Ok(b) = i8::try_from(v) {
        AMQPValue::ShortShortInt(b)
    } else if let Ok(s) = i16::try_from(v) {
        AMQPValue::ShortInt(s)
    } else if let Ok(i) = i32::try_from(v) {
        AMQPValue::LongInt(i)
    } else {
        AMQPValue::LongLongInt(v)
    }
}

fn amqp_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        other => json!(format!("{other:?}")),
    }
}

/// An entity of the topology as this process found it on its last connection.
#[derive(Debug, Clone, Serialize)]
pub struct FoundEntity {
    /// `"exchange"`, `"queue"` or `"binding"`.
    pub entity: &'static str,
    /// Its name; for a binding `<queue> <- <exchange> (<routing key>)`.
    pub name: String,
    /// Whether the original service declares it too.
    pub owner: Owner,
    /// What we declare: `{"type"? , "durable", "arguments"}`; `{}` for a binding.
    pub declared: Value,
    /// `"as declared"`, or `"differs"`: the broker's entity has other settings, and is used
    /// as it is.
    pub status: &'static str,
    /// The broker's words for each difference (empty when `status` is `"as declared"`).
    pub differences: Vec<String>,
}

/// The dead-letter arguments of the intake and the priority queue: to the original's
/// dead-letter exchange with its routing key.
fn dead_letter_args(s: &AmqpSettings) -> BTreeMap<String, AMQPValue> {
    BTreeMap::from([
        ("x-dead-letter-exchange".to_string(), lstr(&s.dlx())),
        (
            "x-dead-letter-routing-key".to_string(),
            lstr(DLQ_ROUTING_KEY),
        ),
    ])
}

/// Every exchange and queue, in the original's declaration order, then ours.
fn declarations(s: &AmqpSettings) -> Vec<Declaration> {
    let mut intake = dead_letter_args(s);
    intake.insert("x-max-retries".into(), pamqp_int(s.max_retries as i64));
    let mut work = dead_letter_args(s);
    work.insert(
        "x-max-priority".into(),
        AMQPValue::ShortShortUInt(MAX_PRIORITY),
    );
    vec![
        Declaration::exchange(s.exchange.clone(), "topic", Owner::Original),
        Declaration::queue(s.queue.clone(), intake, Owner::Original),
        Declaration::exchange(s.dlx(), "topic", Owner::Original),
        Declaration::queue(s.dlq.clone(), BTreeMap::new(), Owner::Original),
        Declaration::queue(s.work_queue(), work, Owner::Ours),
    ]
}

/// The 406 PRECONDITION_FAILED message of a refused declaration, if that is what `e` is.
fn precondition_failed(e: &lapin::Error) -> Option<String> {
    match e.kind() {
        ErrorKind::ProtocolError(a) if a.get_id() == 406 => Some(a.get_message().to_string()),
        _ => None,
    }
}

/// Declare one entity; where the broker holds it with other settings, adopt them one
/// difference at a time (each logged) and use the entity as found. A refused declaration
/// closes its channel, so a new one is opened for the next attempt; `ch` is the live one.
async fn declare_tolerant(
    conn: &Connection,
    ch: &mut Channel,
    mut d: Declaration,
) -> anyhow::Result<FoundEntity> {
    let declared = d.describe();
    let mut differences = Vec::new();
    loop {
        let err = match d.declare(ch).await {
            Ok(()) => break,
            Err(e) => e,
        };
        let Some(msg) = precondition_failed(&err) else {
            return Err(err.into());
        };
        *ch = conn.create_channel().await?;
        tracing::warn!(entity = d.entity, name = %d.name, difference = %msg,
            "RabbitMQ holds this entity with other settings than ours; using it as it is");
        differences.push(msg.clone());
        let adopted = parse_difference(&msg).is_some_and(|diff| d.adopt(&diff));
        if !adopted || differences.len() >= MAX_DIFFERENCES {
            // Cannot read the difference: check the entity exists, and use it as it is.
            passive(ch, &d).await.map_err(|e| {
                anyhow::anyhow!(
                    "{} {:?}: refused ({msg}), and not found: {e}",
                    d.entity,
                    d.name
                )
            })?;
            break;
        }
    }
    Ok(FoundEntity {
        entity: d.entity,
        name: d.name,
        owner: d.owner,
        declared,
        status: if differences.is_empty() {
            "as declared"
        } else {
            "differs"
        },
        differences,
    })
}

/// A passive declaration: succeeds when the entity exists, whatever its settings.
async fn passive(ch: &Channel, d: &Declaration) -> lapin::Result<()> {
    if d.entity == "exchange" {
        let opts = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        ch.exchange_declare(
            d.name.as_str().into(),
            ExchangeKind::Direct,
            opts,
            FieldTable::default(),
        )
        .await
    } else {
        let opts = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        ch.queue_declare(d.name.as_str().into(), opts, FieldTable::default())
            .await
            .map(|_| ())
    }
}

async fn bind(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
    owner: Owner,
) -> anyhow::Result<FoundEntity> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(FoundEntity {
        entity: "binding",
        name: format!("{queue} <- {exchange} ({key})"),
        owner,
        declared: json!({}),
        status: "as declared",
        differences: Vec::new(),
    })
}

/// Declare the whole topology on `conn` (idempotent), in the original's order: the
/// exchange, the intake queue and our binding of it, the dead-letter exchange, the DLQ and
/// its binding, then our priority queue. Returns each entity as found; errors only when the
/// broker refuses something that cannot be used as found (or is unreachable).
pub async fn declare_topology(
    conn: &Connection,
    s: &AmqpSettings,
) -> anyhow::Result<Vec<FoundEntity>> {
    let mut ch = conn.create_channel().await?;
    let mut found = Vec::new();
    let mut decls = declarations(s).into_iter();
    let mut next = || decls.next().expect("five declarations");
    found.push(declare_tolerant(conn, &mut ch, next()).await?); // exchange
    found.push(declare_tolerant(conn, &mut ch, next()).await?); // intake
    found.push(bind(&ch, &s.queue, &s.exchange, INTAKE_BINDING, Owner::Ours).await?);
    found.push(declare_tolerant(conn, &mut ch, next()).await?); // dead-letter exchange
    found.push(declare_tolerant(conn, &mut ch, next()).await?); // DLQ
    found.push(bind(&ch, &s.dlq, &s.dlx(), DLQ_ROUTING_KEY, Owner::Original).await?);
    found.push(declare_tolerant(conn, &mut ch, next()).await?); // priority queue
    let _ = ch.close(200, "topology declared".into()).await;
    Ok(found)
}

/// Declare the delay queue for `ms` (idempotent): messages expire after `ms` and are
/// dead-lettered back into the priority queue.
pub(super) async fn declare_delay_queue(
    ch: &Channel,
    s: &AmqpSettings,
    ms: u64,
) -> anyhow::Result<String> {
    let name = s.delay_queue(ms);
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms as i64));
    args.insert("x-dead-letter-exchange".into(), lstr(""));
    args.insert("x-dead-letter-routing-key".into(), lstr(&s.work_queue()));
    ch.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
        .await?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rabbitmqs_equivalence_errors() {
        let d = parse_difference("PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x.dlx' in vhost '/': received 'topic' but current is 'direct'").unwrap();
        assert_eq!(d.argument, "type");
        assert_eq!(d.current, Some(("direct".into(), "longstr".into())));
        let d = parse_difference("PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost '/': received none but current is the value 'q.dlx' of type 'longstr'").unwrap();
        assert_eq!(d.current, Some(("q.dlx".into(), "longstr".into())));
        let d = parse_difference("PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q' in vhost '/': received the value '3' of type 'byte' but current is none").unwrap();
        assert_eq!(d.argument, "x-max-priority");
        assert_eq!(d.current, None);
        assert!(parse_difference("PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined").is_none());
    }

    #[test]
    fn adopting_a_difference_changes_only_that_setting() {
        let mut d = Declaration::exchange("x.dlx".into(), "topic", Owner::Original);
        let diff = |a: &str, c: Option<(&str, &str)>| Difference {
            argument: a.into(),
            current: c.map(|(v, t)| (v.into(), t.into())),
        };
        assert!(d.adopt(&diff("type", Some(("direct", "longstr")))));
        assert_eq!((d.kind.as_str(), d.durable), ("direct", true));
        assert!(d.adopt(&diff("durable", Some(("false", "longstr")))));
        assert!(!d.durable);

        let mut q = Declaration::queue(
            "q".into(),
            BTreeMap::from([("x-max-priority".to_string(), AMQPValue::ShortShortUInt(3))]),
            Owner::Ours,
        );
        assert!(q.adopt(&diff("x-max-priority", None)));
        assert!(q.arguments.is_empty());
        // Removing an argument we do not send reads nothing new: give up, use as found.
        assert!(!q.adopt(&diff("x-max-priority", None)));
        assert!(q.adopt(&diff("x-max-length", Some(("10", "signedint")))));
        assert_eq!(q.arguments["x-max-length"], AMQPValue::LongInt(10));
        assert!(!q.adopt(&diff("x-foo", Some(("?", "table")))));
    }

    #[test]
    fn the_original_declarations_come_first_with_its_arguments() {
        let s = AmqpSettings::new("amqp://localhost");
        let d = declarations(&s);
        let summary: Vec<_> = d
            .iter()
            .map(|d| (d.entity, d.name.as_str(), d.kind.as_str(), d.owner))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "exchange",
                    "memory_reflection_exchange",
                    "topic",
                    Owner::Original
                ),
                ("queue", "memory_reflection_queue", "", Owner::Original),
                (
                    "exchange",
                    "memory_reflection_exchange.dlx",
                    "topic",
                    Owner::Original
                ),
                ("queue", "memory_reflection_dlq", "", Owner::Original),
                ("queue", "memory_reflection_queue.priority", "", Owner::Ours),
            ]
        );
        assert_eq!(
            d[1].describe()["arguments"],
            json!({
                "x-dead-letter-exchange": "memory_reflection_exchange.dlx",
                "x-dead-letter-routing-key": "failed",
                "x-max-retries": 3,
            })
        );
        assert_eq!(d[1].arguments["x-max-retries"], AMQPValue::ShortShortInt(3));
        assert_eq!(pamqp_int(300), AMQPValue::ShortInt(300));
    }
}
