//! Tier 4 extraction: the user's preferences, standing instructions and constraints.
//!
//! Rule-based and offline, from the speaker's own sentences only (never from questions, a
//! photo caption or the assistant's reply), matched on whole words with contractions
//! expanded. Each rule has a `topic`, a stable slot key, so that a later rule of the same
//! topic can supersede an earlier one (the store's job). Keys:
//!
//! | topic | from |
//! |---|---|
//! | `language` | "always answer in Spanish", "I prefer answers in French" |
//! | `name` | "please call me Sam", "I go by Sam", "my name is Sam", "don't call me Samuel" |
//! | `contact_time` | "don't call me before 9", "only text me after work" |
//! | `units` | "from now on use metric units", "I prefer Fahrenheit" |
//! | `answer_length` | "keep answers short", "be more detailed" |
//! | `emoji` | "don't use emojis" |
//! | `diet` | "I'm vegetarian", "I'm not vegan anymore", "I don't eat meat" |
//! | `allergy:{thing}` | "I'm allergic to peanuts" (constraint), "I'm lactose intolerant" |
//! | `favorite_{category}` | "my favorite color is blue", "jazz is my favorite music" |
//! | `pronouns` | "my pronouns are she/her" |
//! | `{verb}:{noun}` | other standing instructions: "always remind me to drink water" |
//! | the object, normalised | likes and dislikes: "I love coffee" and "I don't drink coffee anymore" → `coffee` |
//!
//! Kinds: `instruction` (a standing request to the assistant), `constraint` (a prohibition,
//! an allergy), `preference` (tastes, diet, favourites). At most one rule per topic per turn
//! (the first stated).

use super::clause::lemma;
use super::curate::speaker_name;
use super::graph::{NOT_LIKES, title_case};
use super::words::{
    FINITE_AUXILIARIES, OBJECT_STOP, Phrase, Sentence, Tok, contains_seq, extend_gerund, hedged,
    is_light_gerund, is_question, is_stopword, match_seq, no_longer_after, object_phrase,
    sentences, singular, skip_adverbs, split_caption,
};
use super::{REVOCATION, RuleDraft, TurnView};

#[rustfmt::skip]
const LANGUAGES: &[&str] = &[
    "english", "spanish", "french", "german", "italian", "portuguese", "chinese", "mandarin",
    "cantonese", "japanese", "korean", "russian", "arabic", "hindi", "dutch", "swedish",
    "norwegian", "danish", "finnish", "polish", "turkish", "greek", "hebrew", "ukrainian", "czech",
    "hungarian", "romanian", "vietnamese", "thai", "indonesian", "malay", "tagalog", "bengali",
    "urdu", "persian", "farsi", "swahili", "catalan", "irish", "welsh",
];

#[rustfmt::skip]
const METRIC: &[&str] = &[
    "metric", "celsius", "centigrade", "kilometers", "kilometres", "km", "kilograms", "kg",
    "meters", "metres", "centimeters", "centimetres", "liters", "litres", "grams",
];
#[rustfmt::skip]
const IMPERIAL: &[&str] = &[
    "imperial", "fahrenheit", "miles", "pounds", "lbs", "feet", "inches", "ounces", "gallons",
    "yards",
];

const SHORT_WORDS: &[&str] = &[
    "short", "shorter", "brief", "briefer", "concise", "succinct", "terse",
];
#[rustfmt::skip]
const LONG_WORDS: &[&str] = &[
    "detailed", "long", "longer", "thorough", "elaborate", "verbose", "lengthy", "comprehensive",
];

#[rustfmt::skip]
const DIETS: &[&str] = &[
    "vegetarian", "vegan", "pescatarian", "pescetarian", "keto", "paleo", "flexitarian",
    "carnivore", "omnivore", "halal", "kosher",
];

/// Verbs about talking to the user, for language instructions.
#[rustfmt::skip]
const COMM_VERBS: &[&str] = &[
    "answer", "respond", "reply", "speak", "talk", "write", "communicate", "chat", "text", "use",
    "switch", "translate", "say", "go", "stick", "keep",
];

/// Verbs an assistant can be told to do, for generic standing instructions.
#[rustfmt::skip]
const ASSISTANT_VERBS: &[&str] = &[
    "answer", "respond", "reply", "speak", "talk", "write", "use", "call", "address", "remind",
    "tell", "give", "keep", "avoid", "mention", "include", "show", "send", "text", "email",
    "message", "contact", "switch", "make", "format", "explain", "list", "refer", "say", "ask",
    "wake", "ping", "notify", "translate", "suggest", "recommend", "check", "double", "cite",
    "summarize", "summarise", "add", "put", "sign", "greet", "start", "end", "let",
];

/// First-person endings of a taste or habit ("I quit bouldering"), after the subject.
const TASTE_ENDINGS: &[&[&str]] = &[
    &["quit"],
    &["gave", "up"],
    &["have", "given", "up"],
    &["stopped"],
    &["have", "stopped"],
    &["lost", "interest", "in"],
    &["have", "lost", "interest", "in"],
    &["am", "done", "with"],
    &["am", "over"],
    &["uninstalled"],
];

/// Titles written before a name, often with a full stop ("Dr. Okafor").
const TITLES: &[&str] = &[
    "dr",
    "mr",
    "mrs",
    "ms",
    "prof",
    "professor",
    "doctor",
    "sir",
    "miss",
];

/// Nouns for what the assistant writes: a standing instruction about them is a rule.
#[rustfmt::skip]
const OUTPUT_NOUNS: &[&str] = &[
    "answer", "answers", "reply", "replies", "response", "responses", "explanation",
    "explanations", "message", "messages", "code", "example", "examples", "summary", "summaries",
    "suggestion", "suggestions", "recipe", "recipes", "sources", "citations", "reminder",
    "reminders",
];

/// Contact verbs and their past participles, for contact-time constraints.
const CONTACT_VERBS: &[(&str, &str)] = &[
    ("call", "called"),
    ("text", "texted"),
    ("message", "messaged"),
    ("email", "emailed"),
    ("contact", "contacted"),
    ("ping", "pinged"),
    ("address", "addressed"),
    ("refer", "referred to"),
    ("phone", "phoned"),
    ("ring", "rung"),
    ("bother", "bothered"),
    ("disturb", "disturbed"),
    ("wake", "woken up"),
    ("notify", "notified"),
    ("remind", "reminded"),
];

const TIME_PREPOSITIONS: &[&str] = &[
    "before", "after", "between", "until", "till", "past", "during", "early", "late", "at", "on",
    "in", "around",
];

/// Gerunds after "stop" ("stop calling me Sam") and their base verbs.
const GERUNDS: &[(&str, &str)] = &[
    ("calling", "call"),
    ("texting", "text"),
    ("messaging", "message"),
    ("emailing", "email"),
    ("mentioning", "mention"),
    ("using", "use"),
    ("bringing", "bring"),
    ("talking", "talk"),
    ("asking", "ask"),
    ("sending", "send"),
    ("giving", "give"),
    ("answering", "answer"),
    ("replying", "reply"),
    ("responding", "respond"),
    ("reminding", "remind"),
    ("contacting", "contact"),
    ("pinging", "ping"),
];

/// Words before "I" that make "I like" a relative clause ("the food I like", "what I love").
#[rustfmt::skip]
const RELATIVE_HEADS: &[&str] = &[
    "what", "thing", "things", "one", "ones", "stuff", "something", "anything", "everything",
    "nothing", "all", "way", "place", "food", "person", "people", "company", "song", "songs",
    "movie", "movies", "book", "books", "those", "whatever", "which", "who", "whom",
];

/// A rule under construction.
struct Rules<'a> {
    speaker: &'a str,
    own: &'a str,
    out: Vec<RuleDraft>,
}

fn words_of(toks: &[Tok], a: usize, b: usize) -> Vec<&str> {
    toks[a.min(toks.len())..b.min(toks.len())]
        .iter()
        .map(|t| t.word.as_str())
        .collect()
}

fn find_word<'t>(toks: &'t [Tok], from: usize, set: &[&str]) -> Option<&'t Tok> {
    toks.iter()
        .skip(from)
        .find(|t| set.contains(&t.word.as_str()))
}

/// The slot key of an object phrase: its words lower-cased, the last one singular.
fn topic_of(toks: &[Tok], p: &Phrase) -> String {
    let mut words: Vec<String> = words_of(toks, p.start, p.end)
        .into_iter()
        .filter(|w| {
            !matches!(
                *w,
                "my" | "your" | "our" | "their" | "his" | "her" | "the" | "a" | "an"
            )
        })
        .map(str::to_string)
        .collect();
    if let Some(last) = words.last_mut() {
        *last = singular(last);
    }
    words.join(" ")
}

impl<'a> Rules<'a> {
    fn text(&self, toks: &[Tok], a: usize, b: usize) -> &'a str {
        if a >= b || b > toks.len() {
            return "";
        }
        self.own.get(toks[a].start..toks[b - 1].end).unwrap_or("")
    }

    /// A phrase as written, "my" rendered as "their" (statements are about the user).
    fn display(&self, toks: &[Tok], p: &Phrase) -> String {
        let body = self.text(toks, p.start, p.end);
        match p.det.as_deref() {
            Some("my" | "our") => format!("their {body}"),
            Some("a" | "an" | "this" | "that" | "these" | "those" | "some" | "any") | None => {
                body.to_string()
            }
            Some(d) => format!("{d} {body}"),
        }
    }

    /// Adds a rule, unless the turn already gave one for its topic; a rule replaces a
    /// revocation of its topic ("drop the title and just use Nkechi": the new name stands).
    fn push(&mut self, kind: &str, statement: String, confidence: f32, topic: String) {
        let topic = topic.trim().to_string();
        if topic.is_empty() {
            return;
        }
        let draft = RuleDraft {
            kind: kind.to_string(),
            statement,
            confidence,
            topic,
        };
        match self.out.iter().position(|r| r.topic == draft.topic) {
            Some(i) if self.out[i].kind == REVOCATION && kind != REVOCATION => self.out[i] = draft,
            Some(_) => {}
            None => self.out.push(draft),
        }
    }

    /// The turn ends the rule of `topic` without a replacement.
    fn revoke(&mut self, statement: String, topic: String) {
        self.push(REVOCATION, statement, 0.8, topic);
    }

    fn sentence(&mut self, s: &Sentence<'_>) {
        let toks = &s.toks;
        // Diary style without "I": "lost interest in baking tbh", "update: quit bouldering".
        for start in Self::directive_starts(toks) {
            let at = skip_markers(toks, start);
            if toks.get(at).is_some_and(|t| {
                matches!(
                    t.word.as_str(),
                    "quit" | "lost" | "uninstalled" | "gave" | "stopped"
                )
            }) && (at == 0 || toks[at - 1].boundary_after)
            {
                self.taste_ending(s, at);
            }
        }
        // An elided first-person subject ("also not a fan of coffee", "been vegan since
        // May", "love sushi tho"): the speaker is the subject, read as if "I" (with the
        // auxiliary the clause's first word needs) were written.
        if !is_question(s) {
            for start in Self::directive_starts(toks) {
                let at = skip_markers(toks, start);
                // Only where a clause opens: after "and" the subject is the first clause's
                // ("my brother loves tea and hates coffee").
                if start > 0 && !toks[start - 1].boundary_after {
                    continue;
                }
                let Some(aux) = toks.get(at).and_then(|_| elided_aux(toks, at)) else {
                    continue;
                };
                let (from, to) = (toks[at].start, toks[at].start);
                let synthetic = |word: &str| Tok {
                    word: word.to_string(),
                    cap: false,
                    start: from,
                    end: to,
                    boundary_after: false,
                };
                let mut with_subject = toks[..at].to_vec();
                with_subject.push(synthetic("i"));
                if let Some(aux) = aux {
                    with_subject.push(synthetic(aux));
                }
                with_subject.extend_from_slice(&toks[at..]);
                let s2 = Sentence {
                    text: s.text,
                    start: s.start,
                    toks: with_subject,
                    question: s.question,
                };
                self.first_person(&s2, at);
            }
        }
        for k in 0..toks.len() {
            match toks[k].word.as_str() {
                "i" if !hedged(toks, k) && !self.relative_clause(toks, k) => {
                    self.first_person(s, k);
                }
                "my" => self.possessive(s, k),
                "is" if toks.get(k + 1).is_some_and(|t| t.word == "my")
                    && toks.get(k + 2).is_some_and(|t| is_favorite(&t.word)) =>
                {
                    self.favorite_before(s, k);
                }
                _ => {}
            }
        }
    }

    fn relative_clause(&self, toks: &[Tok], k: usize) -> bool {
        k > 0 && !toks[k - 1].boundary_after && RELATIVE_HEADS.contains(&toks[k - 1].word.as_str())
    }

    /// Where a directive to the assistant may start in a sentence: its start, after clause
    /// punctuation, and at a conjunction or a politeness marker ("…, so use those", "My
    /// name's Isabela but please call me Bela", "and when I ask about code just assume Python").
    fn directive_starts(toks: &[Tok]) -> Vec<usize> {
        let mut out = vec![0];
        for i in 1..toks.len() {
            let after_boundary = toks[i - 1].boundary_after;
            let marker = matches!(
                toks[i].word.as_str(),
                "but" | "so" | "and" | "just" | "please" | "pls" | "plz" | "then"
            ) && !matches!(
                toks[i - 1].word.as_str(),
                "please" | "pls" | "just" | "and" | "so" | "but"
            );
            if (after_boundary || marker) && !out.contains(&i) {
                out.push(i);
            }
        }
        out
    }

    /// Directives to the assistant, each from a possible start ([`Self::directive_starts`]).
    /// A question is one only as a request with a standing cue ("could you always write code
    /// in Rust?", "would you mind always using metric units?"): "can you translate this into
    /// Italian?" is a one-off task, not a standing rule.
    fn directives(&mut self, s: &Sentence<'_>, before: &[Sentence<'_>]) {
        let toks = &s.toks;
        let words = s.words();
        let question = is_question(s);
        let standing = standing_cue(&words);
        // A rule for today, this question or this time only is not a standing rule.
        if temporary(&words) {
            return;
        }
        for start in Self::directive_starts(toks) {
            if question {
                let Some(at) = REQUEST_LEADS
                    .iter()
                    .find_map(|lead| match_seq(toks, skip_markers(toks, start), lead))
                else {
                    continue;
                };
                // A request without a standing cue is a one-off task ("can you translate
                // this into Italian?", "could you rewrite it more formally?"); one that
                // replaces something ("could you answer in French instead?") stands.
                if !standing && !words.contains(&"instead") {
                    continue;
                }
                self.imperative(s, at, true, standing, false, before);
            } else {
                self.imperative(s, start, false, standing, false, before);
            }
        }
        // "I like it when you use bullet points", "I hate it when you add emojis": a taste
        // for how the assistant behaves is a standing request (or prohibition) of it.
        if !question {
            for k in 0..toks.len() {
                if match_seq(toks, k, &["it", "when", "you"]).is_none() || k == 0 {
                    continue;
                }
                let verb = lemma(&toks[k - 1].word);
                let negated = k >= 2 && matches!(toks[k - 2].word.as_str(), "not" | "never");
                let liked = match verb.as_str() {
                    "like" | "love" | "prefer" | "enjoy" | "appreciate" => !negated,
                    "hate" | "dislike" | "mind" | "stand" | "detest" => negated,
                    _ => continue,
                };
                self.imperative(s, k + 3, true, true, !liked, before);
            }
        }
    }

    /// Imperatives addressed to the assistant: "always answer in Spanish", "please call me
    /// Sam", "don't call me before 9", "never mention my ex", "from now on use metric units",
    /// from token `start` on (`requested`: after "could you …").
    fn imperative(
        &mut self,
        s: &Sentence<'_>,
        start: usize,
        requested: bool,
        standing: bool,
        negated: bool,
        before: &[Sentence<'_>],
    ) {
        let toks = &s.toks;
        let words = s.words();
        let mut i = start;
        let mut neg = negated;
        let has = |i: usize, seq: &[&str]| words.get(i..i + seq.len()) == Some(seq);
        let mut standing = standing;
        let mut polite = false;
        let mut only = false;
        let mut addressed = requested;
        let mut verb: Option<String> = None;
        if !requested {
            let from = skip_markers(toks, start);
            for lead in ADDRESSED_LEADS {
                if let Some(at) = match_seq(toks, from, lead) {
                    i = at;
                    addressed = true;
                    polite |= from > start;
                    break;
                }
            }
            // "you don't have to apologise all the time", "no need to recap every answer":
            // released from doing it. Only with a standing cue or the speaker named: else
            // "you" may be anyone ("you don't need to speak Greek to enjoy Athens").
            let for_me = standing || words.iter().any(|w| matches!(*w, "me" | "my" | "anymore"));
            if !addressed && for_me {
                for lead in RELEASING_LEADS {
                    if let Some(at) = match_seq(toks, from, lead) {
                        i = at;
                        addressed = true;
                        neg = true;
                        break;
                    }
                }
            }
        }
        // A hypothetical ("if I were famous I'd make you call me Captain") is no rule.
        if toks[start..i.min(toks.len())]
            .iter()
            .any(|t| matches!(t.word.as_str(), "if" | "were"))
            && !addressed
        {
            return;
        }
        while let Some(t) = toks.get(i) {
            match t.word.as_str() {
                "please" | "pls" | "plz" | "kindly" | "and" | "also" | "so" | "ok" | "okay"
                | "oh" | "hey" | "just" | "but" | "then" | "now" | "ever" | "simply" => {
                    polite |= matches!(t.word.as_str(), "please" | "pls" | "plz" | "kindly");
                    i += 1;
                }
                "always" => {
                    standing = true;
                    i += 1;
                }
                "never" => {
                    standing = true;
                    neg = true;
                    i += 1;
                }
                "only" => {
                    only = true;
                    i += 1;
                }
                "from" if has(i, &["from", "now", "on"]) => i += 3,
                "going" if has(i, &["going", "forward"]) => i += 2,
                "in" if has(i, &["in", "the", "future"]) => i += 3,
                "do" | "did" if toks.get(i + 1).is_some_and(|t| t.word == "not") => {
                    neg = true;
                    i += 2;
                }
                "not" => {
                    neg = true;
                    i += 1;
                }
                "stop" => {
                    if let Some(n) = toks.get(i + 1).filter(|n| is_gerund(&n.word)) {
                        neg = true;
                        standing = true;
                        verb = Some(base_verb(&n.word));
                        i += 2;
                    }
                    break;
                }
                "remember" if toks.get(i + 1).is_some_and(|t| t.word == "to") => {
                    standing = true;
                    i += 2;
                }
                _ => break,
            }
        }
        // An imperative starts with its verb; "I …" or a noun is not one.
        let (verb, at) = match verb {
            Some(v) => (v, i),
            None => match toks.get(i) {
                // A gerund is the verb only after "would you mind" ("… always citing").
                Some(t)
                    if (i == 0 || !t.cap || addressed)
                        && (!is_gerund(&t.word) || minded(toks, i)) =>
                {
                    (base_verb(&t.word), i + 1)
                }
                _ => return,
            },
        };
        if SUBJECTS.contains(&verb.as_str())
            || NOT_VERBS.contains(&verb.as_str())
            || super::words::ADVERBS.contains(&verb.as_str())
            || verb.chars().any(|ch| ch.is_ascii_digit())
        {
            return;
        }
        // Something before the verb marks it as said to the assistant ("always", "please",
        // "so", "you can", "could you").
        let cued = addressed || i > start;
        let verb = verb.as_str();
        let me_next = toks.get(at).is_some_and(|t| t.word == "me");
        let cue = Cues {
            neg,
            standing,
            polite,
            only,
            addressed,
            me_next,
            cued,
        };
        let _handled = self.revocation(s, verb, at, &cue)
            || self.language(s, verb, at, &cue)
            || self.call_me(s, verb, at, &cue)
            || self.currency(s, verb, at, &cue)
            || self.units(s, verb, at, &cue)
            || self.answer_length(s, verb, at, &cue)
            || self.emoji(s, verb, &cue)
            || self.not_mention(s, verb, at, &cue)
            || self.use_name(s, verb, at, &cue)
            || self.anaphora(s, verb, at, &cue, before)
            || self.family(s, verb, at, &cue)
            || self.generic(s, verb, at, &cue);
    }

    /// "you can forget the bullet-point thing", "scrap the recap at the end", "go back to
    /// normal with the times", "enough cheerleading", "forget that request": the turn ends a
    /// rule without stating a new one. The topic is the family the words name, else the
    /// object noun (the reflector may match it to an active rule by meaning), or
    /// [`PREVIOUS`] for "that" / "it".
    fn revocation(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        let obj_at = match verb {
            "forget" | "scrap" | "drop" | "ditch" | "cancel" | "lose" | "disregard" | "ignore"
                if !c.neg =>
            {
                match_seq(toks, at, &["about"]).unwrap_or(at)
            }
            "go" | "get" if !c.neg => {
                let Some(end) = match_seq(toks, at, &["back", "to", "normal"])
                    .or_else(|| match_seq(toks, at, &["back", "to", "the", "usual"]))
                    .or_else(|| match_seq(toks, at, &["back", "to", "default"]))
                else {
                    return false;
                };
                match_seq(toks, end, &["with"]).unwrap_or(end)
            }
            "enough" => at,
            // "never mind the Spanish thing".
            // ("Never mind, I found it" is no revocation: the object must follow.)
            "mind"
                if at >= 2
                    && toks[at - 2].word == "never"
                    && !toks[at - 1].boundary_after
                    && at < toks.len() =>
            {
                at
            }
            // Leave to do again what a rule forbade: "you can mention football again", "feel
            // free to use tables again".
            _ if c.addressed && !c.neg && s.words()[at.min(s.toks.len())..].contains(&"again") => {
                at
            }
            // A bare "please stop" ends the rule about what the sentence named before it
            // ("the emojis are getting annoying, please stop").
            "stop" | "quit"
                if !c.neg
                    && toks[at.min(toks.len())..clause_end(toks, at)]
                        .iter()
                        .all(|t| matches!(t.word.as_str(), "it" | "that" | "please" | "now")) =>
            {
                let topic = family_in(toks, 0, at.saturating_sub(1))
                    .map(str::to_string)
                    .unwrap_or_else(|| PREVIOUS.to_string());
                let statement = format!("{} asked the assistant to stop.", self.speaker);
                self.revoke(statement, topic);
                return true;
            }
            _ => return false,
        };
        let mut end = clause_end(toks, obj_at);
        if let Some(k) = toks[obj_at.min(end)..end]
            .iter()
            .position(|t| matches!(t.word.as_str(), "and" | "but" | "so"))
        {
            end = obj_at + k;
        }
        let object: Vec<&str> = words_of(toks, obj_at, end);
        let anaphoric = object.is_empty()
            || matches!(
                object.as_slice(),
                ["that", ..] | ["it", ..] | ["this", ..] | ["those", ..] | ["the", "request", ..]
            ) && object.len() <= 3;
        let topic = match family_in(toks, obj_at, end) {
            Some(f) => f.to_string(),
            None if anaphoric => PREVIOUS.to_string(),
            None => match object_phrase(toks, obj_at, 5) {
                Some(p) => format!("{INSTRUCTION_PREFIX}{}", topic_of(toks, &p)),
                None => PREVIOUS.to_string(),
            },
        };
        let what = self.text(toks, obj_at, end);
        let statement = if what.is_empty() {
            format!("{} ended an earlier request.", self.speaker)
        } else {
            format!("{} no longer wants {}.", self.speaker, pronouns_third(what))
        };
        self.revoke(statement, topic);
        true
    }

    /// "prices in euros please", "give me prices in rand".
    fn currency(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        if !STYLE_VERBS.contains(&verb) {
            return false;
        }
        let end = clause_end(toks, at);
        if family_in(toks, at, end) != Some("currency") {
            return false;
        }
        let rest = self.text(toks, at, end);
        let statement = self.directive_statement(verb, rest, c);
        self.push(kind_of(c), statement, 0.8, "currency".into());
        true
    }

    /// "use Nkechi": the speaker's own name as the object of "use" / "go with".
    fn use_name(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        if c.neg || !matches!(verb, "use") {
            return false;
        }
        let first = self
            .speaker
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        match toks.get(at) {
            Some(t)
                if t.cap
                    && !first.is_empty()
                    && t.word == first
                    && clause_end(toks, at) == at + 1 =>
            {
                let name = self.text(toks, at, at + 1);
                let statement = format!("{} wants to be called {name}.", self.speaker);
                self.push("instruction", statement, 0.8, "name".into());
                true
            }
            _ => false,
        }
    }

    /// "use those from now on", "go with that please", "use it": the object is a pronoun
    /// for the family named earlier in the turn ("plates marked in pounds, so use those").
    fn anaphora(
        &mut self,
        s: &Sentence<'_>,
        verb: &str,
        at: usize,
        c: &Cues,
        before: &[Sentence<'_>],
    ) -> bool {
        let toks = &s.toks;
        if c.neg || !matches!(verb, "use" | "go" | "stick" | "switch" | "do") {
            return false;
        }
        let at = match_seq(toks, at, &["with"])
            .or_else(|| match_seq(toks, at, &["to"]))
            .unwrap_or(at);
        if !toks.get(at).is_some_and(|t| {
            matches!(
                t.word.as_str(),
                "it" | "those" | "that" | "them" | "these" | "this"
            )
        }) {
            return false;
        }
        // The nearest earlier mention: this sentence before the verb, then earlier sentences.
        let here = &toks[..at.saturating_sub(1)];
        let found = mention(here, self.own)
            .or_else(|| before.iter().rev().find_map(|b| mention(&b.toks, self.own)));
        let Some((topic, shown)) = found else {
            return false;
        };
        let statement = match topic.as_str() {
            "name" => format!("{} wants to be called {shown}.", self.speaker),
            "units" => {
                let system = unit_system_word(&shown.to_lowercase()).unwrap_or("metric");
                units_statement(self.speaker, system, &shown)
            }
            "language" => format!(
                "{} wants answers in {}.",
                self.speaker,
                title_case(&shown.to_lowercase())
            ),
            _ => format!("{} wants the assistant to use {shown}.", self.speaker),
        };
        self.push("instruction", statement, 0.7, topic);
        true
    }

    /// Standing instructions about the form of answers, by family ([`FAMILIES`]): "use
    /// bullet points", "keep it casual", "stick to British spelling", "use the 24-hour clock".
    fn family(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        if !STYLE_VERBS.contains(&verb) {
            return false;
        }
        let end = clause_end(toks, at);
        let Some(topic) = family_in(toks, at, end) else {
            return false;
        };
        if one_off(toks, at, end) && !c.standing {
            return false;
        }
        let rest = self.statement_tail(toks, at);
        let statement = self.directive_statement(verb, &rest, c);
        self.push(kind_of(c), statement, 0.75, topic.to_string());
        true
    }

    /// Verbless requests: "Short answers please", "Plain text only please", "English
    /// please", "Canadian dollars from now on", "no tables please".
    fn fragment(&mut self, s: &Sentence<'_>, start: usize) {
        let toks = &s.toks;
        let words = s.words();
        let from = skip_markers(toks, start);
        let Some(first) = toks.get(from) else { return };
        if SUBJECTS.contains(&first.word.as_str()) || first.word.ends_with("ing") {
            return;
        }
        let end = clause_end(toks, from);
        let clause = &words[from..end];
        // "No need for bullet points anymore": the rule about that form of answers ends.
        if let Some(at) = match_seq(toks, from, &["no", "need", "for"])
            && let Some(topic) = family_in(toks, at, end)
        {
            let what = self.text(toks, at, end);
            let what = what.trim_end_matches(['.', '!', ',', ';']);
            let what = what.strip_suffix(" anymore").unwrap_or(what);
            self.revoke(
                format!("{} no longer wants {}.", self.speaker, pronouns_third(what)),
                topic.to_string(),
            );
            return;
        }
        // "No more bullet points, please": the marker may follow after a comma.
        let after = &words[end..(end + 1).min(words.len())];
        let asked = clause
            .iter()
            .chain(after)
            .any(|w| matches!(*w, "please" | "pls" | "plz" | "only"))
            || contains_seq(clause, &["for", "me"])
            || contains_seq(clause, &["from", "now", "on"])
            || contains_seq(clause, &["going", "forward"]);
        // A verb in the clause makes it a sentence, not a fragment ("English is hard please").
        let verbal = clause.iter().any(|w| FINITE_AUXILIARIES.contains(w));
        if !asked || verbal || clause.len() > 8 {
            return;
        }
        let neg = matches!(first.word.as_str(), "no" | "without");
        let body_from = if neg { from + 1 } else { from };
        if let Some(lang) = find_word(&toks[..end], body_from, LANGUAGES)
            && !neg
        {
            let statement = format!(
                "{} wants answers in {}.",
                self.speaker,
                title_case(&lang.word)
            );
            self.push("instruction", statement, 0.8, "language".into());
            return;
        }
        let topic = match family_in(toks, body_from, end) {
            Some(f) => f.to_string(),
            None => match unit_system(&toks[body_from..end]) {
                Some(_) => "units".into(),
                None => match length_wanted(&toks[body_from..end]) {
                    Some(_) => "answer_length".into(),
                    None => return,
                },
            },
        };
        let tail = self.statement_tail(toks, body_from);
        let body: Vec<&str> = tail
            .split_whitespace()
            .filter(|w| {
                !matches!(
                    w.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                        .as_str(),
                    "please" | "pls" | "plz"
                )
            })
            .collect();
        let body = body.join(" ");
        let body = body.trim_end_matches([',', '.', '!', ';']);
        let (kind, statement) = if neg {
            (
                "constraint",
                format!("{} does not want {}.", self.speaker, pronouns_third(body)),
            )
        } else {
            (
                "instruction",
                format!("{} wants {}.", self.speaker, pronouns_third(body)),
            )
        };
        self.push(kind, statement, 0.7, topic);
    }

    /// The words after the verb, to the end of the sentence but not into a new clause with
    /// its own subject ("…, the app I paste your answers into …").
    fn statement_tail(&self, toks: &[Tok], at: usize) -> String {
        let mut end = at;
        while end < toks.len() {
            end += 1;
            if toks[end - 1].boundary_after
                && toks.get(end).is_some_and(|n| {
                    SUBJECTS.contains(&n.word.as_str())
                        || matches!(
                            n.word.as_str(),
                            "the"
                                | "my"
                                | "and"
                                | "but"
                                | "so"
                                | "because"
                                | "since"
                                | "as"
                                | "its"
                                | "thanks"
                                | "thank"
                        )
                })
            {
                break;
            }
        }
        self.text(toks, at, end)
            .trim_end_matches([',', ';', ':'])
            .to_string()
    }

    /// "{speaker} asked the assistant to always {verb} {rest}."
    fn directive_statement(&self, verb: &str, rest: &str, c: &Cues) -> String {
        let adverb = if c.neg {
            "never "
        } else if c.standing {
            "always "
        } else {
            ""
        };
        let rest = pronouns_third(rest);
        let rest = rest.trim_end_matches(['.', '!', '?', ',']);
        if rest.is_empty() {
            format!("{} asked the assistant to {adverb}{verb}.", self.speaker)
        } else {
            format!(
                "{} asked the assistant to {adverb}{verb} {rest}.",
                self.speaker
            )
        }
    }

    fn language(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        if !COMM_VERBS.contains(&verb) {
            return false;
        }
        let Some(lang) = find_word(&s.toks, at, LANGUAGES) else {
            return false;
        };
        // "use British English" is about spelling, not the language.
        if family_in(&s.toks, at, clause_end(&s.toks, at)) == Some("spelling") {
            return false;
        }
        let directed = c.neg
            || c.standing
            || c.polite
            || c.addressed
            || c.me_next
            || matches!(verb, "answer" | "respond" | "reply");
        if !directed {
            return false;
        }
        let name = title_case(&lang.word);
        let (kind, statement) = if c.neg {
            (
                "constraint",
                format!("{} does not want answers in {name}.", self.speaker),
            )
        } else {
            (
                "instruction",
                format!("{} wants answers in {name}.", self.speaker),
            )
        };
        self.push(kind, statement, 0.9, "language".into());
        true
    }

    /// "call me Sam" (name) or "don't call me before 9" (contact time).
    fn call_me(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        // "refer to me as Dr. Patel".
        let (at, me_next) = match match_seq(toks, at, &["to", "me"]) {
            Some(m) if verb == "refer" => (m - 1, true),
            _ => (at, c.me_next),
        };
        let Some(&(_, participle)) = CONTACT_VERBS.iter().find(|(v, _)| *v == verb) else {
            return false;
        };
        if !me_next {
            return false;
        }
        // "address me as Dr. Okafor" is "call me Dr. Okafor".
        let next = match_seq(&s.toks, at + 1, &["as"]).unwrap_or(at + 1);
        let Some(t) = toks.get(next) else {
            return false;
        };
        if TIME_PREPOSITIONS.contains(&t.word.as_str())
            || t.word.chars().all(|ch| ch.is_ascii_digit())
        {
            if !(c.neg || c.only || c.standing || c.addressed) {
                return false;
            }
            let mut end = next;
            while end < toks.len() {
                end += 1;
                if toks[end - 1].boundary_after {
                    break;
                }
            }
            let when = self.text(toks, next, end);
            let (kind, statement) = if c.neg {
                (
                    "constraint",
                    format!("{} does not want to be {participle} {when}.", self.speaker),
                )
            } else if c.only {
                (
                    "constraint",
                    format!("{} wants to be {participle} only {when}.", self.speaker),
                )
            } else {
                (
                    "instruction",
                    format!("{} wants to be {participle} {when}.", self.speaker),
                )
            };
            self.push(kind, statement, 0.85, "contact_time".into());
            return true;
        }
        if !matches!(verb, "call" | "address" | "refer") {
            return false;
        }
        let mut end = next;
        // "don't call me sweetie": what not to be called need not be a name.
        if c.neg
            && toks.get(next).is_some_and(|t| {
                !t.cap && !is_stopword(&t.word) && t.word.chars().all(char::is_alphabetic)
            })
        {
            end = next + 1;
        }
        while end < toks.len() && end - next < 3 && toks[end].cap && !is_stopword(&toks[end].word) {
            end += 1;
            // "Dr. Okafor": the full stop after a title does not end the name.
            if toks[end - 1].boundary_after && !TITLES.contains(&toks[end - 1].word.as_str()) {
                break;
            }
        }
        if end == next {
            return false;
        }
        let name = self.text(toks, next, end);
        let (kind, statement) = if c.neg {
            (
                "constraint",
                format!("{} does not want to be called {name}.", self.speaker),
            )
        } else {
            (
                "instruction",
                format!("{} wants to be called {name}.", self.speaker),
            )
        };
        self.push(kind, statement, 0.9, "name".into());
        true
    }

    fn units(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        const VERBS: &[&str] = &[
            "use", "give", "show", "measure", "convert", "switch", "answer", "respond", "write",
            "put", "list", "tell", "express", "display", "keep", "stick", "weigh", "do", "go",
        ];
        if !VERBS.contains(&verb) {
            return false;
        }
        let toks = &s.toks;
        let end = clause_end(toks, at);
        let Some(unit) = toks[at.min(end)..end]
            .iter()
            .find(|t| unit_system_word(&t.word).is_some())
        else {
            return false;
        };
        let system = unit_system_word(&unit.word).unwrap_or("metric");
        let written = self.own.get(unit.start..unit.end).unwrap_or("");
        let (kind, statement) = if c.neg {
            (
                "constraint",
                format!("{} does not want {system} units.", self.speaker),
            )
        } else {
            (
                "instruction",
                units_statement(self.speaker, system, written),
            )
        };
        self.push(kind, statement, 0.85, "units".into());
        true
    }

    fn answer_length(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        const VERBS: &[&str] = &[
            "keep", "be", "make", "give", "answer", "respond", "reply", "write", "explain",
        ];
        // Verbs of moving to a way of answering ("go back to long answers", "switch to
        // shorter replies", "stick to brief responses"): they name the answers they are about.
        const MODE_VERBS: &[&str] = &["go", "switch", "stick", "change", "move", "return"];
        let rest = &s.toks[at.min(s.toks.len())..];
        let names_answers = rest.iter().any(|t| OUTPUT_NOUNS.contains(&t.word.as_str()));
        if !(VERBS.contains(&verb) || MODE_VERBS.contains(&verb) && names_answers) {
            return false;
        }
        let Some(short) = length_wanted(rest) else {
            return false;
        };
        let short = short != c.neg;
        let statement = length_statement(self.speaker, short, &s.toks[at.min(s.toks.len())..]);
        self.push("instruction", statement, 0.8, "answer_length".into());
        true
    }

    fn emoji(&mut self, s: &Sentence<'_>, verb: &str, c: &Cues) -> bool {
        let has_emoji = s.toks.iter().any(|t| {
            matches!(
                t.word.as_str(),
                "emoji" | "emojis" | "emoticons" | "emojies"
            )
        });
        if verb != "use" || !has_emoji {
            return false;
        }
        if c.neg {
            self.push(
                "constraint",
                format!("{} does not want emojis.", self.speaker),
                0.85,
                "emoji".into(),
            );
        } else {
            self.push(
                "instruction",
                format!("{} wants emojis.", self.speaker),
                0.7,
                "emoji".into(),
            );
        }
        true
    }

    /// "never mention my ex", "don't bring up work", "don't talk about politics".
    fn not_mention(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        if !c.neg {
            return false;
        }
        let toks = &s.toks;
        let start = match verb {
            "mention" | "discuss" => at,
            "bring" => match_seq(toks, at, &["up"]).unwrap_or(at),
            "talk" | "ask" => match match_seq(toks, at, &["about"]) {
                Some(a) => a,
                None => return false,
            },
            "remind" => match toks
                .get(at..at + 2)
                .map(|w| (w[0].word.as_str(), w[1].word.as_str()))
            {
                Some(("me", "of" | "about")) => at + 2,
                _ => return false,
            },
            _ => return false,
        };
        let Some(p) = object_phrase(toks, start, 4) else {
            return false;
        };
        let first = toks[p.start].word.as_str();
        if NOT_LIKES.contains(&first) || first == "up" {
            return false;
        }
        let statement = format!(
            "{} does not want {} mentioned.",
            self.speaker,
            self.display(toks, &p)
        );
        self.push("constraint", statement, 0.85, topic_of(toks, &p));
        true
    }

    /// Other standing instructions that involve the user: "always remind me to drink water".
    fn generic(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        let toks = &s.toks;
        let clause = &toks[at.min(toks.len())..clause_end(toks, at)];
        let about_me = clause
            .iter()
            .any(|t| matches!(t.word.as_str(), "me" | "my"));
        // "always round final answers to two decimal places": about the assistant's output.
        let about_answers = clause
            .iter()
            .any(|t| OUTPUT_NOUNS.contains(&t.word.as_str()));
        let known = ASSISTANT_VERBS.contains(&verb);
        // A known verb said as a standing rule ("always include a TL;DR", "never mention
        // …"), or any verb about the assistant's answers after a cue ("so make the bills
        // reminder a Monday thing").
        let strong = c.standing || c.addressed || c.neg;
        // Said to the assistant as a prohibition with a standing cue ("you don't have to
        // apologise all the time", "I'd rather you never swear"): any verb is the
        // assistant's. Without the cue "you" may be anyone ("you don't have to be rich to
        // travel").
        let prohibition = c.addressed && c.neg && c.standing;
        if !((known && strong && (about_me || about_answers || c.standing))
            || ((known || c.cued) && about_answers)
            || prohibition)
        {
            return false;
        }
        let mut end = at;
        while end < toks.len() {
            end += 1;
            if toks[end - 1].boundary_after && toks[end - 1].end < toks.last().map_or(0, |t| t.end)
            {
                break;
            }
        }
        let Some(noun) = toks[at.min(end)..end]
            .iter()
            .rev()
            .map(|t| t.word.as_str())
            .find(|w| {
                !is_stopword(w) && !matches!(*w, "me" | "my") && w.chars().any(char::is_alphabetic)
            })
        else {
            return false;
        };
        // A reminder is keyed by what it is about: "remind me to check my bills" and "make
        // the bills reminder a Monday thing" are one topic.
        let reminder = toks[at.min(end)..end]
            .iter()
            .position(|t| matches!(t.word.as_str(), "reminder" | "reminders"))
            .filter(|&r| r > 0)
            .map(|r| format!("remind:{}", singular(&toks[at + r - 1].word)));
        let topic = family_in(toks, at, end)
            .map(str::to_string)
            .or(reminder)
            .unwrap_or_else(|| format!("{verb}:{}", singular(noun)));
        let rest: Vec<String> = self
            .text(toks, at, end)
            .split_whitespace()
            .map(|w| match w.to_lowercase().as_str() {
                "me" => "them".to_string(),
                "my" => "their".to_string(),
                "i" => "they".to_string(),
                _ => w.to_string(),
            })
            .collect();
        let adverb = if c.neg {
            "never "
        } else if c.standing {
            "always "
        } else {
            ""
        };
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(" {}", rest.join(" "))
        };
        let statement = format!(
            "{} asked the assistant to {adverb}{verb}{rest}.",
            self.speaker
        );
        let kind = if c.neg { "constraint" } else { "instruction" };
        self.push(kind, statement, 0.7, topic);
        true
    }

    /// First-person preferences from the "I" at token `k`.
    fn first_person(&mut self, s: &Sentence<'_>, k: usize) {
        let toks = &s.toks;
        let j = skip_adverbs(toks, k + 1);
        let sp = self.speaker;
        // Diet.
        for (seq, negated) in [
            (&["am"][..], false),
            (&["have", "been"], false),
            (&["went"], false),
            (&["became"], false),
            (&["have", "become"], false),
            (&["have", "gone"], false),
            (&["am", "not"], true),
            (&["am", "no", "longer"], true),
            (&["am", "not", "a"], true),
            (&["am", "a"], false),
            (&["am", "going"], false),
            (&["am", "going", "to", "go"], false),
        ] {
            if let Some(at) = match_seq(toks, j, seq)
                && let Some(d) = toks.get(at).filter(|t| DIETS.contains(&t.word.as_str()))
            {
                // "I'm not vegan anymore" ends the diet; it states no new rule.
                if negated || no_longer_after(toks, at + 1) {
                    self.revoke(format!("{sp} is no longer {}.", d.word), "diet".into());
                } else {
                    self.push(
                        "preference",
                        format!("{sp} is {}.", d.word),
                        0.9,
                        "diet".into(),
                    );
                }
                return;
            }
        }
        if self.diet_ending(s, j) || self.free_of(s, j) || self.taste_ending(s, j) {
            return;
        }
        // "I'm on Singapore time".
        if let Some(at) = match_seq(toks, j, &["am", "on"])
            && family_in(toks, at, (at + 3).min(toks.len())) == Some("time_zone")
            && toks.get(at + 1).is_some_and(|t| t.word == "time")
        {
            let zone = self.text(toks, at, at + 2);
            self.push(
                "preference",
                format!("{sp} is on {zone}."),
                0.8,
                "time_zone".into(),
            );
            return;
        }
        // "I don't need the pep talk at the start of every answer".
        if let Some(at) = match_seq(toks, j, &["do", "not", "need"])
            .or_else(|| match_seq(toks, j, &["do", "not", "want"]))
        {
            let end = clause_end(toks, at);
            let about_answers = toks[at.min(end)..end]
                .iter()
                .any(|t| OUTPUT_NOUNS.contains(&t.word.as_str()));
            if about_answers && let Some(p) = object_phrase(toks, at, 5) {
                let topic = family_in(toks, at, end)
                    .map(str::to_string)
                    .unwrap_or_else(|| topic_of(toks, &p));
                let what = pronouns_third(self.text(
                    toks,
                    p.start.saturating_sub(p.det.is_some() as usize),
                    end,
                ));
                let what = what.trim_end_matches(['.', '!', ',']);
                // "I don't need the reminders anymore": the rule that gave them ends.
                if no_longer_after(toks, p.end)
                    || toks[at.min(end)..end].iter().any(|t| t.word == "anymore")
                {
                    let topic = family_in(toks, at, end).map_or_else(
                        || format!("{INSTRUCTION_PREFIX}{}", topic_of(toks, &p)),
                        str::to_string,
                    );
                    self.revoke(format!("{sp} no longer wants {what}."), topic);
                    return;
                }
                self.push(
                    "constraint",
                    format!("{sp} does not want {what}."),
                    0.75,
                    topic,
                );
                return;
            }
        }
        // Allergies and intolerances; "I'm no longer allergic to eggs" ends one.
        if let Some(at) = match_seq(toks, j, &["am", "no", "longer", "allergic", "to"])
            .or_else(|| match_seq(toks, j, &["am", "not", "allergic", "to"]))
        {
            if let Some(p) = object_phrase(toks, at, 4) {
                let statement =
                    format!("{sp} is no longer allergic to {}.", self.display(toks, &p));
                self.revoke(statement, format!("allergy:{}", topic_of(toks, &p)));
            }
            return;
        }
        if let Some(at) = match_seq(toks, j, &["am", "allergic", "to"]) {
            if let Some(p) = object_phrase(toks, at, 4) {
                let statement = format!("{sp} is allergic to {}.", self.display(toks, &p));
                self.push(
                    "constraint",
                    statement,
                    0.95,
                    format!("allergy:{}", topic_of(toks, &p)),
                );
            }
            return;
        }
        for what in ["lactose", "gluten"] {
            if match_seq(toks, j, &["am", what, "intolerant"]).is_some() {
                self.push(
                    "constraint",
                    format!("{sp} is {what} intolerant."),
                    0.9,
                    format!("allergy:{what}"),
                );
                return;
            }
        }
        if match_seq(toks, j, &["am", "not", "celiac"]).is_some()
            || match_seq(toks, j, &["am", "not", "coeliac"]).is_some()
        {
            self.revoke(format!("{sp} is not coeliac."), "allergy:gluten".into());
            return;
        }
        if match_seq(toks, j, &["have", "celiac"]).is_some()
            || match_seq(toks, j, &["have", "coeliac"]).is_some()
            || match_seq(toks, j, &["am", "celiac"]).is_some()
            || match_seq(toks, j, &["am", "coeliac"]).is_some()
        {
            self.push(
                "constraint",
                format!("{sp} has coeliac disease and cannot eat gluten."),
                0.9,
                "allergy:gluten".into(),
            );
            return;
        }
        if let Some(at) = match_seq(toks, j, &["have", "an", "allergy", "to"]) {
            if let Some(p) = object_phrase(toks, at, 4) {
                let statement = format!("{sp} is allergic to {}.", self.display(toks, &p));
                self.push(
                    "constraint",
                    statement,
                    0.95,
                    format!("allergy:{}", topic_of(toks, &p)),
                );
            }
            return;
        }
        if let Some(at) =
            match_seq(toks, j, &["have", "a"]).or_else(|| match_seq(toks, j, &["have", "an"]))
        {
            let window = words_of(toks, at, at + 4);
            if let Some(n) = window
                .iter()
                .position(|w| matches!(*w, "allergy" | "allergies"))
                && n > 0
            {
                let thing = singular(window[n - 1]);
                self.push(
                    "constraint",
                    format!("{sp} is allergic to {}.", window[..n].join(" ")),
                    0.95,
                    format!("allergy:{thing}"),
                );
                return;
            }
        }
        // Name.
        if let Some(at) = match_seq(toks, j, &["go", "by"])
            .or_else(|| match_seq(toks, j, &["prefer", "to", "be", "called"]))
        {
            let mut end = at;
            while end < toks.len() && end - at < 3 && toks[end].cap && !is_stopword(&toks[end].word)
            {
                end += 1;
            }
            if end > at {
                let name = self.text(toks, at, end);
                self.push(
                    "preference",
                    format!("{sp} wants to be called {name}."),
                    0.85,
                    "name".into(),
                );
            }
            return;
        }
        // Prefer / would rather / want answers ….
        for (seq, verb) in [
            (&["prefer"][..], "prefers"),
            (&["would", "prefer"], "would prefer"),
            (&["would", "rather"], "would rather"),
            (&["want"], "wants"),
            (&["would", "like"], "would like"),
        ] {
            let Some(at) = match_seq(toks, j, seq) else {
                continue;
            };
            if self.answer_preference(s, at, true) {
                return;
            }
            if matches!(verb, "wants" | "would like") {
                break; // a wish, not a standing preference
            }
            // "I'd rather have tea": the verb belongs to the statement, not the topic.
            let (at, lead) = match toks.get(at).map(|t| t.word.as_str()) {
                Some(
                    v @ ("have" | "drink" | "eat" | "get" | "use" | "watch" | "read" | "go"
                    | "take"),
                ) => (at + 1, format!("{v} ")),
                _ => (at, String::new()),
            };
            let Some(p) = object_phrase(toks, at, 5) else {
                return;
            };
            if NOT_LIKES.contains(&toks[p.start].word.as_str()) {
                return;
            }
            let mut shown = format!("{lead}{}", self.display(toks, &p));
            if let Some(t) = toks.get(p.end)
                && matches!(t.word.as_str(), "over" | "to" | "than" | "instead")
                && let Some(q) = object_phrase(toks, p.end + 1, 4)
            {
                shown = format!("{shown} {} {}", t.word, self.display(toks, &q));
            }
            let topic = diet_topic(toks, &p).unwrap_or_else(|| topic_of(toks, &p));
            self.push("preference", format!("{sp} {verb} {shown}."), 0.8, topic);
            return;
        }
        // Dislikes.
        for (seq, verb, conf) in [
            (&["do", "not", "like"][..], "does not like", 0.7),
            (&["do", "not", "love"], "does not love", 0.65),
            (&["do", "not", "enjoy"], "does not enjoy", 0.65),
            (&["do", "not", "care", "for"], "does not care for", 0.65),
            (&["hate"], "hates", 0.75),
            (&["dislike"], "dislikes", 0.75),
            (&["detest"], "detests", 0.75),
            (&["can", "not", "stand"], "cannot stand", 0.75),
            (&["am", "not", "a", "fan", "of"], "is not a fan of", 0.7),
            (&["am", "not", "into"], "is not into", 0.65),
            // Idioms of a taste gone sour ("gone off", "sick of", "fed up with"): the thing
            // is disliked now, and the earlier like of it (same topic) is superseded.
            (&["have", "gone", "off"], "dislikes", 0.7),
            (&["have", "gone", "right", "off"], "dislikes", 0.7),
            (&["went", "off"], "dislikes", 0.7),
            (&["went", "right", "off"], "dislikes", 0.7),
            (&["have", "gotten", "sick", "of"], "dislikes", 0.7),
            (&["have", "got", "sick", "of"], "dislikes", 0.7),
            (&["got", "sick", "of"], "dislikes", 0.7),
            (&["am", "sick", "of"], "dislikes", 0.7),
            (&["have", "gotten", "tired", "of"], "dislikes", 0.65),
            (&["got", "tired", "of"], "dislikes", 0.65),
            (&["am", "tired", "of"], "dislikes", 0.65),
            (&["am", "fed", "up", "with"], "dislikes", 0.7),
        ] {
            if let Some(at) = match_seq(toks, j, seq) {
                self.taste(s, at, verb, conf);
                return;
            }
        }
        // Habits: drink / eat, and giving them up. (pattern, verb, verb with "anymore")
        for (seq, verb, no_more_verb) in [
            (
                &["do", "not", "drink"][..],
                "does not drink",
                "no longer drinks",
            ),
            (&["do", "not", "eat"], "does not eat", "no longer eats"),
            (&["never", "drink"], "never drinks", "no longer drinks"),
            (&["never", "eat"], "never eats", "no longer eats"),
            (
                &["no", "longer", "drink"],
                "no longer drinks",
                "no longer drinks",
            ),
            (&["no", "longer", "eat"], "no longer eats", "no longer eats"),
            (
                &["stopped", "drinking"],
                "stopped drinking",
                "stopped drinking",
            ),
            (&["stopped", "eating"], "stopped eating", "stopped eating"),
            (&["quit", "drinking"], "quit drinking", "quit drinking"),
            (&["quit", "eating"], "quit eating", "quit eating"),
            (&["gave", "up"], "gave up", "gave up"),
            (&["have", "given", "up"], "gave up", "gave up"),
            (&["can", "not", "eat"], "cannot eat", "cannot eat"),
            (&["drink"], "drinks", ""),
            (&["eat"], "eats", ""),
        ] {
            let Some(at) = match_seq(toks, j, seq) else {
                continue;
            };
            let Some(p) = object_phrase(toks, at, 4) else {
                return;
            };
            if NOT_LIKES.contains(&toks[p.start].word.as_str()) {
                return;
            }
            let no_more = no_longer_after(toks, p.end);
            if no_more && no_more_verb.is_empty() {
                return; // "I drink coffee anymore" is not a statement of habit
            }
            let verb = if no_more { no_more_verb } else { verb };
            let positive = no_more_verb.is_empty();
            let topic = diet_topic(toks, &p).unwrap_or_else(|| topic_of(toks, &p));
            let kind = if verb == "cannot eat" {
                "constraint"
            } else {
                "preference"
            };
            let conf = if positive { 0.55 } else { 0.7 };
            self.push(
                kind,
                format!("{sp} {verb} {}.", self.display(toks, &p)),
                conf,
                topic,
            );
            return;
        }
        // Likes.
        for (seq, verb, conf) in [
            (&["like"][..], "likes", 0.6),
            (&["love"], "loves", 0.65),
            (&["enjoy"], "enjoys", 0.6),
            (&["adore"], "adores", 0.65),
            (&["am", "a", "big", "fan", "of"], "is a big fan of", 0.65),
            (&["am", "a", "huge", "fan", "of"], "is a huge fan of", 0.65),
            (&["am", "a", "fan", "of"], "is a fan of", 0.6),
            (&["am", "into"], "is into", 0.55),
        ] {
            if let Some(at) = match_seq(toks, j, seq) {
                self.taste(s, at, verb, conf);
                return;
            }
        }
    }

    /// "I'm eating meat again", "I eat meat again now": the diet ends without a new one.
    fn diet_ending(&mut self, s: &Sentence<'_>, j: usize) -> bool {
        let toks = &s.toks;
        let end = clause_end(toks, j);
        let w = words_of(toks, j, end);
        let eats = w
            .iter()
            .take(4)
            .any(|x| matches!(*x, "eat" | "eating" | "ate" | "having"));
        let topic = w.iter().find_map(|x| match *x {
            "meat" | "steak" | "chicken" | "fish" | "beef" | "pork" | "bacon" | "burgers" => {
                Some("diet")
            }
            "gluten" | "bread" | "pasta" | "wheat" => Some("allergy:gluten"),
            "dairy" | "cheese" | "milk" => Some("free:dairy"),
            _ => None,
        });
        match topic {
            Some(t) if eats && w.contains(&"again") => {
                let what = self.text(toks, j, end);
                self.revoke(
                    format!("{} {}.", self.speaker, pronouns_third(what)),
                    t.to_string(),
                );
                true
            }
            _ => false,
        }
    }

    /// "I've been gluten-free for two years", "I'm dairy-free": the thing avoided is the
    /// topic (gluten and lactose share the intolerance's key).
    fn free_of(&mut self, s: &Sentence<'_>, j: usize) -> bool {
        let toks = &s.toks;
        let at = [
            &["am"][..],
            &["have", "been"],
            &["went"],
            &["am", "going"],
            &["have", "gone"],
            &["eat"],
        ]
        .iter()
        .find_map(|seq| match_seq(toks, j, seq));
        let Some(at) = at else { return false };
        let (Some(x), Some(free)) = (toks.get(at), toks.get(at + 1)) else {
            return false;
        };
        if free.word != "free" || is_stopword(&x.word) || x.boundary_after {
            return false;
        }
        let thing = singular(&x.word);
        let topic = match thing.as_str() {
            "gluten" | "lactose" => format!("allergy:{thing}"),
            _ => format!("free:{thing}"),
        };
        self.push(
            "preference",
            format!("{} eats {}-free.", self.speaker, x.word),
            0.85,
            topic,
        );
        true
    }

    /// "I quit bouldering", "I lost interest in baking", "I gave up on the fasting": a taste
    /// or habit ends, and nothing replaces it in this clause ("I've gone off pistachio" is a
    /// dislike instead, see the dislikes of [`Self::first_person`]).
    fn taste_ending(&mut self, s: &Sentence<'_>, j: usize) -> bool {
        let toks = &s.toks;
        let Some(at) = TASTE_ENDINGS.iter().find_map(|seq| match_seq(toks, j, seq)) else {
            return false;
        };
        let at = match_seq(toks, at, &["on"])
            .or_else(|| match_seq(toks, at, &["bothering", "with"]))
            .or_else(|| match_seq(toks, at, &["drinking"]))
            .or_else(|| match_seq(toks, at, &["eating"]))
            .unwrap_or(at);
        let Some(mut p) = object_phrase(toks, at, 4) else {
            return false;
        };
        if NOT_LIKES.contains(&toks[p.start].word.as_str()) {
            return false;
        }
        // "baking tbh": chat fillers are not part of the thing.
        while p.end > p.start + 1
            && matches!(
                toks[p.end - 1].word.as_str(),
                "tbh" | "lol" | "ngl" | "honestly" | "haha" | "tho" | "now" | "lately"
            )
        {
            p.end -= 1;
        }
        // "I stopped being vegetarian" ends the diet.
        let diet = toks[p.start..p.end]
            .iter()
            .any(|t| DIETS.contains(&t.word.as_str()));
        let topic = if diet {
            "diet".to_string()
        } else {
            diet_topic(toks, &p).unwrap_or_else(|| topic_of(toks, &p))
        };
        let statement = format!("{} gave up {}.", self.speaker, self.display(toks, &p));
        self.revoke(statement, topic);
        true
    }

    /// "I prefer answers in Spanish", "I want shorter replies", "I prefer metric".
    fn answer_preference(&mut self, s: &Sentence<'_>, at: usize, bare_ok: bool) -> bool {
        let toks = &s.toks;
        let rest = &toks[at.min(toks.len())..];
        // "I prefer Spanish." names just the language; "I prefer Italian food" does not.
        let bare = |w: &str| {
            bare_ok
                && rest.first().is_some_and(|t| t.word == w)
                && (rest.len() == 1
                    || rest[0].boundary_after
                    || OBJECT_STOP.contains(&rest[1].word.as_str()))
        };
        let about_answers = rest.iter().any(|t| {
            matches!(
                t.word.as_str(),
                "answers"
                    | "answer"
                    | "responses"
                    | "response"
                    | "replies"
                    | "reply"
                    | "explanations"
            )
        });
        let sp = self.speaker;
        if let Some(lang) = find_word(rest, 0, LANGUAGES)
            && (about_answers || bare(&lang.word))
        {
            let statement = format!("{sp} wants answers in {}.", title_case(&lang.word));
            self.push("preference", statement, 0.85, "language".into());
            return true;
        }
        if let Some(unit) = rest.iter().find(|t| unit_system_word(&t.word).is_some())
            && (about_answers || bare_ok)
        {
            let system = unit_system_word(&unit.word).unwrap_or("metric");
            let written = self.own.get(unit.start..unit.end).unwrap_or("");
            self.push(
                "preference",
                units_statement(sp, system, written),
                0.8,
                "units".into(),
            );
            return true;
        }
        if about_answers && let Some(short) = length_wanted(rest) {
            let statement = length_statement(sp, short, rest);
            self.push("preference", statement, 0.8, "answer_length".into());
            return true;
        }
        false
    }

    /// A like or dislike of the object starting at `at`.
    fn taste(&mut self, s: &Sentence<'_>, at: usize, verb: &str, conf: f32) {
        let toks = &s.toks;
        let positive = !verb.contains("not")
            && !matches!(verb, "hates" | "dislikes" | "detests" | "cannot stand");
        if positive && self.answer_preference(s, at, false) {
            return;
        }
        let (start, to) = if toks.get(at).is_some_and(|t| t.word == "to") {
            (at + 1, "to ")
        } else {
            (at, "")
        };
        let Some(base) = object_phrase(toks, start, 5) else {
            return;
        };
        let ext = extend_gerund(toks, base.clone());
        // The topic is the activity ("hiking"), unless the gerund is too light to name one.
        let p = if is_light_gerund(&toks[base.end - 1].word) {
            ext.clone()
        } else {
            base
        };
        let first = toks[p.start].word.as_str();
        let body = self.text(toks, p.start, p.end).to_lowercase();
        let others = matches!(p.det.as_deref(), Some("your" | "his" | "her" | "their"));
        if NOT_LIKES.contains(&first)
            || NOT_LIKES.contains(&body.as_str())
            || others
            || (!to.is_empty() && p.det.is_some())
        {
            return;
        }
        if positive && no_longer_after(toks, p.end) {
            return;
        }
        let topic = diet_topic(toks, &p).unwrap_or_else(|| topic_of(toks, &p));
        let statement = format!("{} {verb} {to}{}.", self.speaker, self.display(toks, &ext));
        self.push("preference", statement, conf, topic);
    }

    /// "my favorite color is blue", "my name is Sam", "my pronouns are she/her".
    fn possessive(&mut self, s: &Sentence<'_>, m: usize) {
        let toks = &s.toks;
        let sp = self.speaker;
        let Some(next) = toks.get(m + 1) else { return };
        if is_favorite(&next.word) {
            let cat_start = m + 2;
            let Some(is_at) = (cat_start..(cat_start + 4).min(toks.len()))
                .find(|&i| matches!(toks[i].word.as_str(), "is" | "are" | "was"))
            else {
                return;
            };
            if is_at == cat_start
                || toks[cat_start..is_at]
                    .iter()
                    .any(|t| t.boundary_after && t.end != toks[is_at - 1].end)
            {
                return;
            }
            let Some(p) = object_phrase(toks, is_at + 1, 5) else {
                return;
            };
            if NOT_LIKES.contains(&toks[p.start].word.as_str()) {
                return;
            }
            let category = self.text(toks, cat_start, is_at).to_lowercase();
            let key: Vec<String> = words_of(toks, cat_start, is_at)
                .iter()
                .map(|w| singular(w))
                .collect();
            let verb = &toks[is_at].word;
            let statement = format!(
                "{sp}'s favorite {category} {verb} {}.",
                self.display(toks, &p)
            );
            self.push(
                "preference",
                statement,
                0.8,
                format!("favorite_{}", key.join("_")),
            );
            return;
        }
        if next.word == "name" && toks.get(m + 2).is_some_and(|t| t.word == "is") {
            let at = m + 3;
            let mut end = at;
            while end < toks.len() && end - at < 3 && toks[end].cap && !is_stopword(&toks[end].word)
            {
                end += 1;
                if toks[end - 1].boundary_after {
                    break;
                }
            }
            if end > at {
                let name = self.text(toks, at, end);
                self.push(
                    "preference",
                    format!("{sp}'s name is {name}; call them {name}."),
                    0.7,
                    "name".into(),
                );
            }
            return;
        }
        if next.word == "pronouns" && toks.get(m + 2).is_some_and(|t| t.word == "are") {
            let pron: Vec<&str> = words_of(toks, m + 3, m + 6)
                .into_iter()
                .take_while(|w| {
                    matches!(
                        *w,
                        "she"
                            | "her"
                            | "hers"
                            | "he"
                            | "him"
                            | "his"
                            | "they"
                            | "them"
                            | "theirs"
                            | "xe"
                            | "xem"
                            | "ze"
                            | "zir"
                    )
                })
                .collect();
            if !pron.is_empty() {
                self.push(
                    "preference",
                    format!("{sp} uses the pronouns {}.", pron.join("/")),
                    0.9,
                    "pronouns".into(),
                );
            }
        }
    }

    /// "jazz is my favorite music": the subject before "is".
    fn favorite_before(&mut self, s: &Sentence<'_>, is_at: usize) {
        let toks = &s.toks;
        let mut start = is_at;
        while start > 0 && is_at - start < 4 && !toks[start - 1].boundary_after {
            start -= 1;
        }
        let Some(p) = object_phrase(toks, start, is_at - start) else {
            return;
        };
        if p.end != is_at || NOT_LIKES.contains(&toks[p.start].word.as_str()) {
            return;
        }
        let cat_start = is_at + 3;
        let mut cat_end = cat_start;
        while cat_end < toks.len() && cat_end - cat_start < 3 && !is_stopword(&toks[cat_end].word) {
            cat_end += 1;
            if toks[cat_end - 1].boundary_after {
                break;
            }
        }
        if cat_end == cat_start {
            return;
        }
        let category = self.text(toks, cat_start, cat_end).to_lowercase();
        let key: Vec<String> = words_of(toks, cat_start, cat_end)
            .iter()
            .map(|w| singular(w))
            .collect();
        let statement = format!(
            "{}'s favorite {category} is {}.",
            self.speaker,
            self.display(toks, &p)
        );
        self.push(
            "preference",
            statement,
            0.8,
            format!("favorite_{}", key.join("_")),
        );
    }
}

/// The topic a revocation gives when it names no family ("forget that request"): the
/// reflector resolves it to the user's most recently stated instruction.
pub const PREVIOUS: &str = "@previous";

/// The topic prefix of a revocation of an instruction that names no family ("scrap the
/// recap" → `instruction:recap`): the reflector matches it to an active instruction by
/// meaning; a revocation without it ends a taste ("I quit bouldering" → `bouldering`).
pub const INSTRUCTION_PREFIX: &str = "instruction:";

/// Requests phrased as questions ("could you always …?", "would you mind always …?").
const REQUEST_LEADS: &[&[&str]] = &[
    &["would", "you", "mind"],
    &["do", "you", "mind"],
    &["could", "you", "please"],
    &["can", "you", "please"],
    &["could", "you"],
    &["can", "you"],
    &["would", "you"],
    &["will", "you"],
    &["could", "u"],
    &["can", "u"],
    &["would", "u"],
];

/// Openings that address the assistant before the verb of a directive.
const ADDRESSED_LEADS: &[&[&str]] = &[
    &["i", "want", "you", "to"],
    &["i", "would", "like", "you", "to"],
    &["i", "need", "you", "to"],
    &["i", "would", "prefer", "you", "to"],
    &["i", "would", "prefer", "if", "you"],
    &["i", "would", "prefer", "it", "if", "you"],
    &["i", "would", "appreciate", "it", "if", "you"],
    &["i", "would", "appreciate", "if", "you"],
    &["i", "would", "love", "it", "if", "you"],
    &["i", "would", "rather", "you"],
    &["want", "you", "to"],
    &["need", "you", "to"],
    &["you", "can"],
    &["you", "could"],
    &["you", "should"],
    &["you", "must"],
    &["you", "may"],
    &["feel", "free", "to"],
    &["go", "ahead", "and"],
    &["make", "sure", "to"],
    &["make", "sure", "you"],
    &["be", "sure", "to"],
    &["let", "us"],
];

/// Openings that release the assistant from doing what follows: a prohibition in effect
/// ("you don't have to apologise all the time", "no need to recap every answer").
const RELEASING_LEADS: &[&[&str]] = &[
    &["you", "do", "not", "have", "to"],
    &["you", "do", "not", "need", "to"],
    &["you", "never", "have", "to"],
    &["you", "never", "need", "to"],
    &["there", "is", "no", "need", "to"],
    &["no", "need", "to"],
];

/// Words that open a clause but are never its imperative verb.
#[rustfmt::skip]
const NOT_VERBS: &[&str] = &[
    "another", "one", "the", "a", "an", "some", "any", "no", "not", "all", "every", "each", "for",
    "in", "on", "at", "to", "of", "with", "by", "from", "as", "if", "when", "whenever", "while",
    "because", "since", "though", "although", "thanks", "thank", "sorry", "yes", "yeah", "nope",
    "no", "ok", "okay", "haha", "lol", "hi", "hello", "hey", "well", "also", "really", "very",
    "is", "are", "was", "were", "am", "being", "been", "has", "had", "does", "did", "would",
    "could", "should", "might", "will", "shall", "can", "may", "must", "perfect", "great", "cool",
    "nice", "fine", "good", "sure",
];

/// Words that are a clause's subject, never an imperative verb.
const SUBJECTS: &[&str] = &[
    "i", "you", "we", "they", "he", "she", "it", "that", "this", "there", "my", "your", "our",
    "their", "his", "her", "its", "what", "who", "which", "u",
];

/// Verbs that set how the assistant writes, for family rules.
#[rustfmt::skip]
const STYLE_VERBS: &[&str] = &[
    "use", "keep", "be", "stay", "stick", "write", "talk", "speak", "answer", "reply", "respond",
    "give", "put", "make", "format", "explain", "break", "avoid", "switch", "go", "skip", "show",
    "list", "add", "include", "assume", "structure", "present", "lay", "start", "end", "open",
    "begin", "quote", "express", "display", "sound", "address", "call", "spell", "round", "cite",
    "leave", "drop", "bring", "send", "do", "try", "tell",
];

/// Families of instructions about the form of answers, each one topic, so that differently
/// worded rules of a family supersede each other ("use a numbered list" → "write in flowing
/// prose"). Bullet points and tables are different families: a user can want both.
#[rustfmt::skip]
const FAMILIES: &[(&str, &[&[&str]])] = &[
    ("time_format", &[&["24", "hour"], &["12", "hour"], &["am", "pm"], &["military", "time"], &["24h"], &["12h"]]),
    ("tables", &[&["table"], &["tables"]]),
    ("emoji", &[&["emoji"], &["emojis"], &["emoticons"], &["emojies"]]),
    ("format", &[
        &["bullet"], &["bullets"], &["bulleted"], &["numbered"], &["list"], &["lists"], &["prose"],
        &["paragraph"], &["paragraphs"], &["walls", "of", "text"], &["wall", "of", "text"],
    ]),
    ("markup", &[
        &["plain", "text"], &["markdown"], &["formatting"], &["headers"], &["header"], &["headings"],
        &["heading"], &["bold"], &["italics"], &["italic"],
    ]),
    ("tone", &[
        &["formal"], &["informal"], &["casual"], &["friendly"], &["professional"], &["upbeat"],
        &["encouraging"], &["cheerleading"], &["cheerful"], &["matter", "of", "fact"], &["blunt"],
        &["playful"], &["stiff"], &["register"], &["tone"], &["corporate"], &["polite"],
        &["enthusiastic"], &["sarcastic"], &["chatty"], &["relaxed"], &["laid", "back"], &["pirate"],
        &["motivating"], &["motivational"], &["gentle"], &["direct"], &["serious"],
        &["friendlier"], &["warmer"], &["gentler"], &["softer"], &["nicer"], &["formally"],
        &["casually"], &["politely"], &["bluntly"],
    ]),
    ("expertise", &[
        &["beginner"], &["beginners"], &["basics"], &["jargon"], &["technical"], &["vocabulary"],
        &["layman"], &["laymans"], &["expert"], &["eli5"], &["simple", "words"], &["simple", "language"],
        &["hand", "holding"], &["simple"], &["simpler"], &["plain", "language"], &["plain", "english"],
    ]),
    ("spelling", &[
        &["spelling"], &["spellings"], &["british", "english"], &["american", "english"],
        &["uk", "english"], &["us", "english"], &["australian", "english"],
    ]),
    ("currency", &[
        &["euro"], &["euros"], &["dollar"], &["dollars"], &["rand"], &["yen"], &["rupee"], &["rupees"],
        &["peso"], &["pesos"], &["franc"], &["francs"], &["kronor"], &["krona"], &["krone"],
        &["zloty"], &["sterling"], &["gbp"], &["usd"], &["eur"], &["currency"], &["won"], &["baht"],
    ]),
    ("code_language", &[
        &["rust"], &["python"], &["kotlin"], &["java"], &["javascript"], &["typescript"], &["golang"],
        &["ruby"], &["php"], &["swift"], &["scala"], &["haskell"], &["sql"], &["bash"], &["perl"],
        &["elixir"], &["clojure"], &["lua"],
    ]),
    ("punctuation", &[&["exclamation"], &["exclamation", "marks"], &["exclamation", "points"]]),
    ("name", &[&["title"], &["nickname"], &["full", "name"]]),
    ("answer_length", &[
        &["one", "sentence"], &["few", "lines"], &["to", "the", "point"], &["full", "detail"],
        &["in", "detail"], &["in", "depth"], &["more", "detail"], &["less", "detail"],
        &["word", "count"], &["shorter"], &["longer"],
    ]),
];

/// The family named in tokens `a..b` (a capitalised word before "time" is a time zone:
/// "Pacific time", "Japan time"; "pounds" is a currency only next to prices).
fn family_in(toks: &[Tok], a: usize, b: usize) -> Option<&'static str> {
    let b = b.min(toks.len());
    let words: Vec<&str> = toks[..b].iter().map(|t| t.word.as_str()).collect();
    let prices = words[a.min(b)..]
        .iter()
        .any(|w| matches!(*w, "price" | "prices" | "cost" | "costs" | "money"));
    for i in a..b {
        if toks[i].word == "time"
            && i > a
            && (toks[i - 1].cap || matches!(toks[i - 1].word.as_str(), "local" | "zone"))
            && !matches!(toks[i - 1].word.as_str(), "i" | "the" | "this" | "that")
        {
            return Some("time_zone");
        }
        if matches!(
            toks[i].word.as_str(),
            "timezone"
                | "gmt"
                | "utc"
                | "cet"
                | "pst"
                | "est"
                | "pdt"
                | "edt"
                | "bst"
                | "jst"
                | "aest"
        ) || contains_seq(&words[i..], &["time", "zone"]) && i + 2 <= b && words[i] == "time"
        {
            return Some("time_zone");
        }
        if prices && matches!(toks[i].word.as_str(), "pounds" | "pound") {
            return Some("currency");
        }
        for (family, phrases) in FAMILIES {
            if phrases
                .iter()
                .any(|p| i + p.len() <= b && words[i..i + p.len()] == **p)
            {
                return Some(family);
            }
        }
    }
    None
}

/// The last family, unit, language or name ("called me Sasha") mentioned in `toks`, with
/// its words as written in `own`.
fn mention(toks: &[Tok], own: &str) -> Option<(String, String)> {
    let text = |a: usize, b: usize| {
        own.get(toks[a].start..toks[b - 1].end)
            .unwrap_or("")
            .to_string()
    };
    for i in (0..toks.len()).rev() {
        let w = toks[i].word.as_str();
        if METRIC.contains(&w) || IMPERIAL.contains(&w) {
            return Some(("units".into(), text(i, i + 1)));
        }
        if LANGUAGES.contains(&w) {
            return Some(("language".into(), text(i, i + 1)));
        }
        if i >= 2
            && toks[i].cap
            && toks[i - 1].word == "me"
            && matches!(toks[i - 2].word.as_str(), "call" | "called" | "calls")
        {
            return Some(("name".into(), text(i, i + 1)));
        }
        if let Some(f) = family_in(toks, i, (i + 3).min(toks.len()))
            && family_in(toks, i + 1, (i + 3).min(toks.len())) != Some(f)
        {
            let mut end = i + 1;
            while end < toks.len()
                && end - i < 3
                && !toks[end - 1].boundary_after
                && !is_stopword(&toks[end].word)
            {
                end += 1;
            }
            return Some((f.to_string(), text(i, end)));
        }
    }
    None
}

/// Index just past the clause that contains token `at`.
fn clause_end(toks: &[Tok], at: usize) -> usize {
    let mut end = at;
    while end < toks.len() {
        end += 1;
        if toks[end - 1].boundary_after {
            break;
        }
    }
    end.min(toks.len())
}

/// Leading politeness and discourse markers.
/// The auxiliary an elided "I" took before the clause at `at` (`Some(None)`: none, "love
/// sushi tho"), or `None` when the clause does not open like a first-person predicate whose
/// subject was dropped: "(I'm) not a fan of X", "(I'm) a big fan of X", "(I'm) allergic to
/// X", "(I'm) sick of X", "(I've) been vegan", "(I've) gone off X", "(I) hate X".
fn elided_aux(toks: &[Tok], at: usize) -> Option<Option<&'static str>> {
    let w = |i: usize| toks.get(at + i).map_or("", |t| t.word.as_str());
    let fan = |i: usize| {
        match_seq(toks, at + i, &["a", "fan", "of"]).is_some()
            || (w(i) == "a" && w(i + 2) == "fan" && w(i + 3) == "of")
    };
    match w(0) {
        "not" if fan(1) || matches!(w(1), "into" | "allergic") || DIETS.contains(&w(1)) => {
            Some(Some("am"))
        }
        "a" if fan(0) => Some(Some("am")),
        "allergic" if w(1) == "to" => Some(Some("am")),
        "sick" | "tired" if w(1) == "of" => Some(Some("am")),
        "fed" if w(1) == "up" => Some(Some("am")),
        "been" => Some(Some("have")),
        "gone" if w(1) == "off" || w(2) == "off" => Some(Some("have")),
        "hate" | "love" | "adore" | "detest" | "dislike" if w(1) != "it" && !w(1).is_empty() => {
            Some(None)
        }
        _ => None,
    }
}

fn skip_markers(toks: &[Tok], mut i: usize) -> usize {
    while toks.get(i).is_some_and(|t| {
        matches!(
            t.word.as_str(),
            "please"
                | "pls"
                | "plz"
                | "and"
                | "also"
                | "so"
                | "ok"
                | "okay"
                | "oh"
                | "hey"
                | "but"
                | "then"
                | "now"
                | "anyway"
                | "btw"
                | "tbh"
                | "honestly"
                | "though"
                | "well"
        )
    }) {
        i += 1;
    }
    i
}

/// A word in -ing that is not a verb's base form ("citing", not "bring").
fn is_gerund(w: &str) -> bool {
    const BASES: &[&str] = &[
        "bring",
        "sing",
        "ring",
        "string",
        "swing",
        "sting",
        "spring",
        "fling",
        "cling",
        "thing",
        "king",
        "wing",
        "ping",
        "ding",
        "during",
        "nothing",
        "something",
        "anything",
        "everything",
    ];
    w.len() > 4 && w.ends_with("ing") && !BASES.contains(&w)
}

/// The verb at `i` follows "would you mind" / "do you mind" (a gerund is its verb).
fn minded(toks: &[Tok], i: usize) -> bool {
    toks[..i].iter().rev().take(3).any(|t| t.word == "mind")
}

/// The sentence says the rule stands beyond this turn.
fn standing_cue(words: &[&str]) -> bool {
    words.iter().any(|w| {
        matches!(
            *w,
            "always"
                | "never"
                | "every"
                | "each"
                | "whenever"
                | "anytime"
                | "default"
                | "unless"
                | "generally"
                | "stop"
        )
    }) || [
        &["from", "now", "on"][..],
        &["going", "forward"],
        &["in", "the", "future"],
        &["in", "future"],
        &["in", "general"],
        &["from", "here", "on"],
        &["any", "time"],
        &["starting", "today"],
        &["from", "today"],
        &["all", "the", "time"],
        &["for", "anything"],
        &["our", "chats"],
    ]
    .iter()
    .any(|seq| contains_seq(words, seq))
}

/// The request is for today, this question or this time only.
fn temporary(words: &[&str]) -> bool {
    [
        &["for", "today"][..],
        &["rest", "of", "our", "chat", "today"],
        &["rest", "of", "the", "day"],
        &["this", "one"],
        &["this", "time"],
        &["just", "this"],
        &["for", "this", "question"],
        &["for", "this", "answer"],
    ]
    .iter()
    .any(|seq| contains_seq(words, seq))
}

/// The object is a particular text ("this email", "the sentence", a quotation): a task.
fn one_off(toks: &[Tok], a: usize, b: usize) -> bool {
    toks[a.min(toks.len())..b.min(toks.len())].iter().any(|t| {
        matches!(
            t.word.as_str(),
            "this"
                | "these"
                | "email"
                | "message"
                | "sentence"
                | "paragraph"
                | "essay"
                | "letter"
                | "card"
                | "post"
                | "text"
                | "document"
        )
    }) && !toks[a.min(toks.len())..b.min(toks.len())]
        .iter()
        .any(|t| matches!(t.word.as_str(), "plain" | "walls" | "wall"))
}

/// The base form of a gerund or past tense after "stop", "would you mind", "if you":
/// "citing" → "cite", "kept" → "keep", "putting" → "put".
fn base_verb(w: &str) -> String {
    if let Some((_, b)) = GERUNDS.iter().find(|(g, _)| *g == w) {
        return (*b).to_string();
    }
    let past = match w {
        "kept" => "keep",
        "used" => "use",
        "gave" => "give",
        "wrote" => "write",
        "made" => "make",
        "stopped" => "stop",
        "called" => "call",
        "answered" => "answer",
        "replied" => "reply",
        "responded" => "respond",
        "avoided" => "avoid",
        "sent" => "send",
        "spoke" => "speak",
        "told" => "tell",
        "added" => "add",
        "started" => "start",
        "ended" => "end",
        "stuck" => "stick",
        "switched" => "switch",
        "included" => "include",
        "explained" => "explain",
        "talked" => "talk",
        "opened" => "open",
        "skipped" => "skip",
        "wrapped" => "wrap",
        _ => "",
    };
    if !past.is_empty() {
        return past.to_string();
    }
    const E_STEMS: &[&str] = &[
        "cit",
        "us",
        "writ",
        "giv",
        "mak",
        "tak",
        "includ",
        "provid",
        "quot",
        "phras",
        "structur",
        "stat",
        "not",
        "shar",
        "describ",
        "summaris",
        "summariz",
        "typ",
        "plac",
        "rat",
        "translat",
        "cod",
        "serv",
        "com",
        "lov",
        "hat",
        "sav",
        "leav",
        "receiv",
        "argu",
        "prefac",
        "continu",
        "captur",
        "clos",
        "compar",
        "explor",
        "chang",
        "arrang",
        "prepar",
        "reduc",
        "introduc",
        "capitalis",
        "capitaliz",
        "rephras",
        "simplif",
        "pronounc",
    ];
    let Some(stem) = w.strip_suffix("ing").filter(|_| is_gerund(w)) else {
        return w.to_string();
    };
    let b = stem.as_bytes();
    if b.len() >= 3
        && b[b.len() - 1] == b[b.len() - 2]
        && b"ptgmnbdr".contains(&b[b.len() - 1])
        && !stem.ends_with("dd")
    {
        return stem[..stem.len() - 1].to_string();
    }
    if E_STEMS.contains(&stem) {
        return format!("{stem}e");
    }
    stem.to_string()
}

/// A directive's words about the user in the third person: "me" → "them", "my" → "their".
fn pronouns_third(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            let rest = &w[w.find(core).map_or(0, |i| i + core.len())..];
            let mapped = match core.to_lowercase().as_str() {
                "me" => "them",
                "my" => "their",
                "i" => "they",
                "myself" => "themselves",
                "i'm" | "im" => "they're",
                "mine" => "theirs",
                _ => return w.to_string(),
            };
            let lead = &w[..w.find(core).unwrap_or(0)];
            format!("{lead}{mapped}{rest}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn kind_of(c: &Cues) -> &'static str {
    if c.neg { "constraint" } else { "instruction" }
}

/// `metric` or `imperial` for one unit word.
fn unit_system_word(w: &str) -> Option<&'static str> {
    if METRIC.contains(&w) {
        Some("metric")
    } else if IMPERIAL.contains(&w) {
        Some("imperial")
    } else {
        None
    }
}

/// "Sam wants imperial units (pounds)."; the unit as the user wrote it unless it is the
/// system's own name.
fn units_statement(speaker: &str, system: &str, written: &str) -> String {
    if written.is_empty() || written.eq_ignore_ascii_case(system) {
        format!("{speaker} wants {system} units.")
    } else {
        format!("{speaker} wants {system} units ({written}).")
    }
}

/// "Sam wants short, concise answers." plus the user's own word when the template lacks it
/// ("… (brief)", "Sam wants detailed answers (thorough).").
fn length_statement(speaker: &str, short: bool, toks: &[Tok]) -> String {
    let (base, words) = if short {
        (
            format!("{speaker} wants short, concise answers"),
            SHORT_WORDS,
        )
    } else {
        (format!("{speaker} wants detailed answers"), LONG_WORDS)
    };
    let said = toks
        .iter()
        .find(|t| words.contains(&t.word.as_str()))
        .map(|t| t.word.as_str())
        .filter(|w| !matches!(*w, "short" | "concise" | "detailed"));
    match said {
        Some(w) => format!("{base} ({w})."),
        None => format!("{base}."),
    }
}

/// What made an imperative look addressed to the assistant.
struct Cues {
    neg: bool,
    standing: bool,
    polite: bool,
    only: bool,
    addressed: bool,
    me_next: bool,
    /// A word before the verb (a marker, "always", a request) addresses it.
    cued: bool,
}

fn is_favorite(w: &str) -> bool {
    matches!(w, "favorite" | "favourite" | "fave" | "fav")
}

/// `metric` or `imperial` when the tokens name a unit system or unit.
fn unit_system(toks: &[Tok]) -> Option<&'static str> {
    toks.iter().find_map(|t| {
        if METRIC.contains(&t.word.as_str()) {
            Some("metric")
        } else if IMPERIAL.contains(&t.word.as_str()) {
            Some("imperial")
        } else {
            None
        }
    })
}

/// `Some(true)` for short answers wanted, `Some(false)` for detailed ones.
fn length_wanted(toks: &[Tok]) -> Option<bool> {
    toks.iter().find_map(|t| {
        if SHORT_WORDS.contains(&t.word.as_str()) {
            Some(true)
        } else if LONG_WORDS.contains(&t.word.as_str()) {
            Some(false)
        } else {
            None
        }
    })
}

/// Objects that are about diet as a whole ("meat", "animal products").
fn diet_topic(toks: &[Tok], p: &Phrase) -> Option<String> {
    let words = words_of(toks, p.start, p.end);
    matches!(
        words.as_slice(),
        ["meat"] | ["animal", "products"] | ["red", "meat"] | ["meat", "or", "fish"]
    )
    .then(|| "diet".to_string())
}

/// An active rule of the user, as [`adopt_topics`] compares a new draft with it.
#[derive(Debug, Clone, Copy)]
pub struct ActiveRule<'a> {
    pub kind: &'a str,
    pub topic: &'a str,
    pub statement: &'a str,
    /// Its stored vector (empty when unknown).
    pub embedding: &'a [f32],
}

/// Cosine (MiniLM, all-MiniLM-L6-v2) from which a new instruction takes the topic of the
/// user's most similar active instruction: they are worded differently but say how to do
/// the same thing ("make the bills reminder a Monday thing" after "remind me to check my
/// bills every Sunday"). Calibrated on the tuning part of the phrasing corpus
/// (`tests/phrasing/tuning/instructions.json`): between an instruction and the earlier one it
/// replaces the statements' cosine was 0.62–0.83, between two instructions of one user that
/// both stand it was at most 0.55; 0.6 sits between them.
pub const SAME_TOPIC_COSINE: f32 = 0.6;

/// The same for a revocation ("scrap the recap at the end" → "end every answer with a
/// one-line summary"), whose statement restates less of the rule: a revocation that matches
/// nothing ends nothing, so a lower bar costs little. Same source as [`SAME_TOPIC_COSINE`].
pub const REVOCATION_COSINE: f32 = 0.45;

/// Word-overlap fallback when vectors cannot decide (the `hash` embedder): the share of
/// the smaller statement's content words that the other statement has.
pub const SAME_TOPIC_OVERLAP: f32 = 0.6;

/// The cosine from which a new instruction takes an active rule's canonical topic (one the
/// word families decided, like `answer_length`): the families did not recognise the new
/// one's words, so it needs to be closer. Same source as [`SAME_TOPIC_COSINE`]: the closest
/// pair of two standing instructions of one user seen there was 0.63 ("short answers, one
/// sentence" / "ask me a clarifying question").
pub const CANONICAL_TOPIC_COSINE: f32 = 0.75;

/// Topics whose keys already name the slot ([`extract`]'s table): a draft with one of
/// them keeps it.
fn canonical(topic: &str) -> bool {
    matches!(
        topic,
        "language"
            | "name"
            | "contact_time"
            | "units"
            | "answer_length"
            | "emoji"
            | "diet"
            | "pronouns"
            | "time_zone"
            | "time_format"
            | "tables"
            | "format"
            | "markup"
            | "tone"
            | "expertise"
            | "spelling"
            | "currency"
            | "code_language"
            | "punctuation"
    ) || topic.starts_with("allergy:")
        || topic.starts_with("favorite_")
        || topic.starts_with("free:")
}

/// Instructions and constraints to the assistant (not allergies) form one class, tastes and
/// diets another: a topic is only taken from a rule of the same class.
fn directive(kind: &str, topic: &str) -> bool {
    (matches!(kind, "instruction" | "constraint") && !topic.starts_with("allergy:"))
        || (kind == REVOCATION
            && (topic == PREVIOUS || topic.starts_with(INSTRUCTION_PREFIX) || canonical(topic))
            && !matches!(topic, "diet")
            && !topic.starts_with("allergy:")
            && !topic.starts_with("free:"))
}

/// A statement's content words, without its subject (the speaker's name) and the words of
/// the statement templates.
fn content_words(statement: &str) -> Vec<String> {
    super::words::tokens(statement)
        .into_iter()
        .skip(1)
        .filter(|w| {
            !is_stopword(w)
                && !matches!(
                    w.as_str(),
                    "asked"
                        | "more"
                        | "anymore"
                        | "again"
                        | "please"
                        | "instead"
                        | "use"
                        | "assistant"
                        | "always"
                        | "never"
                        | "wants"
                        | "want"
                        | "does"
                        | "not"
                        | "no"
                        | "longer"
                        | "them"
                        | "their"
                        | "they"
                        | "answers"
                        | "is"
                )
        })
        .map(|w| singular(&w))
        .collect()
}

fn overlap(a: &[String], b: &[String]) -> f32 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().filter(|w| b.contains(w)).count() as f32 / n as f32
}

/// A negative statement ("does not want", "no longer", "never") or a constraint.
fn negative(kind: &str, statement: &str) -> bool {
    kind == "constraint" || {
        let w = super::words::tokens(statement);
        w.iter()
            .any(|x| matches!(x.as_str(), "not" | "never" | "longer"))
    }
}

/// Gives each draft the topic of the user's active rule it is about, however either is
/// worded (issue 18): a newer rule on the same topic supersedes the older one.
///
/// - A draft whose topic an active rule already has, or whose topic is canonical (see
///   [`extract`]'s table), keeps it. When it only negates that active rule ("stop calling
///   me Dr Okafor" after "address me as Dr. Okafor", "you can use emojis again" after "don't
///   use emojis"), it becomes a revocation: the rule ends and no negated rule is stored.
/// - A revocation of [`PREVIOUS`] ("forget that request") takes the topic of the user's
///   most recently stated active instruction (`active` is newest first).
/// - Other instructions, constraints and revocations take the topic of the most similar
///   active instruction or constraint: by cosine of the vectors when `vectors` are given
///   (MiniLM; [`SAME_TOPIC_COSINE`], [`REVOCATION_COSINE`]), else by content-word overlap
///   ([`SAME_TOPIC_OVERLAP`]).
/// - Tastes take the topic of an active taste whose key contains theirs or is contained in
///   it, with the same last word ("baking" → "sourdough baking"); meaning is not enough
///   there ("Thai food" is not "Italian food").
///
/// Two drafts of one turn never end up with one topic: a later one keeps its own.
pub fn adopt_topics(
    drafts: &mut [RuleDraft],
    vectors: Option<&[Vec<f32>]>,
    active: &[ActiveRule<'_>],
) {
    for i in 0..drafts.len() {
        let d = &drafts[i];
        let revocation = d.kind == REVOCATION;
        if let Some(a) = active.iter().find(|a| a.topic == d.topic) {
            if !revocation && negative(&d.kind, &d.statement) != negative(a.kind, a.statement) {
                let (mine, theirs) = (content_words(&d.statement), content_words(a.statement));
                if !mine.is_empty() && mine.iter().all(|w| theirs.contains(w)) {
                    drafts[i].kind = REVOCATION.to_string();
                }
            }
            continue;
        }
        if canonical(&d.topic) {
            continue;
        }
        let taken = |t: &str| {
            drafts
                .iter()
                .enumerate()
                .any(|(k, x)| k != i && x.topic == t)
        };
        let topic: Option<&str> = if d.topic == PREVIOUS {
            active
                .iter()
                .find(|a| directive(a.kind, a.topic))
                .map(|a| a.topic)
        } else if revocation || directive(&d.kind, &d.topic) {
            // A revocation's own key ("instruction:recap") is never kept as a topic.
            let mine = content_words(&d.statement);
            let vector = vectors.and_then(|v| v.get(i));
            let mine_directive = directive(&d.kind, &d.topic);
            let mut best: Option<(f32, &str)> = None;
            for a in active {
                let bar = if revocation {
                    REVOCATION_COSINE
                } else if canonical(a.topic) {
                    CANONICAL_TOPIC_COSINE
                } else {
                    SAME_TOPIC_COSINE
                };
                let score = if directive(a.kind, a.topic) != mine_directive {
                    None
                } else if mine_directive {
                    match vector {
                        Some(v) if v.len() == a.embedding.len() && !v.is_empty() => {
                            let c = crate::embed::cosine(v, a.embedding);
                            (c >= bar).then_some(c)
                        }
                        _ => {
                            let o = overlap(&mine, &content_words(a.statement));
                            (o >= SAME_TOPIC_OVERLAP).then_some(o)
                        }
                    }
                } else {
                    same_taste(&d.topic, a.topic).then_some(1.0)
                };
                if let Some(sc) = score
                    && best.is_none_or(|(b, _)| sc > b)
                {
                    best = Some((sc, a.topic));
                }
            }
            best.map(|(_, t)| t)
        } else {
            active
                .iter()
                .find(|a| !directive(a.kind, a.topic) && same_taste(&d.topic, a.topic))
                .map(|a| a.topic)
        };
        if let Some(t) = topic
            && !taken(t)
        {
            drafts[i].topic = t.to_string();
        }
    }
}

/// Two taste keys of one thing: one's words contain the other's, with the same last word.
fn same_taste(a: &str, b: &str) -> bool {
    let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    if a.contains(':') || b.contains(':') || wa.last() != wb.last() {
        return false;
    }
    wa.iter().all(|w| wb.contains(w)) || wb.iter().all(|w| wa.contains(w))
}

/// Extracts the preferences, instructions and constraints the speaker states in one turn.
/// Questions yield nothing; at most one rule per topic (the first stated).
pub fn extract(turn: &TurnView) -> Vec<RuleDraft> {
    let (own, _caption) = split_caption(&turn.text);
    let mut rules = Rules {
        speaker: speaker_name(turn),
        own,
        out: Vec::new(),
    };
    let all = sentences(own);
    for (i, s) in all.iter().enumerate() {
        rules.directives(s, &all[..i]);
        if !is_question(s) {
            for start in Rules::directive_starts(&s.toks) {
                rules.fragment(s, start);
            }
            rules.sentence(s);
        }
    }
    rules.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone, Utc};

    fn rules_of(speaker: &str, text: &str) -> Vec<RuleDraft> {
        let ts = Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap();
        extract(&TurnView {
            user_id: "u1".into(),
            speaker: speaker.into(),
            text: text.into(),
            assistant_response: "Sure, I will always answer in French.".into(),
            timestamp: ts,
            local: ts.with_timezone(&FixedOffset::east_opt(0).unwrap()),
        })
    }

    fn one(text: &str) -> RuleDraft {
        let r = rules_of("Sam", text);
        assert_eq!(r.len(), 1, "{text:?} gave {r:?}");
        r.into_iter().next().unwrap()
    }

    #[test]
    fn a_taste_gone_sour_is_a_dislike_of_the_same_topic() {
        for (text, topic, thing) in [
            (
                "Honestly I've totally gone off pickled herring.",
                "pickled herring",
                "pickled herring",
            ),
            (
                "I went right off mango smoothies after that trip.",
                "mango smoothie",
                "mango smoothies",
            ),
            (
                "I've gotten sick of oat milk lattes.",
                "oat milk latte",
                "oat milk lattes",
            ),
            (
                "I'm fed up with crime podcasts",
                "crime podcast",
                "crime podcasts",
            ),
        ] {
            let r = one(text);
            assert_eq!(r.kind, "preference", "{text:?}");
            assert_eq!(r.statement, format!("Sam dislikes {thing}."), "{text:?}");
            assert_eq!(r.topic, topic, "{text:?}");
        }
    }

    #[test]
    fn an_elided_first_person_subject_is_the_speaker() {
        for (text, statement) in [
            (
                "Also not a fan of licorice at all.",
                "Sam is not a fan of licorice.",
            ),
            ("been pescatarian for a year now", "Sam is pescatarian."),
            (
                "ugh, sick of instant noodles",
                "Sam dislikes instant noodles.",
            ),
            ("Hate cold pizza tbh.", "Sam hates cold pizza."),
            (
                "anyway. allergic to shellfish, so keep that in mind",
                "Sam is allergic to shellfish.",
            ),
        ] {
            let r = one(text);
            assert_eq!(r.statement, statement, "{text:?}");
        }
        // Not after "and": the subject is the first clause's.
        assert!(rules_of("Sam", "My cousin loves tea and hates coffee.").is_empty());
        // Not in a question.
        assert!(rules_of("Sam", "Not a fan of jazz?").is_empty());
    }

    fn check(text: &str, kind: &str, topic: &str, statement: &str) {
        let r = one(text);
        assert_eq!(
            (r.kind.as_str(), r.topic.as_str(), r.statement.as_str()),
            (kind, topic, statement),
            "{text:?}"
        );
        assert!((0.0..=1.0).contains(&r.confidence));
    }

    #[test]
    fn instructions() {
        check(
            "Always answer in Spanish.",
            "instruction",
            "language",
            "Sam wants answers in Spanish.",
        );
        check(
            "Please reply in german from now on",
            "instruction",
            "language",
            "Sam wants answers in German.",
        );
        check(
            "Don't answer in English.",
            "constraint",
            "language",
            "Sam does not want answers in English.",
        );
        check(
            "Please call me Sam.",
            "instruction",
            "name",
            "Sam wants to be called Sam.",
        );
        check(
            "You can call me Jo.",
            "instruction",
            "name",
            "Sam wants to be called Jo.",
        );
        check(
            "Don't call me Samuel.",
            "constraint",
            "name",
            "Sam does not want to be called Samuel.",
        );
        check(
            "Don't call me before 9.",
            "constraint",
            "contact_time",
            "Sam does not want to be called before 9.",
        );
        check(
            "Only text me after 6pm, thanks.",
            "constraint",
            "contact_time",
            "Sam wants to be texted only after 6pm.",
        );
        check(
            "Never mention my ex.",
            "constraint",
            "ex",
            "Sam does not want their ex mentioned.",
        );
        check(
            "Please don't bring up politics.",
            "constraint",
            "politics",
            "Sam does not want politics mentioned.",
        );
        check(
            "From now on use metric units.",
            "instruction",
            "units",
            "Sam wants metric units.",
        );
        check(
            "Always give temperatures in Fahrenheit",
            "instruction",
            "units",
            "Sam wants imperial units (Fahrenheit).",
        );
        // Verbs of moving to a way of answering, when they name the answers.
        for (text, statement) in [
            (
                "Actually, go back to long, detailed answers.",
                "Sam wants detailed answers (long).",
            ),
            (
                "Switch to shorter replies, please.",
                "Sam wants short, concise answers (shorter).",
            ),
            (
                "Stick to brief responses from now on.",
                "Sam wants short, concise answers (brief).",
            ),
        ] {
            check(text, "instruction", "answer_length", statement);
        }
        // Without an answer noun "go" is not about answers.
        assert!(
            rules_of("Sam", "Go for a long walk, it helps.")
                .iter()
                .all(|r| r.topic != "answer_length")
        );
        check(
            "Keep your answers short please.",
            "instruction",
            "answer_length",
            "Sam wants short, concise answers.",
        );
        check(
            "Don't use emojis.",
            "constraint",
            "emoji",
            "Sam does not want emojis.",
        );
        check(
            "Stop calling me Sammy!",
            "constraint",
            "name",
            "Sam does not want to be called Sammy.",
        );
        check(
            "Always remind me to drink water.",
            "instruction",
            "remind:water",
            "Sam asked the assistant to always remind them to drink water.",
        );
        check(
            "I want you to answer in French.",
            "instruction",
            "language",
            "Sam wants answers in French.",
        );
        // A request with a standing cue is a standing rule, even as a question.
        check(
            "Can you always answer in Spanish?",
            "instruction",
            "language",
            "Sam wants answers in Spanish.",
        );
        check(
            "Would you mind always citing your sources?",
            "instruction",
            "cite:source",
            "Sam asked the assistant to always cite your sources.",
        );
        check(
            "Also no tables please.",
            "constraint",
            "tables",
            "Sam does not want tables.",
        );
        check(
            "Write in flowing prose instead, please.",
            "instruction",
            "format",
            "Sam asked the assistant to write in flowing prose instead, please.",
        );
        check(
            "Just be casual with me from here on.",
            "instruction",
            "tone",
            "Sam asked the assistant to always be casual with them from here on.",
        );
        check(
            "Use Pacific time for anything involving hours.",
            "instruction",
            "time_zone",
            "Sam asked the assistant to always use Pacific time for anything involving hours.",
        );
        check(
            "Please address me as Dr. Okafor in your replies.",
            "instruction",
            "name",
            "Sam wants to be called Dr. Okafor.",
        );
    }

    #[test]
    fn a_release_with_a_standing_cue_is_a_prohibition() {
        for text in [
            "You don't have to apologise all the time.",
            "No need to recap every answer.",
        ] {
            let r = rules_of("Sam", text);
            assert_eq!(r.len(), 1, "{text:?}: {r:?}");
            assert_eq!(r[0].kind, "constraint", "{text:?}: {r:?}");
        }
        // "you" as anyone: no rule.
        assert!(rules_of("Sam", "You don't have to be rich to travel.").is_empty());
        assert!(rules_of("Sam", "You don't need to speak Greek to enjoy Athens.").is_empty());
    }

    #[test]
    fn revocations() {
        for (text, topic) in [
            ("You can forget the bullet-point thing now.", "format"),
            ("Go ahead and forget that request.", PREVIOUS),
            (
                "You can go back to normal with the times.",
                "instruction:time",
            ),
            ("Enough cheerleading now.", "tone"),
            ("I'm eating meat again!", "diet"),
            ("I'm not vegan anymore.", "diet"),
            ("Turns out I'm not coeliac after all.", "allergy:gluten"),
            ("I quit bouldering after I sprained my wrist.", "bouldering"),
            ("lost interest in baking tbh", "baking"),
            (
                "Actually, never mind the Spanish thing.",
                "instruction:spanish thing",
            ),
            ("No need for bullet points anymore.", "format"),
        ] {
            let r = one(text);
            assert_eq!(
                (r.kind.as_str(), r.topic.as_str()),
                (REVOCATION, topic),
                "{text:?}"
            );
        }
        // "Never mind," alone dismisses what was just said, no rule.
        assert!(rules_of("Sam", "Never mind, I found it.").is_empty());
        // A new value in the same turn replaces the ending.
        let r = rules_of("Nkechi", "You can drop the title and just use Nkechi.");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].kind.as_str(), r[0].topic.as_str()),
            ("instruction", "name")
        );
    }

    #[test]
    fn leave_again_a_bare_stop_and_no_longer_needing_end_a_rule() {
        for (text, topic) in [
            ("You can mention football again.", "instruction:football"),
            ("Feel free to send me long lists again.", "format"),
            ("The emojis are getting annoying, please stop.", "emoji"),
            (
                "I don't need the pill reminders anymore.",
                "instruction:pill reminder",
            ),
        ] {
            let r = rules_of("Sam", text);
            assert!(
                r.iter().any(|r| r.kind == REVOCATION && r.topic == topic),
                "{text:?} gave {r:?}"
            );
        }
        // Without "anymore" it is a standing constraint, not an ending.
        let r = one("I don't need the pill reminders.");
        assert_ne!(r.kind, REVOCATION);
        // "instead" makes a request a standing one.
        check(
            "Could you answer in French instead?",
            "instruction",
            "language",
            "Sam wants answers in French.",
        );
    }

    #[test]
    fn a_taste_for_what_the_assistant_does_is_a_request() {
        let r = one("I like it when you use bullet points.");
        assert_eq!(
            (r.kind.as_str(), r.topic.as_str()),
            ("instruction", "format")
        );
        let r = one("I don't like it when you use bullet points.");
        assert_eq!(
            (r.kind.as_str(), r.topic.as_str()),
            ("constraint", "format")
        );
        let r = one("I hate it when you add emojis.");
        assert_eq!((r.kind.as_str(), r.topic.as_str()), ("constraint", "emoji"));
        assert!(rules_of("Sam", "I love it when it rains.").is_empty());
    }

    #[test]
    fn a_newer_rule_takes_the_topic_of_the_rule_it_replaces() {
        let active = [
            ActiveRule {
                kind: "instruction",
                topic: "remind:bill",
                statement: "Sam asked the assistant to remind them to check their bills every Sunday.",
                embedding: &[],
            },
            ActiveRule {
                kind: "preference",
                topic: "sourdough baking",
                statement: "Sam is into sourdough baking.",
                embedding: &[],
            },
            ActiveRule {
                kind: "instruction",
                topic: "name",
                statement: "Sam wants to be called Dr. Okafor.",
                embedding: &[],
            },
        ];
        let mut drafts = vec![
            RuleDraft {
                kind: "instruction".into(),
                statement: "Sam asked the assistant to remind them to check their bills on Monday."
                    .into(),
                confidence: 0.7,
                topic: "remind:monday".into(),
            },
            RuleDraft {
                kind: REVOCATION.into(),
                statement: "Sam gave up baking.".into(),
                confidence: 0.8,
                topic: "baking".into(),
            },
            RuleDraft {
                kind: "constraint".into(),
                statement: "Sam does not want to be called Dr. Okafor.".into(),
                confidence: 0.9,
                topic: "name".into(),
            },
            RuleDraft {
                kind: "preference".into(),
                statement: "Sam loves Thai food.".into(),
                confidence: 0.6,
                topic: "thai food".into(),
            },
        ];
        adopt_topics(&mut drafts, None, &active);
        let got: Vec<(&str, &str)> = drafts
            .iter()
            .map(|d| (d.kind.as_str(), d.topic.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("instruction", "remind:bill"),
                (REVOCATION, "sourdough baking"),
                (REVOCATION, "name"),
                ("preference", "thai food"),
            ]
        );
    }

    #[test]
    fn preferences() {
        check("I prefer tea.", "preference", "tea", "Sam prefers tea.");
        check(
            "I'd rather have tea over coffee.",
            "preference",
            "tea",
            "Sam would rather have tea over coffee.",
        );
        check(
            "I prefer answers in Spanish.",
            "preference",
            "language",
            "Sam wants answers in Spanish.",
        );
        check(
            "I'm vegetarian.",
            "preference",
            "diet",
            "Sam is vegetarian.",
        );
        check("I am a vegan", "preference", "diet", "Sam is vegan.");
        // Ends the diet (issue 18): no rule "Sam is no longer vegetarian" that would still
        // present the word as valid.
        check(
            "I'm not vegetarian anymore.",
            "revocation",
            "diet",
            "Sam is no longer vegetarian.",
        );
        check(
            "I don't eat meat.",
            "preference",
            "diet",
            "Sam does not eat meat.",
        );
        check(
            "I'm allergic to peanuts.",
            "constraint",
            "allergy:peanut",
            "Sam is allergic to peanuts.",
        );
        check(
            "I have a peanut allergy.",
            "constraint",
            "allergy:peanut",
            "Sam is allergic to peanut.",
        );
        check(
            "I'm lactose intolerant.",
            "constraint",
            "allergy:lactose",
            "Sam is lactose intolerant.",
        );
        check(
            "I hate mushrooms.",
            "preference",
            "mushroom",
            "Sam hates mushrooms.",
        );
        check(
            "I love coffee!",
            "preference",
            "coffee",
            "Sam loves coffee.",
        );
        check(
            "I don't really like jazz.",
            "preference",
            "jazz",
            "Sam does not like jazz.",
        );
        check(
            "I really enjoy hiking in the mountains.",
            "preference",
            "hiking",
            "Sam enjoys hiking in the mountains.",
        );
        check(
            "I love going on road trips!",
            "preference",
            "going on road trip",
            "Sam loves going on road trips.",
        );
        check(
            "I love to paint.",
            "preference",
            "paint",
            "Sam loves to paint.",
        );
        check(
            "My favorite color is blue.",
            "preference",
            "favorite_color",
            "Sam's favorite color is blue.",
        );
        check(
            "My favourite TV show is Friends.",
            "preference",
            "favorite_tv_show",
            "Sam's favorite tv show is Friends.",
        );
        check(
            "Jazz is my favorite music.",
            "preference",
            "favorite_music",
            "Sam's favorite music is Jazz.",
        );
        check(
            "I go by Alex.",
            "preference",
            "name",
            "Sam wants to be called Alex.",
        );
        check(
            "My pronouns are she/her.",
            "preference",
            "pronouns",
            "Sam uses the pronouns she/her.",
        );
    }

    #[test]
    fn contradicting_rules_share_a_topic() {
        let pairs = [
            ("I love coffee.", "I don't drink coffee anymore."),
            ("I love coffee.", "I hate coffee now."),
            ("I'm vegetarian.", "I'm not vegetarian anymore."),
            ("I'm vegan.", "I don't eat meat."),
            (
                "Always answer in Spanish.",
                "Please answer in English from now on.",
            ),
            ("Call me Sam.", "Don't call me Sam."),
            ("I like dogs.", "I don't like dogs."),
            ("My favorite color is blue.", "Green is my favorite color."),
            ("Keep answers short.", "Give me detailed answers."),
        ];
        for (a, b) in pairs {
            let (ra, rb) = (one(a), one(b));
            assert_eq!(ra.topic, rb.topic, "{a:?} vs {b:?}");
            assert_ne!(ra.statement, rb.statement, "{a:?} vs {b:?}");
        }
        assert_eq!(
            one("I don't drink coffee anymore.").statement,
            "Sam no longer drinks coffee."
        );
        // Different things are different slots.
        assert_ne!(
            one("I love Italian food.").topic,
            one("I love Thai food.").topic
        );
        assert_ne!(
            one("I'm allergic to peanuts.").topic,
            one("I love peanuts.").topic
        );
    }

    #[test]
    fn no_rules_from_questions_or_others() {
        for t in [
            "Do you prefer tea?",
            "Do you like coffee",
            "Can you translate 'where is the nearest pharmacy' into Italian for me?",
            "Can you rewrite this email so it sounds more formal?",
            "Rewrite this email formally.",
            "How do you say 'good luck' in German?",
            "Should I make you answer in Japanese?",
            "For this one question, give me the full detail.",
            "Talk like a pirate for the rest of our chat today!",
            "If I were famous I'd make you call me Captain.",
            "Are you vegetarian?",
            "What's your favorite color?",
            "Hi!",
            "",
            "I love it!",
            "I love your turtles so much!",
            "I love you guys",
            "Never give up!",
            "Speak Spanish with your grandma.",
            "Call me when you land.",
            "Don't mention it!",
            "If I were vegan I'd be healthier.",
            "Look! [shares a photo: a sign saying always answer in Spanish]",
            "That's my favorite song.",
            "I'd love to visit Spain.",
            "This is the food I like.",
        ] {
            let r = rules_of("Sam", t);
            assert!(r.is_empty(), "{t:?} gave {r:?}");
        }
    }

    #[test]
    fn whole_words_only() {
        // "ham" is not "hate", "prefers" in a name, "veganism" is not "vegan".
        assert!(rules_of("Sam", "I'm a veganism scholar.").is_empty());
        assert!(rules_of("Sam", "Ilove coffee").is_empty());
        assert!(rules_of("Sam", "always answering in spanishy ways").is_empty());
    }

    #[test]
    fn one_rule_per_topic_and_several_topics() {
        let r = rules_of(
            "Sam",
            "Always answer in Spanish, never in English. I'm vegan and I love jazz.",
        );
        let topics: Vec<&str> = r.iter().map(|r| r.topic.as_str()).collect();
        assert_eq!(
            topics.iter().filter(|t| **t == "language").count(),
            1,
            "{r:?}"
        );
        assert!(topics.contains(&"diet"), "{r:?}");
        assert_eq!(r[0].statement, "Sam wants answers in Spanish.");
    }

    #[test]
    fn odd_input_never_panics() {
        for t in [
            "I",
            "my",
            "my favorite",
            "my favorite is",
            "is my favorite",
            "I'm allergic to",
            "I have a",
            "never",
            "don't",
            "stop",
            "please",
            "call me",
            "don't call me",
            "from now on",
            "I prefer",
            "İ love İstanbul",
            "東京 is my favorite city",
            "🙂 I love 🙂",
            "I'm",
            "my name is",
            "my pronouns are",
            "I want you to",
            "Always remind me",
            "I don't drink",
            "I gave up",
            "Jazz is my favorite",
        ] {
            let _ = rules_of("Sam", t);
            let _ = rules_of("", t);
        }
        assert_eq!(one("東京 is my favorite city").topic, "favorite_city");
    }
}
