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

use super::curate::speaker_name;
use super::graph::{NOT_LIKES, title_case};
use super::words::{
    OBJECT_STOP, Phrase, Sentence, Tok, contains_seq, extend_gerund, hedged, is_light_gerund,
    is_question, is_stopword, match_seq, no_longer_after, object_phrase, sentences, singular,
    skip_adverbs, split_caption,
};
use super::{RuleDraft, TurnView};

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
    "switch", "translate", "say",
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

/// Contact verbs and their past participles, for contact-time constraints.
const CONTACT_VERBS: &[(&str, &str)] = &[
    ("call", "called"),
    ("text", "texted"),
    ("message", "messaged"),
    ("email", "emailed"),
    ("contact", "contacted"),
    ("ping", "pinged"),
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

    fn push(&mut self, kind: &str, statement: String, confidence: f32, topic: String) {
        let topic = topic.trim().to_string();
        if topic.is_empty() || self.out.iter().any(|r| r.topic == topic) {
            return;
        }
        self.out.push(RuleDraft {
            kind: kind.to_string(),
            statement,
            confidence,
            topic,
        });
    }

    fn sentence(&mut self, s: &Sentence<'_>) {
        self.imperative(s);
        let toks = &s.toks;
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

    /// Imperatives addressed to the assistant: "always answer in Spanish", "please call me
    /// Sam", "don't call me before 9", "never mention my ex", "from now on use metric units".
    fn imperative(&mut self, s: &Sentence<'_>) {
        let toks = &s.toks;
        let words = s.words();
        let mut i = 0;
        let mut neg = false;
        let has = |i: usize, seq: &[&str]| words.get(i..i + seq.len()) == Some(seq);
        let mut standing = contains_seq(&words, &["from", "now", "on"])
            || contains_seq(&words, &["going", "forward"])
            || contains_seq(&words, &["in", "the", "future"]);
        let mut polite = false;
        let mut only = false;
        let mut addressed = false;
        let mut verb: Option<&str> = None;
        for lead in [
            &["i", "want", "you", "to"][..],
            &["i", "would", "like", "you", "to"],
            &["i", "need", "you", "to"],
            &["i", "would", "prefer", "you", "to"],
            &["i", "would", "prefer", "if", "you"],
            &["you", "can"],
            &["you", "should"],
            &["you", "must"],
        ] {
            if let Some(at) = match_seq(toks, 0, lead) {
                i = at;
                addressed = true;
                break;
            }
        }
        while let Some(t) = toks.get(i) {
            match t.word.as_str() {
                "please" | "pls" | "plz" | "kindly" | "and" | "also" | "so" | "ok" | "okay"
                | "oh" | "hey" | "just" | "but" | "then" | "now" | "ever" => {
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
                "do" if toks.get(i + 1).is_some_and(|t| t.word == "not") => {
                    neg = true;
                    i += 2;
                }
                "not" => {
                    neg = true;
                    i += 1;
                }
                "stop" => {
                    let g = toks
                        .get(i + 1)
                        .and_then(|n| GERUNDS.iter().find(|(w, _)| *w == n.word));
                    if let Some((_, base)) = g {
                        neg = true;
                        verb = Some(base);
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
                Some(t) if i == 0 || !t.cap || addressed => (t.word.as_str(), i + 1),
                _ => return,
            },
        };
        let me_next = toks.get(at).is_some_and(|t| t.word == "me");
        let cue = Cues {
            neg,
            standing,
            polite,
            only,
            addressed,
            me_next,
        };
        let _handled = self.language(s, verb, at, &cue)
            || self.call_me(s, verb, at, &cue)
            || self.units(s, verb, at, &cue)
            || self.answer_length(s, verb, at, &cue)
            || self.emoji(s, verb, &cue)
            || self.not_mention(s, verb, at, &cue)
            || self.generic(s, verb, at, &cue);
    }

    fn language(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        if !COMM_VERBS.contains(&verb) {
            return false;
        }
        let Some(lang) = find_word(&s.toks, at, LANGUAGES) else {
            return false;
        };
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
        let Some(&(_, participle)) = CONTACT_VERBS.iter().find(|(v, _)| *v == verb) else {
            return false;
        };
        if !c.me_next {
            return false;
        }
        let next = at + 1;
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
        if !matches!(verb, "call") {
            return false;
        }
        let mut end = next;
        while end < toks.len() && end - next < 3 && toks[end].cap && !is_stopword(&toks[end].word) {
            end += 1;
            if toks[end - 1].boundary_after {
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
            "put", "list", "tell", "express", "display", "keep", "stick",
        ];
        if !VERBS.contains(&verb) {
            return false;
        }
        let Some(system) = unit_system(&s.toks[at.min(s.toks.len())..]) else {
            return false;
        };
        let (kind, statement) = if c.neg {
            (
                "constraint",
                format!("{} does not want {system} units.", self.speaker),
            )
        } else {
            (
                "instruction",
                format!("{} wants {system} units.", self.speaker),
            )
        };
        self.push(kind, statement, 0.85, "units".into());
        true
    }

    fn answer_length(&mut self, s: &Sentence<'_>, verb: &str, at: usize, c: &Cues) -> bool {
        const VERBS: &[&str] = &[
            "keep", "be", "make", "give", "answer", "respond", "reply", "write",
        ];
        if !VERBS.contains(&verb) {
            return false;
        }
        let Some(short) = length_wanted(&s.toks[at.min(s.toks.len())..]) else {
            return false;
        };
        let short = short != c.neg;
        let statement = if short {
            format!("{} wants short, concise answers.", self.speaker)
        } else {
            format!("{} wants detailed answers.", self.speaker)
        };
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
        if !(c.standing || c.addressed) || !ASSISTANT_VERBS.contains(&verb) {
            return false;
        }
        let about_me = toks
            .iter()
            .skip(at)
            .any(|t| matches!(t.word.as_str(), "me" | "my"));
        if !about_me {
            return false;
        }
        let Some(noun) = toks
            .iter()
            .skip(at)
            .rev()
            .map(|t| t.word.as_str())
            .find(|w| {
                !is_stopword(w) && !matches!(*w, "me" | "my") && w.chars().any(char::is_alphabetic)
            })
        else {
            return false;
        };
        let mut end = at;
        while end < toks.len() {
            end += 1;
            if toks[end - 1].boundary_after && toks[end - 1].end < toks.last().map_or(0, |t| t.end)
            {
                break;
            }
        }
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
        self.push(kind, statement, 0.7, format!("{verb}:{}", singular(noun)));
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
        ] {
            if let Some(at) = match_seq(toks, j, seq)
                && let Some(d) = toks.get(at).filter(|t| DIETS.contains(&t.word.as_str()))
            {
                let no_more = negated || no_longer_after(toks, at + 1);
                let statement = if no_more {
                    format!("{sp} is no longer {}.", d.word)
                } else {
                    format!("{sp} is {}.", d.word)
                };
                self.push(
                    "preference",
                    statement,
                    if no_more { 0.85 } else { 0.9 },
                    "diet".into(),
                );
                return;
            }
        }
        // Allergies and intolerances.
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
        if match_seq(toks, j, &["have", "celiac"]).is_some()
            || match_seq(toks, j, &["have", "coeliac"]).is_some()
        {
            self.push(
                "constraint",
                format!("{sp} has celiac disease."),
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
        if let Some(system) = unit_system(rest)
            && (about_answers || bare_ok)
        {
            self.push(
                "preference",
                format!("{sp} wants {system} units."),
                0.8,
                "units".into(),
            );
            return true;
        }
        if about_answers && let Some(short) = length_wanted(rest) {
            let statement = if short {
                format!("{sp} wants short, concise answers.")
            } else {
                format!("{sp} wants detailed answers.")
            };
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

/// What made an imperative look addressed to the assistant.
struct Cues {
    neg: bool,
    standing: bool,
    polite: bool,
    only: bool,
    addressed: bool,
    me_next: bool,
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

/// Extracts the preferences, instructions and constraints the speaker states in one turn.
/// Questions yield nothing; at most one rule per topic (the first stated).
pub fn extract(turn: &TurnView) -> Vec<RuleDraft> {
    let (own, _caption) = split_caption(&turn.text);
    let mut rules = Rules {
        speaker: speaker_name(turn),
        own,
        out: Vec::new(),
    };
    for s in sentences(own) {
        if !is_question(&s) {
            rules.sentence(&s);
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
            "Sam wants imperial units.",
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
        check(
            "I'm not vegetarian anymore.",
            "preference",
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
            "Can you always answer in Spanish?",
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
