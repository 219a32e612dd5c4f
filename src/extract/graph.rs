//! Tier 3 extraction: entities and relations (facts) of the per-user knowledge graph.
//!
//! Rule-based and offline. The speaker is always an entity (a person); "I" is the speaker.
//! Relations come from first-person patterns over the speaker's own sentences (a shared
//! photo's caption is not the speaker's words), matched on whole words with contractions
//! expanded:
//!
//! | pattern | predicate | exclusive |
//! |---|---|---|
//! | I live in / I'm living in / I moved to / I'm based in X | `LIVES_IN` | yes |
//! | I'm from / I come from / I was born in / I grew up in X | `FROM` | no |
//! | I work at/for / I got a job at / I was hired by X | `WORKS_AT` | yes |
//! | I'm a(n) JOB / I work as a X / I became a JOB | `HAS_JOB` | yes |
//! | I'm married/single/engaged/divorced, I got married, my husband… | `RELATIONSHIP_STATUS` | yes |
//! | my husband/wife/partner/boyfriend/girlfriend/fiancé X, I'm dating X | `PARTNER_OF` | yes |
//! | my boss/manager X | `HAS_BOSS` | yes (one at a time: "my new boss is X" replaces the old) |
//! | my mom/dad/sister/…/kids/friend X (also "my mom's name is X") | `HAS_MOTHER`, `HAS_CHILD`, `HAS_FRIEND`, … | no |
//! | I have/got/adopted a dog named X, my cat X | `HAS_PET` | no |
//! | I like/love/enjoy X, I'm into X, I'm a big fan of X | `LIKES` | no |
//! | I went to / visited / have been to / traveled to X | `VISITED` | no |
//! | I study / I'm studying / I'm majoring in X (at X) | `STUDIES` (`STUDIES_AT`) | no |
//! | I joined / I signed up for X | `MEMBER_OF` | no |
//! | my birthday is X, today is my birthday | `HAS_BIRTHDAY` | yes |
//!
//! Questions, hypotheticals ("if I moved to Paris") and negations ("I don't live in Paris
//! anymore") produce no relation: a negated or hedged clause simply does not match a pattern.
//! A relation's `valid_at` is the first date the same sentence names (noon in the turn's
//! offset) unless that date is after the turn, else the turn's timestamp. Capitalised words and word sequences that are not
//! sentence-initial common words also become entities, with a kind guessed from cues
//! ("in Berlin" → place, "Thanks, Mel" → person, "… University" → organization).

use chrono::{DateTime, Datelike, Utc};

use super::clause::Subject;
use super::curate::{is_filler_word, noon_utc, speaker_name};
use super::slots::{self, Slot};
use super::time::Granularity;
use super::words::{
    DETERMINERS, Phrase, Sentence, Tok, hedged, is_question, is_stopword, match_seq,
    no_longer_after, object_phrase, sentences, singular, skip_adverbs, split_caption,
};
use super::{EndDraft, EntityDraft, GraphDraft, RelationDraft, TurnView};

/// Job nouns recognised after "I'm a(n)" (the phrase's last word).
#[rustfmt::skip]
const JOBS: &[&str] = &[
    "teacher", "nurse", "doctor", "physician", "surgeon", "engineer", "developer", "programmer",
    "designer", "artist", "painter", "writer", "author", "musician", "singer", "dancer", "lawyer",
    "attorney", "accountant", "chef", "cook", "baker", "student", "counselor", "counsellor",
    "therapist", "psychologist", "psychiatrist", "scientist", "researcher", "professor", "lecturer",
    "manager", "consultant", "photographer", "architect", "pilot", "driver", "firefighter",
    "officer", "soldier", "farmer", "mechanic", "electrician", "plumber", "carpenter", "pharmacist",
    "dentist", "vet", "veterinarian", "journalist", "editor", "librarian", "barista", "waiter",
    "waitress", "cashier", "clerk", "secretary", "analyst", "entrepreneur", "founder", "ceo", "cto",
    "freelancer", "intern", "tutor", "coach", "trainer", "instructor", "worker", "paramedic",
    "technician", "salesman", "saleswoman", "realtor", "agent", "banker", "economist", "translator",
    "interpreter", "actor", "actress", "comedian", "filmmaker", "director", "producer", "poet",
    "sculptor", "illustrator", "animator", "volunteer", "caregiver", "nanny", "babysitter",
    "hairdresser", "stylist", "bartender", "janitor", "guard", "mentor", "activist", "advocate",
    "blogger", "youtuber", "streamer", "athlete", "player", "swimmer", "runner", "cyclist",
    "midwife", "optometrist", "chemist", "physicist", "biologist", "mathematician", "statistician",
    "historian", "teller", "receptionist", "administrator", "officer", "detective", "judge",
    "pastor", "priest", "minister", "rabbi", "imam", "sailor", "fisherman", "gardener",
    "landscaper", "builder", "welder", "tailor", "florist", "butcher", "jeweler", "potter", "coder",
    "dev", "pr", "marketer", "recruiter", "scholar", "professional", "porter", "cleaner",
    "courier", "postman", "carer", "lifeguard", "assistant", "supervisor", "copywriter",
    "surveyor", "radiographer", "physio", "physiotherapist", "dietitian", "nutritionist",
    "optician", "paralegal", "solicitor", "barrister", "auditor", "bookkeeper", "server",
    "steward", "stewardess", "attendant", "machinist", "miner", "roofer", "decorator", "ranger",
    "principal", "headteacher", "coordinator", "specialist", "executive", "planner",
    "housekeeper", "caretaker", "labourer", "laborer", "chauffeur", "zookeeper", "sonographer",
    "hygienist", "dispatcher", "programmer", "associate", "midwife", "locksmith",
];

/// A role one person holds for someone at a time — a partner, a boss or manager — is an
/// exclusive slot: "my new boss is Priti" replaces "my manager Claire".
fn single_holder(pred: &str) -> bool {
    matches!(pred, "PARTNER_OF" | "HAS_BOSS")
}

/// A job noun ("nurse", "engineers").
pub(crate) fn is_job_noun(w: &str) -> bool {
    JOBS.contains(&w) || JOBS.contains(&singular(w).as_str())
}

/// Pet words (singular and plural).
const PETS: &[&str] = &[
    "dog", "dogs", "puppy", "puppies", "pup", "cat", "cats", "kitten", "kittens", "kitty",
    "hamster", "hamsters", "rabbit", "rabbits", "bunny", "bunnies", "parrot", "parrots", "bird",
    "birds", "fish", "goldfish", "turtle", "turtles", "tortoise", "snake", "horse", "horses",
    "pony", "lizard", "gecko", "ferret", "budgie", "chickens", "guinea", "pig", "pigs", "rat",
    "mouse", "hedgehog", "iguana",
];

/// Relationship words after "my": (word, predicate, fact noun, alias-able, implied status).
/// Plurals alias nobody; roles that people commonly hold several of (friend, cousin) neither.
const KIN: &[(&str, &str, &str, bool, Option<&str>)] = &[
    ("mom", "HAS_MOTHER", "mom", true, None),
    ("mum", "HAS_MOTHER", "mum", true, None),
    ("mother", "HAS_MOTHER", "mother", true, None),
    ("mommy", "HAS_MOTHER", "mom", true, None),
    ("mama", "HAS_MOTHER", "mom", true, None),
    ("dad", "HAS_FATHER", "dad", true, None),
    ("father", "HAS_FATHER", "father", true, None),
    ("daddy", "HAS_FATHER", "dad", true, None),
    ("papa", "HAS_FATHER", "dad", true, None),
    ("sister", "HAS_SISTER", "sister", true, None),
    ("sisters", "HAS_SISTER", "sister", false, None),
    ("brother", "HAS_BROTHER", "brother", true, None),
    ("brothers", "HAS_BROTHER", "brother", false, None),
    ("sibling", "HAS_SIBLING", "sibling", true, None),
    ("siblings", "HAS_SIBLING", "sibling", false, None),
    ("son", "HAS_SON", "son", true, None),
    ("sons", "HAS_SON", "son", false, None),
    ("daughter", "HAS_DAUGHTER", "daughter", true, None),
    ("daughters", "HAS_DAUGHTER", "daughter", false, None),
    ("kid", "HAS_CHILD", "child", false, None),
    ("kids", "HAS_CHILD", "child", false, None),
    ("child", "HAS_CHILD", "child", false, None),
    ("children", "HAS_CHILD", "child", false, None),
    ("baby", "HAS_CHILD", "baby", true, None),
    ("grandma", "HAS_GRANDMOTHER", "grandma", true, None),
    ("grandmother", "HAS_GRANDMOTHER", "grandmother", true, None),
    ("granny", "HAS_GRANDMOTHER", "grandma", true, None),
    ("nana", "HAS_GRANDMOTHER", "grandma", true, None),
    ("grandpa", "HAS_GRANDFATHER", "grandpa", true, None),
    ("grandfather", "HAS_GRANDFATHER", "grandfather", true, None),
    ("granddad", "HAS_GRANDFATHER", "grandpa", true, None),
    ("grandson", "HAS_GRANDCHILD", "grandson", true, None),
    (
        "granddaughter",
        "HAS_GRANDCHILD",
        "granddaughter",
        true,
        None,
    ),
    ("grandkids", "HAS_GRANDCHILD", "grandchild", false, None),
    ("grandchildren", "HAS_GRANDCHILD", "grandchild", false, None),
    ("aunt", "HAS_AUNT", "aunt", true, None),
    ("auntie", "HAS_AUNT", "aunt", true, None),
    ("uncle", "HAS_UNCLE", "uncle", true, None),
    ("cousin", "HAS_COUSIN", "cousin", false, None),
    ("cousins", "HAS_COUSIN", "cousin", false, None),
    ("niece", "HAS_NIECE", "niece", true, None),
    ("nephew", "HAS_NEPHEW", "nephew", true, None),
    ("friend", "HAS_FRIEND", "friend", false, None),
    ("friends", "HAS_FRIEND", "friend", false, None),
    ("bff", "HAS_FRIEND", "best friend", false, None),
    ("bestie", "HAS_FRIEND", "best friend", false, None),
    ("buddy", "HAS_FRIEND", "friend", false, None),
    ("mate", "HAS_FRIEND", "friend", false, None),
    ("pal", "HAS_FRIEND", "friend", false, None),
    ("roommate", "HAS_ROOMMATE", "roommate", true, None),
    ("coworker", "HAS_COLLEAGUE", "coworker", false, None),
    ("colleague", "HAS_COLLEAGUE", "colleague", false, None),
    ("boss", "HAS_BOSS", "boss", true, None),
    ("mentor", "HAS_MENTOR", "mentor", true, None),
    ("husband", "PARTNER_OF", "husband", true, Some("married")),
    ("wife", "PARTNER_OF", "wife", true, Some("married")),
    ("spouse", "PARTNER_OF", "spouse", true, Some("married")),
    (
        "partner",
        "PARTNER_OF",
        "partner",
        true,
        Some("in a relationship"),
    ),
    (
        "boyfriend",
        "PARTNER_OF",
        "boyfriend",
        true,
        Some("in a relationship"),
    ),
    (
        "girlfriend",
        "PARTNER_OF",
        "girlfriend",
        true,
        Some("in a relationship"),
    ),
    (
        "bf",
        "PARTNER_OF",
        "boyfriend",
        true,
        Some("in a relationship"),
    ),
    (
        "gf",
        "PARTNER_OF",
        "girlfriend",
        true,
        Some("in a relationship"),
    ),
    ("fiance", "PARTNER_OF", "fiancé", true, Some("engaged")),
    ("fiancee", "PARTNER_OF", "fiancée", true, Some("engaged")),
    ("hubby", "PARTNER_OF", "husband", true, Some("married")),
    ("girls", "HAS_DAUGHTER", "daughter", false, None),
    ("boys", "HAS_SON", "son", false, None),
    ("twins", "HAS_CHILD", "child", false, None),
    ("manager", "HAS_BOSS", "manager", true, None),
    (
        "sister-in-law",
        "HAS_SISTER_IN_LAW",
        "sister-in-law",
        true,
        None,
    ),
    (
        "brother-in-law",
        "HAS_BROTHER_IN_LAW",
        "brother-in-law",
        true,
        None,
    ),
    (
        "mother-in-law",
        "HAS_MOTHER_IN_LAW",
        "mother-in-law",
        true,
        None,
    ),
    (
        "father-in-law",
        "HAS_FATHER_IN_LAW",
        "father-in-law",
        true,
        None,
    ),
    ("stepdad", "HAS_STEPFATHER", "stepdad", true, None),
    ("stepmom", "HAS_STEPMOTHER", "stepmom", true, None),
    ("stepmum", "HAS_STEPMOTHER", "stepmum", true, None),
    ("flatmate", "HAS_ROOMMATE", "flatmate", true, None),
    ("housemate", "HAS_ROOMMATE", "housemate", true, None),
    ("mam", "HAS_MOTHER", "mam", true, None),
    ("grandad", "HAS_GRANDFATHER", "grandad", true, None),
    ("gran", "HAS_GRANDMOTHER", "gran", true, None),
    ("neighbour", "HAS_NEIGHBOUR", "neighbour", false, None),
    ("neighbor", "HAS_NEIGHBOUR", "neighbor", false, None),
    ("fiancé", "PARTNER_OF", "fiancé", true, Some("engaged")),
    ("fiancée", "PARTNER_OF", "fiancée", true, Some("engaged")),
];

/// Adjectives allowed between "my" and a relationship word ("my best friend", "my little
/// sister"). "ex", "late", "former" and "future" are absent on purpose.
#[rustfmt::skip]
const KIN_ADJECTIVES: &[&str] = &[
    "best", "close", "closest", "old", "oldest", "good", "dear", "dearest", "little", "big",
    "older", "younger", "elder", "eldest", "youngest", "baby", "twin", "lovely", "sweet", "amazing",
    "beautiful", "wonderful", "awesome", "new", "adorable", "two", "three", "four", "lil",
    "childhood", "college", "school", "work", "fur",
];

#[rustfmt::skip]
const STATUS_WORDS: &[&str] = &[
    "married", "single", "engaged", "divorced", "widowed", "separated",
];

/// Capitalised words that are never entity names.
#[rustfmt::skip]
const NOT_NAMES: &[&str] = &[
    "i", "hi", "hey", "hello", "wow", "oh", "thanks", "thank", "yeah", "yes", "no", "ok", "okay",
    "lol", "omg", "haha", "god", "gosh", "yay", "aww", "ugh", "hmm", "yep", "nope", "cool", "great",
    "awesome", "congrats", "congratulations", "sure", "well", "anyway", "btw", "love", "so", "very",
    "really", "amazing", "best", "not", "never", "always", "please", "sorry", "nice", "good", "bye",
    "totally", "absolutely", "definitely", "exactly", "true", "mom", "dad", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "today", "yesterday", "tomorrow", "tonight", "mon", "tue", "tues", "wed", "thu", "thur",
    "thurs", "fri", "sat", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec",
];

/// Words that may join capitalised words inside one name ("Museum of Modern Art").
const NAME_JOINERS: &[&str] = &["of", "de", "del", "la", "du", "von", "van", "da", "der"];

/// Title-case connectors kept lower-case ("University of Texas").
const TITLE_CONNECTORS: &[&str] = &[
    "of", "the", "and", "de", "del", "la", "le", "du", "von", "van", "da", "der", "y", "on", "upon",
];

#[rustfmt::skip]
const GREETING_CUES: &[&str] = &[
    "hi", "hey", "hello", "thanks", "thank", "wow", "congrats", "congratulations", "yeah", "yep",
    "dear", "oh", "bye", "sorry", "yes", "no", "ok", "okay", "haha", "lol", "mr", "mrs", "ms", "dr",
    "miss", "sir", "aunt", "uncle", "with", "named",
];
const PLACE_CUES: &[&str] = &[
    "in", "to", "from", "near", "visited", "visit", "visiting", "around", "across", "through",
    "toward", "towards", "outside", "downtown",
];
#[rustfmt::skip]
const PLACE_SUFFIXES: &[&str] = &[
    "city", "town", "village", "park", "lake", "river", "mountain", "mountains", "mount", "beach",
    "street", "st", "avenue", "ave", "road", "island", "islands", "county", "state", "bay",
    "valley", "canyon", "forest", "falls", "square", "bridge", "museum", "zoo", "garden", "gardens",
    "coast", "country", "hills", "desert", "national",
];
const PLACE_PREFIXES: &[&str] = &[
    "mount", "mt", "lake", "museum", "fort", "port", "cape", "isle", "san", "santa", "saint", "st",
    "los", "las", "lake", "gulf", "bay", "central",
];
#[rustfmt::skip]
const ORG_PREFIXES: &[&str] = &[
    "university", "bank", "college", "institute", "school", "academy",
];
#[rustfmt::skip]
const ORG_SUFFIXES: &[&str] = &[
    "inc", "corp", "corporation", "ltd", "llc", "company", "co", "university", "college", "school",
    "academy", "hospital", "bank", "foundation", "institute", "club", "association", "society",
    "agency", "group", "team", "center", "centre", "studio", "studios", "labs", "records", "press",
    "church", "clinic", "network", "organization", "organisation",
];
#[rustfmt::skip]
const EVENT_SUFFIXES: &[&str] = &[
    "festival", "fest", "conference", "con", "parade", "marathon", "party", "ceremony",
    "championship", "cup", "games", "show", "expo", "fair", "week", "day", "eve", "concert",
    "summit", "olympics",
];
#[rustfmt::skip]
const EVENT_NOUNS: &[&str] = &[
    "concert", "party", "festival", "conference", "wedding", "parade", "show", "game", "match",
    "meeting", "class", "workshop", "group", "event", "ceremony", "race", "marathon", "exhibition",
    "fair", "recital", "session", "retreat", "camp", "convention", "meetup", "funeral",
    "celebration", "service", "talk", "lecture", "seminar", "play", "movie",
];
#[rustfmt::skip]
const HOLIDAYS: &[&str] = &[
    "christmas", "easter", "thanksgiving", "halloween", "hanukkah", "diwali", "ramadan", "eid",
    "passover", "kwanzaa",
];
/// First words after "went to" that make it an errand, not a place ("went to see a movie").
#[rustfmt::skip]
const NOT_PLACES: &[&str] = &[
    "see", "get", "visit", "pick", "meet", "buy", "check", "grab", "do", "have", "watch", "help",
    "play", "talk", "work", "sleep", "bed", "eat", "go", "find", "hang", "make", "take", "try",
    "spend", "celebrate", "home", "school", "it", "them", "there", "one", "bring", "say", "learn",
    "look", "join", "attend", "support", "drop",
];
/// Objects of "like"/"love" that are not things ("I love it", "I love how…").
#[rustfmt::skip]
pub(crate) const NOT_LIKES: &[&str] = &[
    "it", "that", "this", "you", "them", "him", "her", "those", "these", "everything", "anything",
    "something", "how", "what", "when", "where", "why", "who", "seeing", "hearing", "the idea",
    "idea", "ya", "u", "y'all", "yall", "one", "all", "each", "way", "lot", "lots", "ton", "tons",
    "bit", "little", "much", "more", "most", "stuff", "things", "thing", "so", "same", "other",
    "others", "both", "too", "myself", "yourself", "ourselves",
];
/// Objects of "went to"/"visited" too vague to be a place.
#[rustfmt::skip]
const VAGUE_PLACES: &[&str] = &[
    "place", "spot", "thing", "one", "lot", "bunch", "few", "couple", "new place",
];

/// Noun for a pet fact ("puppies" → "puppy").
fn pet_noun(w: &str) -> String {
    match w {
        "puppies" => "puppy".into(),
        "guinea" => "guinea pig".into(),
        "fish" | "goldfish" => w.into(),
        _ => singular(w),
    }
}

fn a_or_an(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Title case for a proper name: lower-case words are capitalised, connectors after the
/// first word stay lower-case, words that already contain capitals are kept ("LGBTQ").
pub(crate) fn title_case(s: &str) -> String {
    s.split_whitespace()
        .enumerate()
        .map(|(i, w)| {
            if w.chars().any(char::is_uppercase) || (i > 0 && TITLE_CONNECTORS.contains(&w)) {
                w.to_string()
            } else {
                let mut c = w.chars();
                c.next()
                    .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes a possessive ending ("Mel's" → "Mel").
fn strip_possessive(s: &str) -> &str {
    for suf in ["'s", "\u{2019}s", "'", "\u{2019}"] {
        if let Some(stem) = s.strip_suffix(suf)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    s
}

/// How a first-person pattern turns its object into a relation.
#[derive(Clone, Copy)]
enum Pat {
    /// FROM, with the fact's verb phrase.
    From(&'static str),
    Status(&'static str),
    /// VISITED, with the fact's verb phrase.
    Visited(&'static str),
    /// MEMBER_OF: "I joined a book club".
    Joined,
    /// STUDIES, with the fact's verb phrase.
    Studies(&'static str),
    HasPet,
    /// "I'm …": a status word, "a single parent" or a job noun.
    Am,
}

/// First-person patterns, tried in order after "I" (and adverbs).
const SUBJECT_PATTERNS: &[(&[&str], Pat)] = &[
    (&["am", "from"], Pat::From("is from")),
    (&["come", "from"], Pat::From("is from")),
    (&["was", "born", "in"], Pat::From("was born in")),
    (&["grew", "up", "in"], Pat::From("grew up in")),
    (&["was", "raised", "in"], Pat::From("was raised in")),
    (&["got", "married"], Pat::Status("married")),
    (&["got", "engaged"], Pat::Status("engaged")),
    (&["got", "divorced"], Pat::Status("divorced")),
    (
        &["am", "in", "a", "relationship"],
        Pat::Status("in a relationship"),
    ),
    (&["went", "to"], Pat::Visited("went to")),
    (&["visited"], Pat::Visited("visited")),
    (&["have", "visited"], Pat::Visited("has visited")),
    (&["have", "been", "to"], Pat::Visited("has been to")),
    (&["traveled", "to"], Pat::Visited("traveled to")),
    (&["travelled", "to"], Pat::Visited("travelled to")),
    (&["flew", "to"], Pat::Visited("flew to")),
    (&["drove", "to"], Pat::Visited("drove to")),
    (&["took", "a", "trip", "to"], Pat::Visited("took a trip to")),
    (
        &["went", "on", "a", "trip", "to"],
        Pat::Visited("went on a trip to"),
    ),
    (&["attended"], Pat::Visited("attended")),
    (&["joined"], Pat::Joined),
    (&["have", "joined"], Pat::Joined),
    (&["signed", "up", "for"], Pat::Joined),
    (&["study"], Pat::Studies("studies")),
    (&["am", "studying"], Pat::Studies("is studying")),
    (&["major", "in"], Pat::Studies("majors in")),
    (&["am", "majoring", "in"], Pat::Studies("is majoring in")),
    (&["am", "learning"], Pat::Studies("is learning")),
    (&["am", "learning", "to"], Pat::Studies("is learning to")),
    (&["have"], Pat::HasPet),
    (&["have", "got"], Pat::HasPet),
    (&["got"], Pat::HasPet),
    (&["adopted"], Pat::HasPet),
    (&["own"], Pat::HasPet),
    (&["am"], Pat::Am),
];

/// Collects entities and relations for one turn.
struct Builder<'a> {
    turn: &'a TurnView,
    speaker: &'a str,
    /// The speaker's own words (caption removed); token offsets point into it.
    own: &'a str,
    /// The text has no capital letter at all, so capitalisation cannot mark names.
    all_lower: bool,
    entities: Vec<EntityDraft>,
    relations: Vec<RelationDraft>,
    ends: Vec<EndDraft>,
    /// The last person named in the turn, for "he"/"she"/"who".
    last_person: Option<Subject>,
    /// The last thing named in the turn, for a pronoun object ("I love it now").
    last_thing: Option<String>,
    /// Someone or a pet the turn introduced without a name ("we got a puppy", "I'm seeing
    /// someone new", "my new boss"), whom a later "his name is Rocky" names.
    unnamed: Option<Unnamed>,
}

/// An introduction without a name, see [`Builder::unnamed`].
#[derive(Debug, Clone, PartialEq)]
enum Unnamed {
    /// A pet, by its noun ("puppy").
    Pet(String),
    /// A partner the speaker dates or sees.
    Partner,
    /// A relative or other person by role ("boss").
    Role(String),
}

impl<'a> Builder<'a> {
    /// The entity name of a clause subject: the speaker, a named person, or an unnamed
    /// relative as "SPEAKER's ROLE". `None` for anything else.
    fn subject_name(&mut self, who: &Subject) -> Option<String> {
        match who {
            Subject::Speaker => Some(self.speaker.to_string()),
            Subject::Person { name, role } => {
                let speaker = self.speaker.to_string();
                let name = match (name, role) {
                    (Some(n), _) => n.clone(),
                    (None, Some(r)) => format!("{speaker}'s {r}"),
                    (None, None) => return None,
                };
                let aliases = match (name.contains('\''), role) {
                    (false, Some(r)) => vec![format!("{speaker}'s {r}")],
                    _ => vec![],
                };
                self.entity(&name, "person", aliases);
                Some(name)
            }
            Subject::Other => None,
        }
    }

    /// "His name's Jonas", "she's called Mochi", "her name is Ana": the name of whom the turn
    /// introduced before without one ([`Builder::unnamed`], else an unnamed relative who is
    /// the last person named).
    fn naming(&mut self, s: &Sentence<'_>) {
        let toks = &s.toks;
        let w = |k: usize| toks.get(k).map_or("", |t| t.word.as_str());
        let mut at = None;
        for k in 0..toks.len() {
            let is_name = |j: usize| matches!(w(j), "name" | "name's");
            if matches!(w(k), "his" | "her" | "their" | "its" | "the") && is_name(k + 1) {
                let j = if w(k + 1) == "name's" {
                    k + 2
                } else {
                    k + 2 + usize::from(matches!(w(k + 2), "is" | "was"))
                };
                if w(k + 1) == "name" && !matches!(w(k + 2), "is" | "was") {
                    continue;
                }
                at = Some(j);
                break;
            }
            if matches!(w(k), "he" | "she" | "it" | "they")
                && matches!(w(k + 1), "is" | "are" | "was" | "'s")
                && matches!(w(k + 2), "called" | "named")
            {
                at = Some(k + 3);
                break;
            }
        }
        let Some(at) = at else { return };
        let Some(t) = toks.get(at).filter(|t| t.cap || self.all_lower) else {
            return;
        };
        let Some((name, _)) = slots::value_at(toks, at, toks.len(), self.all_lower && !t.cap)
        else {
            return;
        };
        let name = title_case(&name);
        let speaker = self.speaker.to_string();
        let who = self.unnamed.take().or_else(|| match &self.last_person {
            Some(Subject::Person {
                name: None,
                role: Some(r),
            }) => Some(Unnamed::Role(r.clone())),
            _ => None,
        });
        match who {
            Some(Unnamed::Pet(noun)) => {
                // The pet is now known by its name, not by its noun.
                self.relations
                    .retain(|r| !(r.predicate == "HAS_PET" && r.object == noun));
                let fact = format!("{speaker} has {} {noun} named {name}.", a_or_an(&noun));
                let aliases = vec![format!("{speaker}'s {noun}")];
                self.relate(s, "HAS_PET", &name, "other", aliases, fact, false);
            }
            Some(Unnamed::Partner) => {
                let fact = format!("{name} is {speaker}'s partner.");
                self.relate(s, "PARTNER_OF", &name, "person", vec![], fact, true);
                self.last_person = Some(Subject::Person {
                    name: Some(name),
                    role: Some("partner".into()),
                });
            }
            Some(Unnamed::Role(role)) => {
                if let Some(&(_, pred, noun, _, _)) = KIN.iter().find(|k| k.0 == role) {
                    let fact = format!("{name} is {speaker}'s {noun}.");
                    let aliases = vec![format!("{speaker}'s {noun}")];
                    self.relate(s, pred, &name, "person", aliases, fact, single_holder(pred));
                }
                self.last_person = Some(Subject::Person {
                    name: Some(name),
                    role: Some(role),
                });
            }
            None => {}
        }
    }

    /// Slot facts and endings from the clauses of sentence `s` (see [`super::slots`]).
    fn clause_slots(&mut self, s: &Sentence<'_>) {
        let speaker = self.speaker.to_string();
        let mut last = self.last_person.take();
        let clauses = super::clause::clauses(s, &speaker, &mut last);
        self.last_person = last;
        // A sentence in lower case (in a text that has capitals elsewhere) cannot mark names
        // by capitals either.
        // Nor can one whose writer leaves "i" in lower case ("i'm in basel now").
        let lower = self.all_lower
            || !s.toks.iter().skip(1).any(|t| t.cap)
            || s.toks.iter().any(|t| t.word == "i" && !t.cap);
        let local = self.turn.local_date();
        let (_, mentions) = super::time::ground(s.text, local);
        // A date after the turn makes a plan of the clause that names it only: in "I'm living
        // in Leeds but moving to York in June" the first clause still holds now.
        let future_in = |from: usize, to: usize| {
            let (Some(a), Some(b)) = (s.toks.get(from), s.toks.get(to.saturating_sub(1))) else {
                return false;
            };
            mentions.iter().any(|m| {
                let at = s.start + m.start;
                m.resolved.start > local && at >= a.start && at < b.end.max(a.start + 1)
            })
        };
        let clause_future: Vec<bool> = clauses
            .iter()
            .enumerate()
            .map(|(i, c)| future_in(if i == 0 { 0 } else { clauses[i - 1].end }, c.end))
            .collect();
        let future_mention = mentions.iter().any(|m| m.resolved.start > local);
        let mut ops = Vec::new();
        // A noun phrase ("our new place in Jersey City") states as much as the clause it
        // stands in: asserted, not of the future.
        for (k, mut op) in slots::noun_phrase_ops(&s.toks, lower) {
            // A sentence without a clause ("Back home in Pretoria now.") states it unless
            // it asks.
            let at = clauses.iter().position(|c| c.end > k);
            let within = at.or(clauses.len().checked_sub(1));
            // "her job at X": the person the clause is about.
            if op.who == Subject::Other {
                match within.map(|i| &clauses[i].subject) {
                    Some(p @ Subject::Person { .. }) => op.who = p.clone(),
                    _ => continue,
                }
            }
            let future = within.map_or(future_mention, |i| clause_future[i]);
            if !future
                && within.map(|i| &clauses[i]).map_or(!is_question(s), |c| {
                    c.mood == super::clause::Mood::Asserted
                        && c.tense != super::clause::Tense::Future
                })
            {
                ops.push(op);
            }
        }
        for (ci, c) in clauses.iter().enumerate() {
            // "Michal is officially my husband": the kin relation a copula states.
            if let Subject::Person {
                name: Some(name), ..
            } = &c.subject
                && c.verb.as_deref() == Some("be")
                && !c.negated
                && c.tense != super::clause::Tense::Past
                && c.mood == super::clause::Mood::Asserted
                && let Some(my) = (c.rest..c.end.min(c.rest + 3)).find(|&k| s.toks[k].word == "my")
                && let Some(role) = s.toks.get(my + 1)
                && let Some(&(_, pred, noun, _, _)) = KIN.iter().find(|k| k.0 == role.word)
            {
                let fact = format!("{name} is {speaker}'s {noun}.");
                self.relate(s, pred, name, "person", vec![], fact, single_holder(pred));
            }
            let mine = slots::ops(
                &s.toks,
                c,
                lower,
                clause_future[ci],
                self.last_thing.as_deref(),
            );
            // What a later "it"/"them" stands for: the taste just named, else the thing the
            // clause is about (a subject that is a thing, else the verb's object).
            let named = mine
                .iter()
                .find(|o| matches!(o.slot, Slot::Likes | Slot::Dislikes))
                .and_then(|o| o.value.clone())
                .or_else(|| match (&c.subject, c.subject_at) {
                    (Subject::Other, Some(k)) => slots::taste_object(&s.toks, k, c.verb_at),
                    _ => None,
                })
                .or_else(|| {
                    (c.verb.as_deref() != Some("be"))
                        .then(|| slots::taste_object(&s.toks, c.rest, c.end))
                        .flatten()
                });
            if named.is_some() {
                self.last_thing = named;
            }
            // "I'm seeing someone new", "dating a guy from work": a partner without a name.
            if matches!(c.verb.as_deref(), Some("see" | "date"))
                && c.mood == super::clause::Mood::Asserted
                && !c.negated
                && matches!(c.subject, Subject::Speaker)
                && s.toks[c.rest.min(c.end)..c.end].iter().take(3).any(|t| {
                    matches!(
                        t.word.as_str(),
                        "someone" | "somebody" | "guy" | "girl" | "man" | "woman" | "bloke"
                    )
                })
            {
                self.unnamed = Some(Unnamed::Partner);
            }
            if let Subject::Person {
                name: None,
                role: Some(r),
            } = &c.subject
            {
                self.unnamed = Some(Unnamed::Role(r.clone()));
            }
            ops.extend(mine);
            // "Ana, my sister, …": the kin relation the subject names.
            if let Subject::Person {
                name: Some(name),
                role: Some(role),
            } = &c.subject
                && let Some(&(_, pred, noun, _, _)) = KIN.iter().find(|k| k.0 == role)
            {
                let fact = format!("{name} is {speaker}'s {noun}.");
                self.relate(s, pred, name, "person", vec![], fact, single_holder(pred));
            }
        }
        // One date for every slot operation of the sentence.
        let at = self.valid_at(s);
        for op in ops {
            let Some(who) = self.subject_name(&op.who) else {
                continue;
            };
            let pred = op.slot.predicate();
            if op.end {
                let object = op.value.clone();
                if !self
                    .ends
                    .iter()
                    .any(|e| e.subject == who && e.predicate == pred && e.object == object)
                {
                    self.ends.push(EndDraft {
                        subject: who,
                        predicate: pred.to_string(),
                        object,
                        at,
                    });
                }
                continue;
            }
            let Some(v) = op.value else { continue };
            // A place or employer typed in lower case is still a name.
            let v = if matches!(op.slot, Slot::Residence | Slot::Employer)
                && !v.chars().any(char::is_uppercase)
                && !v.starts_with("a ")
                && !v.starts_with("an ")
                && !v.starts_with("the ")
            {
                title_case(&v)
            } else {
                v
            };
            if v.eq_ignore_ascii_case(&who) {
                continue;
            }
            let fact = match op.slot {
                Slot::Residence => format!("{who} lives in {v}."),
                Slot::Employer => format!("{who} works at {v}."),
                Slot::Job => format!("{who} works as {} {v}.", a_or_an(&v)),
                Slot::Partner => format!("{v} is {who}'s partner."),
                Slot::Pet => format!("{who} has a pet named {v}."),
                Slot::Likes => format!("{who} likes {v}."),
                Slot::Dislikes => format!("{who} dislikes {v}."),
                Slot::Diet => match v.strip_prefix("no ") {
                    Some(food) => format!("{who} does not eat {food}."),
                    None => format!("{who} is {v}."),
                },
                Slot::Allergy => format!("{who} is allergic to {v}."),
            };
            self.relate_from(
                &who,
                s,
                pred,
                &v,
                op.slot.kind(),
                vec![],
                fact,
                op.slot.exclusive(),
            );
        }
    }

    fn text(&self, toks: &[Tok], a: usize, b: usize) -> &'a str {
        if a >= b || b > toks.len() {
            return "";
        }
        self.own.get(toks[a].start..toks[b - 1].end).unwrap_or("")
    }

    fn has_cap(toks: &[Tok], a: usize, b: usize) -> bool {
        toks[a..b].iter().any(|t| t.cap)
    }

    fn entity(&mut self, name: &str, kind: &str, aliases: Vec<String>) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        if let Some(e) = self
            .entities
            .iter_mut()
            .find(|e| e.name.to_lowercase() == name.to_lowercase())
        {
            if e.kind == "other" && kind != "other" {
                e.kind = kind.to_string();
            }
            for a in aliases {
                if !e.aliases.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                    e.aliases.push(a);
                }
            }
            return;
        }
        self.entities.push(EntityDraft {
            name: name.to_string(),
            kind: kind.to_string(),
            aliases,
        });
    }

    /// When a fact stated in sentence `s` became true: the first date the sentence names
    /// (noon, turn's offset) when it is not after the turn, else the turn's timestamp. A
    /// future date ("my mom is visiting next month") dates an event, not the fact.
    fn valid_at(&self, s: &Sentence<'_>) -> DateTime<Utc> {
        let (_, mentions) = super::time::ground(s.text, self.turn.local_date());
        mentions
            .first()
            .and_then(|m| noon_utc(m.resolved.start, self.turn.local.offset()))
            .filter(|t| *t <= self.turn.timestamp)
            .unwrap_or(self.turn.timestamp)
    }

    #[allow(clippy::too_many_arguments)]
    fn relate(
        &mut self,
        s: &Sentence<'_>,
        predicate: &str,
        object: &str,
        kind: &str,
        aliases: Vec<String>,
        fact: String,
        exclusive: bool,
    ) {
        let speaker = self.speaker.to_string();
        self.relate_from(
            &speaker, s, predicate, object, kind, aliases, fact, exclusive,
        );
    }

    /// A relation with `subject` (an entity name) as its subject.
    #[allow(clippy::too_many_arguments)]
    fn relate_from(
        &mut self,
        subject: &str,
        s: &Sentence<'_>,
        predicate: &str,
        object: &str,
        kind: &str,
        aliases: Vec<String>,
        fact: String,
        exclusive: bool,
    ) {
        let object = object.trim();
        if object.is_empty() || object.eq_ignore_ascii_case(subject) {
            return;
        }
        self.entity(object, kind, aliases);
        let subject = subject.to_string();
        if self.relations.iter().any(|r| {
            r.subject == subject
                && r.predicate == predicate
                && r.object.eq_ignore_ascii_case(object)
        }) {
            return;
        }
        let valid_at = self.valid_at(s);
        self.relations.push(RelationDraft {
            subject,
            predicate: predicate.to_string(),
            object: object.to_string(),
            fact,
            valid_at,
            exclusive,
        });
    }

    /// Object text of a phrase as written, with "my" rendered as "their" for facts.
    fn display(&self, toks: &[Tok], p: &Phrase) -> String {
        let body = self.text(toks, p.start, p.end);
        match p.det.as_deref() {
            Some("my") => format!("their {body}"),
            Some("our") => format!("their {body}"),
            Some("this" | "that" | "these" | "those") | None => body.to_string(),
            Some(d) => format!("{d} {body}"),
        }
    }

    /// A proper-name object: accepted only when capitalised (or the text has no capitals at
    /// all) and not introduced by an indefinite or possessive determiner.
    fn proper_object(&self, toks: &[Tok], p: &Phrase) -> Option<String> {
        let capitalised = Self::has_cap(toks, p.start, p.end);
        let det_ok = match p.det.as_deref() {
            None => true,
            Some("the") => capitalised,
            _ => false,
        };
        if !det_ok || !(capitalised || self.all_lower) {
            return None;
        }
        let text = strip_possessive(self.text(toks, p.start, p.end));
        Some(title_case(text))
    }

    fn sentence(&mut self, s: &Sentence<'_>) {
        self.clause_slots(s);
        let toks = &s.toks;
        for k in 0..toks.len() {
            // "we" includes the speaker: "we adopted a kitten called Pip".
            if matches!(toks[k].word.as_str(), "i" | "we") && !hedged(toks, k) {
                self.subject(s, skip_adverbs(toks, k + 1), 0);
            }
            if matches!(toks[k].word.as_str(), "my" | "our") {
                self.possessive(s, k);
            }
        }
    }

    /// Tries the first-person patterns at token `j` (just after "I" and its adverbs). An
    /// object followed by "and VERB…" continues with the same subject.
    fn subject(&mut self, s: &Sentence<'_>, j: usize, depth: usize) {
        let toks = &s.toks;
        for (seq, pat) in SUBJECT_PATTERNS {
            let Some(at) = match_seq(toks, j, seq) else {
                continue;
            };
            if let Some(end) = self.apply(s, *pat, at) {
                if depth < 2 && toks.get(end).is_some_and(|t| t.word == "and") {
                    self.subject(s, skip_adverbs(toks, end + 1), depth + 1);
                }
                return;
            }
        }
    }

    /// Applies one pattern whose object starts at token `at`; returns the index just past
    /// what it consumed when it produced something.
    fn apply(&mut self, s: &Sentence<'_>, pat: Pat, at: usize) -> Option<usize> {
        let toks = &s.toks;
        let speaker = self.speaker.to_string();
        match pat {
            Pat::From(verb) => {
                let p = object_phrase(toks, at, 5)?;
                if no_longer_after(toks, p.end) {
                    return None;
                }
                let name = self.proper_object(toks, &p)?;
                let the = if p.det.as_deref() == Some("the") {
                    "the "
                } else {
                    ""
                };
                let fact = format!("{speaker} {verb} {the}{name}.");
                self.relate(s, "FROM", &name, "place", vec![], fact, false);
                Some(p.end)
            }
            Pat::Status(status) => {
                if no_longer_after(toks, at) {
                    return None;
                }
                let fact = format!("{speaker} is {status}.");
                self.relate(
                    s,
                    "RELATIONSHIP_STATUS",
                    status,
                    "other",
                    vec![],
                    fact,
                    true,
                );
                Some(at)
            }
            Pat::Visited(verb) => {
                let p = object_phrase(toks, at, 5)?;
                let first = toks[p.start].word.as_str();
                if (NOT_PLACES.contains(&first) && p.det.is_none())
                    || VAGUE_PLACES
                        .contains(&self.text(toks, p.start, p.end).to_lowercase().as_str())
                {
                    return None;
                }
                let capitalised = Self::has_cap(toks, p.start, p.end);
                let body = strip_possessive(self.text(toks, p.start, p.end));
                let head = singular(&toks[p.end - 1].word);
                let kind = if EVENT_NOUNS.contains(&head.as_str()) {
                    "event"
                } else {
                    "place"
                };
                let object = if capitalised && p.det.is_none() {
                    title_case(body)
                } else if capitalised {
                    body.to_string()
                } else {
                    body.to_lowercase()
                };
                let fact = format!("{speaker} {verb} {}.", self.display(toks, &p));
                self.relate(s, "VISITED", &object, kind, vec![], fact, false);
                Some(p.end)
            }
            Pat::Studies(verb) => {
                let (pred, start, verb) = if toks.get(at).is_some_and(|t| t.word == "at") {
                    ("STUDIES_AT", at + 1, "studies at")
                } else {
                    ("STUDIES", at, verb)
                };
                let p = object_phrase(toks, start, 4)?;
                if no_longer_after(toks, p.end) {
                    return None;
                }
                let body = self.text(toks, p.start, p.end);
                let first = toks[p.start].word.as_str();
                if NOT_LIKES.contains(&first) {
                    return None;
                }
                let object = if Self::has_cap(toks, p.start, p.end) {
                    body.to_string()
                } else {
                    body.to_lowercase()
                };
                let kind = if pred == "STUDIES_AT" {
                    "organization"
                } else {
                    "thing"
                };
                let fact = format!("{speaker} {verb} {}.", self.display(toks, &p));
                self.relate(s, pred, &object, kind, vec![], fact, false);
                Some(p.end)
            }
            Pat::Joined => {
                let p = object_phrase(toks, at, 5)?;
                let first = toks[p.start].word.as_str();
                if NOT_LIKES.contains(&first)
                    || NOT_PLACES.contains(&first)
                    || no_longer_after(toks, p.end)
                {
                    return None;
                }
                let body = strip_possessive(self.text(toks, p.start, p.end));
                let object = if Self::has_cap(toks, p.start, p.end) {
                    body.to_string()
                } else {
                    body.to_lowercase()
                };
                let fact = format!("{speaker} joined {}.", self.display(toks, &p));
                self.relate(s, "MEMBER_OF", &object, "organization", vec![], fact, false);
                Some(p.end)
            }
            Pat::HasPet => self.has_pet(s, at),
            Pat::Am => {
                let at = skip_adverbs(toks, at);
                let w = toks.get(at)?.word.as_str();
                if STATUS_WORDS.contains(&w) {
                    if no_longer_after(toks, at + 1) {
                        return None;
                    }
                    let fact = format!("{speaker} is {w}.");
                    self.relate(s, "RELATIONSHIP_STATUS", w, "other", vec![], fact, true);
                    return Some(at + 1);
                }
                let p = object_phrase(toks, at, 4)?;
                if !matches!(p.det.as_deref(), Some("a" | "an")) {
                    return None;
                }
                let words: Vec<&str> = toks[p.start..p.end]
                    .iter()
                    .map(|t| t.word.as_str())
                    .collect();
                if let [.., "single", parent] = words.as_slice()
                    && matches!(
                        *parent,
                        "parent" | "mom" | "mother" | "dad" | "father" | "mum"
                    )
                {
                    let fact = format!("{speaker} is single.");
                    self.relate(
                        s,
                        "RELATIONSHIP_STATUS",
                        "single",
                        "other",
                        vec![],
                        fact,
                        true,
                    );
                    return Some(p.end);
                }
                self.job(s, &p, true)
            }
        }
    }

    /// HAS_JOB from a phrase ("software engineer"); with `strict`, its last word must be a
    /// job noun.
    fn job(&mut self, s: &Sentence<'_>, p: &Phrase, strict: bool) -> Option<usize> {
        let toks = &s.toks;
        let head = toks[p.end - 1].word.as_str();
        if strict && !JOBS.contains(&head) && !JOBS.contains(&singular(head).as_str()) {
            return None;
        }
        if no_longer_after(toks, p.end) || NOT_LIKES.contains(&toks[p.start].word.as_str()) {
            return None;
        }
        let body = self.text(toks, p.start, p.end);
        let job = if Self::has_cap(toks, p.start, p.end) && !toks[p.start].cap {
            body.to_string()
        } else {
            body.to_lowercase()
        };
        let article = match p.det.as_deref() {
            Some(d @ ("a" | "an")) => d,
            _ => a_or_an(&job),
        };
        let fact = format!("{} works as {article} {job}.", self.speaker);
        self.relate(s, "HAS_JOB", &job, "thing", vec![], fact, true);
        Some(p.end)
    }

    /// "I have/got/adopted a dog (named X)".
    fn has_pet(&mut self, s: &Sentence<'_>, at: usize) -> Option<usize> {
        let toks = &s.toks;
        let mut i = at;
        let first = toks.get(i)?.word.as_str();
        let counted = matches!(
            first,
            "a" | "an" | "another" | "two" | "three" | "four" | "2" | "3" | "4"
        ) || first.chars().all(|c| c.is_ascii_digit());
        if !counted {
            return None;
        }
        i += 1;
        // Up to two adjectives ("a little black cat").
        let mut pet_at = None;
        let mut kin_at = None;
        for (k, t) in toks.iter().enumerate().skip(i).take(3) {
            if PETS.contains(&t.word.as_str()) {
                pet_at = Some(k);
                break;
            }
            if KIN.iter().any(|r| r.0 == t.word) {
                kin_at = Some(k);
                break;
            }
            if t.boundary_after || is_stopword(&t.word) {
                break;
            }
        }
        // "I have a sister called Maya", "we've got a brother, Tom": a named relative.
        if let Some(k) = kin_at {
            let &(_, pred, noun, _, _) = KIN.iter().find(|r| r.0 == toks[k].word)?;
            // "two daughters, Amy and Beth": a plural role names several.
            let plural = toks[k].word.ends_with('s') && toks[k].word != "boss";
            let (names, end) = self.names(toks, k + 1, plural);
            if names.is_empty() {
                return None;
            }
            let speaker = self.speaker.to_string();
            for name in names {
                let fact = format!("{name} is {speaker}'s {noun}.");
                let aliases = vec![format!("{speaker}'s {noun}")];
                self.relate(s, pred, &name, "person", aliases, fact, single_holder(pred));
            }
            return Some(end);
        }
        let mut k = pet_at?;
        if toks[k].word == "guinea" {
            if toks
                .get(k + 1)
                .is_some_and(|t| t.word == "pig" || t.word == "pigs")
            {
                k += 1;
            } else {
                return None;
            }
        }
        // A pet word followed by another noun is not a pet ("a dog toy").
        if let Some(next) = toks.get(k + 1)
            && !toks[k].boundary_after
            && !matches!(
                next.word.as_str(),
                "named" | "called" | "and" | "who" | "that" | "which" | "whose"
            )
            && !super::words::OBJECT_STOP.contains(&next.word.as_str())
        {
            return None;
        }
        let noun = pet_noun(&toks[k].word);
        let (names, end) = self.names(toks, k + 1, true);
        let speaker = self.speaker.to_string();
        if names.is_empty() {
            self.unnamed = Some(Unnamed::Pet(noun.clone()));
            let fact = format!("{speaker} has {} {noun}.", a_or_an(&noun));
            self.relate(s, "HAS_PET", &noun, "thing", vec![], fact, false);
            return Some(k + 1);
        }
        for name in &names {
            let fact = format!("{speaker} has {} {noun} named {name}.", a_or_an(&noun));
            let aliases = vec![format!("{speaker}'s {noun}")];
            self.relate(s, "HAS_PET", name, "other", aliases, fact, false);
        }
        Some(end)
    }

    /// Capitalised names starting at token `i`, optionally after "," / "named" / "called":
    /// "Sarah", "Sam and Lily", "Jane Doe". With `plural`, several names joined by "and"
    /// or commas are read. Returns the names and the index after the last one.
    fn names(&self, toks: &[Tok], mut i: usize, plural: bool) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        if toks
            .get(i)
            .is_some_and(|t| matches!(t.word.as_str(), "named" | "called"))
        {
            i += 1;
        }
        loop {
            let start = i;
            while i < toks.len()
                && i - start < 3
                && toks[i].cap
                && !NOT_NAMES.contains(&toks[i].word.as_str())
                && !is_filler_word(&toks[i].word)
                && !is_stopword(&toks[i].word)
            {
                i += 1;
                if toks[i - 1].boundary_after {
                    break;
                }
            }
            if i == start {
                break;
            }
            out.push(strip_possessive(self.text(toks, start, i)).to_string());
            if !plural {
                break;
            }
            // "Sam and Lily", "Sam, Lily and Max".
            if toks.get(i).is_some_and(|t| t.word == "and" && !t.cap)
                && toks.get(i + 1).is_some_and(|t| t.cap)
            {
                i += 1;
            } else if toks[i - 1].boundary_after && toks.get(i).is_some_and(|t| t.cap) {
                continue;
            } else {
                break;
            }
        }
        (out, i)
    }

    /// "my" patterns: relatives and friends, pets and the birthday.
    fn possessive(&mut self, s: &Sentence<'_>, m: usize) {
        let toks = &s.toks;
        let mut i = m + 1;
        while i < toks.len()
            && KIN_ADJECTIVES.contains(&toks[i].word.as_str())
            && !toks[i].boundary_after
        {
            i += 1;
        }
        let Some(t) = toks.get(i) else { return };
        let word = t.word.as_str();
        let speaker = self.speaker.to_string();
        if matches!(word, "birthday" | "bday" | "birthday's") {
            self.birthday(s, i);
            return;
        }
        // "my mom's name is Sarah", "my mom is called Sarah".
        let (base, names_at) = match word.strip_suffix("'s") {
            Some(b)
                if toks.get(i + 1).is_some_and(|t| t.word == "name")
                    && toks.get(i + 2).is_some_and(|t| t.word == "is") =>
            {
                (b, i + 3)
            }
            Some(_) => return,
            None => match (
                toks.get(i + 1).map(|t| t.word.as_str()),
                toks.get(i + 2).map(|t| t.word.as_str()),
            ) {
                (Some("is"), Some("called" | "named")) => (word, i + 3),
                // "my father is Luis": a capitalised name right after "is".
                (Some("is"), Some(_))
                    if toks.get(i + 2).is_some_and(|t| t.cap) && !toks[i + 1].boundary_after =>
                {
                    (word, i + 2)
                }
                _ => (word, i + 1),
            },
        };
        if PETS.contains(&base) {
            let noun = pet_noun(base);
            let (names, _) = self.names(toks, names_at, base.ends_with('s'));
            for name in names {
                let fact = format!("{speaker} has {} {noun} named {name}.", a_or_an(&noun));
                let aliases = vec![format!("{speaker}'s {noun}")];
                self.relate(s, "HAS_PET", &name, "other", aliases, fact, false);
            }
            return;
        }
        let Some(&(_, pred, noun, alias, status)) = KIN.iter().find(|k| k.0 == base) else {
            return;
        };
        if let Some(status) = status {
            let fact = format!("{speaker} is {status}.");
            self.relate(
                s,
                "RELATIONSHIP_STATUS",
                status,
                "other",
                vec![],
                fact,
                true,
            );
        }
        // "my kids Sam and Lily": a plural role may name several people.
        let plural = !alias && (base.ends_with('s') || base.ends_with("ren"));
        let (names, _) = self.names(toks, names_at, plural);
        for name in names {
            let aliases = if alias {
                let mut a = vec![base.to_string()];
                if noun != base {
                    a.push(noun.to_string());
                }
                a.push(format!("{speaker}'s {noun}"));
                a
            } else {
                vec![]
            };
            let fact = format!("{name} is {speaker}'s {noun}.");
            let exclusive = single_holder(pred);
            self.relate(s, pred, &name, "person", aliases, fact, exclusive);
        }
    }

    /// "my birthday is July 4th", "today is my birthday".
    fn birthday(&mut self, s: &Sentence<'_>, i: usize) {
        let toks = &s.toks;
        let speaker = self.speaker.to_string();
        let (_, mentions) = super::time::ground(s.text, self.turn.local_date());
        // A birthday recurs: keep day and month only ("4 July"), however it was phrased.
        let day = mentions
            .iter()
            .find(|m| m.resolved.granularity == Granularity::Day)
            .map(|m| {
                let full = super::time::format_day(m.resolved.start);
                let year = m.resolved.start.year().to_string();
                full.strip_suffix(&year)
                    .map_or(full.clone(), |d| d.trim_end().to_string())
            });
        let object = match day {
            Some(d) => Some(d),
            None => {
                let mut j = i + 1;
                if toks.get(j).is_some_and(|t| t.word == "is") {
                    j += 1;
                    if toks
                        .get(j)
                        .is_some_and(|t| t.word == "on" || t.word == "in")
                    {
                        j += 1;
                    }
                    let mut end = j;
                    while end < toks.len() && end - j < 3 {
                        let w = toks[end].word.as_str();
                        let monthish = toks[end].cap
                            || w.chars().any(|c| c.is_ascii_digit())
                            || matches!(w, "st" | "nd" | "rd" | "th" | "of");
                        if !monthish {
                            break;
                        }
                        end += 1;
                        if toks[end - 1].boundary_after {
                            break;
                        }
                    }
                    (end > j).then(|| self.text(toks, j, end).to_string())
                } else {
                    None
                }
            }
        };
        if let Some(o) = object {
            let fact = format!("{speaker}'s birthday is {o}.");
            self.relate(s, "HAS_BIRTHDAY", &o, "other", vec![], fact, true);
        }
    }

    /// Capitalised words and sequences as entities, with a kind guessed from cues.
    fn proper_nouns(&mut self, s: &Sentence<'_>, elsewhere: &[String]) {
        let toks = &s.toks;
        let eligible = |t: &Tok| {
            t.cap
                && !NOT_NAMES.contains(&t.word.as_str())
                && !is_filler_word(&t.word)
                && !is_stopword(&t.word)
                && !DETERMINERS.contains(&t.word.as_str())
                && !(t.word.chars().all(|c| !c.is_alphabetic()))
        };
        let mut i = 0;
        while i < toks.len() {
            if !eligible(&toks[i]) {
                i += 1;
                continue;
            }
            let start = i;
            let mut end = i + 1;
            while end < toks.len() && !toks[end - 1].boundary_after {
                if eligible(&toks[end]) {
                    end += 1;
                } else if NAME_JOINERS.contains(&toks[end].word.as_str())
                    && !toks[end].cap
                    && toks.get(end + 1).is_some_and(eligible)
                {
                    end += 2;
                } else if toks[end].word == "of"
                    && toks.get(end + 1).is_some_and(|t| t.word == "the")
                    && toks.get(end + 2).is_some_and(eligible)
                {
                    end += 3; // "Lord of the Rings"
                } else {
                    break;
                }
            }
            i = end;
            let single_initial = start == 0 && end == 1;
            if single_initial {
                let w = toks[0].word.as_str();
                let w = w.strip_suffix("'s").unwrap_or(w);
                let known =
                    w.eq_ignore_ascii_case(self.speaker) || elsewhere.iter().any(|e| e == w);
                if !known {
                    continue;
                }
            }
            let name = strip_possessive(self.text(toks, start, end)).to_string();
            if name.eq_ignore_ascii_case(self.speaker) || name.chars().count() < 2 {
                continue;
            }
            let kind = self.guess_kind(toks, start, end);
            self.entity(&name, kind, vec![]);
        }
    }

    fn guess_kind(&self, toks: &[Tok], start: usize, end: usize) -> &'static str {
        let last = toks[end - 1].word.as_str();
        let last = last.strip_suffix("'s").unwrap_or(last);
        let first = toks[start].word.as_str();
        if ORG_SUFFIXES.contains(&last) {
            return "organization";
        }
        if EVENT_SUFFIXES.contains(&last) || HOLIDAYS.contains(&first) {
            return "event";
        }
        if PLACE_SUFFIXES.contains(&last) || PLACE_PREFIXES.contains(&first) {
            return "place";
        }
        if end - start > 1 && ORG_PREFIXES.contains(&first) {
            return "organization";
        }
        let prev = start.checked_sub(1).map(|p| toks[p].word.as_str());
        let next = toks.get(end).map(|t| t.word.as_str());
        // A lone name set off by punctuation on both sides is a vocative: "That's great, Mel!"
        let vocative = end - start == 1
            && start > 0
            && toks[start - 1].boundary_after
            && toks[end - 1].boundary_after;
        if prev.is_some_and(|p| GREETING_CUES.contains(&p))
            || next.is_some_and(|n| matches!(n, "said" | "says" | "told" | "asked" | "thinks"))
            || vocative
        {
            return "person";
        }
        if prev.is_some_and(|p| PLACE_CUES.contains(&p)) {
            return "place";
        }
        "other"
    }
}

/// Extracts the entities and relations one turn states. The speaker is always the first
/// entity (kind `person`); relations have the speaker as subject. Pure: the same turn always
/// yields the same draft.
pub fn extract(turn: &TurnView) -> GraphDraft {
    let speaker = speaker_name(turn);
    let (own, _caption) = split_caption(&turn.text);
    let mut b = Builder {
        turn,
        speaker,
        own,
        all_lower: !own.chars().any(char::is_uppercase),
        entities: Vec::new(),
        relations: Vec::new(),
        ends: Vec::new(),
        last_person: None,
        last_thing: None,
        unnamed: None,
    };
    b.entity(speaker, "person", vec![]);
    let sents = sentences(own);
    // Words written capitalised somewhere other than a sentence start: names for sure.
    let elsewhere: Vec<String> = sents
        .iter()
        .flat_map(|s| {
            s.toks.iter().skip(1).filter(|t| t.cap).map(|t| {
                let w = t.word.as_str();
                w.strip_suffix("'s").unwrap_or(w).to_string()
            })
        })
        .collect();
    for s in &sents {
        if !b.all_lower {
            b.proper_nouns(s, &elsewhere);
        }
        b.naming(s);
        if !is_question(s) {
            b.sentence(s);
            // "My neighbour is lovely, she's called Edith": named in the same sentence.
            b.naming(s);
        } else {
            // A sentence ending in a question mark may still state things in its other
            // clauses ("I live in Nairobi and I'm looking for a club, any tips?"): the clause
            // analysis gives each clause its own mood, and asked clauses state nothing.
            b.clause_slots(s);
            // A question still presupposes the people and pets it names ("should my dog
            // Bruno get a friend?").
            for k in 0..s.toks.len() {
                if matches!(s.toks[k].word.as_str(), "my" | "our") {
                    b.possessive(s, k);
                }
            }
        }
    }
    // A turn that ends a value ("I quit my job at Oracle", "my cat Mochi died") states no fact
    // of that value: the mention that named it is not a new fact of the slot.
    let ends = b.ends;
    let relations = b
        .relations
        .into_iter()
        .filter(|r| {
            !ends.iter().any(|e| {
                e.subject == r.subject
                    && e.predicate == r.predicate
                    && e.object
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(&r.object))
            })
        })
        .collect();
    GraphDraft {
        entities: b.entities,
        relations,
        ends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};

    fn turn_at(speaker: &str, text: &str, ts: DateTime<Utc>) -> TurnView {
        TurnView {
            user_id: "u1".into(),
            speaker: speaker.into(),
            text: text.into(),
            assistant_response: String::new(),
            timestamp: ts,
            local: ts.with_timezone(&FixedOffset::east_opt(0).unwrap()),
        }
    }

    fn ts() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap()
    }

    fn g(text: &str) -> GraphDraft {
        extract(&turn_at("Caroline", text, ts()))
    }

    fn rels(text: &str) -> Vec<(String, String)> {
        g(text)
            .relations
            .into_iter()
            .map(|r| (r.predicate, r.object))
            .collect()
    }

    fn has(text: &str, pred: &str, obj: &str) -> bool {
        rels(text).iter().any(|(p, o)| p == pred && o == obj)
    }

    #[test]
    fn a_possessed_job_or_new_home_belongs_to_the_clause_subject() {
        assert!(has(
            "my cousin Ilse adores her job at Zeiss",
            "WORKS_AT",
            "Zeiss"
        ));
        assert!(has(
            "my brother Tobi finally got the keys to his new flat in Bergen",
            "LIVES_IN",
            "Bergen"
        ));
        // Without a person as subject there is no one to give it to.
        assert!(!has("it was her job at Zeiss", "WORKS_AT", "Zeiss"));
    }

    #[test]
    fn a_role_held_by_one_person_at_a_time_is_exclusive() {
        assert!(rel("my new manager is Ingrid, very calm", "HAS_BOSS").exclusive);
        assert!(rel("my boss Farid is off sick", "HAS_BOSS").exclusive);
        // Friends and colleagues accumulate, new or not.
        assert!(!rel("my new friend Zoe plays chess", "HAS_FRIEND").exclusive);
        assert!(!rel("my colleague Zoe plays chess", "HAS_COLLEAGUE").exclusive);
    }

    #[test]
    fn complement_clauses_state_their_facts() {
        // A "that" clause under a question is what the question is about, not asked itself.
        assert!(has(
            "Is it strange that my cousin Ilse moved to Graz?",
            "LIVES_IN",
            "Graz"
        ));
        // A verb of saying or thinking takes a clause without "that".
        assert!(has(
            "I reckon my uncle Bram works at Siemens now",
            "WORKS_AT",
            "Siemens"
        ));
        assert!(has("she says I work at Tesco now", "WORKS_AT", "Tesco"));
        // Its object may be a plain noun phrase: no clause of its own.
        assert!(rels("I know the way to Graz").is_empty());
        // A question about the complement itself still asks.
        assert!(!has(
            "Do you think my sister Ana should move to Oslo?",
            "LIVES_IN",
            "Oslo"
        ));
    }

    fn rel(text: &str, pred: &str) -> RelationDraft {
        g(text)
            .relations
            .into_iter()
            .find(|r| r.predicate == pred)
            .unwrap_or_else(|| panic!("no {pred} in {text:?}: {:?}", rels(text)))
    }

    fn entity(d: &GraphDraft, name: &str) -> EntityDraft {
        d.entities
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no entity {name}: {:?}", d.entities))
    }

    #[test]
    fn speaker_is_always_a_person_entity() {
        for text in ["", "Hi!", "🙂", "I live in Berlin"] {
            let d = g(text);
            assert_eq!(
                d.entities[0],
                EntityDraft {
                    name: "Caroline".into(),
                    kind: "person".into(),
                    aliases: vec![]
                }
            );
        }
    }

    #[test]
    fn lives_in_is_exclusive_and_dated() {
        let r = rel("Hi, I just moved to Berlin!", "LIVES_IN");
        assert_eq!(r.subject, "Caroline");
        assert_eq!(r.object, "Berlin");
        assert_eq!(r.fact, "Caroline lives in Berlin.");
        assert!(r.exclusive);
        assert_eq!(r.valid_at, ts());
        assert_eq!(entity(&g("I live in Berlin."), "Berlin").kind, "place");
        let r = rel("I moved to Berlin yesterday.", "LIVES_IN");
        assert_eq!(
            r.valid_at,
            Utc.with_ymd_and_hms(2023, 5, 7, 12, 0, 0).unwrap()
        );
        assert!(has(
            "I'm living in New York City with my wife.",
            "LIVES_IN",
            "New York City"
        ));
        assert!(has("i live in new york", "LIVES_IN", "New York"));
        assert!(has(
            "I've moved to the Netherlands",
            "LIVES_IN",
            "Netherlands"
        ));
    }

    #[test]
    fn paris_then_berlin_are_both_exclusive_lives_in() {
        let a = rel("I live in Paris.", "LIVES_IN");
        let b = extract(&turn_at(
            "Caroline",
            "I moved to Berlin last month.",
            ts() + chrono::Duration::days(30),
        ));
        let b = b
            .relations
            .iter()
            .find(|r| r.predicate == "LIVES_IN")
            .unwrap();
        assert_eq!((a.object.as_str(), b.object.as_str()), ("Paris", "Berlin"));
        assert!(a.exclusive && b.exclusive);
        assert_eq!(a.subject, b.subject);
    }

    #[test]
    fn no_relation_from_questions_negations_or_hypotheticals() {
        for text in [
            "Do you live in Paris?",
            "Do you live in Paris",
            "Where do you live? Paris?",
            "I don't live in Paris anymore.",
            "I do not live in Paris.",
            "I no longer live in Paris.",
            "I live in Paris no more.",
            "I used to live in Paris.",
            "If I moved to Paris I'd be happy.",
            "Maybe I'll move to Paris.",
            "I'm not from Paris.",
            "I never worked at Google.",
            "Did I tell you I moved to Paris?",
            "I'd love to live in Paris.",
            "I live in a small town.",
            "I'm not married.",
            "I don't have a dog.",
        ] {
            let d = g(text);
            assert!(d.relations.is_empty(), "{text:?} gave {:?}", d.relations);
        }
    }

    #[test]
    fn from_works_at_job() {
        assert!(has("I'm from Sweden originally.", "FROM", "Sweden"));
        assert_eq!(
            rel("I grew up in Ohio.", "FROM").fact,
            "Caroline grew up in Ohio."
        );
        assert!(!rel("I grew up in Ohio.", "FROM").exclusive);
        let r = rel("I work at Google and I love it.", "WORKS_AT");
        assert_eq!(
            (r.object.as_str(), r.exclusive, r.fact.as_str()),
            ("Google", true, "Caroline works at Google.")
        );
        assert_eq!(
            entity(&g("I work for Acme Corp."), "Acme Corp").kind,
            "organization"
        );
        assert_eq!(
            rel("I work at a hospital.", "WORKS_AT").fact,
            "Caroline works at a hospital."
        );
        assert!(g("I work from home.").relations.is_empty());
        let r = rel("I'm a software engineer.", "HAS_JOB");
        assert_eq!(
            (r.object.as_str(), r.fact.as_str(), r.exclusive),
            (
                "software engineer",
                "Caroline works as a software engineer.",
                true
            )
        );
        assert_eq!(
            rel("I work as an accountant at a bank.", "HAS_JOB").object,
            "accountant"
        );
        assert!(has("I became a nurse last year.", "HAS_JOB", "nurse"));
        assert!(
            !rels("I'm a big believer in luck.")
                .iter()
                .any(|(p, _)| p == "HAS_JOB")
        );
        assert!(
            !rels("I'm a mess today.")
                .iter()
                .any(|(p, _)| p == "HAS_JOB")
        );
    }

    #[test]
    fn live_in_and_work_at_in_one_sentence() {
        let r = rels("I live in Paris and work at Google.");
        assert!(r.contains(&("LIVES_IN".into(), "Paris".into())), "{r:?}");
        assert!(r.contains(&("WORKS_AT".into(), "Google".into())), "{r:?}");
    }

    #[test]
    fn relationship_status_and_partner() {
        assert!(has("I'm married.", "RELATIONSHIP_STATUS", "married"));
        assert!(has(
            "I am happily engaged!",
            "RELATIONSHIP_STATUS",
            "engaged"
        ));
        assert!(has(
            "I got divorced last year.",
            "RELATIONSHIP_STATUS",
            "divorced"
        ));
        assert!(has(
            "It'll be tough as a single parent but I'm a single mom now.",
            "RELATIONSHIP_STATUS",
            "single"
        ));
        let d = g("My husband John cooked dinner.");
        let p = d
            .relations
            .iter()
            .find(|r| r.predicate == "PARTNER_OF")
            .unwrap();
        assert_eq!(
            (p.object.as_str(), p.fact.as_str(), p.exclusive),
            ("John", "John is Caroline's husband.", true)
        );
        assert!(entity(&d, "John").aliases.contains(&"husband".to_string()));
        assert!(has(
            "My husband John cooked dinner.",
            "RELATIONSHIP_STATUS",
            "married"
        ));
        assert!(has("I'm dating Alex.", "PARTNER_OF", "Alex"));
        assert!(
            !rels("My ex-husband Tom called.")
                .iter()
                .any(|(p, _)| p == "PARTNER_OF")
        );
        let r = rel("I'm single.", "RELATIONSHIP_STATUS");
        assert!(r.exclusive);
    }

    #[test]
    fn my_mom_sarah_is_an_aliased_person() {
        let d = g("My mom Sarah is visiting next week.");
        let sarah = entity(&d, "Sarah");
        assert_eq!(sarah.kind, "person");
        assert!(
            sarah.aliases.contains(&"mom".to_string()),
            "{:?}",
            sarah.aliases
        );
        assert!(sarah.aliases.contains(&"Caroline's mom".to_string()));
        let r = d
            .relations
            .iter()
            .find(|r| r.predicate == "HAS_MOTHER")
            .unwrap();
        assert_eq!(
            (r.subject.as_str(), r.object.as_str(), r.exclusive),
            ("Caroline", "Sarah", false)
        );
        assert_eq!(r.fact, "Sarah is Caroline's mom.");
        assert!(has("My mother's name is Linda.", "HAS_MOTHER", "Linda"));
        assert!(has(
            "my dad, Robert, taught me that.",
            "HAS_FATHER",
            "Robert"
        ));
        assert!(has(
            "My best friend Jane Doe is coming.",
            "HAS_FRIEND",
            "Jane Doe"
        ));
        let kids = rels("My kids Sam and Lily love it.");
        assert!(
            kids.contains(&("HAS_CHILD".into(), "Sam".into()))
                && kids.contains(&("HAS_CHILD".into(), "Lily".into())),
            "{kids:?}"
        );
        assert!(rels("My mom said hi.").is_empty());
        assert!(rels("Thanks, my friend!").is_empty());
    }

    #[test]
    fn an_ending_in_the_turn_outweighs_a_mention_of_the_same_value() {
        let d = g("I quit my job at Oracle.");
        assert!(
            d.relations.iter().all(|r| r.predicate != "WORKS_AT"),
            "{d:?}"
        );
        assert!(
            d.ends
                .iter()
                .any(|e| e.predicate == "WORKS_AT" && e.object.as_deref() == Some("Oracle"))
        );
        let d = g("My cat Mochi died.");
        assert!(
            d.relations.iter().all(|r| r.predicate != "HAS_PET"),
            "{d:?}"
        );
        // A different value named beside the ending stands.
        assert!(has(
            "I quit my job and now work at Google.",
            "WORKS_AT",
            "Google"
        ));
    }

    #[test]
    fn verbs_of_getting_name_a_home_or_a_job() {
        assert!(has(
            "My husband and I bought a house in Utrecht.",
            "LIVES_IN",
            "Utrecht"
        ));
        assert!(has("We found a flat in Porto.", "LIVES_IN", "Porto"));
        // A copula with a home word names the home's place, without a verb of living.
        assert!(has(
            "We're in a tiny cottage outside Kendal these days.",
            "LIVES_IN",
            "Kendal"
        ));
        assert!(has(
            "i'm in a shared flat in Tartu now",
            "LIVES_IN",
            "Tartu"
        ));
        assert!(!has(
            "We're in a hotel in Tartu for the weekend.",
            "LIVES_IN",
            "Tartu"
        ));
        assert!(has("I got a job at Amazon.", "WORKS_AT", "Amazon"));
        assert!(has("I landed a new role with Canva.", "WORKS_AT", "Canva"));
        assert!(rels("I bought a car in Munich.").is_empty());
        assert!(rels("We got a room in Rome for the weekend.").is_empty());
        let d = g("I sold my flat in Leeds.");
        assert!(
            d.ends
                .iter()
                .any(|e| e.predicate == "LIVES_IN" && e.object.as_deref() == Some("Leeds"))
        );
    }

    #[test]
    fn named_relatives_after_have_and_other_peoples_diets() {
        assert!(has("I have a sister called Maya.", "HAS_SISTER", "Maya"));
        assert!(has("We adopted a kitten named Pip.", "HAS_PET", "Pip"));
        assert!(has(
            "My best mate Dave works at Ford.",
            "HAS_FRIEND",
            "Dave"
        ));
        let d = g("My son is allergic to nuts. My wife doesn't eat meat.");
        let facts: Vec<(&str, &str, &str)> = d
            .relations
            .iter()
            .map(|r| (r.subject.as_str(), r.predicate.as_str(), r.object.as_str()))
            .collect();
        assert!(
            facts.contains(&("Caroline's son", "ALLERGIC_TO", "nuts")),
            "{facts:?}"
        );
        assert!(
            facts.contains(&("Caroline's wife", "HAS_DIET", "no meat")),
            "{facts:?}"
        );
        // The speaker's own diet is a rule, not a fact.
        assert!(
            g("I'm vegan.")
                .relations
                .iter()
                .all(|r| r.predicate != "HAS_DIET")
        );
    }

    #[test]
    fn a_pronoun_object_stands_for_the_thing_named_before() {
        let d = g("I used to hate olives but now I love them.");
        assert!(has(
            "I used to hate olives but now I love them.",
            "LIKES",
            "olives"
        ));
        assert!(d.ends.iter().any(|e| e.predicate == "DISLIKES"));
        assert!(has(
            "I used to love coffee but now I can't stand the stuff.",
            "DISLIKES",
            "coffee"
        ));
        // Nothing named before: nothing liked.
        assert!(rels("I love it!").is_empty());
    }

    #[test]
    fn a_progressive_change_is_a_plan_and_a_past_state_is_not_now() {
        assert!(rels("I'm moving to Leeds!").is_empty());
        assert!(has("I'm living in Leeds.", "LIVES_IN", "Leeds"));
        assert!(rels("I lived in Rome for two years.").is_empty());
        assert!(has("Lived in Cork my whole life.", "LIVES_IN", "Cork"));
        assert!(has("I moved to Rome two years ago.", "LIVES_IN", "Rome"));
        assert!(has(
            "I've called Denver home for a decade.",
            "LIVES_IN",
            "Denver"
        ));
        assert!(has(
            "Back in Lyon now, home sweet home.",
            "LIVES_IN",
            "Lyon"
        ));
        assert!(has(
            "I've been in Berlin for three years now.",
            "LIVES_IN",
            "Berlin"
        ));
        assert!(rels("I'm in Berlin for a week.").is_empty());
        // A writer who leaves "i" in lower case does not capitalise names either.
        assert!(has(
            "update from Tom: i'm in basel now",
            "LIVES_IN",
            "Basel"
        ));
        let d = g("Imran hung up his uniform on Friday, he's officially retired!");
        assert!(
            d.ends
                .iter()
                .any(|e| e.subject == "Imran" && e.predicate == "WORKS_AT")
        );
    }

    #[test]
    fn a_date_after_the_turn_makes_a_plan_of_its_own_clause_only() {
        assert!(has(
            "I'm living in Leeds now but moving to York in June.",
            "LIVES_IN",
            "Leeds"
        ));
        assert!(!has(
            "I'm living in Leeds now but moving to York in June.",
            "LIVES_IN",
            "York"
        ));
        assert!(has(
            "Still unpacking here in Leeds, the sofa doesn't arrive until next Friday.",
            "LIVES_IN",
            "Leeds"
        ));
        assert!(rels("We're moving to Doha next month.").is_empty());
    }

    #[test]
    fn together_appositive_roles_and_several_named_children() {
        let d = g("Tom and I are no longer together.");
        assert!(
            d.ends
                .iter()
                .any(|e| e.predicate == "PARTNER_OF" && e.object.as_deref() == Some("Tom"))
        );
        assert!(has(
            "Leo and I have been together for six years.",
            "PARTNER_OF",
            "Leo"
        ));
        assert!(rels("We put the chairs together.").is_empty());
        assert!(has(
            "Jo, my best friend, moved to Cardiff.",
            "HAS_FRIEND",
            "Jo"
        ));
        let r = rels("I have two daughters, Amy and Beth.");
        assert!(r.contains(&("HAS_DAUGHTER".into(), "Beth".into())), "{r:?}");
    }

    #[test]
    fn a_misspelt_role_or_verb_reads_as_meant() {
        assert!(has("my sistr Ana lives in Porto.", "HAS_SISTER", "Ana"));
        assert!(
            g("My husbnd works at Tesco.")
                .relations
                .iter()
                .any(|r| r.subject == "Caroline's husband" && r.object == "Tesco")
        );
        assert!(has("i wrk at a bakery called Dolce", "WORKS_AT", "Dolce"));
    }

    #[test]
    fn an_elliptical_clause_repeats_the_one_before_of_another_subject() {
        let d = g("My wife loves hiking and so do I.");
        assert!(
            d.relations
                .iter()
                .any(|r| r.subject == "Caroline" && r.predicate == "LIKES" && r.object == "hiking"),
            "{d:?}"
        );
        let d = g("My brother lives in Oslo and so does my sister Kari.");
        assert!(
            d.relations
                .iter()
                .any(|r| r.subject == "Kari" && r.predicate == "LIVES_IN" && r.object == "Oslo"),
            "{d:?}"
        );
        let d = g("The kids have moved on to Minecraft and if I'm honest so have I.");
        assert!(
            d.relations
                .iter()
                .any(|r| r.subject == "Caroline" && r.object == "Minecraft"),
            "{d:?}"
        );
    }

    #[test]
    fn someone_introduced_without_a_name_is_named_later() {
        assert!(has(
            "We got a puppy last week. His name is Rocky.",
            "HAS_PET",
            "Rocky"
        ));
        assert!(!has(
            "We got a puppy last week. His name is Rocky.",
            "HAS_PET",
            "puppy"
        ));
        assert!(has(
            "I've been seeing someone new! His name's Jonas.",
            "PARTNER_OF",
            "Jonas"
        ));
        assert!(has(
            "My neighbour is lovely, she's called Edith.",
            "HAS_NEIGHBOUR",
            "Edith"
        ));
    }

    #[test]
    fn retiring_to_a_place_signing_for_a_home_and_home_for_me_name_a_residence() {
        assert!(has(
            "Just signed the lease on a flat in Leeds!",
            "LIVES_IN",
            "Leeds"
        ));
        assert!(has(
            "Home for me is Lisbon these days.",
            "LIVES_IN",
            "Lisbon"
        ));
        assert!(
            rels("My parents retired to Malaga.")
                .iter()
                .any(|(p, o)| p == "LIVES_IN" && o == "Malaga")
        );
        // Signing up for something in a town is no home.
        assert!(
            rels("I signed up for a pottery class in town.")
                .iter()
                .all(|(p, _)| p != "LIVES_IN")
        );
    }

    #[test]
    fn me_and_us_past_a_clause_opening_are_objects() {
        // "like" after an object pronoun is a preposition, not a taste.
        assert!(rels("Talk to me like a friend, not a robot.").is_empty());
        assert!(
            rels("She treats us like family.")
                .iter()
                .all(|(p, _)| p != "LIKES")
        );
        // At the opening, "me" is still a subject.
        assert!(has("Me and my sister love hiking.", "LIKES", "hiking"));
    }

    #[test]
    fn a_thing_as_subject_can_be_a_taste() {
        assert!(has("Running is my thing now.", "LIKES", "running"));
        assert!(has("Jazz isn't really my cup of tea.", "DISLIKES", "jazz"));
        assert!(has(
            "These days an omelette is my go-to breakfast.",
            "LIKES",
            "omelette"
        ));
        assert!(has(
            "lost interest in baking, it's all knitting now.",
            "LIKES",
            "knitting"
        ));
        assert!(has(
            "I tried sushi last week. It was amazing!",
            "LIKES",
            "sushi"
        ));
        assert!(has("Olives are disgusting.", "DISLIKES", "olives"));
        // A past copula of the speaker says nothing of now.
        assert!(
            !rels("I was a nurse for years.")
                .iter()
                .any(|(p, _)| p == "HAS_JOB")
        );
    }

    #[test]
    fn a_replacement_ends_the_old_value_and_sets_the_new() {
        let d = g("We swapped London for a cottage in Devon.");
        assert!(has(
            "We swapped London for a cottage in Devon.",
            "LIVES_IN",
            "Devon"
        ));
        assert!(
            d.ends
                .iter()
                .any(|e| e.predicate == "LIVES_IN" && e.object.as_deref() == Some("London"))
        );
        assert!(has(
            "I traded my job at Tesco for a role at Aldi.",
            "WORKS_AT",
            "Aldi"
        ));
        assert!(has(
            "I switched from coffee to green tea.",
            "LIKES",
            "green tea"
        ));
        assert!(has(
            "Since March, green tea has replaced coffee for me.",
            "LIKES",
            "green tea"
        ));
        assert!(has(
            "We left Manchester for Bristol in the spring.",
            "LIVES_IN",
            "Bristol"
        ));
        // "a desk" names no employer.
        assert!(
            !rels("Traded the factory floor for a desk at last.")
                .iter()
                .any(|(p, _)| p == "WORKS_AT")
        );
    }

    #[test]
    fn leaving_that_has_not_happened_presupposes_being_there() {
        let d = g("My brother Jun is thinking about leaving Singapore for Perth.");
        assert!(
            d.relations.iter().any(|r| r.subject == "Jun"
                && r.predicate == "LIVES_IN"
                && r.object == "Singapore"),
            "{d:?}"
        );
        assert!(has(
            "What would my taxes look like if I moved from Barcelona to Andorra?",
            "LIVES_IN",
            "Barcelona"
        ));
        assert!(has(
            "I'm thinking of quitting my job at Deloitte.",
            "WORKS_AT",
            "Deloitte"
        ));
        assert!(!has(
            "What would my taxes look like if I moved from Barcelona to Andorra?",
            "LIVES_IN",
            "Andorra"
        ));
    }

    #[test]
    fn a_question_after_a_fragment_and_a_complement_clause() {
        // The question mark asks the verbless fragment, not the clause before it.
        assert!(has(
            "My flatmate is mad about cricket. Honestly it's not my thing, five days for a draw?",
            "DISLIKES",
            "cricket"
        ));
        // "that" before a subject opens a clause of its own.
        assert!(has(
            "Should I be worried that I'm thinking about leaving Leicester for good?",
            "LIVES_IN",
            "Leicester"
        ));
        assert!(has(
            "Traded Belfast for a farmhouse outside Omagh.",
            "LIVES_IN",
            "Omagh"
        ));
        assert!(!has("Do you live in Paris? Paris?", "LIVES_IN", "Paris"));
    }

    #[test]
    fn work_done_at_a_place_of_work_names_the_employer() {
        assert!(has(
            "I fix laptops at a repair shop called TechFix.",
            "WORKS_AT",
            "Techfix"
        ));
        assert!(has(
            "Got made store manager today!",
            "HAS_JOB",
            "store manager"
        ));
        // A customer's visit is no job.
        assert!(
            rels("I eat at Nandos every Friday.")
                .iter()
                .all(|(p, _)| p != "WORKS_AT")
        );
    }

    #[test]
    fn pets() {
        let d = g("I have a dog named Max.");
        let r = d
            .relations
            .iter()
            .find(|r| r.predicate == "HAS_PET")
            .unwrap();
        assert_eq!(
            (r.object.as_str(), r.fact.as_str(), r.exclusive),
            ("Max", "Caroline has a dog named Max.", false)
        );
        assert!(
            entity(&d, "Max")
                .aliases
                .contains(&"Caroline's dog".to_string())
        );
        assert!(has(
            "We adopted a cat. I adopted a kitten called Luna yesterday!",
            "HAS_PET",
            "Luna"
        ));
        assert!(has("My cat Oliver sleeps all day.", "HAS_PET", "Oliver"));
        assert!(has("I have two cats.", "HAS_PET", "cat"));
        assert!(!rels("I got a dog toy.").iter().any(|(p, _)| p == "HAS_PET"));
    }

    #[test]
    fn likes_visited_studies_birthday() {
        assert_eq!(
            rel("I love hiking in the mountains.", "LIKES").object,
            "hiking"
        );
        assert_eq!(
            rel("I love hiking in the mountains.", "LIKES").fact,
            "Caroline likes hiking."
        );
        assert_eq!(
            rel("I love going on road trips.", "LIKES").object,
            "going on road trips"
        );
        assert_eq!(
            rel("I really enjoy Italian food.", "LIKES").object,
            "Italian food"
        );
        assert_eq!(
            rel("I love to paint.", "LIKES").fact,
            "Caroline likes painting."
        );
        assert!(!rel("I love hiking.", "LIKES").exclusive);
        for t in [
            "I love it!",
            "I love that.",
            "I love you guys",
            "I love how you did that",
            "I don't like jazz.",
        ] {
            assert!(!rels(t).iter().any(|(p, _)| p == "LIKES"), "{t}");
        }
        let r = rel("I went to a LGBTQ support group yesterday.", "VISITED");
        assert_eq!(r.object, "LGBTQ support group");
        assert_eq!(
            r.valid_at,
            Utc.with_ymd_and_hms(2023, 5, 7, 12, 0, 0).unwrap()
        );
        assert_eq!(r.fact, "Caroline went to a LGBTQ support group.");
        assert!(has("I visited Rome last year.", "VISITED", "Rome"));
        assert!(
            !rels("I went to see a movie.")
                .iter()
                .any(|(p, _)| p == "VISITED")
        );
        assert!(has("I'm studying psychology.", "STUDIES", "psychology"));
        assert!(has("I just joined a book club!", "MEMBER_OF", "book club"));
        assert_eq!(
            rel("I joined the Sierra Club.", "MEMBER_OF").fact,
            "Caroline joined the Sierra Club."
        );
        assert!(
            !rels("I joined them for lunch.")
                .iter()
                .any(|(p, _)| p == "MEMBER_OF")
        );
        assert!(has("I study at Harvard.", "STUDIES_AT", "Harvard"));
        let r = rel("My birthday is July 4th.", "HAS_BIRTHDAY");
        assert_eq!((r.object.as_str(), r.exclusive), ("4 July", true));
        assert_eq!(r.fact, "Caroline's birthday is 4 July.");
        assert_eq!(rel("Today is my birthday!", "HAS_BIRTHDAY").object, "8 May");
        assert_eq!(
            rel("It was my birthday yesterday.", "HAS_BIRTHDAY").object,
            "7 May"
        );
    }

    #[test]
    fn proper_nouns_become_entities() {
        let d = g("Thanks, Melanie! We spent the weekend at Lake Tahoe with Tom.");
        assert_eq!(entity(&d, "Melanie").kind, "person");
        assert_eq!(entity(&d, "Lake Tahoe").kind, "place");
        assert_eq!(entity(&d, "Tom").kind, "person");
        let d = g("Painting is fun. The Museum of Modern Art was great.");
        assert!(
            d.entities.iter().all(|e| e.name != "Painting"),
            "{:?}",
            d.entities
        );
        assert_eq!(entity(&d, "Museum of Modern Art").kind, "place");
        let d = g("Wow, I went to Stanford University.");
        assert_eq!(entity(&d, "Stanford University").kind, "organization");
        assert!(d.entities.iter().all(|e| e.name != "Wow" && e.name != "I"));
        // A single sentence-initial word is a name only if it is capitalised elsewhere too.
        let d = g("Melanie is here. I told Melanie.");
        assert!(d.entities.iter().any(|e| e.name == "Melanie"));
        let d = g("Thanks! Melanie's painting is great.");
        assert!(d.entities.iter().all(|e| e.name != "Melanie's"));
        // Caption words are not the speaker's.
        let d = g("Look! [shares a photo: a man in Paris]");
        assert!(d.entities.iter().all(|e| e.name != "Paris"));
    }

    #[test]
    fn entities_are_deduplicated() {
        let d = g("I live in Berlin. Berlin is great, I love Berlin.");
        assert_eq!(d.entities.iter().filter(|e| e.name == "Berlin").count(), 1);
        assert_eq!(entity(&d, "Berlin").kind, "place");
        let mut keys: Vec<_> = d
            .relations
            .iter()
            .map(|r| (r.predicate.clone(), r.object.clone()))
            .collect();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn odd_input_never_panics() {
        for t in [
            "",
            " ",
            "I",
            "my",
            "I am",
            "I'm a",
            "my mom",
            "my mom's",
            "my mom's name is",
            "I have a",
            "I live in",
            "I went to",
            "My birthday is",
            "İ live in İstanbul",
            "東京 I live in 東京",
            "I love 🙂",
            "my   dog,",
            "I'm from the",
            "Mr. Smith went to Washington.",
            "I have a guinea",
            "My kids , and",
            "I work at home.",
            "... I ... live ... in ... ",
            "I'm a single",
        ] {
            let d = g(t);
            assert_eq!(d.entities[0].name, "Caroline");
        }
        let d = g("İ live in İstanbul");
        assert!(d.relations.iter().all(|r| !r.object.is_empty()));
    }
}
