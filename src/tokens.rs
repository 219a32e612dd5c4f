//! Token estimation: how many tokens a text costs a model whose tokenizer we do not know.
//!
//! The service does not know which model will read a recalled context or a Tier 1 window, so
//! it cannot use that model's tokenizer; it estimates instead, erring on the high side: the
//! larger of `characters / 4` and `words × 4 / 3`, rounded up. Both ratios are OpenAI's
//! published rules of thumb for English text with its tokenizers ("one token generally
//! corresponds to ~4 characters of text", "100 tokens ≈ 75 words": OpenAI Help Center, *What
//! are tokens and how to count them?*). Taking the larger covers texts of short words (the
//! word rule dominates) and texts of long words, numbers and punctuation (the character rule
//! dominates).
//!
//! This module imports nothing from the project: the recall budget (`crate::recall::budget`)
//! and the Tier 1 window (`crate::store::derive`) both build on it.

/// Estimated tokens of `text` (see the module docs): `max(⌈chars/4⌉, ⌈words×4/3⌉)`.
pub fn estimate_tokens(text: &str) -> usize {
    let chars = text.chars().count();
    let words = text.split_whitespace().count();
    chars.div_ceil(4).max((words * 4).div_ceil(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_takes_the_larger_of_the_two_rules() {
        assert_eq!(estimate_tokens(""), 0);
        // 12 chars, 3 words: chars/4 = 3, words*4/3 = 4.
        assert_eq!(estimate_tokens("aaaa bbbb cc"), 4);
        // One long word of 40 chars: chars/4 = 10.
        assert_eq!(estimate_tokens(&"x".repeat(40)), 10);
    }
}
