//! The whole answer of `GET /api/memory/context/{user_id}`, made in one place: the recalled
//! items ([`Recall::context`]), the summary of the turns folded out of the Tier 1 window, and
//! the prompt block — fitted to a token budget when one is asked for ([`super::budget`]) —
//! with its estimated size ([`crate::tokens`]). The handler only parses, calls and answers.

use serde::Serialize;

use super::{Context, Recall, RecallQuery, budget, render};
use crate::store::ShortTermSummary;
use crate::tokens::estimate_tokens;

/// An item the token budget left out of the context block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OmittedItem {
    /// The item's tier as the ranked `memories` name it (`episodic`, `semantic`,
    /// `procedural`, `short_term`).
    pub tier: &'static str,
    /// Its id in that tier (the interaction id for a turn); `short_term_summary` for the
    /// summary of the turns folded out of the Tier 1 window.
    pub id: String,
    pub text: String,
}

/// The context endpoint's answer: [`Context`]'s fields (its `context` the final block), and
/// the block's size and what a budget left out.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    #[serde(flatten)]
    pub recalled: Context,
    /// Estimated tokens of `recalled.context` ([`crate::tokens::estimate_tokens`]).
    pub context_tokens: usize,
    /// The budget asked for (estimated tokens); only with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// How many items the budget left out; only with a budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted: Option<usize>,
    /// Which ones, highest priority first; only with a budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_items: Option<Vec<OmittedItem>>,
    /// The user's running summary of the turns folded out of the Tier 1 window, if any.
    pub short_term_summary: Option<ShortTermSummary>,
}

impl Answer {
    /// The answer from what recall found and the user's Tier 1 summary: the summary enters the
    /// block just before the recent conversation, and with `max_tokens` the block is fitted
    /// to that many estimated tokens, highest-ranked items first ([`budget::fit`]).
    pub fn assemble(
        mut recalled: Context,
        summary: Option<ShortTermSummary>,
        max_tokens: Option<usize>,
    ) -> Self {
        match max_tokens {
            Some(n) => {
                let f = budget::fit(&recalled, summary.as_ref(), n);
                recalled.context = f.context;
                Self {
                    recalled,
                    context_tokens: f.tokens,
                    max_tokens,
                    omitted: Some(f.omitted),
                    omitted_items: Some(f.left_out),
                    short_term_summary: summary,
                }
            }
            None => {
                if summary.as_ref().is_some_and(|s| !s.summary.is_empty()) {
                    recalled.context = render(
                        &recalled.short_term,
                        &recalled.memories,
                        &recalled.rules,
                        summary.as_ref(),
                    );
                }
                Self {
                    context_tokens: estimate_tokens(&recalled.context),
                    recalled,
                    max_tokens: None,
                    omitted: None,
                    omitted_items: None,
                    short_term_summary: summary,
                }
            }
        }
    }
}

impl Recall {
    /// The whole context answer for `q` (see [`Answer::assemble`]); `max_tokens`: the budget
    /// in estimated tokens, `None` for none. Records `reflector_recall_seconds`.
    ///
    /// Errors: the store's or the embedder's.
    pub async fn answer(
        &self,
        q: RecallQuery,
        max_tokens: Option<usize>,
    ) -> anyhow::Result<Answer> {
        let start = std::time::Instant::now();
        let recalled = self.context(q).await?;
        let user = recalled.user_id.clone();
        let summary = self.store.run(move |s| s.short_term_summary(&user)).await?;
        let answer = Answer::assemble(recalled, summary, max_tokens);
        metrics::histogram!("reflector_recall_seconds").record(start.elapsed().as_secs_f64());
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TurnRow;

    fn turn(id: &str, text: &str) -> TurnRow {
        TurnRow {
            interaction_id: id.into(),
            user_id: "u".into(),
            session_id: "s".into(),
            user_message: text.into(),
            assistant_response: String::new(),
            timestamp: "2026-05-01T10:00:00Z".into(),
            ts_ms: 1_777_629_600_000,
            metadata: serde_json::Value::Null,
            reflection_job_id: format!("j-{id}"),
            reflected: false,
        }
    }

    fn recalled() -> Context {
        let short_term = vec![turn("t2", "second"), turn("t1", "first")];
        Context {
            user_id: "u".into(),
            query: String::new(),
            context: render(&short_term, &[], &[], None),
            short_term,
            episodes: vec![],
            facts: vec![],
            rules: vec![],
            memories: vec![],
        }
    }

    fn summary(text: &str) -> ShortTermSummary {
        ShortTermSummary {
            summary: text.into(),
            folded_turns: 3,
            through: "2026-04-30T10:00:00Z".into(),
            updated_at: "2026-05-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn the_summary_goes_just_before_the_recent_conversation() {
        let a = Answer::assemble(recalled(), Some(summary("a\nb")), None);
        let ctx = &a.recalled.context;
        let earlier = ctx.find("## Earlier conversation (summary of 3 older turns)\n- a\n- b\n\n");
        let recent = ctx.find("## Recent conversation");
        assert!(earlier.is_some() && earlier < recent, "{ctx}");
        assert_eq!(a.context_tokens, estimate_tokens(ctx));
        assert!(a.omitted.is_none() && a.max_tokens.is_none());
    }

    #[test]
    fn an_empty_summary_leaves_the_block_as_recalled() {
        let r = recalled();
        let a = Answer::assemble(r.clone(), Some(summary("")), None);
        assert_eq!(a.recalled.context, r.context);
    }

    #[test]
    fn a_summary_over_the_budget_is_the_last_item_left_out() {
        let r = recalled();
        let n = estimate_tokens(&r.context);
        let a = Answer::assemble(r.clone(), Some(summary(&"word ".repeat(50))), Some(n));
        assert_eq!(a.recalled.context, r.context);
        assert_eq!(a.context_tokens, n);
        assert_eq!(a.omitted, Some(1));
        let items = a.omitted_items.unwrap();
        assert_eq!(items.last().unwrap().id, "short_term_summary");
        let roomy = Answer::assemble(r, Some(summary("a")), Some(10_000));
        assert!(roomy.recalled.context.contains("## Earlier conversation"));
        assert_eq!(roomy.omitted, Some(0));
    }
}
