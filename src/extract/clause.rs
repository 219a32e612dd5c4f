//! Clause analysis: a sentence split into clauses, each read as subject, verb group and the
//! rest (object and prepositional phrases), with tense, negation and modality.
//!
//! The slot extractor ([`super::slots`]) maps verb classes to slots with a lexicon; this module
//! holds the grammar around them, and knows no slot. A sentence is split at clause
//! punctuation, at coordinating and subordinating words ("and", "but", "because", "if",
//! "who", …) and before a complement clause ("that my aunt moved", "I think my aunt moved");
//! a piece without a verb is an adverbial or part of a list and joins its
//! neighbour. Each clause then reads:
//!
//! - **subject**: "I", "we", "me and the kids", "my wife and I" (the speaker); "my sister
//!   Ana", "Ana, my sister", "my dad", "Ana" (another person, with the role the user gave);
//!   "he"/"she"/"who" (the last person named before, in the same turn); or something else
//!   ("it", "the flat"). A clause without a subject ("Moved to Leeds last week", "… and
//!   started at Siemens") takes the previous clause's, else the speaker.
//! - **verb group**: auxiliaries, negation ("not", "never", "no longer"), modal and intent
//!   verbs ("would", "might", "want to", "thinking about"), then the main verb as a lemma
//!   ("moved" → `move`, "living" → `live`); a copula ("I'm a nurse") has the verb `be`.
//! - **tense**: future ("will", "going to", or a progressive with a future time word: "we're
//!   moving next month"), perfect ("have moved"), past ("moved", "did", "was"), else present.
//! - **mood**: asserted, hypothetical ("if", "would", "might", "maybe", "wish"), intended
//!   ("want to", "plan to", "thinking about", "considering"), or asked (a question).
//! - **ended**: "anymore", "no longer", "used to" — the clause speaks of a state that is over.

use super::words::{ADVERBS, Sentence, Tok, is_question};

/// When a clause's event or state holds relative to the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tense {
    Past,
    Present,
    /// "have moved", "'ve been living": begun before the turn and true at it.
    Perfect,
    Future,
}

/// Whether a clause asserts something as true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mood {
    Asserted,
    /// "if I moved", "I would love to", "maybe", "I wish".
    Hypothetical,
    /// "I want to", "we're planning to", "thinking about", "considering", "hope to".
    Intended,
    /// A question.
    Asked,
}

/// Who a clause is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// "I", "we", or a compound that includes the speaker.
    Speaker,
    /// Another person (or a pet): the name the user gave, the role ("sister", "dog"), or both.
    Person {
        name: Option<String>,
        role: Option<String>,
    },
    /// Anything else ("it", "the flat", "you").
    Other,
}

/// One clause of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub subject: Subject,
    /// Token index where the subject starts; `None` when the clause has none of its own.
    pub subject_at: Option<usize>,
    /// The other members of a compound subject with the speaker ("my wife and I" → wife).
    pub with: Vec<Subject>,
    /// Lemma of the main verb (`be` for a copula); `None` when the clause has no verb.
    pub verb: Option<String>,
    /// Token index of the main verb (the copula's own token for `be`).
    pub verb_at: usize,
    /// First token of what follows the verb (object, complement, prepositional phrases).
    pub rest: usize,
    /// One past the clause's last token.
    pub end: usize,
    pub tense: Tense,
    pub negated: bool,
    pub mood: Mood,
    /// "anymore", "no longer", "used to": the state the clause names is over.
    pub ended: bool,
    /// "used to".
    pub used_to: bool,
}

/// Words after "NAME's" that make the "'s" a contracted "is" or "has".
#[rustfmt::skip]
const CONTRACTION_NEXT: &[&str] = &[
    "in", "at", "a", "an", "been", "got", "from", "with", "on", "still", "now", "so", "pretty",
    "really", "officially", "going", "moving", "living", "working", "not", "never", "also",
    "finally", "just", "back", "home", "retired", "married", "engaged", "single", "based",
    "settled", "gone", "left", "started", "moved", "quit", "over", "happy", "dating",
];

/// Reporting verbs whose complement clause is someone's belief ("everyone assumes I …").
#[rustfmt::skip]
const REPORTING: &[&str] = &[
    "assume", "assumes", "assumed", "thinks", "thought", "believe", "believes", "believed",
    "reckon", "reckons", "heard", "says", "said", "claims", "claimed", "suppose", "supposes",
    "imagine", "imagines", "pretend", "pretends", "rumour", "rumor",
];

/// Words that start a new clause.
#[rustfmt::skip]
const SPLITTERS: &[&str] = &[
    "and", "but", "so", "because", "cause", "cuz", "coz", "while", "though", "although",
    "whereas", "then", "yet", "or", "plus", "when", "after", "before", "until", "till", "if",
    "unless", "whether", "once", "which", "who", "since", "whilst",
];

/// Verbs of saying and thinking, whose object may be a clause without "that".
#[rustfmt::skip]
const SAY_THINK: &[&str] = &[
    "think", "thinks", "thought", "guess", "reckon", "reckons", "say", "says", "said",
    "heard", "know", "knew", "decided", "suppose", "realised", "realized",
    "noticed", "found", "believe", "believes",
];

/// Clause openers that make the clause hypothetical.
const HYPOTHETICAL_OPENERS: &[&str] = &["if", "unless", "whether"];

/// Discourse words skipped before a subject.
#[rustfmt::skip]
const FILLERS: &[&str] = &[
    "so", "well", "oh", "yeah", "yes", "ok", "okay", "anyway", "anyways", "btw", "also",
    "actually", "honestly", "tbh", "ngl", "lol", "haha", "hey", "hi", "hello", "um", "uh", "and",
    "but", "plus", "now", "then", "still", "good", "great", "news", "update", "fyi", "guess",
    "what", "alright", "right", "sadly", "unfortunately", "luckily", "finally", "officially",
    "basically", "besides", "meanwhile", "wow", "omg", "ugh", "hmm", "nope", "yep", "yup", "just",
    "as", "of", "today", "yesterday", "tonight", "recently", "lately", "these", "those", "days",
    "since", "last", "next", "this", "week", "month", "year", "weekend", "morning", "evening",
    "starting", "from", "on", "in", "at", "the", "a", "for", "after", "before", "ago", "two",
    "three", "few", "couple", "weeks", "months", "years", "monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", "january", "february", "march", "april", "may",
    "june", "july", "august", "september", "october", "november", "december", "spring",
    "summer", "autumn", "fall", "winter", "back", "big", "quick", "small", "exciting", "sad",
    "fun", "fact", "heads", "up", "long", "story", "short", "turns", "out", "apparently",
];

/// A weekday, month or other calendar word ("Sunday", "June"): never part of a place name.
pub fn is_time_word(w: &str) -> bool {
    matches!(
        w,
        "monday"
            | "tuesday"
            | "wednesday"
            | "thursday"
            | "friday"
            | "saturday"
            | "sunday"
            | "january"
            | "february"
            | "march"
            | "april"
            | "may"
            | "june"
            | "july"
            | "august"
            | "september"
            | "october"
            | "november"
            | "december"
            | "christmas"
            | "easter"
    )
}

/// Subject pronouns that are the speaker.
const SPEAKER_WORDS: &[&str] = &["i", "we", "me", "us"];

/// Auxiliaries and their effect on the verb group.
#[rustfmt::skip]
const AUX: &[&str] = &[
    "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does",
    "did", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "having",
    "get", "got", "gets", "getting",
];

/// Verbs of intent, wish or consideration: the verb after them ("want to move") is not
/// asserted.
#[rustfmt::skip]
const INTENT_VERBS: &[&str] = &[
    "want", "plan", "hope", "consider", "think", "dream", "wish", "intend", "try", "aim", "need",
    "apply", "decide", "expect", "look", "debate", "weigh", "mull", "toy", "refuse",
];

/// Words after which a clause that names no time is still about the future.
#[rustfmt::skip]
const FUTURE_TIME: &[&str] = &[
    "tomorrow", "next", "soon", "tonight", "later", "upcoming", "starting", "from",
];

/// Verbs of a change of state: their progressive is a plan.
#[rustfmt::skip]
const CHANGE_VERBS: &[&str] = &[
    "move", "relocate", "emigrate", "start", "join", "quit", "leave", "retire", "resign",
    "transfer", "marry", "divorce", "separate",
];

/// Irregular past forms and participles → lemma.
#[rustfmt::skip]
const IRREGULAR: &[(&str, &str)] = &[
    ("was", "be"), ("were", "be"), ("been", "be"), ("am", "be"), ("is", "be"), ("are", "be"),
    ("being", "be"), ("had", "have"), ("has", "have"), ("having", "have"), ("did", "do"),
    ("does", "do"), ("done", "do"), ("went", "go"), ("gone", "go"), ("goes", "go"),
    ("left", "leave"), ("got", "get"), ("gotten", "get"), ("began", "begin"), ("begun", "begin"),
    ("became", "become"), ("took", "take"), ("taken", "take"), ("found", "find"),
    ("made", "make"), ("broke", "break"), ("broken", "break"), ("grew", "grow"),
    ("grown", "grow"), ("flew", "fly"), ("flown", "fly"), ("drove", "drive"),
    ("driven", "drive"), ("sold", "sell"), ("lost", "lose"), ("met", "meet"), ("came", "come"),
    ("fell", "fall"), ("fallen", "fall"), ("gave", "give"), ("given", "give"), ("ran", "run"),
    ("told", "tell"), ("said", "say"), ("thought", "think"), ("bought", "buy"),
    ("brought", "bring"), ("taught", "teach"), ("wrote", "write"), ("written", "write"),
    ("chose", "choose"), ("chosen", "choose"), ("won", "win"), ("quit", "quit"), ("split", "split"),
    ("let", "let"), ("put", "put"), ("set", "set"), ("hit", "hit"), ("kept", "keep"),
    ("slept", "sleep"), ("felt", "feel"), ("heard", "hear"), ("held", "hold"), ("led", "lead"),
    ("paid", "pay"), ("sent", "send"), ("spent", "spend"), ("stood", "stand"),
    ("understood", "understand"), ("woke", "wake"), ("wore", "wear"), ("rode", "ride"),
    ("ridden", "ride"), ("swam", "swim"), ("sang", "sing"), ("drank", "drink"), ("ate", "eat"),
    ("eaten", "eat"), ("saw", "see"), ("seen", "see"), ("knew", "know"), ("known", "know"),
    ("dealt", "deal"), ("meant", "mean"), ("built", "build"), ("caught", "catch"),
    ("fought", "fight"), ("hung", "hang"), ("shut", "shut"), ("cut", "cut"), ("read", "read"),
    ("dug", "dig"), ("swore", "swear"), ("sworn", "swear"), ("forgot", "forget"), ("forgotten", "forget"), ("gotta", "get"),
    ("wed", "wed"), ("married", "marry"), ("died", "die"), ("dying", "die"), ("lying", "lie"),
    ("lay", "lie"), ("rehomed", "rehome"), ("stopped", "stop"), ("dropped", "drop"),
    ("planned", "plan"), ("shopped", "shop"), ("quitting", "quit"), ("starring", "star"),
    ("getting", "get"), ("running", "run"), ("swimming", "swim"), ("sitting", "sit"),
    ("putting", "put"), ("splitting", "split"), ("dating", "date"), ("moving", "move"),
    ("living", "live"), ("leaving", "leave"), ("taking", "take"), ("making", "make"),
    ("having", "have"), ("giving", "give"), ("coming", "come"), ("driving", "drive"),
    ("writing", "write"), ("riding", "ride"), ("loving", "love"), ("hating", "hate"),
    ("liking", "like"), ("relocating", "relocate"), ("retiring", "retire"),
    ("resigning", "resign"), ("joining", "join"), ("starting", "start"), ("working", "work"),
    ("staying", "stay"), ("settling", "settle"), ("renting", "rent"), ("teaching", "teach"),
    ("marrying", "marry"), ("divorcing", "divorce"), ("separating", "separate"),
    ("becoming", "become"), ("hired", "hire"), ("fired", "fire"), ("retired", "retire"),
    ("used", "use"), ("based", "base"), ("moved", "move"), ("lived", "live"), ("loved", "love"),
    ("liked", "like"), ("hated", "hate"), ("relocated", "relocate"), ("resided", "reside"),
    ("settled", "settle"), ("divorced", "divorce"), ("separated", "separate"),
    ("engaged", "engage"), ("dated", "date"), ("joined", "join"), ("started", "start"),
    ("worked", "work"), ("resigned", "resign"), ("employed", "employ"), ("promoted", "promote"),
    ("retrained", "retrain"), ("adored", "adore"), ("enjoyed", "enjoy"), ("disliked", "dislike"),
    ("stayed", "stay"), ("rented", "rent"), ("landed", "land"), ("accepted", "accept"),
    ("transferred", "transfer"), ("laid", "lay"), ("passed", "pass"), ("tried", "try"),
    ("applied", "apply"), ("studied", "study"), ("carried", "carry"),
];

/// The lemma of a verb form: an irregular form's lemma, else the form with a regular ending
/// ("-s", "-es", "-ed", "-ing") removed when that leaves a plausible stem. Only used to match
/// the lexicon, so an odd stem for an unknown verb does no harm.
pub fn lemma(word: &str) -> String {
    if let Some((_, l)) = IRREGULAR.iter().find(|(f, _)| *f == word) {
        return (*l).to_string();
    }
    let w = word;
    // "seeing", "agreeing", "fleeing": the stem keeps its "ee".
    if let Some(s) = w.strip_suffix("eeing") {
        return format!("{s}ee");
    }
    if let Some(s) = w.strip_suffix("ies")
        && s.len() >= 2
    {
        return format!("{s}y");
    }
    if let Some(s) = w.strip_suffix("ied")
        && s.len() >= 2
    {
        return format!("{s}y");
    }
    for suf in ["ing", "ed"] {
        if let Some(s) = w.strip_suffix(suf)
            && s.len() >= 2
        {
            // English stems hardly end in "c", "v", "dg", "ang" or one "z": "replaced" →
            // "replace", "solved" → "solve", "judged" → "judge", "changed" → "change".
            if s.len() >= 4
                && (s.ends_with('c')
                    || s.ends_with('v')
                    || s.ends_with("dg")
                    || (s.ends_with("ang") && s.len() >= 5)
                    || (s.ends_with('z') && !s.ends_with("zz")))
            {
                return format!("{s}e");
            }
            let b = s.as_bytes();
            // "stopped" → "stop": a doubled final consonant.
            if b.len() >= 3
                && b[b.len() - 1] == b[b.len() - 2]
                && !matches!(b[b.len() - 1], b'l' | b's' | b'z')
            {
                return s[..s.len() - 1].to_string();
            }
            // "moved" → "move", "living" → "live": a stem ending consonant-vowel-consonant
            // with a single vowel before usually had an "e".
            let last = b[b.len() - 1];
            let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
            if b.len() >= 2
                && !vowel(last)
                && !matches!(last, b'w' | b'x' | b'y')
                && vowel(b[b.len() - 2])
                && (b.len() < 3 || !vowel(b[b.len() - 3]))
                && !matches!(
                    s,
                    "work"
                        | "start"
                        | "join"
                        | "visit"
                        | "open"
                        | "happen"
                        | "listen"
                        | "offer"
                        | "enter"
                        | "travel"
                        | "cancel"
                        | "wonder"
                        | "order"
                        | "answer"
                        | "prefer"
                        | "consider"
                        | "deliver"
                        | "gather"
                )
                && s.len() <= 5
            {
                return format!("{s}e");
            }
            return s.to_string();
        }
    }
    if let Some(s) = w.strip_suffix("es")
        && (s.ends_with("sh") || s.ends_with("ch") || s.ends_with('x') || s.ends_with("ss"))
    {
        return s.to_string();
    }
    if let Some(s) = w.strip_suffix('s')
        && s.len() >= 2
        && !s.ends_with('s')
    {
        return s.to_string();
    }
    w.to_string()
}

/// A past form: irregular past, or a regular "-ed" ("moved", "threw", "was").
/// Words in "-ed" that are no past form ("I need a suit by Friday").
pub const NOT_PAST_ED: [&str; 14] = [
    "indeed", "proceed", "exceed", "succeed", "need", "speed", "feed", "bleed", "breed", "seed",
    "hundred", "sacred", "naked", "wicked",
];

pub fn is_past_form(w: &str) -> bool {
    // Every irregular past or participle of the lemma table ("hung", "swore").
    let irregular_past = IRREGULAR.iter().any(|(f, l)| {
        *f == w
            && f != l
            && !w.ends_with("ing")
            && !matches!(w, "is" | "are" | "am" | "has" | "does" | "goes" | "gotta")
    });
    irregular_past
        || (w.len() > 3 && w.ends_with("ed") && !NOT_PAST_ED.contains(&w))
        || matches!(
            w,
            "went"
                | "left"
                | "got"
                | "began"
                | "became"
                | "took"
                | "found"
                | "made"
                | "broke"
                | "grew"
                | "flew"
                | "drove"
                | "sold"
                | "lost"
                | "met"
                | "came"
                | "fell"
                | "gave"
                | "ran"
                | "told"
                | "said"
                | "thought"
                | "bought"
                | "brought"
                | "taught"
                | "wrote"
                | "chose"
                | "won"
                | "quit"
                | "split"
                | "was"
                | "were"
                | "did"
                | "had"
                | "kept"
                | "felt"
                | "paid"
                | "sent"
                | "spent"
                | "rode"
                | "ate"
                | "saw"
                | "knew"
                | "built"
                | "laid"
                | "let"
                | "threw"
                | "drew"
                | "blew"
                | "shook"
                | "hid"
                | "bit"
                | "sang"
                | "swam"
                | "drank"
                | "wore"
                | "woke"
                | "caught"
                | "fought"
                | "sat"
                | "stood"
                | "held"
                | "led"
                | "slept"
                | "dealt"
                | "meant"
                | "forgot"
        )
}

/// The subject at `k..e` is a personal pronoun ("I", "we", "she", "they").
fn pronoun_subject(toks: &[Tok], k: usize, e: usize) -> bool {
    e == k + 1 && matches!(toks[k].word.as_str(), "i" | "we" | "he" | "she" | "they")
}

/// A word that can be a verb after a pronoun: a plain lower-case word that is no function
/// word, time word or filler.
fn plausible_verb(t: &Tok) -> bool {
    let w = t.word.as_str();
    !t.cap
        && w.len() >= 2
        && w.chars().all(|c| c.is_ascii_lowercase())
        && !NOT_VERBS.contains(&w)
        && !super::words::is_stopword(w)
        && !FILLERS.contains(&w)
        && !is_time_word(w)
}

/// An adverb in "-ly" inside a verb group ("has completely replaced", "finally moved").
fn manner_adverb(w: &str) -> bool {
    w.len() >= 6
        && w.ends_with("ly")
        && !matches!(
            w,
            "apply" | "reply" | "supply" | "multiply" | "family" | "bully" | "italy" | "rely"
        )
}

/// Adjectives in "-ing" that follow a copula as a judgement, not as a progressive verb.
#[rustfmt::skip]
const ING_ADJECTIVES: &[&str] = &[
    "amazing", "disgusting", "boring", "revolting", "annoying", "exciting", "interesting",
    "relaxing", "depressing", "exhausting", "terrifying", "fascinating", "refreshing",
    "satisfying", "tiring", "frustrating", "confusing", "embarrassing", "stunning",
    "charming", "appalling", "thrilling", "inspiring", "soothing", "addicting",
];

/// Words that are never a main verb, so a clause cannot start its verb group with them.
#[rustfmt::skip]
const NOT_VERBS: &[&str] = &[
    "the", "a", "an", "my", "our", "your", "his", "her", "their", "its", "this", "that", "these",
    "those", "to", "in", "at", "on", "of", "for", "with", "from", "by", "about", "and", "or",
    "but", "so", "very", "too", "really", "i", "you", "he", "she", "we", "they", "it", "me",
    "him", "them", "us", "there", "here", "not", "no", "yes", "home", "now", "then",
];

/// Common verbs, as lemmas, that can open a subject-less clause ("Moved to Leeds", "Got a job").
#[rustfmt::skip]
const OPENING_VERBS: &[&str] = &[
    "move", "live", "get", "start", "quit", "leave", "join", "work", "love", "like", "hate",
    "finish", "begin", "become", "retire", "relocate", "land", "accept", "sign", "buy", "rent",
    "go", "take", "make", "find", "lose", "break", "split", "marry", "divorce", "adopt", "switch",
    "stop", "give", "decide", "spend", "settle", "resign", "transfer", "enjoy", "adore", "miss",
    "finally", "been", "had", "have", "am", "was", "just", "teach", "drive", "ride", "visit",
    "head", "fly", "come", "try", "turn", "pass", "wrap", "unpack", "do", "say", "tell", "can",
    "will", "would", "gonna", "going", "thinking", "planning", "hoping", "looking", "trying",
];

/// A person's role word after "my" (kin, partners, friends, colleagues, pets).
#[rustfmt::skip]
pub const ROLES: &[&str] = &[
    "mom", "mum", "mother", "mommy", "mama", "mam", "ma", "dad", "father", "daddy", "papa", "pa",
    "sister", "brother", "sibling", "son", "daughter", "kid", "child", "baby", "wife", "husband",
    "partner", "boyfriend", "girlfriend", "fiance", "fiancé", "fiancee", "fiancée", "spouse",
    "friend", "bestie", "buddy", "pal", "mate", "flatmate", "roommate", "housemate", "colleague",
    "coworker", "boss", "manager", "neighbour", "neighbor", "cousin", "aunt", "auntie", "uncle",
    "niece", "nephew", "grandma", "grandmother", "granny", "gran", "nan", "nana", "grandpa",
    "grandfather", "grandad", "granddad", "grandson", "granddaughter", "stepdad", "stepmom",
    "stepmum", "stepson", "stepdaughter", "stepbrother", "stepsister", "twin", "ex", "in-law",
    "mother-in-law", "father-in-law", "sister-in-law", "brother-in-law", "dog", "cat", "puppy",
    "kitten", "pup", "rabbit", "bunny", "parrot", "hamster", "horse", "teammate", "classmate",
    "mentor", "student", "client", "landlord", "doctor", "therapist", "nonna", "abuela", "oma",
    "grandchild", "grandkid", "godson", "goddaughter", "stepfather", "stepmother", "lodger", "girls", "boys", "twins", "kids", "children", "parents", "in-laws", "gf", "bf", "hubby",
];

/// Adjectives between "my" and a role ("my little sister", "my best friend").
#[rustfmt::skip]
const ROLE_ADJECTIVES: &[&str] = &[
    "best", "close", "old", "oldest", "good", "dear", "little", "big", "older", "younger",
    "elder", "eldest", "youngest", "baby", "twin", "new", "lovely", "sweet", "childhood",
    "college", "school", "work", "fur", "lil", "step", "other",
];

/// The clauses of one sentence, in order. `last_person` carries the last person named in the
/// turn across sentences (for "he"/"she"/"who"), and is updated.
pub fn clauses(s: &Sentence<'_>, speaker: &str, last_person: &mut Option<Subject>) -> Vec<Clause> {
    let toks = &s.toks;
    let asked = is_question(s);
    // 1. Pieces: split at clause punctuation and before splitter words.
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    let mut complement_starts: Vec<usize> = Vec::new();
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        // "that" before a subject opens a complement clause ("worried that I'm leaving").
        let complement = t.word == "that"
            && toks.get(i + 1).is_some_and(|n| {
                matches!(
                    n.word.as_str(),
                    "i" | "we" | "he" | "she" | "they" | "my" | "our"
                )
            });
        // A verb of saying or thinking takes a clause without "that" ("I think my aunt moved",
        // "she says the flat is sold"); a piece after it without a verb joins it again.
        let bare_complement = i > 0
            && SAY_THINK.contains(&toks[i - 1].word.as_str())
            && !toks[i - 1].boundary_after
            && (matches!(
                t.word.as_str(),
                "i" | "we" | "he" | "she" | "they" | "my" | "our" | "his" | "their" | "the"
            ) || is_name_tok(t));
        if complement || bare_complement {
            complement_starts.push(i);
        }
        let split_before =
            i > start && (SPLITTERS.contains(&t.word.as_str()) || complement || bare_complement);
        if split_before {
            pieces.push((start, i));
            start = i;
        }
        if t.boundary_after {
            pieces.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < toks.len() {
        pieces.push((start, toks.len()));
    }
    // 2. A piece without a verb joins a neighbour: the next one when it opens the sentence or
    //    is a subject ("My wife" + "and I live…"), else the previous one (a list, an adverbial).
    let has_verb = |a: usize, b: usize| (a..b).any(|k| verb_like(toks, k));
    let mut merged: Vec<(usize, usize)> = Vec::new();
    // Merged clauses that end in a verbless fragment after punctuation ("…, any tips?").
    let mut fragment_tail: Vec<usize> = Vec::new();
    let mut carry: Option<usize> = None;
    for (a, b) in pieces {
        let a = carry.take().unwrap_or(a);
        if has_verb(a, b) || (!merged.is_empty() && ellipsis(toks, a, b, speaker, &None).is_some())
        {
            merged.push((a, b));
        } else if (merged.is_empty() && (!toks[b - 1].boundary_after || is_name_tok(&toks[a])))
            || starts_subject(toks, a)
        {
            carry = Some(a);
        } else if merged.is_empty() {
            // An interjection or heading ("Big news:", "Quick one —"): not part of a clause.
        } else {
            let last_i = merged.len() - 1;
            if a > 0 && toks[a - 1].boundary_after {
                fragment_tail.push(last_i);
            }
            merged[last_i].1 = b;
        }
    }
    if let Some(a) = carry {
        match merged.last_mut() {
            Some(last) if last.1 >= a => {}
            _ => merged.push((a, toks.len())),
        }
    }
    // 3. Each piece as a clause.
    let mut out: Vec<Clause> = Vec::new();
    let n = merged.len();
    for (i, (a, b)) in merged.into_iter().enumerate() {
        let prev = out.last().map(|c| (c.subject.clone(), c.mood));
        // In "I live in Nairobi and I'm looking for a club, any tips?" only the end asks; a
        // clause that opens like a question ("should I move…") asks wherever it is.
        let opens_question = {
            let mut k = a;
            while k < b && SPLITTERS.contains(&toks[k].word.as_str()) {
                k += 1;
            }
            let w = |j: usize| {
                toks.get(j)
                    .filter(|_| j < b)
                    .map_or("", |t| t.word.as_str())
            };
            (AUX.contains(&w(k))
                && matches!(
                    w(k + 1),
                    "i" | "we" | "you" | "he" | "she" | "they" | "it" | "my"
                ))
                || matches!(
                    w(k),
                    "what" | "where" | "who" | "how" | "why" | "which" | "when" | "should"
                )
        };
        // A question mark after a verbless fragment ("it's not my thing, five days for a
        // draw?") asks the fragment, not the clause.
        // A complement clause states what the question is about ("is it weird that my uncle
        // moved back to Beirut?" asks about the weirdness, not the move).
        let asked = asked
            && !complement_starts.contains(&a)
            && (opens_question || (i + 1 == n && !fragment_tail.contains(&i)));
        relative_named_before(toks, a, &out, speaker, last_person);
        // "if I'm honest", "to be honest", "if you ask me": a comment on the speaking, not a
        // clause of what is said.
        if aside(toks, a, b) {
            continue;
        }
        // "… and so do I", "me too", "neither does my wife": the clause before, said again
        // of another subject, with the same verb, object, tense and polarity.
        if let Some(before) = out.last()
            && let Some((subject, with)) = ellipsis(toks, a, b, speaker, last_person)
        {
            let mut c = before.clone();
            if let Subject::Person { .. } = &subject {
                *last_person = Some(subject.clone());
            }
            c.subject = subject;
            c.with = with;
            c.subject_at = None;
            c.mood = if asked { Mood::Asked } else { c.mood };
            out.push(c);
            continue;
        }
        if let Some(c) = clause(toks, a, b, speaker, last_person, prev, asked) {
            out.push(c);
        }
    }
    relative_named_before(toks, toks.len(), &out, speaker, last_person);
    out
}

/// A clause `a..b` that comments on the speaking: "if I'm (being) honest", "to be honest",
/// "if you ask me", "I have to say", "I must admit".
fn aside(toks: &[Tok], a: usize, b: usize) -> bool {
    let w: Vec<&str> = toks[a..b]
        .iter()
        .map(|t| t.word.as_str())
        .filter(|w| !matches!(*w, "and" | "but" | "so" | "being" | "totally" | "really"))
        .collect();
    matches!(
        w.as_slice(),
        ["if", "i", "am", "honest"]
            | ["to", "be", "honest"]
            | ["if", "you", "ask", "me"]
            | ["i", "have", "to", "say"]
            | ["i", "must", "say"]
            | ["i", "must", "admit"]
            | ["i", "have", "to", "admit"]
    )
}

/// An elliptical clause at `a..b` that repeats the clause before it of another subject: "so
/// do I", "and so has my sister", "neither does Tom", "me too", "I do too", "same here".
fn ellipsis(
    toks: &[Tok],
    a: usize,
    b: usize,
    speaker: &str,
    last_person: &Option<Subject>,
) -> Option<(Subject, Vec<Subject>)> {
    let mut k = a;
    while k < b && matches!(toks[k].word.as_str(), "and" | "but" | "plus" | "honestly") {
        k += 1;
    }
    let w = |j: usize| {
        toks.get(j)
            .filter(|_| j < b)
            .map_or("", |t| t.word.as_str())
    };
    let aux = |x: &str| {
        matches!(
            x,
            "do" | "does" | "did" | "am" | "is" | "are" | "was" | "were" | "have" | "has" | "had"
        )
    };
    // "so do I", "neither does my wife", "nor have we".
    if matches!(w(k), "so" | "neither" | "nor") && aux(w(k + 1)) {
        let (s, with, e) = subject_at(toks, k + 2, b, speaker, last_person)?;
        return (e == b || (e + 1 == b && matches!(w(e), "too" | "lol"))).then_some((s, with));
    }
    // "me too", "same here", "same for me".
    if (w(k) == "me" && w(k + 1) == "too" && k + 2 == b)
        || (w(k) == "same" && matches!(w(k + 1), "here" | "") && k + 2 >= b)
    {
        return Some((Subject::Speaker, vec![]));
    }
    // "I do too", "my sister does as well", "we are too".
    let (s, with, e) = subject_at(toks, k, b, speaker, last_person)?;
    let mut j = e;
    if j < b && matches!(w(j), "not") {
        j += 1;
    }
    (aux(w(e))
        && (matches!(w(j + 1), "too" | "either") || (w(j + 1) == "as" && w(j + 2) == "well"))
        && toks[b - 1].boundary_after | (b == toks.len()))
    .then_some((s, with))
}

/// A relative named outside a subject ("Do you think my girlfriend should…", "visiting my
/// brother Sipho, he's…") is whom a later "he" or "she" means, unless a subject of this
/// sentence named someone: `last_person` becomes the last "my ROLE (Name)" before token `b`.
fn relative_named_before(
    toks: &[Tok],
    b: usize,
    so_far: &[Clause],
    speaker: &str,
    last_person: &mut Option<Subject>,
) {
    if so_far
        .iter()
        .any(|c| matches!(c.subject, Subject::Person { .. }) || !c.with.is_empty())
    {
        return;
    }
    for k in (0..b).rev() {
        if matches!(toks[k].word.as_str(), "my" | "our")
            && let Some((p @ Subject::Person { .. }, _)) =
                simple_subject(toks, k, b, speaker, last_person)
        {
            *last_person = Some(p);
            return;
        }
    }
}

/// Token `k` may be a verb or an auxiliary.
fn verb_like(toks: &[Tok], k: usize) -> bool {
    let w = toks[k].word.as_str();
    if NOT_VERBS.contains(&w) {
        return false;
    }
    AUX.contains(&w)
        || OPENING_VERBS.contains(&lemma(w).as_str())
        || INTENT_VERBS.contains(&lemma(w).as_str())
        || is_past_form(w)
        || w.ends_with("ing") && w.len() > 5
        || super::slots::is_lexicon_verb(&lemma(w))
}

/// A subject can start at token `a` (after an opening splitter).
fn starts_subject(toks: &[Tok], a: usize) -> bool {
    let mut k = a;
    while k < toks.len() && SPLITTERS.contains(&toks[k].word.as_str()) {
        k += 1;
    }
    toks.get(k).is_some_and(|t| {
        SPEAKER_WORDS.contains(&t.word.as_str())
            || matches!(t.word.as_str(), "my" | "our")
            || (t.cap && k > 0)
    })
}

/// A name: capitalised, not a function word, not a time word.
fn is_name_tok(t: &Tok) -> bool {
    t.cap
        && t.word.chars().next().is_some_and(char::is_alphabetic)
        && !NOT_VERBS.contains(&t.word.as_str())
        && !FILLERS.contains(&t.word.as_str())
        && !super::words::is_stopword(&t.word)
        && !ROLES.contains(&t.word.as_str())
}

/// A subject at token `k`: the subject, its co-subjects, and the index after it.
fn subject_at(
    toks: &[Tok],
    k: usize,
    b: usize,
    speaker: &str,
    last_person: &Option<Subject>,
) -> Option<(Subject, Vec<Subject>, usize)> {
    let (first, mut end) = simple_subject(toks, k, b, speaker, last_person)?;
    let mut members = vec![first];
    // Compounds: "my wife and I", "me and the kids", "Salma and I".
    while end + 1 < b && toks[end].word == "and" {
        match simple_subject(toks, end + 1, b, speaker, last_person) {
            Some((s, e)) => {
                members.push(s);
                end = e;
            }
            None => break,
        }
    }
    if members.len() == 1 {
        return Some((members.pop().unwrap(), vec![], end));
    }
    if members.contains(&Subject::Speaker) {
        let with = members
            .into_iter()
            .filter(|m| matches!(m, Subject::Person { .. }))
            .collect();
        return Some((Subject::Speaker, with, end));
    }
    let mut it = members.into_iter();
    let head = it.next().unwrap();
    Some((head, it.collect(), end))
}

fn simple_subject(
    toks: &[Tok],
    k: usize,
    b: usize,
    speaker: &str,
    last_person: &Option<Subject>,
) -> Option<(Subject, usize)> {
    let t = toks.get(k).filter(|_| k < b)?;
    let w = t.word.as_str();
    if SPEAKER_WORDS.contains(&w) {
        return Some((Subject::Speaker, k + 1));
    }
    if matches!(w, "he" | "she" | "who") {
        return Some((last_person.clone().unwrap_or(Subject::Other), k + 1));
    }
    if matches!(w, "they") {
        return Some((Subject::Other, k + 1));
    }
    // "it was amazing", "that's my thing": a thing named before.
    if matches!(w, "it" | "that" | "this") {
        return Some((Subject::Other, k + 1));
    }
    // "the weather is awful", "an omelette is my go-to": a thing (not a compound with a
    // person, "the kids and I", which the role reads).
    if matches!(w, "the" | "a" | "an" | "these" | "those") {
        // "these days", "the other day": a time, not a subject.
        if toks
            .get(k + 1)
            .is_some_and(|t| FILLERS.contains(&t.word.as_str()) || is_time_word(&t.word))
        {
            return None;
        }
        let mut e = k + 1;
        while e < b && e - k <= 3 && !verb_like(toks, e) && !toks[e - 1].boundary_after {
            let x = toks[e].word.as_str();
            if matches!(x, "and" | "or") || ROLES.contains(&x) || x.ends_with("'s") {
                return None;
            }
            e += 1;
        }
        return (e > k + 1 && e < b && verb_like(toks, e)).then_some((Subject::Other, e));
    }
    // "his wife Emi", "her brother": someone else's relative.
    if matches!(w, "his" | "her" | "their" | "your") {
        let j = k + 1;
        if j < b && ROLES.contains(&toks[j].word.as_str()) {
            let e = j + 1;
            if e < b && is_name_tok(&toks[e]) {
                let (n, ne) = name_at(toks, e, b);
                return Some((
                    Subject::Person {
                        name: Some(n),
                        role: None,
                    },
                    ne,
                ));
            }
            return Some((Subject::Other, e));
        }
        return None;
    }
    // A bare role: "Mum retired", "mom cried", "dad's been living in Cork".
    let bare = w.strip_suffix("'s").unwrap_or(w);
    if ROLES.contains(&bare) {
        return Some((
            Subject::Person {
                name: None,
                role: Some(bare.to_string()),
            },
            k + 1,
        ));
    }
    if matches!(w, "my" | "our") {
        let mut j = k + 1;
        while j < b && ROLE_ADJECTIVES.contains(&toks[j].word.as_str()) && !toks[j].boundary_after {
            j += 1;
        }
        let role_word = toks.get(j).filter(|_| j < b)?.word.as_str();
        let role = role_word.strip_suffix("'s").unwrap_or(role_word);
        let role = role
            .strip_suffix('s')
            .filter(|r| ROLES.contains(r))
            .unwrap_or(role);
        if !ROLES.contains(&role) {
            // "my flat", "our new place": not a person. The phrase stops at a verb, and at
            // "and" so that "my family and I" stays a compound with the speaker in it.
            let mut e = j + 1;
            while e < b && !verb_like(toks, e) && !matches!(toks[e].word.as_str(), "and" | "or") {
                e += 1;
            }
            return Some((Subject::Other, e));
        }
        let mut e = j + 1;
        let mut name = None;
        // "my sister Ana", "my sister, Ana,", and in lower-case text "my gf sana".
        let lower_name = e < b
            && !toks.iter().any(|t| t.cap)
            && !NOT_VERBS.contains(&toks[e].word.as_str())
            && !verb_like(toks, e)
            && !super::words::is_stopword(&toks[e].word)
            && !FILLERS.contains(&toks[e].word.as_str())
            && toks[e].word.chars().all(char::is_alphabetic);
        if lower_name {
            name = Some(capitalise(&toks[e].word));
            e += 1;
        } else if e < b && is_name_tok(&toks[e]) {
            let (n, ne) = name_at(toks, e, b);
            name = Some(n);
            e = ne;
        }
        return Some((
            Subject::Person {
                name,
                role: Some(role.to_string()),
            },
            e,
        ));
    }
    if is_name_tok(t) && !(k == 0 && OPENING_VERBS.contains(&lemma(w).as_str())) {
        let (name, mut e) = name_at(toks, k, b);
        if name.eq_ignore_ascii_case(speaker) {
            return Some((Subject::Speaker, e));
        }
        let mut role = None;
        // "Takeshi, my husband, has …", "Jo, my best friend, moved …".
        if e + 1 < b && toks[e].word == "my" {
            let mut j = e + 1;
            while j + 1 < b && ROLE_ADJECTIVES.contains(&toks[j].word.as_str()) {
                j += 1;
            }
            if ROLES.contains(&toks[j].word.as_str()) {
                role = Some(toks[j].word.clone());
                e = j + 1;
            }
        }
        return Some((
            Subject::Person {
                name: Some(name),
                role,
            },
            e,
        ));
    }
    None
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// A name of up to three capitalised words from `k` (without a possessive "'s").
fn name_at(toks: &[Tok], k: usize, b: usize) -> (String, usize) {
    let mut e = k;
    let mut words = Vec::new();
    while e < b && e - k < 3 && is_name_tok(&toks[e]) {
        let w = &toks[e];
        let shown: String = {
            let mut c = w.word.chars();
            c.next()
                .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        };
        words.push(shown.trim_end_matches("'s").to_string());
        e += 1;
        if toks[e - 1].boundary_after {
            break;
        }
    }
    (words.join(" "), e)
}

#[allow(clippy::too_many_arguments)]
fn clause(
    toks: &[Tok],
    a: usize,
    b: usize,
    speaker: &str,
    last_person: &mut Option<Subject>,
    prev: Option<(Subject, Mood)>,
    asked: bool,
) -> Option<Clause> {
    let opener = toks[a].word.as_str();
    let mut mood = if asked {
        Mood::Asked
    } else if HYPOTHETICAL_OPENERS.contains(&opener) {
        Mood::Hypothetical
    } else {
        Mood::Asserted
    };
    // The subject: the first subject followed by a verb; else none (inherited).
    let mut found = None;
    let mut contracted: Option<usize> = None;
    let mut k = a;
    while k < b {
        // "me" and "us" are subjects only at the clause's opening ("me and Tom went"); after
        // it they are objects ("talk to me like a friend" says nothing about liking).
        let object_pronoun = k > a && matches!(toks[k].word.as_str(), "me" | "us");
        if !object_pronoun && let Some((s, with, e)) = subject_at(toks, k, b, speaker, last_person)
        {
            let v = skip_adverbs_and_negation(toks, e, b);
            // After a personal pronoun the next word is the verb, known or not ("I fix
            // laptops", "we brew our own beer").
            if v < b
                && (verb_like(toks, v) || (pronoun_subject(toks, k, e) && plausible_verb(&toks[v])))
            {
                found = Some((s, with, e));
                break;
            }
            // "Daniel's in Haifa", "my sister's been at the BBC": "'s" is "is" or "has".
            if e > k
                && toks[e - 1].word.ends_with("'s")
                && v < b
                && CONTRACTION_NEXT.contains(&toks[v].word.as_str())
            {
                contracted = Some(e - 1);
                found = Some((s, with, e));
                break;
            }
        }
        // Skip a fronted adverbial ("Three weeks into life in New York", "Since March,")
        // up to a subject; never past a verb. A reporting verb on the way ("Everyone assumes
        // I work at …") makes what follows a belief, not the speaker's assertion.
        if verb_like(toks, k) || k - a >= 8 {
            break;
        }
        if REPORTING.contains(&toks[k].word.as_str()) && mood == Mood::Asserted {
            mood = Mood::Hypothetical;
        }
        k += 1;
    }
    let mut subject_at = found.as_ref().map(|_| k);
    // A bare noun phrase before an auxiliary is a thing as subject: "green tea has replaced
    // coffee", "olives are disgusting", "Jazz isn't my thing".
    if found.is_none() {
        let mut n = a;
        while n < b
            && (FILLERS.contains(&toks[n].word.as_str())
                || SPLITTERS.contains(&toks[n].word.as_str()))
            && !verb_like(toks, n)
        {
            n += 1;
        }
        let mut e = n;
        while e < b
            && e - n < 3
            && !verb_like(toks, e)
            && !NOT_VERBS.contains(&toks[e].word.as_str())
            && !super::words::is_stopword(&toks[e].word)
            && !ROLES.contains(&toks[e].word.as_str())
            && toks[e].word.chars().all(|c| c.is_alphabetic() || c == '-')
            && (e == n || !toks[e - 1].boundary_after)
        {
            e += 1;
        }
        if e > n
            && e < b
            && (e == n + 1 || !toks[n + 1..e].iter().any(|t| t.cap) || toks[n].cap)
            && matches!(
                toks[e].word.as_str(),
                "is" | "are" | "was" | "were" | "has" | "have" | "isn't" | "aren't"
            )
        {
            subject_at = Some(n);
            found = Some((Subject::Other, vec![], e));
        }
    }
    let (subject, with, vstart) = match found {
        Some((s, w, e)) => (s, w, e),
        None => {
            // Subject-less: "Moved to Leeds", "… and started at Siemens".
            let mut v = a;
            while v < b
                && (FILLERS.contains(&toks[v].word.as_str())
                    || SPLITTERS.contains(&toks[v].word.as_str()))
                && !verb_like(toks, v)
            {
                v += 1;
            }
            if v >= b || !verb_like(toks, v) {
                return None;
            }
            let (s, m) = prev.unwrap_or((Subject::Speaker, Mood::Asserted));
            if m == Mood::Hypothetical && mood == Mood::Asserted && opener == "and" {
                mood = m;
            }
            (s, vec![], v)
        }
    };
    if let Subject::Person { .. } = &subject {
        *last_person = Some(subject.clone());
    }
    for w in &with {
        *last_person = Some(w.clone());
    }
    // The verb group.
    let mut negated = false;
    let mut tense = Tense::Present;
    let mut used_to = false;
    let mut progressive = false;
    let mut have = false;
    let mut copula_at = None;
    if let Some(at) = contracted {
        if toks
            .get(vstart)
            .is_some_and(|t| t.word == "been" || t.word == "got")
        {
            have = true;
        } else {
            copula_at = Some(at);
        }
    }
    let mut j = vstart;
    let mut verb = None;
    // After a modal or "do" the next word is the main verb, known to the lexicon or not
    // ("can't stand", "doesn't eat", "will miss").
    let mut want_verb = subject_at.is_some_and(|k| pronoun_subject(toks, k, vstart));
    while j < b {
        let w = toks[j].word.as_str();
        // "it's all knitting now": "all" opens the complement.
        if copula_at.is_some()
            && w == "all"
            && subject_at.is_some_and(|k| matches!(toks[k].word.as_str(), "it" | "that" | "this"))
        {
            break;
        }
        if ADVERBS.contains(&w) && w != "so"
            || matches!(
                w,
                "ever"
                    | "once"
                    | "probably"
                    | "soon"
                    | "both"
                    | "each"
                    | "officially"
                    | "happily"
                    | "pretty"
            )
            || manner_adverb(w)
        {
            j += 1;
            continue;
        }
        if matches!(w, "not" | "never") {
            negated = true;
            j += 1;
            continue;
        }
        if w == "no" && toks.get(j + 1).is_some_and(|t| t.word == "longer") {
            negated = true;
            j += 2;
            continue;
        }
        if w == "used" && toks.get(j + 1).is_some_and(|t| t.word == "to") {
            used_to = true;
            tense = Tense::Past;
            j += 2;
            continue;
        }
        if w == "going"
            && toks.get(j + 1).is_some_and(|t| t.word == "to")
            && toks
                .get(j + 2)
                .is_some_and(|t| verb_like(toks, j + 2) || t.word == "be")
        {
            tense = Tense::Future;
            j += 2;
            continue;
        }
        if w == "about" && toks.get(j + 1).is_some_and(|t| t.word == "to") {
            tense = Tense::Future;
            j += 2;
            continue;
        }
        if AUX.contains(&w) {
            want_verb = matches!(
                w,
                "do" | "does"
                    | "did"
                    | "can"
                    | "could"
                    | "will"
                    | "would"
                    | "shall"
                    | "should"
                    | "may"
                    | "might"
                    | "must"
            );
            match w {
                "will" | "shall" => tense = Tense::Future,
                "would" | "could" | "might" | "may" | "should" | "must" => {
                    if mood == Mood::Asserted {
                        mood = Mood::Hypothetical;
                    }
                }
                "have" | "has" | "having" => have = true,
                "had" => {
                    have = true;
                    tense = Tense::Past;
                }
                "did" => tense = Tense::Past,
                "was" | "were" => {
                    tense = Tense::Past;
                    copula_at = Some(j);
                }
                "do" | "does" | "can" => {}
                "get" | "got" | "gets" | "getting" => {
                    // "got married", "got a job": a main verb unless a participle follows.
                    let next = toks.get(j + 1).map(|t| t.word.as_str()).unwrap_or("");
                    let participle = next.ends_with("ed")
                        || matches!(
                            next,
                            "laid" | "let" | "made" | "given" | "told" | "paid" | "sent" | "stuck"
                        );
                    if !participle || j + 1 >= b {
                        verb = Some(("get".to_string(), j));
                        if w == "got" {
                            tense = if have { Tense::Perfect } else { Tense::Past };
                        }
                        break;
                    }
                    if w == "got" {
                        tense = Tense::Past;
                    }
                }
                _ => {
                    // A form of "be".
                    if matches!(
                        w,
                        "am" | "is" | "are" | "be" | "been" | "being" | "was" | "were"
                    ) {
                        copula_at = Some(j);
                    }
                }
            }
            j += 1;
            continue;
        }
        // An aspect verb before another verb: "started to enjoy", "began working", "keep
        // going": the clause is about the verb after it, in the aspect verb's tense.
        let l = lemma(w);
        if matches!(l.as_str(), "start" | "begin" | "keep" | "continue") {
            let to = toks.get(j + 1).is_some_and(|t| t.word == "to");
            let k = if to { j + 2 } else { j + 1 };
            if k < b
                && !NOT_VERBS.contains(&toks[k].word.as_str())
                && !AUX.contains(&toks[k].word.as_str())
                && verb_like(toks, k)
                && (to || toks[k].word.ends_with("ing"))
            {
                if is_past_form(w) && copula_at.is_none() {
                    if have {
                        tense = Tense::Perfect;
                    } else if tense != Tense::Future && !used_to {
                        tense = Tense::Past;
                    }
                }
                j = k;
                continue;
            }
        }
        // An intent verb: "want to move", "thinking about moving", "considering".
        if INTENT_VERBS.contains(&l.as_str())
            && !(matches!(l.as_str(), "like" | "love")
                && toks.get(j + 1).is_none_or(|t| t.word != "to"))
            && !(l == "look"
                && toks
                    .get(j + 1)
                    .is_none_or(|t| t.word != "into" && t.word != "at"))
            && !(l == "try" && toks.get(j + 1).is_none_or(|t| t.word != "to"))
            && !(l == "need" && toks.get(j + 1).is_none_or(|t| t.word != "to"))
            && !(l == "refuse" && toks.get(j + 1).is_none_or(|t| t.word != "to"))
            && !(l == "apply"
                && toks
                    .get(j + 1)
                    .is_none_or(|t| !matches!(t.word.as_str(), "to" | "for")))
        {
            if mood == Mood::Asserted {
                mood = if matches!(l.as_str(), "wish" | "dream") {
                    Mood::Hypothetical
                } else {
                    Mood::Intended
                };
            }
            j += 1;
            while j < b
                && matches!(
                    toks[j].word.as_str(),
                    "to" | "about"
                        | "of"
                        | "on"
                        | "for"
                        | "into"
                        | "at"
                        | "it"
                        | "over"
                        | "with"
                        | "the"
                        | "idea"
                )
            {
                j += 1;
            }
            copula_at = None;
            continue;
        }
        if NOT_VERBS.contains(&w)
            || !(verb_like(toks, j) || (want_verb && w.chars().all(char::is_alphabetic)))
        {
            break;
        }
        // "olives are disgusting", "work is exhausting": an adjective, not a progressive;
        // "it's all knitting now": a noun.
        if copula_at.is_some()
            && (ING_ADJECTIVES.contains(&w)
                || (w == "all"
                    && subject_at
                        .is_some_and(|k| matches!(toks[k].word.as_str(), "it" | "that" | "this"))))
        {
            break;
        }
        if w.ends_with("ing") && copula_at.is_some() {
            progressive = true;
        }
        verb = Some((l, j));
        if is_past_form(w) && !progressive {
            if have {
                tense = Tense::Perfect;
            } else if copula_at.is_some() {
                // A passive ("was hired", "am based"): the copula's tense stands.
            } else if tense != Tense::Future && !used_to {
                tense = Tense::Past;
            }
        }
        break;
    }
    if have && tense == Tense::Present {
        tense = Tense::Perfect;
    }
    let (verb, verb_at, rest) = match (verb, copula_at) {
        (Some((v, at)), _) => (Some(v), at, at + 1),
        (None, Some(at)) => {
            if have && tense != Tense::Past {
                tense = Tense::Perfect;
            }
            (Some("be".to_string()), at, j)
        }
        (None, None) if have => (Some("have".to_string()), j.saturating_sub(1), j),
        (None, None) => return None,
    };
    // A progressive with a future time word speaks of a plan: "we're moving next month".
    let words_after: Vec<&str> = toks[rest.min(b)..b]
        .iter()
        .map(|t| t.word.as_str())
        .collect();
    if progressive && tense == Tense::Present && words_after.iter().any(|w| FUTURE_TIME.contains(w))
    {
        tense = Tense::Future;
    }
    // The progressive of a change ("I'm moving to Leeds", "she's leaving Deloitte") speaks of
    // an arranged event, not of a state that holds now ("I'm living in Leeds").
    if progressive
        && tense == Tense::Present
        && verb.as_deref().is_some_and(|v| CHANGE_VERBS.contains(&v))
    {
        tense = Tense::Future;
    }
    let ended = used_to
        || words_after.contains(&"anymore")
        || super::words::contains_seq(&words_after, &["any", "more"])
        || super::words::contains_seq(&words_after, &["no", "longer"])
        || super::words::contains_seq(&words_after, &["no", "more"])
        || (negated && toks[vstart..rest.min(b)].iter().any(|t| t.word == "longer"));
    if words_after
        .iter()
        .any(|w| matches!(*w, "maybe" | "perhaps"))
        && mood == Mood::Asserted
    {
        mood = Mood::Hypothetical;
    }
    Some(Clause {
        subject,
        subject_at,
        with,
        verb,
        verb_at,
        rest,
        end: b,
        tense,
        negated,
        mood,
        ended,
        used_to,
    })
}

fn skip_adverbs_and_negation(toks: &[Tok], mut i: usize, b: usize) -> usize {
    while i < b
        && (ADVERBS.contains(&toks[i].word.as_str())
            || matches!(
                toks[i].word.as_str(),
                "not" | "never" | "no" | "longer" | "ever" | "both" | "each" | "officially"
            ))
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::words::sentences;

    fn first(text: &str) -> Clause {
        all(text)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no clause in {text:?}"))
    }

    fn all(text: &str) -> Vec<Clause> {
        let mut last = None;
        sentences(text)
            .iter()
            .flat_map(|s| clauses(s, "Ana", &mut last))
            .collect()
    }

    #[test]
    fn lemmas_of_regular_and_irregular_forms() {
        for (w, l) in [
            ("moved", "move"),
            ("living", "live"),
            ("works", "work"),
            ("stopped", "stop"),
            ("left", "leave"),
            ("quit", "quit"),
            ("relocated", "relocate"),
            ("tried", "try"),
            ("joined", "join"),
            ("started", "start"),
            ("retired", "retire"),
            ("hates", "hate"),
        ] {
            assert_eq!(lemma(w), l, "{w}");
        }
    }

    #[test]
    fn subject_tense_negation_and_mood() {
        let c = first("I moved to Leeds last week.");
        assert_eq!(
            (c.subject, c.verb.as_deref(), c.tense),
            (Subject::Speaker, Some("move"), Tense::Past)
        );
        let c = first("We're moving to Doha next month.");
        assert_eq!(c.tense, Tense::Future);
        let c = first("I don't live in Belfast anymore.");
        assert!(c.negated && c.ended);
        let c = first("If I ever lived in Rome I'd eat pasta daily.");
        assert_eq!(c.mood, Mood::Hypothetical);
        let c = first("I'm thinking about moving to Perth.");
        assert_eq!(c.mood, Mood::Intended);
        let c = first("I've been living in Osaka for six years.");
        assert_eq!((c.verb.as_deref(), c.tense), (Some("live"), Tense::Perfect));
        let c = first("I used to live in Galway.");
        assert!(c.used_to && c.ended);
    }

    #[test]
    fn subjects_other_than_i() {
        let c = first("My sister Lena moved to Oslo.");
        assert_eq!(
            c.subject,
            Subject::Person {
                name: Some("Lena".into()),
                role: Some("sister".into())
            }
        );
        let c = first("My wife and I live in Chennai.");
        assert_eq!(c.subject, Subject::Speaker);
        assert_eq!(c.with.len(), 1);
        let cs = all("My brother Tom is a nurse, and he lives in Cork.");
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1].subject, cs[0].subject);
        let c = first("Takeshi, my husband, has been living in Sapporo.");
        assert_eq!(
            c.subject,
            Subject::Person {
                name: Some("Takeshi".into()),
                role: Some("husband".into())
            }
        );
        let cs = all("Moved to Leeds and started at Siemens.");
        assert_eq!(cs.len(), 2);
        assert!(cs.iter().all(|c| c.subject == Subject::Speaker));
    }

    #[test]
    fn a_compound_with_a_group_noun_includes_the_speaker() {
        let c = first("My family and I moved to Hanoi.");
        assert_eq!(
            (c.subject, c.verb.as_deref()),
            (Subject::Speaker, Some("move"))
        );
        // A thing as the subject still starts where it is written.
        let c = first("Honestly my flat is tiny.");
        assert_eq!((c.subject, c.subject_at), (Subject::Other, Some(1)));
    }

    #[test]
    fn an_aspect_verb_gives_way_to_the_verb_after_it() {
        let c = first("I've started to enjoy running.");
        assert_eq!(
            (c.verb.as_deref(), c.tense),
            (Some("enjoy"), Tense::Perfect)
        );
        let c = first("She began working at the museum in May.");
        assert_eq!((c.verb.as_deref(), c.tense), (Some("work"), Tense::Past));
        // "start" with its own object stays the verb.
        let c = first("I started a new job at Siemens.");
        assert_eq!(c.verb.as_deref(), Some("start"));
    }

    #[test]
    fn after_a_modal_or_do_the_next_word_is_the_verb() {
        let c = first("I can't stand cilantro.");
        assert_eq!((c.verb.as_deref(), c.negated), (Some("stand"), true));
        let c = first("My brother doesn't eat pork.");
        assert_eq!((c.verb.as_deref(), c.negated), (Some("eat"), true));
        let c = first("We will repaint the hall.");
        assert_eq!(
            (c.verb.as_deref(), c.tense),
            (Some("repaint"), Tense::Future)
        );
    }
}
