//! Context budget: fit the rendered context ([`super::render`]) into `max_tokens` estimated
//! tokens ([`crate::tokens`]), keeping the highest-ranked items.
//!
//! **Order.** Items are admitted in this order, each only if the whole rendered block, with
//! the section headers it brings, still fits: the ranked `memories` by score (episodes,
//! facts, and the rules and recent turns that made the ranked list), then the other standing
//! rules in their usual order, then the other recent turns, newest first. An item that does
//! not fit is skipped and smaller, lower-ranked ones may still enter. The block keeps its
//! usual layout (sections and their order).

use std::collections::HashSet;

use super::{Context, OmittedItem, render};
use crate::store::ShortTermSummary;
use crate::tokens::estimate_tokens;

/// What fitting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The rendered block within the budget.
    pub context: String,
    /// Its estimated tokens (≤ the budget).
    pub tokens: usize,
    /// Items (memories, rules, turns, the Tier 1 summary) left out.
    pub omitted: usize,
    /// Which ones, in priority order, as [`OmittedItem`] names them.
    pub left_out: Vec<OmittedItem>,
}

enum Item {
    Memory(usize),
    Rule(i64),
    Turn(String),
}

/// Fit `ctx`'s context into `max_tokens` estimated tokens; the summary of the turns folded out
/// of the Tier 1 window (`earlier`) enters last, if the block with it still fits, else it is
/// the last item left out (id `short_term_summary`).
pub fn fit(ctx: &Context, earlier: Option<&ShortTermSummary>, max_tokens: usize) -> Fitted {
    // Candidates in priority order.
    let mut order: Vec<Item> = Vec::new();
    let mut seen_rules: HashSet<i64> = HashSet::new();
    let mut seen_turns: HashSet<&str> = HashSet::new();
    for (i, m) in ctx.memories.iter().enumerate() {
        match m.tier {
            "procedural" => {
                if let Ok(id) = m.id.parse::<i64>()
                    && ctx.rules.iter().take(20).any(|r| r.id == id)
                    && seen_rules.insert(id)
                {
                    order.push(Item::Rule(id));
                }
            }
            "short_term" => {
                if ctx.short_term.iter().any(|t| t.interaction_id == m.id)
                    && seen_turns.insert(&m.id)
                {
                    order.push(Item::Turn(m.id.clone()));
                }
            }
            _ => order.push(Item::Memory(i)),
        }
    }
    for r in ctx.rules.iter().take(20) {
        if seen_rules.insert(r.id) {
            order.push(Item::Rule(r.id));
        }
    }
    for t in &ctx.short_term {
        if seen_turns.insert(&t.interaction_id) {
            order.push(Item::Turn(t.interaction_id.clone()));
        }
    }
    let total = order.len();
    let (mut mems, mut rules, mut turns) = (Vec::new(), HashSet::new(), HashSet::new());
    let mut best = String::new();
    let mut left_out = Vec::new();
    for item in order {
        let undo = match &item {
            Item::Memory(i) => {
                mems.push(*i);
                0
            }
            Item::Rule(id) => {
                rules.insert(*id);
                1
            }
            Item::Turn(id) => {
                turns.insert(id.clone());
                2
            }
        };
        let text = render_subset(ctx, &mems, &rules, &turns, None);
        if estimate_tokens(&text) <= max_tokens {
            best = text;
        } else {
            left_out.push(describe(ctx, &item));
            match (undo, item) {
                (0, _) => {
                    mems.pop();
                }
                (1, Item::Rule(id)) => {
                    rules.remove(&id);
                }
                (_, Item::Turn(id)) => {
                    turns.remove(&id);
                }
                _ => {}
            }
        }
    }
    let kept = mems.len() + rules.len() + turns.len();
    let mut omitted = total - kept;
    if let Some(sm) = earlier.filter(|sm| !sm.summary.is_empty()) {
        let with = render_subset(ctx, &mems, &rules, &turns, Some(sm));
        if estimate_tokens(&with) <= max_tokens {
            best = with;
        } else {
            omitted += 1;
            left_out.push(OmittedItem {
                tier: "short_term",
                id: "short_term_summary".into(),
                text: sm.summary.clone(),
            });
        }
    }
    Fitted {
        tokens: estimate_tokens(&best),
        context: best,
        omitted,
        left_out,
    }
}

/// A candidate item as [`Fitted::left_out`] names it.
fn describe(ctx: &Context, item: &Item) -> OmittedItem {
    let (tier, id, text) = match item {
        Item::Memory(i) => {
            let m = &ctx.memories[*i];
            (m.tier, m.id.clone(), m.text.clone())
        }
        Item::Rule(id) => {
            let text = ctx
                .rules
                .iter()
                .find(|r| r.id == *id)
                .map(|r| r.statement.clone());
            ("procedural", id.to_string(), text.unwrap_or_default())
        }
        Item::Turn(id) => {
            let text = ctx
                .short_term
                .iter()
                .find(|t| t.interaction_id == *id)
                .map(|t| t.user_message.clone());
            ("short_term", id.clone(), text.unwrap_or_default())
        }
    };
    OmittedItem { tier, id, text }
}

fn render_subset(
    ctx: &Context,
    mems: &[usize],
    rules: &HashSet<i64>,
    turns: &HashSet<String>,
    earlier: Option<&ShortTermSummary>,
) -> String {
    let mut sorted = mems.to_vec();
    sorted.sort_unstable();
    let memories: Vec<_> = sorted.iter().map(|i| ctx.memories[*i].clone()).collect();
    let rules: Vec<_> = ctx
        .rules
        .iter()
        .filter(|r| rules.contains(&r.id))
        .cloned()
        .collect();
    let short_term: Vec<_> = ctx
        .short_term
        .iter()
        .filter(|t| turns.contains(&t.interaction_id))
        .cloned()
        .collect();
    render(&short_term, &memories, &rules, earlier)
}
