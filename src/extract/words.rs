//! Whole-word tokenisation and matching shared by the extractors.
//!
//! Every keyword test in `extract` goes through this module so that matching is always by
//! whole words, never by substring: "hi" does not match "this", "high" or "history".
//!
//! - [`tokens`], [`has_word`], [`has_phrase`], [`is_stopword`]: the basic vocabulary.
//! - [`spans`]: tokens with their byte offsets and original spelling (for capitalisation).
//! - [`sentences`]: sentences of tokens with common English contractions expanded
//!   ("I'm" → `i am`, "don't" → `do not`) and clause boundaries marked, the shape the
//!   pattern-based extractors (`graph`, `rules`, `curate`) work on.
//! - [`split_caption`]: separates the speaker's own words from an appended photo caption.
//! - Pattern helpers over [`Tok`]s used by `graph` and `rules`: [`match_seq`] (a word
//!   sequence, adverbs allowed in between), [`object_phrase`] (the noun phrase a pattern
//!   takes as its object), [`is_question`], [`hedged`] ("if", "maybe") and
//!   [`no_longer_after`] ("anymore").
//!
//! All functions are total: any input, including empty strings and arbitrary Unicode,
//! yields a (possibly empty) result and never panics.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Characters accepted as an apostrophe inside a word; all are normalised to `'`.
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}')
}

/// One word of a text: its original spelling, the normalised lower-case form and its
/// byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span<'a> {
    /// The word as written (original case, original apostrophe).
    pub text: &'a str,
    /// Lower-case form with apostrophes normalised to `'`.
    pub word: String,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Span<'_> {
    /// True when the word starts with an upper-case letter as written.
    pub fn is_capitalised(&self) -> bool {
        self.text.chars().next().is_some_and(char::is_uppercase)
    }
}

fn normalise_word(s: &str) -> String {
    s.chars()
        .map(|c| if is_apostrophe(c) { '\'' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text` with their positions. A word is a run of alphanumeric characters;
/// an apostrophe is kept only between two alphanumeric characters ("don't", "Mel's").
pub fn spans(text: &str) -> Vec<Span<'_>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut j = i + 1;
        while j < chars.len() {
            let c = chars[j].1;
            if c.is_alphanumeric() {
                j += 1;
            } else if is_apostrophe(c) && j + 1 < chars.len() && chars[j + 1].1.is_alphanumeric() {
                j += 2;
            } else {
                break;
            }
        }
        let end = if j < chars.len() {
            chars[j].0
        } else {
            text.len()
        };
        let slice = &text[start..end];
        out.push(Span {
            text: slice,
            word: normalise_word(slice),
            start,
            end,
        });
        i = j;
    }
    out
}

/// Lower-case alphanumeric words of `text`, apostrophes kept inside words ("don't").
pub fn tokens(text: &str) -> Vec<String> {
    spans(text).into_iter().map(|s| s.word).collect()
}

/// True when `word` occurs in `text` as a whole word (case-insensitive). A `word` made of
/// several words is treated as a phrase ([`has_phrase`]).
pub fn has_word(text: &str, word: &str) -> bool {
    let wanted = tokens(word);
    match wanted.len() {
        0 => false,
        1 => tokens(text).iter().any(|t| *t == wanted[0]),
        _ => has_phrase(text, word),
    }
}

/// True when the words of `phrase` occur consecutively in `text` (whole words,
/// case-insensitive, punctuation between words ignored).
pub fn has_phrase(text: &str, phrase: &str) -> bool {
    let wanted = tokens(phrase);
    if wanted.is_empty() {
        return false;
    }
    contains_seq(&tokens(text), &wanted)
}

/// True when `seq` occurs as a consecutive run inside `haystack`.
pub fn contains_seq<S: AsRef<str>, T: AsRef<str>>(haystack: &[S], seq: &[T]) -> bool {
    !seq.is_empty()
        && haystack.len() >= seq.len()
        && haystack
            .windows(seq.len())
            .any(|w| w.iter().zip(seq).all(|(a, b)| a.as_ref() == b.as_ref()))
}

#[rustfmt::skip]
const STOPWORD_LIST: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "aren't", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "can't", "cannot", "could", "couldn't", "did", "didn't", "do",
    "does", "doesn't", "doing", "don't", "down", "during", "each", "even", "ever", "every", "few",
    "for", "from", "further", "get", "got", "had", "hadn't", "has", "hasn't", "have", "haven't",
    "having", "he", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him",
    "himself", "his", "how", "how's", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "into", "is",
    "isn't", "it", "it's", "its", "itself", "just", "let's", "like", "me", "more", "most", "much",
    "must", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or",
    "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "really", "same", "she",
    "she'd", "she'll", "she's", "should", "shouldn't", "so", "some", "such", "than", "that",
    "that's", "the", "their", "theirs", "them", "themselves", "then", "there", "there's", "these",
    "they", "they'd", "they'll", "they're", "they've", "this", "those", "through", "to", "too",
    "under", "until", "up", "us", "very", "was", "wasn't", "we", "we'd", "we'll", "we're", "we've",
    "were", "weren't", "what", "what's", "when", "when's", "where", "where's", "which", "while",
    "who", "who's", "whom", "why", "why's", "will", "with", "won't", "would", "wouldn't", "yet",
    "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself", "yourselves", "im",
    "dont", "its", "ive", "id",
];

static STOPWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOPWORD_LIST.iter().copied().collect());

/// True for common English function words ("the", "and", "i'm", "would", …). `w` is compared
/// lower-cased.
pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(normalise_word(w.trim()).as_str())
}

/// A word of a [`Sentence`], after contraction expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    /// Lower-case word ("i", "am", "not", "berlin").
    pub word: String,
    /// The written word started with an upper-case letter. For an expanded contraction only
    /// the first part carries it ("I'm" → `i` (true), `am` (false)).
    pub cap: bool,
    /// Byte range of the written word in the text given to [`sentences`]; the parts of an
    /// expanded contraction share the range of the written word.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
    /// Clause punctuation (`, ; : ( ) " —` or a sentence end) follows this token.
    pub boundary_after: bool,
}

/// One sentence of a text as tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence<'a> {
    /// The sentence as written, including its final punctuation.
    pub text: &'a str,
    /// Byte offset of `text` in the whole text.
    pub start: usize,
    /// The sentence's words, contractions expanded.
    pub toks: Vec<Tok>,
    /// The sentence ends with a question mark.
    pub question: bool,
}

impl Sentence<'_> {
    /// The lower-case words of the sentence.
    pub fn words(&self) -> Vec<&str> {
        self.toks.iter().map(|t| t.word.as_str()).collect()
    }
}

/// Words the grammar and the lexicon turn on (kin and partner roles, the verbs of the common
/// slots, negation and time words of rules), which everyday typing misspells: a word one
/// slip away from exactly one of them is read as it ([`spelling`]).
#[rustfmt::skip]
const SPELLED: &[&str] = &[
    "husband", "boyfriend", "girlfriend", "partner", "fiance", "sister", "brother", "mother",
    "father", "daughter", "daughters", "parents", "cousin", "nephew", "grandma", "grandpa",
    "grandmother", "grandfather", "colleague", "roommate", "flatmate", "neighbour", "neighbor",
    "friend", "children", "work", "works", "working", "worked", "live", "lives", "living",
    "lived", "move", "moved", "moving", "married", "engaged", "divorced", "separated",
    "started", "joined", "retired", "relocated", "quit", "anymore", "because", "always",
    "never", "vegetarian", "vegan", "allergic", "favourite", "favorite", "answer", "answers",
    "instead", "bullet", "points", "english", "spanish", "french", "german",
];

/// Real words that one slip from a [`SPELLED`] word would otherwise rewrite.
const REAL_NEAR: &[&str] = &["marred", "fried", "fiend", "lve", "wok", "mover", "brothe"];

/// The word of [`SPELLED`] that `w` misspells by one slip — a vowel left out ("husbnd",
/// "wrk"), one of a doubled letter left out ("maried"), a letter doubled ("sisster"), or two
/// neighbours swapped ("wokrs") — when exactly one such word exists.
pub fn spelling(w: &str) -> Option<&'static str> {
    if w.len() < 3 || !w.bytes().all(|b| b.is_ascii_lowercase()) || SPELLED.contains(&w) {
        return None;
    }
    if REAL_NEAR.contains(&w) || is_stopword(w) {
        return None;
    }
    let b = w.as_bytes();
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    let one_slip = |t: &str| -> bool {
        let t = t.as_bytes();
        if t.len() < 4 || t[0] != b[0] && t.len() == b.len() {
            return false;
        }
        if t.len() == b.len() + 1 {
            // `w` is `t` with letter `k` left out: a vowel, or one of a doubled letter.
            return (0..t.len()).any(|k| {
                (vowel(t[k]) || (k > 0 && t[k - 1] == t[k]) || t.get(k + 1) == Some(&t[k]))
                    && t[..k] == b[..k]
                    && t[k + 1..] == b[k..]
            });
        }
        if b.len() == t.len() + 1 {
            // A letter doubled.
            return (1..b.len())
                .any(|k| b[k] == b[k - 1] && b[..k] == t[..k] && b[k + 1..] == t[k..]);
        }
        if b.len() == t.len() {
            let diff: Vec<usize> = (0..b.len()).filter(|&k| b[k] != t[k]).collect();
            return diff.len() == 2
                && diff[1] == diff[0] + 1
                && b[diff[0]] == t[diff[1]]
                && b[diff[1]] == t[diff[0]];
        }
        false
    };
    let mut found = SPELLED.iter().filter(|t| one_slip(t));
    let first = found.next()?;
    found.next().is_none().then_some(*first)
}

/// Contractions expanded before pattern matching. Possessives ("mom's") are left alone.
fn expansion(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "i'm" | "im" => &["i", "am"],
        "i've" | "ive" => &["i", "have"],
        "i'd" => &["i", "would"],
        "i'll" => &["i", "will"],
        "don't" | "dont" => &["do", "not"],
        "doesn't" | "doesnt" => &["does", "not"],
        "didn't" | "didnt" => &["did", "not"],
        "can't" | "cant" | "cannot" => &["can", "not"],
        "won't" => &["will", "not"],
        "isn't" | "isnt" => &["is", "not"],
        "aren't" | "arent" => &["are", "not"],
        "wasn't" | "wasnt" => &["was", "not"],
        "weren't" => &["were", "not"],
        "haven't" | "havent" => &["have", "not"],
        "hasn't" | "hasnt" => &["has", "not"],
        "hadn't" => &["had", "not"],
        "wouldn't" | "wouldnt" => &["would", "not"],
        "couldn't" | "couldnt" => &["could", "not"],
        "shouldn't" | "shouldnt" => &["should", "not"],
        "ain't" => &["am", "not"],
        "it's" => &["it", "is"],
        "that's" | "thats" => &["that", "is"],
        "what's" | "whats" => &["what", "is"],
        "how's" => &["how", "is"],
        "where's" => &["where", "is"],
        "who's" => &["who", "is"],
        "there's" => &["there", "is"],
        "here's" => &["here", "is"],
        "you're" | "youre" => &["you", "are"],
        "you've" => &["you", "have"],
        "you'll" => &["you", "will"],
        "you'd" => &["you", "would"],
        "we're" => &["we", "are"],
        "we've" => &["we", "have"],
        "we'll" => &["we", "will"],
        "we'd" => &["we", "would"],
        "they're" => &["they", "are"],
        "they've" => &["they", "have"],
        "they'll" => &["they", "will"],
        "he's" => &["he", "is"],
        "she's" => &["she", "is"],
        "he'll" => &["he", "will"],
        "she'll" => &["she", "will"],
        "it'll" => &["it", "will"],
        "let's" => &["let", "us"],
        "gonna" => &["going", "to"],
        "wanna" => &["want", "to"],
        "gotta" => &["got", "to"],
        "how've" => &["how", "have"],
        _ => return None,
    })
}

const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "prof", "mt", "ft", "etc", "approx", "dept",
];

fn is_clause_punct(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | ':'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '"'
            | '\u{201C}'
            | '\u{201D}'
            | '\u{2014}'
            | '\u{2013}'
            | '.'
            | '!'
            | '?'
            | '\u{2026}'
            | '\n'
    )
}

/// True when the gap between two words ends a sentence.
fn gap_ends_sentence(gap: &str, prev_word: &str) -> bool {
    if gap.contains('\n') {
        return true;
    }
    let mut seen_end = false;
    for c in gap.chars() {
        if matches!(c, '.' | '!' | '?' | '\u{2026}') {
            seen_end = true;
        } else if seen_end && c.is_whitespace() {
            // "Dr. Smith": a full stop after an abbreviation does not end the sentence.
            let only_dot = !gap.contains(['!', '?', '\u{2026}']);
            return !(only_dot && ABBREVIATIONS.contains(&prev_word));
        }
    }
    false
}

fn gap_is_boundary(gap: &str) -> bool {
    gap.chars().any(is_clause_punct) || gap.contains(" - ")
}

/// Splits `text` into sentences of tokens (contractions expanded, clause boundaries marked).
/// Sentences end at `.`, `!`, `?` or `…` followed by white space (not after "Dr." and similar
/// abbreviations), at line breaks and at the end of the text.
pub fn sentences(text: &str) -> Vec<Sentence<'_>> {
    let sp = spans(text);
    let mut out = Vec::new();
    let mut current: Vec<Tok> = Vec::new();
    let mut sent_start = 0usize;
    for (idx, s) in sp.iter().enumerate() {
        if current.is_empty() {
            sent_start = s.start;
        }
        let cap = s.is_capitalised();
        match expansion(&s.word) {
            Some(parts) => {
                for (k, p) in parts.iter().enumerate() {
                    current.push(Tok {
                        word: (*p).to_string(),
                        cap: cap && k == 0,
                        start: s.start,
                        end: s.end,
                        boundary_after: false,
                    });
                }
            }
            None => current.push(Tok {
                word: spelling(&s.word).map_or_else(|| s.word.clone(), str::to_string),
                cap,
                start: s.start,
                end: s.end,
                boundary_after: false,
            }),
        }
        let gap_end = sp.get(idx + 1).map_or(text.len(), |n| n.start);
        let gap = &text[s.end..gap_end];
        let is_last = idx + 1 == sp.len();
        let ends = is_last || gap_ends_sentence(gap, &s.word);
        if let Some(last) = current.last_mut() {
            last.boundary_after = ends || gap_is_boundary(gap);
        }
        if ends {
            // Include the closing punctuation (up to the first white space) in the text.
            let trail = gap.find(char::is_whitespace).unwrap_or(gap.len());
            let end = s.end + trail;
            out.push(Sentence {
                text: &text[sent_start..end],
                start: sent_start,
                toks: std::mem::take(&mut current),
                question: gap.contains('?'),
            });
        }
    }
    out
}

/// Splits a turn's text into the speaker's own words and the caption of a shared photo,
/// which the turn carries as a trailing ` [shares a photo: CAPTION]`.
pub fn split_caption(text: &str) -> (&str, Option<&str>) {
    const MARK: &str = "[shares a photo:";
    match text.rfind(MARK) {
        Some(i) => {
            let rest = &text[i + MARK.len()..];
            let caption = rest.trim_end().trim_end_matches(']').trim();
            (text[..i].trim_end(), Some(caption))
        }
        None => (text, None),
    }
}

/// Adverbs allowed between a subject and its verb ("I just moved", "I really love").
/// Negations ("not", "never", "no longer") are deliberately absent: a negated clause never
/// matches a positive pattern.
#[rustfmt::skip]
pub const ADVERBS: &[&str] = &[
    "just", "recently", "finally", "also", "still", "now", "actually", "currently", "really",
    "totally", "absolutely", "truly", "already", "officially", "eventually", "originally",
    "basically", "definitely", "honestly", "literally", "seriously", "kinda", "sorta", "genuinely",
    "especially", "particularly", "usually", "generally", "always", "mostly", "even", "happily",
    "proudly", "newly", "permanently", "so", "all", "completely", "pretty",
];

/// Words that end a noun phrase taken as the object of a pattern ("Berlin *with* my wife").
#[rustfmt::skip]
pub const OBJECT_STOP: &[&str] = &[
    "and", "but", "or", "because", "cause", "cuz", "so", "since", "when", "while", "where", "who",
    "whom", "which", "that", "with", "for", "in", "on", "at", "to", "from", "by", "about", "after",
    "before", "during", "until", "as", "than", "if", "yesterday", "today", "tonight", "tomorrow",
    "now", "last", "next", "this", "ago", "recently", "lately", "again", "too", "also", "anymore",
    "though", "although", "like", "every", "each", "very", "really", "right", "is", "are", "was",
    "were", "am", "be", "been", "will", "would", "can", "could", "should", "do", "does", "did",
    "not", "have", "has", "had", "i", "you", "he", "she", "we", "they", "it", "me", "him", "them",
    "us", "there", "here", "then", "just", "soon", "any", "more", "anyway", "either", "instead",
    "though", "yet", "lol", "haha", "either", "over", "through", "into", "onto", "around", "near",
    "because", "except", "without", "whenever", "everyday", "once", "twice", "always", "never",
    "sometimes", "often", "usually", "all", "together", "alone", "ago", "tbh", "ngl", "btw",
    "lmao", "honestly", "imo",
];

/// Units that make a number a duration or date ("two days", "a few weeks").
const TIME_UNITS: &[&str] = &[
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
    "weekend", "weekends", "month", "months", "year", "years", "decade", "decades",
];

/// Counting words that may precede a time unit.
const COUNTS: &[&str] = &[
    "few", "couple", "several", "many", "one", "two", "three", "four", "five", "six", "seven",
    "eight", "nine", "ten", "eleven", "twelve", "fifteen", "twenty", "thirty",
];

fn starts_duration(toks: &[Tok], i: usize) -> bool {
    let w = toks[i].word.as_str();
    let counting = COUNTS.contains(&w) || w.chars().all(|c| c.is_ascii_digit());
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.word == "of") {
        j += 1; // "a couple of weeks"
    }
    counting
        && toks
            .get(j)
            .is_some_and(|t| TIME_UNITS.contains(&t.word.as_str()))
}

/// Determiners stripped from the start of an object phrase.
pub const DETERMINERS: &[&str] = &[
    "a", "an", "the", "some", "my", "our", "his", "her", "their", "your", "this", "that", "these",
    "those", "any", "both", "most", "many", "several", "certain", "all",
];

/// Auxiliaries that open a yes/no question ("Do you …", "Are you …").
/// Finite forms of "be", "have", "do", "will" and "can": a clause with one of them has a
/// verb group (a subject noun phrase ends before it; a fragment does not contain one).
pub(crate) const FINITE_AUXILIARIES: &[&str] = &[
    "is", "are", "was", "were", "am", "have", "has", "had", "do", "does", "did", "will", "would",
    "can", "could",
];

const AUXILIARIES: &[&str] = &[
    "do", "does", "did", "are", "is", "was", "were", "can", "could", "would", "will", "should",
    "have", "has", "had", "am", "shall", "may", "might",
];

/// Question words ("Where do you live").
const WH_WORDS: &[&str] = &[
    "what", "where", "who", "whom", "whose", "when", "why", "how", "which",
];

/// Subjects that follow the auxiliary of a question.
const QUESTION_SUBJECTS: &[&str] = &[
    "you", "i", "we", "they", "he", "she", "it", "there", "that", "this", "your", "u", "ya",
    "anyone", "anybody", "someone", "everyone",
];

/// Words before a subject that make its clause hypothetical or reported as uncertain.
const HEDGES: &[&str] = &[
    "if", "unless", "whether", "wish", "maybe", "perhaps", "suppose", "imagine",
];

/// Index of the first token at or after `i` that is not one of [`ADVERBS`].
pub fn skip_adverbs(toks: &[Tok], mut i: usize) -> usize {
    while i < toks.len() && ADVERBS.contains(&toks[i].word.as_str()) {
        i += 1;
    }
    i
}

/// Matches the words of `seq` from token `i` on, skipping [`ADVERBS`] before each word;
/// returns the index just past the match.
pub fn match_seq(toks: &[Tok], mut i: usize, seq: &[&str]) -> Option<usize> {
    for w in seq {
        // An adverb is skipped unless it is the word wanted ("all" in "be all about").
        if toks.get(i).is_none_or(|t| t.word != *w) {
            i = skip_adverbs(toks, i);
        }
        if toks.get(i)?.word != *w {
            return None;
        }
        i += 1;
    }
    Some(i)
}

/// True when the sentence is a question: it ends with `?`, or it opens like one even without
/// the mark: an auxiliary and a subject ("Do you live in Paris", "Are you vegan") or a
/// question word and an auxiliary ("Where do you live"). Subject-less statements ("Had a
/// blast at the concert") and subordinate clauses ("When I moved to Berlin, …") are not.
pub fn is_question(s: &Sentence<'_>) -> bool {
    let w = |i: usize| s.toks.get(i).map_or("", |t| t.word.as_str());
    let aux_subject = AUXILIARIES.contains(&w(0)) && QUESTION_SUBJECTS.contains(&w(1));
    let wh_aux = WH_WORDS.contains(&w(0)) && AUXILIARIES.contains(&w(1));
    s.question || aux_subject || wh_aux
}

/// True when a hedge ("if", "maybe", "wish", …) precedes token `k` in the sentence.
pub fn hedged(toks: &[Tok], k: usize) -> bool {
    toks[..k.min(toks.len())]
        .iter()
        .any(|t| HEDGES.contains(&t.word.as_str()))
}

/// True when a "no longer" marker follows the phrase ending at `end` ("anymore",
/// "any more", "no more", "no longer") within three tokens.
pub fn no_longer_after(toks: &[Tok], end: usize) -> bool {
    let window: Vec<&str> = toks
        .iter()
        .skip(end)
        .take(4)
        .map(|t| t.word.as_str())
        .collect();
    window.contains(&"anymore")
        || contains_seq(&window, &["any", "more"])
        || contains_seq(&window, &["no", "more"])
        || contains_seq(&window, &["no", "longer"])
}

/// A noun phrase inside a sentence: tokens `start..end`, after a stripped determiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    /// The determiner that preceded the phrase, if any ("a", "the", "my").
    pub det: Option<String>,
    /// Index of the first token after the determiner.
    pub start: usize,
    /// Index just past the last token.
    pub end: usize,
}

/// The object noun phrase starting at token `start`: up to `max` tokens, ending before an
/// [`OBJECT_STOP`] word, an adverb (after the first word), a duration ("two days") or clause
/// punctuation, with a leading determiner stripped, trailing function words and a trailing
/// vocative name ("the view Nate") trimmed. `None` when nothing is left or it starts with a pronoun.
pub fn object_phrase(toks: &[Tok], start: usize, max: usize) -> Option<Phrase> {
    // An object never starts across clause punctuation ("a quote I like: \"…\"").
    if start > 0 && toks.get(start - 1).is_some_and(|t| t.boundary_after) {
        return None;
    }
    let mut i = start;
    let mut det = None;
    if let Some(t) = toks.get(i)
        && DETERMINERS.contains(&t.word.as_str())
        && !t.boundary_after
    {
        det = Some(t.word.clone());
        i += 1;
    }
    let first = i;
    while i < toks.len() && i - first < max {
        let w = toks[i].word.as_str();
        let after_of = i > first && toks[i - 1].word == "of";
        let stop = OBJECT_STOP.contains(&w)
            || (i > first && ADVERBS.contains(&w))
            || starts_duration(toks, i);
        if stop || (DETERMINERS.contains(&w) && i > first && !after_of) {
            break;
        }
        i += 1;
        if toks[i - 1].boundary_after {
            break;
        }
    }
    let mut end = i;
    while end > first && is_stopword(&toks[end - 1].word) {
        end -= 1;
    }
    // A name after lower-case words is a vocative ("the view Nate!"), unless it is the
    // object of a gerund ("watching LeBron") or follows a joiner ("Lord of the Rings").
    while end > first + 1
        && toks[end - 1].cap
        && !toks[end - 2].cap
        && !is_stopword(&toks[end - 2].word)
        && !toks[end - 2].word.ends_with("ing")
    {
        end -= 1;
    }
    (end > first).then_some(Phrase {
        det,
        start: first,
        end,
    })
}

/// Gerunds too light to name an activity alone ("going", "spending"): their object belongs
/// to the topic ("going on road trips").
pub fn is_light_gerund(w: &str) -> bool {
    matches!(
        w,
        "going"
            | "getting"
            | "spending"
            | "doing"
            | "having"
            | "taking"
            | "making"
            | "being"
            | "coming"
    )
}

/// Extends a phrase that ends in a gerund with its prepositional object: "going" + "on road
/// trips" → "going on road trips", "learning about other cultures".
pub fn extend_gerund(toks: &[Tok], p: Phrase) -> Phrase {
    const PREPS: &[&str] = &[
        "on", "to", "about", "for", "with", "in", "out", "at", "into", "through",
    ];
    let ends_in_gerund =
        p.end > p.start && toks[p.end - 1].word.ends_with("ing") && !toks[p.end - 1].boundary_after;
    if !ends_in_gerund
        || !toks
            .get(p.end)
            .is_some_and(|t| PREPS.contains(&t.word.as_str()))
    {
        return p;
    }
    // "getting lost in": the preposition may follow a particle-like word.
    match object_phrase(toks, p.end + 1, 4) {
        Some(q) => Phrase {
            det: p.det,
            start: p.start,
            end: q.end,
        },
        None => p,
    }
}

/// Naive English singular of a lower-case word ("movies" → "movie", "dogs" → "dog").
pub fn singular(w: &str) -> String {
    let n = w.chars().count();
    #[rustfmt::skip]
    const INVARIANT: &[&str] = &[
        "series", "species", "news", "physics", "mathematics", "economics", "politics", "ethics",
        "athletics", "gymnastics", "aerobics", "clothes", "jeans", "pants", "shorts", "scissors",
        "means", "lens", "chess", "thanks", "gas", "christmas", "diabetes", "measles", "texas",
        "paris", "athens", "wales", "always", "sometimes", "perhaps",
    ];
    if n <= 3 || w.contains('\'') || INVARIANT.contains(&w) {
        return w.to_string();
    }
    if let Some(stem) = w.strip_suffix("ies") {
        const IE_WORDS: &[&str] = &[
            "movie", "cookie", "zombie", "calorie", "brownie", "selfie", "hippie", "rookie",
            "smoothie", "veggie", "goalie", "prairie", "sweetie", "genie", "auntie", "hoodie",
            "newbie", "foodie", "birdie", "techie", "indie", "pixie", "boogie", "quickie",
        ];
        let ie = &w[..w.len() - 1];
        return if IE_WORDS.contains(&ie) {
            ie.to_string()
        } else {
            format!("{stem}y")
        };
    }
    for suf in ["sses", "ches", "shes", "xes"] {
        if w.ends_with(suf) {
            return w[..w.len() - 2].to_string();
        }
    }
    if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lower_case_words_with_inner_apostrophes() {
        assert_eq!(
            tokens("Hi, I DON'T know!"),
            vec!["hi", "i", "don't", "know"]
        );
        assert_eq!(tokens("Mel\u{2019}s dog"), vec!["mel's", "dog"]);
        assert_eq!(tokens("'quoted' dogs'"), vec!["quoted", "dogs"]);
        assert_eq!(
            tokens("e-mail 3.5 #tag"),
            vec!["e", "mail", "3", "5", "tag"]
        );
    }

    #[test]
    fn tokens_handle_empty_and_unicode() {
        assert!(tokens("").is_empty());
        assert!(tokens("   ...!!! 🙂🙂").is_empty());
        assert_eq!(
            tokens("Zoë lives in Zürich"),
            vec!["zoë", "lives", "in", "zürich"]
        );
        assert_eq!(tokens("東京に住んでいます"), vec!["東京に住んでいます"]);
        assert_eq!(tokens("İstanbul"), vec!["i\u{307}stanbul"]);
        assert_eq!(tokens("'"), Vec::<String>::new());
        assert_eq!(tokens("a'"), vec!["a"]);
    }

    #[test]
    fn has_word_is_whole_word_only() {
        assert!(has_word("Hi there", "hi"));
        assert!(has_word("oh, HI!", "hi"));
        assert!(!has_word("this is high history", "hi"));
        assert!(!has_word("thinking", "think"));
        assert!(has_word("I don't care", "don't"));
        assert!(has_word("I don\u{2019}t care", "don't"));
        assert!(!has_word("anything", ""));
        assert!(!has_word("", "hi"));
    }

    #[test]
    fn has_phrase_matches_consecutive_words() {
        assert!(has_phrase("Well, how are you?", "how are you"));
        assert!(has_phrase("going   to, Paris", "going to paris"));
        assert!(!has_phrase("how you are", "how are you"));
        assert!(!has_phrase("showhow are you", "how are you"));
        assert!(!has_phrase("text", ""));
        assert!(has_word("see you next week", "next week"));
    }

    #[test]
    fn stopwords() {
        assert!(is_stopword("The"));
        assert!(is_stopword("i'm"));
        assert!(!is_stopword("berlin"));
        assert!(!is_stopword(""));
    }

    #[test]
    fn sentences_split_and_expand() {
        let s = sentences("Hi Dr. Smith! I'm in Berlin, it's cold. Are you ok?");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].text, "Hi Dr. Smith!");
        assert_eq!(
            s[1].words(),
            vec!["i", "am", "in", "berlin", "it", "is", "cold"]
        );
        assert!(s[1].toks[0].cap && !s[1].toks[1].cap);
        assert!(s[1].toks[3].boundary_after);
        assert!(!s[1].toks[2].boundary_after);
        assert!(!s[1].question && s[2].question);
        assert_eq!(s[2].text, "Are you ok?");
    }

    #[test]
    fn sentences_edge_cases() {
        assert!(sentences("").is_empty());
        assert!(sentences("?!? 🙂").is_empty());
        let s = sentences("It costs 3.5 euros\nnew line");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words(), vec!["it", "costs", "3", "5", "euros"]);
        let s = sentences("no punctuation at all");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "no punctuation at all");
    }

    #[test]
    fn questions_with_and_without_mark() {
        let q = |t: &str| sentences(t).iter().all(is_question);
        assert!(q("Do you live in Paris?"));
        assert!(q("Do you live in Paris"));
        assert!(q("Where do you live"));
        assert!(q("Are you vegetarian"));
        assert!(q("Is it ok"));
        assert!(!q("Had a blast at the concert."));
        assert!(!q("When I moved to Berlin, I was scared."));
        assert!(!q("Don't answer in English."));
        assert!(!q("Have a great day."));
        assert!(!q("I live in Paris."));
    }

    fn phrase_text(text: &str, start: usize, max: usize) -> Option<(Option<String>, String)> {
        let s = sentences(text).into_iter().next()?;
        let p = object_phrase(&s.toks, start, max)?;
        Some((
            p.det.clone(),
            text[s.toks[p.start].start..s.toks[p.end - 1].end].to_string(),
        ))
    }

    #[test]
    fn object_phrases() {
        let some =
            |det: Option<&str>, body: &str| Some((det.map(str::to_string), body.to_string()));
        assert_eq!(
            phrase_text("I live in New York City with my wife", 3, 5),
            some(None, "New York City")
        );
        assert_eq!(
            phrase_text("I went to the beach yesterday", 3, 5),
            some(Some("the"), "beach")
        );
        assert_eq!(
            phrase_text("I went to a conference two days ago", 3, 5),
            some(Some("a"), "conference")
        );
        assert_eq!(
            phrase_text("I'm from Sweden originally", 3, 5),
            some(None, "Sweden")
        );
        assert_eq!(
            phrase_text("I love the view Nate!", 2, 5),
            some(Some("the"), "view")
        );
        assert_eq!(
            phrase_text("I love watching LeBron!", 2, 5),
            some(None, "watching LeBron")
        );
        assert_eq!(
            phrase_text("I love Lord of the Rings", 2, 5),
            some(None, "Lord of the Rings")
        );
        assert_eq!(phrase_text("I love it", 2, 5), None);
        assert_eq!(phrase_text("I like this: \"quote\"", 2, 5), None);
        assert_eq!(phrase_text("I like", 2, 5), None);
        assert_eq!(phrase_text("I like", 99, 5), None);
        let s = &sentences("I love going on road trips")[0];
        let p = extend_gerund(&s.toks, object_phrase(&s.toks, 2, 5).unwrap());
        assert_eq!(s.toks[p.end - 1].word, "trips");
    }

    #[test]
    fn sequences_skip_adverbs_not_negations() {
        let s = &sentences("I just recently moved to Berlin")[0];
        assert_eq!(match_seq(&s.toks, 1, &["moved", "to"]), Some(5));
        let s = &sentences("I don't live in Paris anymore")[0];
        assert_eq!(match_seq(&s.toks, 1, &["live", "in"]), None);
        assert!(no_longer_after(&s.toks, 6));
        let s = &sentences("If I move to Paris")[0];
        assert!(hedged(&s.toks, 1));
        assert!(!hedged(&s.toks, 0));
        assert_eq!(skip_adverbs(&s.toks, 99), 99);
    }

    #[test]
    fn caption_is_split_off() {
        let (own, cap) = split_caption("Look at this! [shares a photo: a dog on a beach]");
        assert_eq!(own, "Look at this!");
        assert_eq!(cap, Some("a dog on a beach"));
        assert_eq!(split_caption("plain"), ("plain", None));
        assert_eq!(split_caption("[shares a photo:"), ("", Some("")));
    }

    #[test]
    fn singular_forms() {
        assert_eq!(singular("movies"), "movie");
        assert_eq!(singular("dogs"), "dog");
        assert_eq!(singular("peanuts"), "peanut");
        assert_eq!(singular("glasses"), "glass");
        assert_eq!(singular("class"), "class");
        assert_eq!(singular("tea"), "tea");
        assert_eq!(singular("sandwiches"), "sandwich");
        assert_eq!(singular("bus"), "bus");
    }
}
