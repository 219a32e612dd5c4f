//! Tier 2 curation: which turns are worth remembering, and the self-contained episode text.
//!
//! Curation is deliberately conservative: recall depends on every fact-bearing turn being
//! retrievable later, while a kept filler turn only costs a little storage. So a turn is
//! dropped only when *every* sentence of it is clear small talk (greetings, thanks,
//! acknowledgements, "how are you", laughter, a name used as a vocative); anything else becomes
//! an [`EpisodeDraft`].
//!
//! The episode text is `"[{day}] {speaker}: {text with relative dates grounded}"` so that it
//! stands alone: who said it, on which day, and absolute dates after every relative time
//! expression ("yesterday (7 May 2023)"). Importance and tags come from small whole-word
//! lexicons; [`priority`] maps a message to the job priority (0 low … 3 urgent).

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use regex::Regex;

use super::words::{
    self, Sentence, contains_seq, is_question, is_stopword, sentences, split_caption,
};
use super::{EpisodeDraft, TurnView};

/// Multi-word small-talk formulas, in the expanded form produced by [`words::sentences`]
/// ("how's it going" → `how is it going`).
#[rustfmt::skip]
const FILLER_PHRASES: &[&str] = &[
    "how are you", "how are you doing", "how are things", "how is it going", "how is everything",
    "how is life", "how have you been", "how you been", "how are ya", "how r u", "how you doing",
    "how is your day", "how was your day", "how is your week", "how was your weekend", "what is up",
    "what is new", "what is going on", "anything new", "what about you", "how about you", "and you",
    "what have you been up to", "good to see you", "nice to see you", "great to see you",
    "good to hear from you", "nice to hear from you", "great to hear from you", "nice to meet you",
    "pleased to meet you", "long time no see", "good morning", "good afternoon", "good evening",
    "good night", "good day", "have a good one", "have a great day", "have a nice day",
    "have a good day", "have a good night", "have a great weekend", "have a good weekend",
    "have a nice weekend", "have fun", "enjoy your day", "talk to you soon", "talk to you later",
    "talk soon", "talk later", "catch you later", "see you", "see you soon", "see you later",
    "see ya", "take care", "take it easy", "i am fine", "i am good", "i am great", "i am ok",
    "i am okay", "i am well", "i am doing well", "i am doing good", "i am doing great",
    "doing well", "doing good", "doing great", "not bad", "not much", "not too bad", "me too",
    "same here", "you too", "thank you", "thanks so much", "many thanks", "appreciate it",
    "i appreciate it", "i appreciate that", "you are welcome", "no problem", "no worries",
    "my pleasure", "any time", "sounds good", "sounds great", "sounds fun", "sounds like fun",
    "sounds awesome", "sounds amazing", "good for you", "glad to hear", "glad to hear it",
    "glad to hear that", "happy to hear that", "happy for you", "got it", "makes sense",
    "of course", "for sure", "i see", "i know", "i know right", "love it", "love that", "love this",
    "you bet", "good luck", "best of luck", "keep it up", "well done", "good job", "nice job",
    "great job", "way to go", "you got this", "you can do it", "hang in there", "bless you",
    "feel better", "get well soon", "all good", "no way", "oh my god", "oh my gosh",
    "thanks for asking", "thanks for sharing", "thank you for sharing", "thanks for the chat",
    "nice chatting", "nice talking to you", "great chatting", "good talk", "i agree",
    "i totally agree", "me neither", "likewise", "what do you think", "you are the best",
    "miss you", "i miss you", "love you", "cheers to that", "hope all is good", "hope all is well",
    "hope you are well", "hope you are good", "hope you are doing well", "hope you are ok",
    "hope you are okay", "i hope you are well", "i hope all is well", "hope everything is good",
    "hope everything is well",
];

/// Single words that carry no information on their own.
#[rustfmt::skip]
const FILLER_WORDS: &[&str] = &[
    "hi", "hello", "hey", "heya", "hiya", "yo", "howdy", "greetings", "sup", "thanks", "thank",
    "thx", "ty", "tysm", "cheers", "ok", "okay", "okey", "k", "kk", "alright", "sure", "yes",
    "yeah", "yea", "yep", "yup", "no", "nope", "nah", "cool", "nice", "great", "awesome", "amazing",
    "wonderful", "fantastic", "fun", "sweet", "lovely", "perfect", "excellent", "good", "fine",
    "wow", "whoa", "woah", "omg", "lol", "lmao", "rofl", "haha", "hehe", "ha", "oh", "ah", "aw",
    "aww", "ooh", "hmm", "hm", "um", "uh", "well", "bye", "goodbye", "byebye", "cya", "later",
    "totally", "absolutely", "definitely", "indeed", "exactly", "right", "true", "agreed", "agree",
    "same", "congrats", "congratulations", "hooray", "yay", "woohoo", "welcome", "please", "sorry",
    "oops", "gosh", "jeez", "bravo", "brilliant", "incredible", "cute", "neat", "indeed", "anyway",
    "anyways", "glad", "thankful", "appreciated", "mhm", "huh", "yikes", "damn", "dang", "heck",
];

/// Words allowed around small-talk formulas that are not small talk by themselves
/// ("so", "this", "you"): a sentence of only these words is kept.
#[rustfmt::skip]
const NEUTRAL_WORDS: &[&str] = &[
    "dear", "buddy", "pal", "friend", "man", "dude", "girl", "so", "very", "really", "too", "much",
    "a", "lot", "lots", "the", "you", "u", "ya", "all", "guys", "everyone", "everybody", "there",
    "again", "just", "that", "it", "this", "is", "was", "are", "am", "i", "me", "to", "and", "for",
    "of", "sounds", "such", "quite", "pretty", "super", "seems", "btw", "what", "as", "always",
    "ever", "too", "also", "both", "again",
];

/// Laughter and stretched interjections: "hahaha", "lolol", "wooow", "yesss", "okk".
static STRETCHED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:ha|he|ah)+h?|l+o+l+(?:o+l+)*|lmf?a+o+|rofl+|xd+|wo+w+|a+w+|o+h+|o+o+h+|h+m+|u+m+|u+h+|ye+s+|no+|ya+y+|yu+p+|ye+a+h+|o+k+|a+h+|e+k+|ugh+|hey+|hi+|bye+)$",
    )
    .expect("valid regex")
});

static FILLER_PHRASE_TOKENS: LazyLock<Vec<Vec<String>>> =
    LazyLock::new(|| FILLER_PHRASES.iter().map(|p| words::tokens(p)).collect());

/// True for a word that is small talk by itself ("thanks", "lol", "wooow").
pub(crate) fn is_filler_word(w: &str) -> bool {
    FILLER_WORDS.contains(&w) || STRETCHED.is_match(w)
}

/// True when the sentence is nothing but small-talk formulas, filler words (at least one),
/// neutral words and at most one capitalised name used as a vocative ("Thanks, Melanie!").
fn sentence_is_filler(s: &Sentence<'_>) -> bool {
    let words = s.words();
    let n = words.len();
    let mut covered = vec![false; n];
    for ph in FILLER_PHRASE_TOKENS.iter() {
        if ph.is_empty() || ph.len() > n {
            continue;
        }
        for i in 0..=n - ph.len() {
            if words[i..i + ph.len()]
                .iter()
                .zip(ph)
                .all(|(a, b)| *a == b.as_str())
            {
                covered[i..i + ph.len()].iter_mut().for_each(|c| *c = true);
            }
        }
    }
    let mut had_filler = covered.iter().any(|c| *c);
    let mut leftover = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if covered[i] {
            continue;
        }
        if is_filler_word(w) {
            had_filler = true;
        } else if !NEUTRAL_WORDS.contains(w) {
            leftover.push(i);
        }
    }
    match leftover.as_slice() {
        [] => had_filler,
        [i] => had_filler && *i > 0 && s.toks[*i].cap && !is_stopword(words[*i]),
        _ => false,
    }
}

/// True when `text` is small talk only: greetings, thanks, "how are you", acknowledgements
/// ("ok", "lol", "sounds great"), goodbyes, or nothing at all. Whole-word matching: "this",
/// "high" and "history" are not greetings. A shared photo counts as content.
pub fn is_small_talk(text: &str) -> bool {
    sentences(text).iter().all(sentence_is_filler)
}

const URGENT_WORDS: &[&str] = &["urgent", "urgently", "emergency", "asap", "immediately"];
#[rustfmt::skip]
const HIGH_WORDS: &[&str] = &[
    "important", "remember", "always", "never", "deadline", "allergic", "allergy", "allergies",
    "critical", "crucial", "essential", "must", "medication", "diagnosed", "hospital",
];

/// Job priority for a message by whole words: 3 urgent ("urgent", "emergency", "asap",
/// "immediately", "right away"), 2 high ("important", "remember", "always", "never",
/// "deadline", "allergic", "don't forget", …), 0 low for pure small talk, else 1 normal.
pub fn priority(text: &str) -> u8 {
    let toks = words::tokens(text);
    if toks.iter().any(|t| URGENT_WORDS.contains(&t.as_str()))
        || contains_seq(&toks, &["right", "away"])
    {
        3
    } else if toks.iter().any(|t| HIGH_WORDS.contains(&t.as_str()))
        || contains_seq(&toks, &["don't", "forget"])
        || contains_seq(&toks, &["do", "not", "forget"])
    {
        2
    } else if is_small_talk(text) {
        0
    } else {
        1
    }
}

/// Topical tags and the words (or phrases) that trigger them, matched as whole words.
#[rustfmt::skip]
const TAG_LEXICON: &[(&str, &[&str])] = &[
    ("family", &[
        "family", "fam", "mom", "mum", "mother", "dad", "father", "parents", "parent", "sister",
        "brother", "siblings", "sibling", "son", "daughter", "kids", "kid", "children", "child",
        "baby", "grandma", "grandmother", "grandpa", "grandfather", "grandparents", "aunt", "uncle",
        "cousin", "niece", "nephew", "husband", "wife", "twins", "adoption", "adopt",
    ]),
    ("work", &[
        "work", "job", "office", "boss", "coworker", "coworkers", "colleague", "colleagues",
        "salary", "meeting", "project", "client", "clients", "company", "shift", "manager",
        "workplace", "business", "startup", "employer",
    ]),
    ("career", &[
        "career", "promotion", "promoted", "interview", "hired", "resume", "cv", "internship",
        "profession", "job", "counseling", "counselor",
    ]),
    ("health", &[
        "health", "doctor", "hospital", "sick", "illness", "ill", "surgery", "diagnosed", "therapy",
        "therapist", "medication", "medicine", "pain", "injury", "injured", "cancer", "covid",
        "flu", "pregnant", "pregnancy", "mental health", "anxiety", "depression", "fitness",
        "allergy", "allergic", "dentist", "clinic", "recovery", "recovered", "self-care",
    ]),
    ("travel", &[
        "travel", "traveled", "travelled", "traveling", "travelling", "trip", "vacation", "holiday",
        "flight", "flew", "airport", "abroad", "beach", "road trip", "hotel", "cruise", "passport",
        "tour", "visited", "camping", "roadtrip",
    ]),
    ("hobby", &[
        "hobby", "hobbies", "hiking", "hike", "camping", "reading", "book", "books", "novel",
        "gardening", "garden", "knitting", "photography", "gaming", "chess", "fishing", "pottery",
        "crafts", "craft", "drawing", "writing", "poetry", "yoga", "puzzle", "puzzles", "painting",
        "baking",
    ]),
    ("art", &[
        "art", "artist", "painting", "painted", "paint", "paints", "drawing", "draw", "sketch",
        "museum", "gallery", "sculpture", "canvas", "exhibition", "pottery", "mural", "artwork",
    ]),
    ("music", &[
        "music", "song", "songs", "sing", "singing", "sang", "band", "concert", "guitar", "piano",
        "violin", "drums", "album", "musician", "playlist", "choir", "clarinet",
    ]),
    ("sport", &[
        "sport", "sports", "soccer", "football", "basketball", "baseball", "tennis", "golf",
        "swimming", "swim", "running", "race", "marathon", "gym", "workout", "cycling", "biking",
        "hockey", "volleyball", "skiing", "surfing", "climbing", "match", "team", "coach",
        "jogging",
    ]),
    ("pet", &[
        "pet", "pets", "dog", "dogs", "puppy", "cat", "cats", "kitten", "hamster", "rabbit",
        "bunny", "parrot", "turtle", "horse", "vet", "guinea pig",
    ]),
    ("education", &[
        "school", "college", "university", "class", "classes", "course", "courses", "degree",
        "study", "studying", "studied", "student", "exam", "exams", "graduate", "graduated",
        "graduation", "teacher", "homework", "lecture", "thesis", "edu", "education", "learn",
        "learning", "scholarship", "semester",
    ]),
    ("food", &[
        "food", "cook", "cooking", "cooked", "recipe", "dinner", "lunch", "breakfast", "restaurant",
        "meal", "bake", "baking", "baked", "cake", "pizza", "coffee", "tea", "vegetarian", "vegan",
        "eat", "ate", "eating", "dish", "cuisine", "snack", "dessert",
    ]),
    ("relationship", &[
        "boyfriend", "girlfriend", "partner", "husband", "wife", "married", "marriage", "wedding",
        "engaged", "engagement", "divorce", "divorced", "dating", "relationship", "breakup",
        "broke up", "fiance", "fiancee", "anniversary", "ex",
    ]),
    ("emotion", &[
        "happy", "sad", "excited", "stressed", "anxious", "nervous", "proud", "grateful",
        "thankful", "angry", "upset", "lonely", "scared", "afraid", "worried", "overwhelmed",
        "depressed", "frustrated", "joy", "thrilled", "heartbroken", "emotional", "feel", "feeling",
        "felt", "feelings", "hopeful", "inspired", "swamped",
    ]),
    ("home", &[
        "home", "house", "apartment", "flat", "moved", "move", "moving", "neighborhood",
        "neighbourhood", "renovation", "roommate", "relocated",
    ]),
    ("money", &[
        "money", "salary", "budget", "paid", "bills", "debt", "loan", "savings", "mortgage", "rent",
        "expensive", "price", "dollars", "bucks", "invest", "investment", "bank",
    ]),
    ("event", &[
        "party", "wedding", "concert", "festival", "conference", "ceremony", "parade", "birthday",
        "anniversary", "graduation", "funeral", "event", "workshop", "meetup", "celebration",
        "celebrated", "fair", "competition", "tournament", "race", "marathon", "exhibition", "show",
        "recital",
    ]),
    ("community", &[
        "volunteer", "volunteering", "volunteered", "charity", "community", "support group",
        "activism", "activist", "lgbtq", "pride", "protest", "fundraiser", "advocacy",
    ]),
];

/// Word sequences that mark a plan or future event (tag `plan`).
#[rustfmt::skip]
const FUTURE_PHRASES: &[&str] = &[
    "going to", "planning", "plan to", "plan on", "plans", "will", "next week", "next month",
    "next year", "next weekend", "next time", "tomorrow", "upcoming", "intend to", "intends to",
    "about to", "hoping to", "thinking about going", "thinking of going", "looking forward",
    "this weekend", "later this",
];

/// Words that mark a life fact (family, job, move, health, relationships, achievements).
#[rustfmt::skip]
const LIFE_WORDS: &[&str] = &[
    "mom", "mum", "mother", "dad", "father", "parents", "sister", "brother", "son", "daughter",
    "kids", "children", "child", "baby", "husband", "wife", "partner", "boyfriend", "girlfriend",
    "fiance", "fiancee", "fiancé", "fiancée", "married", "engaged", "divorced", "wedding",
    "pregnant", "born", "adopted", "adoption", "job", "career", "promoted", "promotion", "hired",
    "fired", "quit", "retired", "interview", "moved", "moving", "relocated", "house", "apartment",
    "diagnosed", "surgery", "hospital", "sick", "injured", "therapy", "died", "funeral",
    "graduated", "graduation", "degree", "won", "award", "achievement", "certified", "published",
    "accepted", "scholarship", "marathon", "transgender", "transition", "breakup", "pet", "dog",
    "cat", "puppy", "kitten", "birthday",
];

/// Past-tense verbs that mark an event the speaker took part in.
#[rustfmt::skip]
const EVENT_VERBS: &[&str] = &[
    "went", "visited", "started", "finished", "joined", "bought", "got", "made", "took", "attended",
    "met", "saw", "ran", "won", "lost", "moved", "quit", "decided", "signed", "painted", "wrote",
    "built", "launched", "completed", "traveled", "travelled", "flew", "celebrated", "adopted",
    "baked", "cooked", "learned", "learnt", "began", "tried", "organized", "organised", "hosted",
    "volunteered", "played", "performed", "gave", "received", "found", "created", "watched", "drew",
    "planted", "opened", "returned", "graduated", "married", "hiked", "camped", "swam", "read",
    "had",
];

#[rustfmt::skip]
const MONTHS: &[&str] = &[
    "january", "february", "march", "april", "june", "july", "august", "september", "october",
    "november", "december",
];

const NUMBER_WORDS: &[&str] = &[
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "twenty", "thirty", "fifty", "hundred", "thousand", "million", "dozen",
];

/// Capitalised words that are not names (interjections and the like).
const NOT_NAMES: &[&str] = &[
    "i", "hi", "hey", "hello", "wow", "oh", "thanks", "yeah", "yes", "no", "ok", "okay", "lol",
    "omg", "haha", "god",
];

fn has_any(toks: &[String], lexicon: &[&str]) -> bool {
    lexicon.iter().any(|entry| {
        if entry.contains([' ', '-']) {
            contains_seq(toks, &words::tokens(entry))
        } else {
            toks.iter()
                .any(|t| t == entry || t.strip_suffix("'s") == Some(entry))
        }
    })
}

/// Noon of `day` in the given UTC offset, as UTC: the instant used for an event that is
/// known only by its date.
pub(crate) fn noon_utc(day: NaiveDate, offset: &FixedOffset) -> Option<DateTime<Utc>> {
    let naive = day.and_hms_opt(12, 0, 0)?;
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|dt| dt.with_timezone(&Utc))
}

/// Cuts `s` to at most `max` characters at a word boundary, adding `…` when it was cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let byte_end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    let head = &s[..byte_end];
    let cut = match head.rfind(char::is_whitespace) {
        Some(i) if i > byte_end / 2 => &head[..i],
        _ => head,
    };
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_whitespace() || c == ',')
    )
}

/// The words of some sentences, contractions expanded ("I'll" → `i`, `will`).
fn expanded_tokens(sents: &[Sentence<'_>]) -> Vec<String> {
    sents
        .iter()
        .flat_map(|s| s.toks.iter().map(|t| t.word.clone()))
        .collect()
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Importance 0..1 of an informative turn (see the module docs for the signals).
fn importance(sents: &[Sentence<'_>], has_time_mention: bool) -> f32 {
    let toks = expanded_tokens(sents);
    let mut score: f32 = 0.3;
    let first_person = toks
        .iter()
        .any(|t| matches!(t.as_str(), "i" | "me" | "my" | "mine" | "we" | "our" | "us"));
    if first_person {
        score += 0.1;
    }
    if has_any(&toks, LIFE_WORDS) {
        score += 0.2;
    }
    if has_any(&toks, EVENT_VERBS) {
        score += 0.1;
    }
    if has_any(&toks, FUTURE_PHRASES) || contains_seq(&toks, &["decided", "to"]) {
        score += 0.1;
    }
    let named_entity = sents.iter().any(|s| {
        s.toks
            .iter()
            .skip(1)
            .any(|t| t.cap && !NOT_NAMES.contains(&t.word.as_str()) && !is_stopword(&t.word))
    });
    if named_entity {
        score += 0.1;
    }
    let dated = has_time_mention
        || toks.iter().any(|t| MONTHS.contains(&t.as_str()))
        || toks.iter().any(|t| {
            t.len() == 4
                && (t.starts_with("19") || t.starts_with("20"))
                && t.chars().all(|c| c.is_ascii_digit())
        });
    if dated {
        score += 0.1;
    }
    if toks
        .iter()
        .any(|t| t.chars().any(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&t.as_str()))
    {
        score += 0.05;
    }
    if !sents.is_empty() && sents.iter().all(is_question) {
        score -= 0.15;
    }
    if toks.len() < 6 {
        score -= 0.1;
    }
    score.clamp(0.05, 1.0)
}

/// Topical tags of a text (lexicon order, de-duplicated), plus `plan` for future tense.
fn tags(own: &[Sentence<'_>], caption: Option<&str>) -> Vec<String> {
    let mut toks = expanded_tokens(own);
    if let Some(c) = caption {
        toks.extend(expanded_tokens(&sentences(c)));
    }
    let mut out: Vec<String> = Vec::new();
    for (tag, lexicon) in TAG_LEXICON {
        if has_any(&toks, lexicon) && !out.iter().any(|t| t == tag) {
            out.push((*tag).to_string());
        }
    }
    if has_any(&toks, FUTURE_PHRASES) && !out.iter().any(|t| t == "plan") {
        out.push("plan".to_string());
    }
    out
}

/// The most informative sentence of the grounded text, prefixed by the speaker.
///
/// "Informative" is the sentence's own importance score (first person, life facts, events,
/// plans, names, dates); ties go to the earliest sentence, so a plain turn is summarised by
/// its first non-filler sentence. A photo caption is used only when the speaker's own words
/// are all small talk.
fn summary(speaker: &str, grounded: &str) -> String {
    let (own, caption) = split_caption(grounded);
    let sents = sentences(own);
    let mut best: Option<(f32, &str)> = None;
    for s in sents.iter().filter(|s| !sentence_is_filler(s)) {
        let score = importance(std::slice::from_ref(s), false);
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, s.text));
        }
    }
    let chosen = match (best, caption) {
        (Some((_, text)), _) => text.to_string(),
        (None, Some(c)) if !c.is_empty() => format!("shares a photo: {c}"),
        (None, _) => sents.first().map_or(own, |s| s.text).to_string(),
    };
    truncate_chars(&format!("{speaker}: {}", collapse_ws(&chosen)), 200)
}

/// Curates one turn into a Tier 2 episode, or `None` when the turn is small talk only.
///
/// The episode text is `"[{day}] {speaker}: {grounded text}"`, followed by
/// `" — assistant: {reply}"` (cut to about 300 characters) when the turn has a reply.
/// `occurred_at` is noon (turn's local offset) of the first date the text names, else the
/// turn's timestamp.
pub fn curate(turn: &TurnView) -> Option<EpisodeDraft> {
    if is_small_talk(&turn.text) {
        return None;
    }
    let speaker = speaker_name(turn);
    let date = turn.local_date();
    let (grounded, mentions) = super::time::ground(&turn.text, date);
    let grounded = collapse_ws(&grounded);
    let mut text = format!(
        "[{}] {}: {}",
        super::time::format_day(date),
        speaker,
        grounded
    );
    let reply = collapse_ws(&turn.assistant_response);
    if !reply.is_empty() {
        text.push_str(" — assistant: ");
        text.push_str(&truncate_chars(&reply, 300));
    }
    let (own, caption) = split_caption(&turn.text);
    let own_sents = sentences(own);
    let occurred_at = mentions
        .first()
        .and_then(|m| noon_utc(m.resolved.start, turn.local.offset()))
        .unwrap_or(turn.timestamp);
    Some(EpisodeDraft {
        text,
        summary: summary(speaker, &grounded),
        importance: importance(&own_sents, !mentions.is_empty()),
        tags: tags(&own_sents, caption),
        occurred_at,
    })
}

/// The name "I" stands for: the turn's speaker, else its user id, else `"user"`.
pub(crate) fn speaker_name(turn: &TurnView) -> &str {
    let s = turn.speaker.trim();
    if !s.is_empty() {
        return s;
    }
    let u = turn.user_id.trim();
    if u.is_empty() { "user" } else { u }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate};

    fn turn_at(speaker: &str, text: &str, reply: &str, offset_hours: i32) -> TurnView {
        let offset = FixedOffset::east_opt(offset_hours * 3600).unwrap();
        let timestamp = Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap();
        TurnView {
            user_id: "u1".into(),
            speaker: speaker.into(),
            text: text.into(),
            assistant_response: reply.into(),
            timestamp,
            local: timestamp.with_timezone(&offset),
        }
    }

    fn turn(text: &str) -> TurnView {
        turn_at("Caroline", text, "", 0)
    }

    #[test]
    fn greetings_alone_are_small_talk() {
        for t in [
            "Hi!",
            "hello",
            "Hey Mel! Good to see you! How have you been?",
            "Thanks, Melanie!",
            "thank you so much!!",
            "How are you?",
            "lol",
            "LOL 😂",
            "ok",
            "Okay.",
            "bye",
            "Bye, see you later!",
            "good to see you",
            "hahaha",
            "Wow, Caroline!",
            "Sounds great!",
            "That's so cool!",
            "I'm good, how about you?",
            "Talk to you soon!",
            "Take care :)",
            "",
            "   ",
            "🙂🙂",
            "Yesss",
            "Good morning everyone",
            "Congrats!!",
            "I agree.",
            "Me too!",
            "You're welcome",
            "Nice to meet you, Sam.",
            "Good luck!",
            "Hey Jo! How's it going? Hope all is good.",
        ] {
            assert!(is_small_talk(t), "expected small talk: {t:?}");
        }
    }

    #[test]
    fn substrings_of_greetings_are_not_small_talk() {
        for t in [
            "this",
            "high",
            "history",
            "This is my history homework.",
            "High school was rough.",
            "Shipping the thing",
            "Okra soup",
            "Thanksgiving dinner at grandma's",
        ] {
            assert!(!is_small_talk(t), "expected content: {t:?}");
        }
    }

    #[test]
    fn informative_turns_are_kept() {
        for t in [
            "Hi, I just moved to Berlin",
            "Hey! I'm swamped with the kids and work.",
            "Thanks! My sister is visiting next week.",
            "Berlin!",
            "Is this your own painting?",
            "I went to a support group yesterday.",
            "Love that painting! So cool you found a helpful group.",
            "Thanks! [shares a photo: a dog on a beach]",
            "Happy birthday!",
            "I'm so happy.",
        ] {
            assert!(!is_small_talk(t), "expected content: {t:?}");
            assert!(curate(&turn(t)).is_some(), "expected an episode: {t:?}");
        }
    }

    #[test]
    fn small_talk_turns_are_dropped() {
        assert_eq!(curate(&turn("Hi!")), None);
        assert_eq!(curate(&turn("Good to see you! How are you?")), None);
        assert_eq!(curate(&turn("")), None);
    }

    #[test]
    fn priorities() {
        assert_eq!(priority("This is urgent, call the vet"), 3);
        assert_eq!(priority("Need this ASAP"), 3);
        assert_eq!(priority("please do it right away"), 3);
        assert_eq!(priority("Remember that I'm allergic to nuts"), 2);
        assert_eq!(priority("don't forget my deadline"), 2);
        assert_eq!(priority("Hi!"), 0);
        assert_eq!(priority("thanks lol"), 0);
        assert_eq!(priority("I went hiking on Sunday"), 1);
        // Whole words only.
        assert_eq!(priority("an urgentish remembering"), 1);
        assert_eq!(priority(""), 0);
    }

    #[test]
    fn episode_text_is_self_contained() {
        let ep = curate(&turn(
            "I went to a support group yesterday and it was powerful.",
        ))
        .unwrap();
        assert_eq!(
            ep.text,
            "[8 May 2023] Caroline: I went to a support group yesterday (7 May 2023) and it was powerful."
        );
        assert_eq!(
            ep.summary,
            "Caroline: I went to a support group yesterday (7 May 2023) and it was powerful."
        );
        let noon_utc = Utc.with_ymd_and_hms(2023, 5, 7, 12, 0, 0).unwrap();
        assert_eq!(ep.occurred_at, noon_utc);
        assert!(ep.tags.contains(&"community".to_string()), "{:?}", ep.tags);
    }

    #[test]
    fn occurred_at_uses_local_offset_and_falls_back_to_timestamp() {
        let t = turn_at("Sam", "I adopted a puppy yesterday", "", 2);
        let ep = curate(&t).unwrap();
        assert_eq!(
            ep.occurred_at,
            Utc.with_ymd_and_hms(2023, 5, 7, 10, 0, 0).unwrap()
        );
        let t = turn_at("Sam", "I adopted a puppy", "", 2);
        assert_eq!(curate(&t).unwrap().occurred_at, t.timestamp);
    }

    #[test]
    fn reply_is_appended_and_truncated() {
        let long = "word ".repeat(200);
        let ep = curate(&turn_at("Sam", "My mom Sarah is visiting.", &long, 0)).unwrap();
        let (_, reply) = ep.text.split_once(" — assistant: ").unwrap();
        assert!(reply.chars().count() <= 300, "{}", reply.chars().count());
        assert!(reply.ends_with('…'));
        let ep = curate(&turn_at("Sam", "My mom Sarah is visiting.", "  ", 0)).unwrap();
        assert!(!ep.text.contains("assistant"));
        let ep = curate(&turn_at("Sam", "My mom Sarah is visiting.", "How nice!", 0)).unwrap();
        assert!(
            ep.text.ends_with("visiting. — assistant: How nice!"),
            "{}",
            ep.text
        );
    }

    #[test]
    fn summary_skips_greeting_and_is_bounded() {
        let ep = curate(&turn("Hey Mel! I got a new job at a bakery. It's great.")).unwrap();
        assert_eq!(ep.summary, "Caroline: I got a new job at a bakery.");
        let long = format!("I {}", "really ".repeat(100));
        let ep = curate(&turn(&long)).unwrap();
        assert!(ep.summary.chars().count() <= 200);
        assert!(ep.summary.starts_with("Caroline: I really"));
        let ep = curate(&turn(
            "Thanks, Mel! It was a long road. I graduated last week!",
        ))
        .unwrap();
        assert!(
            ep.summary.starts_with("Caroline: I graduated last week ("),
            "{}",
            ep.summary
        );
        let ep = curate(&turn("Wow! [shares a photo: a cake with candles]")).unwrap();
        assert_eq!(ep.summary, "Caroline: shares a photo: a cake with candles");
        let ep = curate(&turn("[shares a photo: a cake with candles]")).unwrap();
        assert_eq!(ep.summary, "Caroline: shares a photo: a cake with candles");
    }

    #[test]
    fn importance_orders_sensibly() {
        let imp = |t: &str| curate(&turn(t)).unwrap().importance;
        let life = imp("I got married to John in Paris last year and we moved to Berlin.");
        let question = imp("What's it like?");
        let opinion = imp("The colors blend nicely.");
        assert!(life > opinion, "{life} {opinion}");
        assert!(opinion > question, "{opinion} {question}");
        for v in [life, question, opinion] {
            assert!((0.0..=1.0).contains(&v));
        }
        assert!(life >= 0.7);
    }

    #[test]
    fn tags_are_whole_word_and_deduplicated() {
        let ep = curate(&turn(
            "My dog and my cat went to the vet. I'm going to paint the house next week.",
        ))
        .unwrap();
        assert!(ep.tags.contains(&"pet".to_string()));
        assert!(ep.tags.contains(&"plan".to_string()));
        assert!(ep.tags.contains(&"home".to_string()));
        assert!(ep.tags.contains(&"art".to_string()));
        let mut dedup = ep.tags.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ep.tags.len());
        // "catalog" is not "cat", "workshop" alone is not "work".
        let ep = curate(&turn("The catalog arrived.")).unwrap();
        assert!(!ep.tags.contains(&"pet".to_string()), "{:?}", ep.tags);
        let ep = curate(&turn("I'll call my mom's doctor")).unwrap();
        assert!(ep.tags.contains(&"family".to_string()) && ep.tags.contains(&"health".to_string()));
        assert!(ep.tags.contains(&"plan".to_string()));
    }

    #[test]
    fn speaker_falls_back_to_user_id() {
        let mut t = turn("I bought a bike.");
        t.speaker = " ".into();
        assert!(curate(&t).unwrap().text.contains("] u1: I bought a bike."));
    }

    #[test]
    fn unicode_and_odd_input_never_panics() {
        for t in [
            "Zoë и 東京 — 🙂 ✨",
            "\u{200B}",
            "ß".repeat(500).as_str(),
            "!!!???",
            "I ' m",
            "[shares a photo:",
            "a\u{0301}\u{0301}\u{0301}",
            "\n\n\t",
            "İİİ",
        ] {
            let _ = is_small_talk(t);
            let _ = priority(t);
            let _ = curate(&turn(t));
        }
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("abc", 0), "…");
    }

    #[test]
    fn noon_conversion() {
        let d = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        let off = FixedOffset::west_opt(5 * 3600).unwrap();
        assert_eq!(
            noon_utc(d, &off).unwrap() - Utc.with_ymd_and_hms(2023, 1, 1, 12, 0, 0).unwrap(),
            Duration::hours(5)
        );
    }
}
