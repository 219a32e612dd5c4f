//! Slots from clauses: what a [`Clause`] says about where someone lives, where and as what
//! they work, their partner and pets, and their tastes — set, or ended.
//!
//! The grammar is in [`super::clause`]; this module is the lexicon. A verb class is a list of
//! (lemma, preposition) entries, so a new verb for an existing slot is one entry. A clause
//! gives a slot operation only when it is asserted (not a question, hypothetical or intent),
//! and not about the future; a negated clause, or one that says "anymore"/"no longer"/"used
//! to", ends the value it names instead of setting it.
//!
//! | slot | predicate | sets | ends |
//! |---|---|---|---|
//! | residence | `LIVES_IN` | live in, move to, relocate to, settle in, be based in, be in X or in a home in X (no trip), "X is home", "our new flat in X" | move out of / away from, leave X, negated or past "live in X" |
//! | employer | `WORKS_AT` | work at/for, join X, start at, get a job at, be hired by, teach at, a job noun "at X" | quit, leave X, resign, retire, be laid off / fired / let go, lose one's job, stop working |
//! | job | `HAS_JOB` | be a JOB, work as, become, be promoted to, retrain as | retire, "not a JOB anymore" |
//! | partner | `PARTNER_OF` | date, marry, be married/engaged to, "X and I got married" | break up with, split up, divorce, separate |
//! | pet | `HAS_PET` | (the possessive patterns in `graph`) | die, pass away, be put down / rehomed, lose X |
//! | likes / dislikes | `LIKES`, `DISLIKES` | like, love, enjoy, be into, be a fan of, … / hate, dislike, can't stand, not like | "used to like", stop liking, go off, lose interest in; each sets the other's end |

use super::clause::{Clause, Mood, Subject, Tense, lemma};
use super::words::{FINITE_AUXILIARIES, Tok, is_stopword, object_phrase};

/// A slot of the graph that one clause can set or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Residence,
    Employer,
    Job,
    Partner,
    Pet,
    Likes,
    Dislikes,
    /// Someone else's diet ("my wife is vegetarian"); the speaker's own is a Tier 4 rule.
    Diet,
    /// Someone else's allergy or intolerance ("my son is allergic to nuts").
    Allergy,
}

impl Slot {
    /// The relation's predicate.
    pub fn predicate(self) -> &'static str {
        match self {
            Slot::Residence => "LIVES_IN",
            Slot::Employer => "WORKS_AT",
            Slot::Job => "HAS_JOB",
            Slot::Partner => "PARTNER_OF",
            Slot::Pet => "HAS_PET",
            Slot::Likes => "LIKES",
            Slot::Dislikes => "DISLIKES",
            Slot::Diet => "HAS_DIET",
            Slot::Allergy => "ALLERGIC_TO",
        }
    }

    /// One value at a time: a newer value supersedes the older.
    pub fn exclusive(self) -> bool {
        matches!(
            self,
            Slot::Residence | Slot::Employer | Slot::Job | Slot::Partner
        )
    }

    /// The entity kind of the slot's values.
    pub fn kind(self) -> &'static str {
        match self {
            Slot::Residence => "place",
            Slot::Employer => "organization",
            Slot::Partner => "person",
            Slot::Job | Slot::Pet | Slot::Likes | Slot::Dislikes | Slot::Diet | Slot::Allergy => {
                "thing"
            }
        }
    }
}

/// What one clause does to one slot of one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub who: Subject,
    pub slot: Slot,
    /// The value set, or the value ended (`None`: whatever the slot holds).
    pub value: Option<String>,
    pub end: bool,
}

/// How a verb entry acts on its object.
#[derive(Debug, Clone, Copy)]
enum Act {
    Set(Slot),
    End(Slot),
    /// Ends the employer and the job.
    EndWork,
    /// "leave X": ends whichever slot holds X (residence, employer or partner).
    Leave,
    /// A verb of getting ("buy", "get", "land", "rent"): its object names the slot — a home
    /// ("a flat in Porto") sets the residence, a job ("a job at Canva") the employer.
    Take,
    /// A verb of giving up a home ("sell"): "sold my flat in Leeds" ends that residence.
    GiveUpHome,
    /// "call X home": X is where the subject lives.
    CallHome,
}

/// (lemma, preposition words after the verb (empty: a direct object), action).
#[rustfmt::skip]
const LEXICON: &[(&str, &[&str], Act)] = &[
    ("live", &["in"], Act::Set(Slot::Residence)),
    ("live", &["at"], Act::Set(Slot::Residence)),
    ("reside", &["in"], Act::Set(Slot::Residence)),
    ("move", &["to"], Act::Set(Slot::Residence)),
    ("move", &["into"], Act::Set(Slot::Residence)),
    ("move", &["in", "to"], Act::Set(Slot::Residence)),
    ("relocate", &["to"], Act::Set(Slot::Residence)),
    ("settle", &["in"], Act::Set(Slot::Residence)),
    ("base", &["in"], Act::Set(Slot::Residence)),
    ("base", &["out", "of"], Act::Set(Slot::Residence)),
    ("emigrate", &["to"], Act::Set(Slot::Residence)),
    // "my parents retired to Malaga": retiring to a place is moving there.
    ("retire", &["to"], Act::Set(Slot::Residence)),
    ("immigrate", &["to"], Act::Set(Slot::Residence)),
    ("rent", &["in"], Act::Set(Slot::Residence)),
    ("move", &["out", "of"], Act::End(Slot::Residence)),
    ("move", &["away", "from"], Act::End(Slot::Residence)),
    ("move", &["from"], Act::End(Slot::Residence)),
    ("leave", &[], Act::Leave),
    ("buy", &[], Act::Take),
    ("get", &[], Act::Take),
    ("land", &[], Act::Take),
    ("rent", &[], Act::Take),
    ("find", &[], Act::Take),
    ("accept", &[], Act::Take),
    ("take", &[], Act::Take),
    ("secure", &[], Act::Take),
    ("lease", &[], Act::Take),
    // "signed the lease on a flat in Leeds", "signed a contract for a job at Arup".
    ("sign", &[], Act::Take),
    ("sell", &[], Act::GiveUpHome),
    ("call", &[], Act::CallHome),
    ("lose", &["interest", "in"], Act::End(Slot::Likes)),
    ("go", &["off"], Act::End(Slot::Likes)),
    ("move", &["on", "to"], Act::Set(Slot::Likes)),
    ("work", &["at"], Act::Set(Slot::Employer)),
    ("work", &["for"], Act::Set(Slot::Employer)),
    ("join", &[], Act::Set(Slot::Employer)),
    ("start", &["at"], Act::Set(Slot::Employer)),
    ("start", &["with"], Act::Set(Slot::Employer)),
    ("hire", &["by"], Act::Set(Slot::Employer)),
    ("hire", &["at"], Act::Set(Slot::Employer)),
    ("employ", &["by"], Act::Set(Slot::Employer)),
    ("employ", &["at"], Act::Set(Slot::Employer)),
    ("intern", &["at"], Act::Set(Slot::Employer)),
    ("teach", &["at"], Act::Set(Slot::Employer)),
    ("ride", &["for"], Act::Set(Slot::Employer)),
    ("drive", &["for"], Act::Set(Slot::Employer)),
    ("deliver", &["for"], Act::Set(Slot::Employer)),
    ("transfer", &["to"], Act::Set(Slot::Employer)),
    ("quit", &[], Act::EndWork),
    ("resign", &[], Act::EndWork),
    ("resign", &["from"], Act::EndWork),
    ("retire", &[], Act::EndWork),
    ("retire", &["from"], Act::EndWork),
    ("lay", &["off"], Act::EndWork),
    ("fire", &[], Act::EndWork),
    ("let", &["go"], Act::EndWork),
    ("work", &["as"], Act::Set(Slot::Job)),
    ("hand", &["in"], Act::EndWork),
    ("give", &["up"], Act::Leave),
    ("run", &[], Act::Set(Slot::Employer)),
    ("stay", &["in"], Act::Set(Slot::Residence)),
    ("fly", &["for"], Act::Set(Slot::Employer)),
    ("become", &[], Act::Set(Slot::Job)),
    ("promote", &["to"], Act::Set(Slot::Job)),
    ("retrain", &["as"], Act::Set(Slot::Job)),
    ("train", &["as"], Act::Set(Slot::Job)),
    ("start", &["as"], Act::Set(Slot::Job)),
    ("date", &[], Act::Set(Slot::Partner)),
    ("marry", &[], Act::Set(Slot::Partner)),
    ("see", &[], Act::Set(Slot::Partner)),
    ("engage", &["to"], Act::Set(Slot::Partner)),
    ("engage", &[], Act::Set(Slot::Partner)),
    ("wed", &[], Act::Set(Slot::Partner)),
    ("marry", &["to"], Act::Set(Slot::Partner)),
    ("break", &["up", "with"], Act::End(Slot::Partner)),
    ("break", &["up"], Act::End(Slot::Partner)),
    ("split", &["up", "with"], Act::End(Slot::Partner)),
    ("split", &["with"], Act::End(Slot::Partner)),
    ("split", &["up"], Act::End(Slot::Partner)),
    ("split", &[], Act::End(Slot::Partner)),
    ("divorce", &[], Act::End(Slot::Partner)),
    ("separate", &["from"], Act::End(Slot::Partner)),
    ("separate", &[], Act::End(Slot::Partner)),
    ("dump", &[], Act::End(Slot::Partner)),
    ("like", &[], Act::Set(Slot::Likes)),
    ("love", &[], Act::Set(Slot::Likes)),
    ("enjoy", &[], Act::Set(Slot::Likes)),
    ("adore", &[], Act::Set(Slot::Likes)),
    ("prefer", &[], Act::Set(Slot::Likes)),
    ("dig", &[], Act::Set(Slot::Likes)),
    ("hate", &[], Act::Set(Slot::Dislikes)),
    ("dislike", &[], Act::Set(Slot::Dislikes)),
    ("detest", &[], Act::Set(Slot::Dislikes)),
    ("loathe", &[], Act::Set(Slot::Dislikes)),
    ("despise", &[], Act::Set(Slot::Dislikes)),
    ("refuse", &[], Act::Set(Slot::Dislikes)),
    ("avoid", &[], Act::Set(Slot::Dislikes)),
];

/// Copula complements (after "be") that name a taste: "be into X", "be a big fan of X".
#[rustfmt::skip]
const BE_TASTES: &[(&[&str], Slot)] = &[
    (&["into"], Slot::Likes),
    (&["a", "fan", "of"], Slot::Likes),
    (&["a", "big", "fan", "of"], Slot::Likes),
    (&["a", "huge", "fan", "of"], Slot::Likes),
    (&["a", "massive", "fan", "of"], Slot::Likes),
    (&["obsessed", "with"], Slot::Likes),
    (&["crazy", "about"], Slot::Likes),
    (&["mad", "about"], Slot::Likes),
    (&["passionate", "about"], Slot::Likes),
    (&["hooked", "on"], Slot::Likes),
    (&["addicted", "to"], Slot::Likes),
    (&["all", "about"], Slot::Likes),
    (&["sick", "of"], Slot::Dislikes),
    (&["tired", "of"], Slot::Dislikes),
    (&["over"], Slot::Dislikes),
];

/// Verbs whose negation names a taste: "can't stand X" is a dislike, "can't get enough of X"
/// a like (the negation is the idiom's, not a denial).
#[rustfmt::skip]
const NEGATED_TASTES: &[(&str, &[&str], Slot)] = &[
    ("stand", &[], Slot::Dislikes),
    ("bear", &[], Slot::Dislikes),
    ("stomach", &[], Slot::Dislikes),
    ("get", &["enough", "of"], Slot::Likes),
    ("live", &["without"], Slot::Likes),
];

/// Copula complements that end a state: "be done with X".
const BE_ENDS: &[&[&str]] = &[&["done", "with"], &["finished", "with"]];

/// Words around a value that make "be in X" a visit, not a home.
#[rustfmt::skip]
const TRIP_WORDS: &[&str] = &[
    "visit", "visiting", "trip", "holiday", "holidays", "vacation", "placement", "conference",
    "business", "for", "staying", "stay", "weekend", "week", "tour", "touring", "layover",
    "transit", "hotel", "airbnb", "currently", "traveling", "travelling", "hospital",
];

/// Adjectives and adverbs between a copula and "in"/"at": "happy in Enugu", "settled in
/// Lagos", "still at Telefonica".
#[rustfmt::skip]
const BE_ADJECTIVES: &[&str] = &[
    "still", "now", "happy", "happily", "settled", "based", "living", "pretty", "very", "so",
    "really", "quite", "back", "currently", "officially", "finally", "comfortable", "stuck",
    "content", "all", "both", "here", "there", "located", "working", "employed", "permanently",
];

/// Words that make the object of "leave"/"quit" a job.
const JOB_WORDS: &[&str] = &[
    "job", "work", "position", "role", "post", "company", "firm", "employer", "career", "gig",
    "notice",
];

/// Words naming a home.
const HOME_WORDS: &[&str] = &[
    "cottage",
    "bungalow",
    "villa",
    "cabin",
    "farmhouse",
    "townhouse",
    "loft",
    "houseboat",
    "address",
    "flat",
    "apartment",
    "house",
    "place",
    "home",
    "condo",
    "studio",
    "room",
    "town",
    "city",
];

/// The verbs of the lexicon (lemmas), for the clause analysis to recognise a main verb.
pub fn is_lexicon_verb(l: &str) -> bool {
    LEXICON.iter().any(|(v, _, _)| *v == l)
        || matches!(
            l,
            "die" | "pass" | "put" | "rehome" | "lose" | "stop" | "go" | "give" | "eat" | "drink"
        )
}

/// Indefinite pronouns, which never name a slot's value ("seeing someone new").
const INDEFINITE: &[&str] = &[
    "someone",
    "somebody",
    "something",
    "anyone",
    "anybody",
    "anything",
    "everyone",
    "everybody",
    "everything",
    "noone",
    "nobody",
    "nothing",
    "somewhere",
    "anywhere",
];

/// The object of a slot as written: a proper name (capitalised, "of"/"de" joiners allowed),
/// or in an all-lower-case text the words up to a function word. `None` for pronouns and
/// vague words.
pub fn value_at(toks: &[Tok], i: usize, end: usize, all_lower: bool) -> Option<(String, usize)> {
    let mut k = i;
    // Determiners and home words before a name: "my new flat in Fukuoka", "the Oslo flat".
    while k < end
        && (matches!(
            toks[k].word.as_str(),
            "the" | "my" | "our" | "his" | "her" | "their"
        ) || (matches!(toks[k].word.as_str(), "new" | "old") && !toks[k].cap && !all_lower))
    {
        k += 1;
    }
    // "married to his girlfriend Kate", "moved in with my boyfriend Tom": the name after a
    // role.
    if k > i
        && k + 1 < end
        && super::clause::ROLES.contains(&toks[k].word.as_str())
        && toks[k + 1].cap
        && !all_lower
    {
        k += 1;
    }
    let mut words = Vec::new();
    while k < end {
        let t = &toks[k];
        let joiner = !words.is_empty()
            && matches!(
                t.word.as_str(),
                "de" | "del" | "la" | "da" | "do" | "of" | "upon"
            )
            && toks
                .get(k + 1)
                .is_some_and(|n| n.cap && !super::clause::is_time_word(&n.word));
        let ok = if all_lower {
            !is_stopword(&t.word)
                && !super::words::OBJECT_STOP.contains(&t.word.as_str())
                && words.len() < 3
                && t.word.chars().next().is_some_and(char::is_alphabetic)
        } else {
            (t.cap
                && t.word.chars().next().is_some_and(char::is_alphabetic)
                && !super::clause::is_time_word(&t.word)
                && !matches!(t.word.as_str(), "i" | "i'm" | "i've"))
                || joiner
        };
        if !ok {
            break;
        }
        words.push(written(t));
        k += 1;
        if t.boundary_after {
            break;
        }
    }
    if words.is_empty() {
        return None;
    }
    let v = words.join(" ");
    let v = v.trim_end_matches("'s").trim_end_matches('\'').to_string();
    let lower = v.to_lowercase();
    if matches!(
        lower.as_str(),
        "i" | "me" | "it" | "there" | "here" | "home" | "work" | "them"
    ) || lower
        .split(' ')
        .next()
        .is_some_and(|f| INDEFINITE.contains(&f))
    {
        return None;
    }
    Some((v, k))
}

/// A token as written (first letter upper case when the token was capitalised).
fn written(t: &Tok) -> String {
    if t.cap {
        let mut c = t.word.chars();
        c.next()
            .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
    } else {
        t.word.clone()
    }
}

/// A word that can only be a verb or auxiliary, where a preposition search must stop.
fn verb_like_word(w: &str) -> bool {
    matches!(
        w,
        "is" | "are"
            | "was"
            | "were"
            | "am"
            | "have"
            | "has"
            | "had"
            | "will"
            | "would"
            | "did"
            | "do"
            | "does"
    )
}

/// "my new flat in Fukuoka", "the house in Haarlem", "the lease on a flat in Leeds": the place
/// after a home word among the object's first five words.
fn home_place(toks: &[Tok], i: usize, end: usize, all_lower: bool) -> Option<String> {
    let home = (i..end.min(i + 5)).find(|&k| HOME_WORDS.contains(&toks[k].word.as_str()))?;
    // "a flat in Leith", "a farmhouse outside Omagh", "a cottage near Keswick".
    let k = (home + 1..end.min(home + 3))
        .find(|&k| matches!(toks[k].word.as_str(), "in" | "outside" | "near"))?;
    value_at(toks, k + 1, end, all_lower).map(|(v, _)| v)
}

/// The last place named ("in X", "to X") before token `k` in the sentence: what "here" and
/// "there" point to.
fn last_place_before(toks: &[Tok], k: usize, all_lower: bool) -> Option<String> {
    (0..k).rev().find_map(|j| {
        matches!(toks[j].word.as_str(), "in" | "to")
            .then(|| value_at(toks, j + 1, k, all_lower).map(|(v, _)| v))
            .flatten()
    })
}

/// Slot facts carried by noun phrases rather than verbs, with the token each starts at (the
/// caller keeps those in an asserted clause about now):
/// "our new apartment in Hangzhou", "the keys to my new flat in Fukuoka", "here in Amman",
/// "back home in Pretoria", "first night in Haarlem" (residence of the speaker); "my job at
/// Siemens", "first week at Ericsson" (employer of the speaker); "her job at the museum",
/// "his new flat in Bergen" (of the possessor, `Subject::Other` here: the caller puts the
/// subject of the clause the phrase stands in, whom "his"/"her"/"their" agrees with).
pub fn noun_phrase_ops(toks: &[Tok], all_lower: bool) -> Vec<(usize, Op)> {
    let mut out: Vec<(usize, Op)> = Vec::new();
    let w = |k: usize| toks.get(k).map_or("", |t| t.word.as_str());
    for k in 0..toks.len() {
        // "his/her/their new flat in X", "her job at X": the possessor is the subject of the
        // clause the phrase stands in, which the caller puts for `Subject::Other`.
        if matches!(w(k), "his" | "her" | "their") {
            let j = k + 1 + usize::from(w(k + 1) == "new");
            let home = HOME_WORDS.contains(&w(j)) && w(j) != "home" && w(k + 1) == "new";
            let job = matches!(w(j), "job" | "position" | "role");
            let prep = if home { "in" } else { "at" };
            if (home || job)
                && w(j + 1) == prep
                && let Some((v, _)) = value_at(toks, j + 2, toks.len(), all_lower)
            {
                let op = Op {
                    who: Subject::Other,
                    slot: if home {
                        Slot::Residence
                    } else {
                        Slot::Employer
                    },
                    value: Some(v),
                    end: false,
                };
                if !out.iter().any(|(_, o)| *o == op) {
                    out.push((k, op));
                }
            }
        }
        let mut push = |slot: Slot, v: String| {
            let op = Op {
                who: Subject::Speaker,
                slot,
                value: Some(v),
                end: false,
            };
            if !out.iter().any(|(_, o)| *o == op) {
                out.push((k, op));
            }
        };
        // "my/our (new) flat in X".
        if matches!(w(k), "my" | "our") {
            let mut j = k + 1;
            if w(j) == "new" {
                j += 1;
            }
            if HOME_WORDS.contains(&w(j))
                && w(j) != "home"
                && w(j + 1) == "in"
                && (w(k + 1) == "new" || w(k) == "our")
                && let Some((v, _)) = value_at(toks, j + 2, toks.len(), all_lower)
            {
                push(Slot::Residence, v);
            }
            if matches!(w(j), "job" | "position" | "role")
                && w(j + 1) == "at"
                && let Some((v, _)) = value_at(toks, j + 2, toks.len(), all_lower)
            {
                push(Slot::Employer, v);
            }
        }
        // "home is still Istanbul", "my home is Lagos now", "home for me is Lisbon" (not "the
        // home is a mess").
        let for_us = if w(k + 1) == "for" && matches!(w(k + 2), "me" | "us") {
            2
        } else {
            0
        };
        if w(k) == "home"
            && matches!(w(k + 1 + for_us), "is" | "'s")
            && (k == 0
                || matches!(w(k - 1), "my" | "our" | "but" | "and" | "now")
                || toks[k - 1].boundary_after)
            && let Some((v, _)) = value_at(
                toks,
                super::words::skip_adverbs(toks, k + 2 + for_us),
                toks.len(),
                all_lower,
            )
        {
            push(Slot::Residence, v);
        }
        // "here in X", "back home in X", and a sentence that opens "Back in X".
        if (w(k) == "here"
            || (w(k) == "home" && w(k.wrapping_sub(1)) == "back")
            || (k == 0 && w(k) == "back"))
            && w(k + 1) == "in"
            && let Some((v, _)) = value_at(toks, k + 2, toks.len(), all_lower)
        {
            push(Slot::Residence, v);
        }
        // "first night in X", "first week at X".
        if matches!(w(k), "first")
            && matches!(
                w(k + 1),
                "night" | "nights" | "week" | "day" | "days" | "month" | "shift"
            )
            && matches!(w(k + 2), "in" | "at")
            && let Some((v, _)) = value_at(
                toks,
                k + 3,
                toks.len(),
                all_lower || !toks[k + 3..].iter().any(|t| t.cap),
            )
        {
            push(
                if w(k + 2) == "in" {
                    Slot::Residence
                } else {
                    Slot::Employer
                },
                v,
            );
        }
    }
    out
}

/// The first proper name (or, in lower-case text, the first content word run) in `i..end`.
fn first_name_in(toks: &[Tok], i: usize, end: usize, all_lower: bool) -> Option<String> {
    (i..end).find_map(|k| {
        if all_lower {
            return None;
        }
        if toks[k].cap && (k == 0 || !toks[k - 1].cap) {
            value_at(toks, k, end, all_lower).map(|(v, _)| v)
        } else {
            None
        }
    })
}

/// A job phrase at `i` ("a nurse", "senior software engineer"): its words when the head is a
/// job noun.
fn job_at(toks: &[Tok], i: usize, end: usize) -> Option<(String, usize)> {
    let p = object_phrase(toks, i, 4)?;
    if p.end > end {
        return None;
    }
    let mut e = p.end;
    // The head is the last word that is a job noun ("a nurse at St Mary's" stops at "at").
    while e > p.start {
        let w = toks[e - 1].word.as_str();
        if super::graph::is_job_noun(w) {
            break;
        }
        e -= 1;
    }
    if e == p.start {
        return None;
    }
    let words: Vec<&str> = toks[p.start..e].iter().map(|t| t.word.as_str()).collect();
    Some((words.join(" "), e))
}

/// Slot operations of one clause of sentence `toks`.
///
/// `future_mention`: the sentence names a date after the turn ("in June", "next month"), so a
/// present progressive ("we're getting married in June") speaks of a plan.
///
/// `antecedent`: the thing last named in the turn, which a pronoun object ("I love it now",
/// "I can't stand the stuff") stands for.
pub fn ops(
    toks: &[Tok],
    c: &Clause,
    all_lower: bool,
    future_mention: bool,
    antecedent: Option<&str>,
) -> Vec<Op> {
    let mut out = Vec::new();
    // The thing a taste is about: a noun phrase, or a pronoun's antecedent.
    let thing = |at: usize, end: usize| -> Option<String> {
        if anaphor(toks, at) {
            antecedent.map(str::to_string)
        } else {
            taste_object(toks, at, end)
        }
    };
    let Some(verb) = c.verb.as_deref() else {
        return out;
    };
    // Leaving presupposes being there: "thinking about leaving Singapore", "should I quit
    // Deloitte?", "if I moved from Barcelona…", "I couldn't give up cheese", "she refuses to
    // leave Gdansk". Whatever the clause's mood, the value holds now.
    let leaving_not_done = c.mood != Mood::Asserted
        || c.tense == Tense::Future
        || (c.negated && !c.ended)
        || (future_mention && toks[c.verb_at].word.ends_with("ing"));
    if leaving_not_done && !c.ended && !c.used_to {
        out.extend(presupposed(toks, c, verb, all_lower));
    }
    if matches!(c.mood, Mood::Asked | Mood::Hypothetical | Mood::Intended) {
        return out;
    }
    if c.subject == Subject::Other && !matches!(verb, "be" | "die" | "pass" | "replace") {
        return out;
    }
    let future = c.tense == Tense::Future
        || (future_mention
            && matches!(c.tense, Tense::Present)
            && toks[c.verb_at].word.ends_with("ing"));
    let over = c.negated || c.ended;
    let end = c.end;
    let mut push = |who: &Subject, slot: Slot, value: Option<String>, is_end: bool| {
        out.push(Op {
            who: who.clone(),
            slot,
            value,
            end: is_end,
        });
    };
    let subjects: Vec<Subject> = std::iter::once(c.subject.clone())
        .chain(c.with.iter().cloned())
        .collect();
    let words: Vec<&str> = toks[c.rest.min(end)..end]
        .iter()
        .map(|t| t.word.as_str())
        .collect();
    let sentence_words: Vec<&str> = toks.iter().map(|t| t.word.as_str()).collect();

    // Skip particles and adverbs between the verb and its preposition.
    let mut r = c.rest;
    while r < end
        && matches!(
            toks[r].word.as_str(),
            "back"
                | "over"
                | "home"
                | "down"
                | "all"
                | "permanently"
                | "officially"
                | "full-time"
                | "part-time"
                | "remotely"
                | "nights"
                | "weekends"
                | "here"
                | "there"
                | "just"
                | "finally"
                | "now"
                | "recently"
                | "fully"
                | "across"
                | "abroad"
        )
        && !(toks[r].word == "over" && toks.get(r + 1).is_some_and(|t| t.word != "to"))
    {
        r += 1;
    }

    // "It was amazing", "the film was boring": a judgement of a past experience holds; any
    // other past copula ("I was a nurse", "she was in Rome") does not say what holds now.
    if verb == "be"
        && c.tense == Tense::Past
        && !c.used_to
        && matches!(toks[c.verb_at].word.as_str(), "was" | "were")
    {
        if let Some((slot, v)) = thing_taste(toks, c, end, antecedent)
            && !c.ended
            && !matches!(c.subject, Subject::Speaker)
        {
            let slot = if c.negated { opposite(slot) } else { slot };
            push(&Subject::Speaker, slot, Some(v.clone()), false);
            push(&Subject::Speaker, opposite(slot), Some(v), true);
        }
        return out;
    }
    // Copula tastes: "be into X", "be all about X" (before the adverbs are skipped), and the
    // participles the clause reads as a passive verb ("is obsessed with X", "got hooked on X").
    // A linking verb works as the copula does: "have gotten really into salsa", "grew
    // obsessed with chess".
    let linked = super::words::skip_adverbs(toks, c.rest);
    let taste_starts: &[usize] = if c.subject == Subject::Other {
        // A thing as subject: "it's all about mango" ([`thing_taste`]).
        &[]
    } else if verb == "be" {
        &[c.verb_at + 1, c.rest, r]
    } else if matches!(verb, "get" | "become" | "grow") {
        &[c.rest, linked]
    } else if toks[c.verb_at].word.ends_with("ed") {
        &[c.verb_at]
    } else {
        &[]
    };
    for &at in taste_starts {
        for (seq, slot) in BE_TASTES {
            if let Some(e) = super::words::match_seq(toks, at, seq)
                && e <= end
                && let Some(v) = thing(e, end)
            {
                let slot = *slot;
                for s in &subjects {
                    if over {
                        push(s, slot, Some(v.clone()), true);
                    } else if !future {
                        push(s, slot, Some(v.clone()), false);
                        push(s, opposite(slot), Some(v.clone()), true);
                    }
                }
                return out;
            }
        }
    }
    // Idioms whose negation is the taste: "can't stand X", "can't get enough of X".
    if c.negated && !c.ended && !future {
        for (lemma, seq, slot) in NEGATED_TASTES {
            if *lemma == verb
                && let Some(e) = super::words::match_seq(toks, r, seq)
                && e <= end
                && let Some(v) = thing(e, end)
            {
                for s in &subjects {
                    push(s, *slot, Some(v.clone()), false);
                    push(s, opposite(*slot), Some(v.clone()), true);
                }
                return out;
            }
        }
    }

    // Copula: jobs, tastes, "X is home".
    if verb == "be" {
        let at = r;
        // "Hamilton is my favourite", "my favourite snack is mango": the speaker likes it.
        let before = &toks[c.verb_at.saturating_sub(5)..c.verb_at];
        let favourite = |ts: &[Tok]| {
            ts.windows(2).any(|w| {
                matches!(w[0].word.as_str(), "my" | "our")
                    && matches!(w[1].word.as_str(), "favourite" | "favorite" | "fave")
            }) || ts.windows(3).any(|w| {
                matches!(w[0].word.as_str(), "my" | "our")
                    && matches!(w[2].word.as_str(), "favourite" | "favorite" | "fave")
            })
        };
        if !future && !c.negated && !c.ended {
            let value = if favourite(before) {
                taste_object(toks, c.rest, end)
            } else if favourite(&toks[c.rest..end.min(c.rest + 4)]) {
                match &c.subject {
                    Subject::Person {
                        name: Some(n),
                        role: None,
                    } => Some(n.clone()),
                    _ => None,
                }
            } else {
                None
            };
            if let Some(v) = value {
                push(&Subject::Speaker, Slot::Likes, Some(v.clone()), false);
                push(&Subject::Speaker, Slot::Dislikes, Some(v), true);
                return out;
            }
        }
        // A thing as the subject and a taste in the complement: "running is my thing",
        // "jazz isn't my cup of tea", "pasta is my go-to dinner", "it's all knitting now",
        // "running is torture for me".
        if let Some((slot, v)) = thing_taste(toks, c, end, antecedent) {
            let slot = if c.negated && !c.ended {
                opposite(slot)
            } else {
                slot
            };
            if c.ended {
                push(&Subject::Speaker, slot, Some(v), true);
            } else if !future {
                push(&Subject::Speaker, slot, Some(v.clone()), false);
                push(&Subject::Speaker, opposite(slot), Some(v), true);
            }
            return out;
        }
        for seq in BE_ENDS {
            if let Some(e) = super::words::match_seq(toks, at, seq)
                && let Some(v) = taste_object(toks, e, end)
            {
                for s in &subjects {
                    push(s, Slot::Likes, Some(v.clone()), true);
                }
                return out;
            }
        }
        // "Berlin is home now", "Edinburgh is home for him".
        if let Subject::Person {
            name: Some(place),
            role: None,
        } = &c.subject
            && words.first() == Some(&"home")
            && !over
        {
            push(
                &Subject::Speaker,
                Slot::Residence,
                Some(place.clone()),
                false,
            );
            return out;
        }
        // "I'm Bangalore-based" (the hyphen splits the word): where the subject is based.
        let k = super::words::skip_adverbs(toks, c.rest);
        if matches!(c.subject, Subject::Speaker | Subject::Person { .. })
            && !future
            && toks.get(k + 1).is_some_and(|t| t.word == "based")
            && k + 2 >= end
            && (toks[k].cap || all_lower)
        {
            for s in &subjects {
                push(s, Slot::Residence, Some(written(&toks[k])), over);
            }
            return out;
        }
        // "my wife is vegetarian", "my son is allergic to nuts": another person's diet (the
        // speaker's own is a Tier 4 rule).
        {
            let mut k = at;
            while k < end && BE_ADJECTIVES.contains(&toks[k].word.as_str()) {
                k += 1;
            }
            let w0 = toks.get(k).map_or("", |t| t.word.as_str());
            let diet = DIET_WORDS
                .contains(&w0)
                .then(|| (Slot::Diet, w0.to_string()));
            let allergy = || {
                let to = match w0 {
                    "allergic" | "intolerant" => k + 1,
                    _ if toks.get(k + 1).is_some_and(|t| t.word == "intolerant") => {
                        return Some((Slot::Allergy, w0.to_string()));
                    }
                    _ => return None,
                };
                toks.get(to)
                    .filter(|t| t.word == "to")
                    .and_then(|_| taste_object(toks, to + 1, end))
                    .map(|v| (Slot::Allergy, v))
            };
            if let Some((slot, v)) = diet.or_else(allergy)
                && !future
            {
                for s in subjects
                    .iter()
                    .filter(|s| matches!(s, Subject::Person { .. }))
                {
                    push(s, slot, Some(v.clone()), over);
                }
                return out;
            }
        }
        // "a nurse (at St Mary's)".
        if matches!(c.subject, Subject::Speaker | Subject::Person { .. })
            && let Some((job, e)) = job_at(toks, at, end)
        {
            for s in &subjects {
                if over {
                    push(s, Slot::Job, Some(job.clone()), true);
                } else if !future {
                    push(s, Slot::Job, Some(job.clone()), false);
                    if toks
                        .get(e)
                        .is_some_and(|t| matches!(t.word.as_str(), "at" | "for" | "with"))
                        && let Some((org, _)) = value_at(toks, e + 1, end, all_lower)
                    {
                        push(s, Slot::Employer, Some(org), false);
                    }
                }
            }
            return out;
        }
        // "I'm in Cork these days" (not a visit), "happy in Enugu", "settled in Lagos", "at
        // Chevron", "married to".
        if matches!(c.subject, Subject::Speaker | Subject::Person { .. }) {
            let mut at = at;
            while at < end && BE_ADJECTIVES.contains(&toks[at].word.as_str()) {
                at += 1;
            }
            let w0 = toks.get(at).map(|t| t.word.as_str()).unwrap_or("");
            if w0 == "retired" && !c.negated && !future {
                for s in &subjects {
                    push(s, Slot::Employer, None, true);
                    push(s, Slot::Job, None, true);
                }
                return out;
            }
            if w0 == "at"
                && !future
                && c.tense != Tense::Past
                && !sentence_words.iter().any(|w| {
                    matches!(
                        *w,
                        "visit"
                            | "visiting"
                            | "trip"
                            | "holiday"
                            | "vacation"
                            | "conference"
                            | "party"
                            | "wedding"
                            | "concert"
                            | "airport"
                            | "hotel"
                            | "gym"
                    )
                })
                && toks.get(at + 1).is_some_and(|t| t.cap || t.word == "the")
                && let Some((v, _)) = value_at(toks, at + 1, end, all_lower)
            {
                for s in &subjects {
                    push(s, Slot::Employer, Some(v.clone()), over);
                }
                return out;
            }
            // "for a week" is a visit, "for three years" a home.
            let long_stay = |k: usize| {
                sentence_words[k + 1..sentence_words.len().min(k + 4)]
                    .iter()
                    .any(|w| {
                        matches!(
                            *w,
                            "years" | "year" | "decade" | "decades" | "ages" | "life" | "good"
                        )
                    })
            };
            let trip = sentence_words
                .iter()
                .enumerate()
                .any(|(k, w)| TRIP_WORDS.contains(w) && !(*w == "for" && long_stay(k)));
            // "we're in a little place in Sintra": the place of the home word.
            if w0 == "in"
                && !trip
                && !future
                && c.tense != Tense::Past
                && let Some(v) = home_place(toks, at + 1, end, all_lower)
                    .or_else(|| value_at(toks, at + 1, end, all_lower).map(|(v, _)| v))
            {
                for s in &subjects {
                    push(s, Slot::Residence, Some(v.clone()), over);
                }
                return out;
            }
            // "Tom and I are together", "we're no longer together": the partner.
            if w0 == "together" && !future {
                let partner = c.with.iter().find_map(|w| match w {
                    Subject::Person { name: Some(n), .. } => Some(n.clone()),
                    _ => None,
                });
                if partner.is_some() || over {
                    push(&c.subject, Slot::Partner, partner, over);
                }
                return out;
            }
            if matches!(w0, "married" | "engaged") && !over && !future {
                if toks.get(at + 1).is_some_and(|t| t.word == "to")
                    && let Some((v, _)) = value_at(toks, at + 2, end, all_lower)
                {
                    push(&c.subject, Slot::Partner, Some(v), false);
                }
                return out;
            }
        }
    }

    // "my wife doesn't eat meat", "he can't drink milk": another person's diet.
    if matches!(verb, "eat" | "drink")
        && c.negated
        && !c.ended
        && !future
        && let Some(v) = taste_object(toks, r, end)
    {
        for s in subjects
            .iter()
            .filter(|s| matches!(s, Subject::Person { .. }))
        {
            push(s, Slot::Diet, Some(format!("no {v}")), false);
        }
        return out;
    }
    // Replacements: "swapped Notting Hill for Crystal Palace", "switched from coffee to
    // tea", "left Deloitte for a job at Google", "green tea has replaced coffee".
    if !over
        && !future
        && let Some(ops) = replacement(toks, c, verb, r, end, all_lower, &sentence_words)
    {
        out.extend(ops);
        return out;
    }
    // "got made store manager", "was appointed head of sales": a job given.
    if matches!(verb, "make" | "appoint" | "name")
        && c.verb_at > 0
        && matches!(
            toks[c.verb_at - 1].word.as_str(),
            "got" | "get" | "was" | "were" | "been" | "just" | "finally" | "officially"
        )
        && !over
        && !future
        && let Some((job, _)) = job_at(toks, r, end)
    {
        for s in &subjects {
            push(s, Slot::Job, Some(job.clone()), false);
        }
        return out;
    }
    // Lexicon verbs.
    let lex: Vec<&(&str, &[&str], Act)> = LEXICON.iter().filter(|(v, _, _)| *v == verb).collect();
    if lex.is_empty() {
        // "I fix laptops at a repair shop called TechFix", "waiting tables at the Marriott":
        // the work one does now, at a place of work.
        if !over
            && !future
            && c.tense != Tense::Past
            && let Some(v) = workplace(toks, c, verb, r, end, all_lower, &sentence_words)
        {
            for s in &subjects {
                push(s, Slot::Employer, Some(v.clone()), false);
            }
            return out;
        }
        return death_or_loss(toks, c, verb, r, end, out);
    }
    // The nearest preposition sequence that matches (the longer on a tie); then a
    // direct-object entry.
    let mut best: Option<(usize, Act)> = None;
    let mut best_key = (usize::MAX, 0usize);
    for (_, preps, act) in &lex {
        if preps.is_empty() {
            continue;
        }
        // The preposition may follow a short object or a "with" phrase: "teach chemistry at
        // Hillcrest", "living with her fiancé in Vienna", "moved across the river to Gangnam".
        for skip in 0..=4 {
            let from = r + skip;
            if from >= end
                || (skip > 0
                    && (toks[from - 1].boundary_after || verb_like_word(&toks[from - 1].word)))
            {
                break;
            }
            if let Some(e) = super::words::match_seq(toks, from, preps)
                && e <= end
            {
                if skip < best_key.0 || (skip == best_key.0 && preps.len() > best_key.1) {
                    best = Some((e, *act));
                    best_key = (skip, preps.len());
                }
                break;
            }
        }
    }
    if best.is_none()
        && let Some((_, _, act)) = lex.iter().find(|(_, p, _)| p.is_empty())
    {
        best = Some((r, *act));
    }
    let Some((at, act)) = best else {
        return death_or_loss(toks, c, verb, r, end, out);
    };
    // "I'm staying in Limerick for a few weeks" is a visit; "I stay in Nagoya" a home.
    if verb == "stay" && toks[c.verb_at].word.ends_with("ing") {
        return out;
    }
    // Taste verbs take a thing, the others a name.
    match act {
        Act::Set(slot @ (Slot::Likes | Slot::Dislikes)) => {
            // "love to cook" / "hate running": an infinitive is named as its gerund.
            let mut at = at;
            let infinitive = toks.get(at).is_some_and(|t| t.word == "to");
            if infinitive {
                at += 1;
            }
            let Some(v) = thing(at, end) else {
                return out;
            };
            let v = if infinitive && !v.contains(' ') {
                gerund(&v)
            } else {
                v
            };
            // "don't like X" is a dislike; "used to like X" ends the like.
            let slot = if c.negated && slot == Slot::Likes && !c.ended {
                Slot::Dislikes
            } else if c.negated && slot == Slot::Dislikes && !c.ended {
                Slot::Likes
            } else {
                slot
            };
            for s in &subjects {
                if c.ended {
                    push(s, slot, Some(v.clone()), true);
                } else if !future {
                    push(s, slot, Some(v.clone()), false);
                    push(s, opposite(slot), Some(v.clone()), true);
                }
            }
        }
        Act::Set(Slot::Job) => {
            // "works as a pharmacist at Boots": the employer too.
            if !over
                && !future
                && let Some((_, e)) = job_at(toks, at, end)
                && toks
                    .get(e)
                    .is_some_and(|t| matches!(t.word.as_str(), "at" | "for" | "with"))
                && let Some((org, _)) = value_at(toks, e + 1, end, all_lower)
            {
                for s in &subjects {
                    push(s, Slot::Employer, Some(org.clone()), false);
                }
            }
            if let Some((job, _)) = job_at(toks, at, end)
                .or_else(|| value_at(toks, at, end, true).map(|(v, e)| (v.to_lowercase(), e)))
            {
                for s in &subjects {
                    if over {
                        push(s, Slot::Job, Some(job.clone()), true);
                    } else if !future {
                        push(s, Slot::Job, Some(job.clone()), false);
                    }
                }
            }
        }
        Act::Set(slot) => {
            // "work as a nurse", "started as a junior accountant": a job phrase.
            let job = (slot == Slot::Job)
                .then(|| job_at(toks, at, end).map(|(j, _)| j))
                .flatten();
            let value = job
                .or_else(|| value_at(toks, at, end, all_lower).map(|(v, _)| v))
                .or_else(|| match slot {
                    // "my new flat in Fukuoka": a name after a home word.
                    Slot::Residence => home_place(toks, at, end, all_lower),
                    // "Michal and I got married": the partner is the other subject.
                    Slot::Partner => c.with.iter().find_map(|w| match w {
                        Subject::Person { name: Some(n), .. } => Some(n.clone()),
                        _ => None,
                    }),
                    _ => None,
                });
            // Deixis: "I've lived here long enough", "she's been living there since".
            let value = match value {
                Some(v) if matches!(v.to_lowercase().as_str(), "here" | "there") => None,
                v => v,
            }
            .or_else(|| {
                (slot == Slot::Residence
                    && toks
                        .get(at)
                        .is_some_and(|t| matches!(t.word.as_str(), "here" | "there")))
                .then(|| last_place_before(toks, c.verb_at, all_lower))
                .flatten()
            });
            // "a bakery called Dolce": the name.
            let value = match value {
                None if slot == Slot::Employer => (at..end.min(at + 6))
                    .find(|&k| matches!(toks[k].word.as_str(), "called" | "named"))
                    .and_then(|k| value_at(toks, k + 1, end, all_lower).map(|(v, _)| v)),
                v => v,
            };
            // "work at a bakery", "run a little guesthouse": a lower-case employer with an
            // article.
            let value = value.or_else(|| {
                (slot == Slot::Employer && matches!(verb, "work" | "run"))
                    .then(|| object_phrase(toks, at, 4))
                    .flatten()
                    .filter(|p| matches!(p.det.as_deref(), Some("a" | "an" | "the")))
                    .map(|p| {
                        let w: Vec<&str> = toks[p.start..p.end]
                            .iter()
                            .map(|t| t.word.as_str())
                            .collect();
                        format!("{} {}", p.det.clone().unwrap_or_default(), w.join(" "))
                    })
            });
            // "joined the Sierra Club": a membership, not an employer.
            let value = value.filter(|v| {
                verb != "join"
                    || !v
                        .split_whitespace()
                        .last()
                        .is_some_and(|w| MEMBERSHIPS.contains(&w.to_lowercase().as_str()))
            });
            let Some(value) = value else {
                // "we broke up", "I got divorced": the slot ends whatever it holds.
                if slot == Slot::Partner && over {
                    for s in &subjects {
                        push(s, slot, None, true);
                    }
                }
                return out;
            };
            // "she's lived in Berlin with me": the speaker lives there too.
            let mut subjects = subjects.clone();
            if slot == Slot::Residence
                && !subjects.contains(&Subject::Speaker)
                && (super::words::contains_seq(&words, &["with", "me"])
                    || super::words::contains_seq(&words, &["with", "us"]))
            {
                subjects.push(Subject::Speaker);
            }
            // The simple past of a state ("I lived in Rome", "she worked at Tesco") does not
            // say it holds now; the past of a change ("I moved to Leeds") does.
            // A span that reaches the turn ("my whole life", "all my life") keeps it true.
            let to_now = super::words::contains_seq(&words, &["whole", "life"])
                || super::words::contains_seq(&words, &["entire", "life"])
                || super::words::contains_seq(&words, &["all", "my", "life"])
                || super::words::contains_seq(&words, &["all", "our", "lives"]);
            let past_state = c.tense == Tense::Past
                && !c.used_to
                && !to_now
                && matches!(
                    verb,
                    "live" | "reside" | "stay" | "work" | "teach" | "rent" | "employ" | "date"
                );
            for s in &subjects {
                if over || (c.used_to) {
                    push(s, slot, Some(value.clone()), true);
                } else if !future && !past_state {
                    push(s, slot, Some(value.clone()), false);
                }
            }
            // "moved from Osaka to Fukuoka": the origin ends.
            if slot == Slot::Residence
                && verb == "move"
                && !over
                && !future
                && let Some(k) = (c.rest..at).find(|&k| toks[k].word == "from")
                && let Some((v, _)) = value_at(toks, k + 1, end, all_lower)
            {
                for s in &subjects {
                    push(s, Slot::Residence, Some(v.clone()), true);
                }
            }
        }
        Act::End(slot) => {
            if future || c.negated {
                return out;
            }
            let value = if matches!(slot, Slot::Likes | Slot::Dislikes) {
                thing(at, end)
            } else {
                value_at(toks, at, end, all_lower).map(|(v, _)| v)
            };
            let partner = match (&value, &c.with[..]) {
                (Some(v), _) => Some(v.clone()),
                (None, [Subject::Person { name: Some(n), .. }, ..]) => Some(n.clone()),
                _ => None,
            };
            let value = if slot == Slot::Partner {
                partner
            } else {
                value
            };
            push(&c.subject, slot, value.clone(), true);
            // "moved out of Oslo to Bergen".
            if slot == Slot::Residence
                && let Some(k) = (at..end).find(|&k| toks[k].word == "to")
                && let Some((v, _)) = value_at(toks, k + 1, end, all_lower)
            {
                push(&c.subject, Slot::Residence, Some(v), false);
            }
        }
        Act::EndWork => {
            if future || c.negated {
                return out;
            }
            let object_words: Vec<&str> = toks[at.min(end)..end]
                .iter()
                .map(|t| t.word.as_str())
                .collect();
            let value = value_at(toks, at, end, all_lower)
                .map(|(v, _)| v)
                .or_else(|| {
                    // "quit my job at Ogilvy".
                    (at..end)
                        .find(|&k| toks[k].word == "at" || toks[k].word == "from")
                        .and_then(|k| value_at(toks, k + 1, end, all_lower).map(|(v, _)| v))
                });
            let about_job = object_words.iter().take(4).any(|w| JOB_WORDS.contains(w));
            match (verb, &value) {
                ("retire", _) => {
                    push(&c.subject, Slot::Employer, None, true);
                    push(&c.subject, Slot::Job, None, true);
                }
                (_, Some(v)) => {
                    push(&c.subject, Slot::Employer, Some(v.clone()), true);
                    // "quit bouldering": a pastime ends too (an ending only matches its value).
                    if !about_job && let Some(t) = taste_object(toks, at, end) {
                        push(&c.subject, Slot::Likes, Some(t), true);
                    }
                }
                // "Burak quit yesterday": quitting with no object is quitting the job.
                (_, None)
                    if about_job
                        || matches!(verb, "resign" | "lay" | "fire" | "let")
                        || object_phrase(toks, at, 4).is_none_or(|p| p.start >= end) =>
                {
                    push(&c.subject, Slot::Employer, None, true);
                }
                _ => {
                    // "I quit smoking", "gave up running": a taste ends.
                    if let Some(v) = taste_object(toks, at, end) {
                        push(&c.subject, Slot::Likes, Some(v), true);
                    }
                }
            }
        }
        Act::Take => {
            if future || over {
                return out;
            }
            let object_words: Vec<&str> = toks[at.min(end)..end]
                .iter()
                .take(5)
                .map(|t| t.word.as_str())
                .collect();
            // A room or a cottage taken for a trip is not a home.
            let trip = sentence_words.iter().any(|w| {
                matches!(
                    *w,
                    "visit" | "trip" | "holiday" | "vacation" | "hotel" | "airbnb" | "weekend"
                )
            });
            if let Some(v) = home_place(toks, at, end, all_lower).filter(|_| !trip) {
                for s in &subjects {
                    push(s, Slot::Residence, Some(v.clone()), false);
                }
            } else if let Some(j) = object_words
                .iter()
                .position(|w| matches!(*w, "job" | "position" | "role" | "post"))
                && let Some(k) = (at + j + 1..end.min(at + j + 5))
                    .find(|&k| matches!(toks[k].word.as_str(), "at" | "with" | "for"))
                && let Some((v, _)) = value_at(toks, k + 1, end, all_lower)
            {
                for s in &subjects {
                    push(s, Slot::Employer, Some(v.clone()), false);
                }
            }
        }
        Act::CallHome => {
            if future {
                return out;
            }
            if let Some((v, e)) = value_at(toks, at, end, all_lower)
                && toks.get(e).is_some_and(|t| t.word == "home")
            {
                for s in &subjects {
                    push(s, Slot::Residence, Some(v.clone()), over);
                }
            }
        }
        Act::GiveUpHome => {
            if future || c.negated {
                return out;
            }
            if let Some(v) = home_place(toks, at, end, all_lower) {
                push(&c.subject, Slot::Residence, Some(v), true);
            }
        }
        Act::Leave => {
            if future || c.negated {
                return out;
            }
            let object_words: Vec<&str> = toks[at.min(end)..end]
                .iter()
                .map(|t| t.word.as_str())
                .collect();
            if object_words.iter().take(4).any(|w| JOB_WORDS.contains(w)) {
                push(&c.subject, Slot::Employer, None, true);
            } else if let Some(role) = object_words
                .iter()
                .take(3)
                .find(|w| PARTNER_ROLES.contains(w))
            {
                let _ = role;
                push(&c.subject, Slot::Partner, None, true);
            } else if let Some(v) =
                value_at(toks, at, end, all_lower)
                    .map(|(v, _)| v)
                    .or_else(|| {
                        object_words
                            .iter()
                            .take(4)
                            .any(|w| HOME_WORDS.contains(w))
                            .then(|| first_name_in(toks, at, end, all_lower))
                            .flatten()
                    })
            {
                // Whichever slot holds it: only a matching value ends.
                push(&c.subject, Slot::Residence, Some(v.clone()), true);
                push(&c.subject, Slot::Employer, Some(v.clone()), true);
                push(&c.subject, Slot::Partner, Some(v), true);
            }
        }
    }
    out
}

/// Nouns after "my" that make a copula's subject the speaker's taste: "running is my thing",
/// "not my cup of tea", "my kind of music", "my go-to breakfast", "my guilty pleasure".
#[rustfmt::skip]
const TASTE_NOUNS: &[&[&str]] = &[
    &["thing"], &["jam"], &["cup", "of", "tea"], &["kind", "of"], &["sort", "of"],
    &["type", "of"], &["go-to"], &["go", "to"], &["guilty", "pleasure"], &["comfort", "food"],
    &["happy", "place"], &["obsession"], &["weakness"], &["favourite"], &["favorite"], &["fave"],
    &["fav"], &["idea", "of", "fun"], &["passion"],
];

/// Adjectives and nouns of a copula that judge its subject for the speaker: "running is
/// torture (for me)", "olives are disgusting", "sushi is the best".
#[rustfmt::skip]
const JUDGED: &[(&str, Slot)] = &[
    ("amazing", Slot::Likes), ("delicious", Slot::Likes), ("awesome", Slot::Likes),
    ("brilliant", Slot::Likes), ("addictive", Slot::Likes), ("heaven", Slot::Likes),
    ("life", Slot::Likes), ("fantastic", Slot::Likes), ("incredible", Slot::Likes),
    ("lovely", Slot::Likes), ("wonderful", Slot::Likes), ("torture", Slot::Dislikes),
    ("disgusting", Slot::Dislikes), ("gross", Slot::Dislikes), ("awful", Slot::Dislikes),
    ("horrible", Slot::Dislikes), ("vile", Slot::Dislikes), ("boring", Slot::Dislikes),
    ("overrated", Slot::Dislikes), ("unbearable", Slot::Dislikes), ("nasty", Slot::Dislikes),
    ("revolting", Slot::Dislikes), ("tedious", Slot::Dislikes), ("hell", Slot::Dislikes),
    ("the best", Slot::Likes), ("the worst", Slot::Dislikes),
];

/// The taste a copula clause states of a thing as its subject (or of "it"/"that", the
/// thing named before): see [`TASTE_NOUNS`] and [`JUDGED`]; "it's all X (now)" names X.
fn thing_taste(
    toks: &[Tok],
    c: &Clause,
    end: usize,
    antecedent: Option<&str>,
) -> Option<(Slot, String)> {
    let w = |k: usize| {
        toks.get(k)
            .filter(|_| k < end)
            .map_or("", |t| t.word.as_str())
    };
    let pronoun = matches!(&c.subject, Subject::Other)
        && c.subject_at
            .is_some_and(|k| matches!(w(k), "it" | "that" | "this"));
    // The complement, past adverbs, negation and "just"/"hands down".
    let mut k = c.verb_at + 1;
    while k < end
        && !(pronoun && w(k) == "all")
        && (super::words::ADVERBS.contains(&w(k))
            || matches!(
                w(k),
                "not"
                    | "never"
                    | "just"
                    | "hands"
                    | "down"
                    | "honestly"
                    | "definitely"
                    | "so"
                    | "absolutely"
                    | "literally"
                    | "kind"
                    | "pretty"
                    | "totally"
                    | "officially"
            ) && !(w(k) == "kind" && w(k + 1) == "of"))
    {
        k += 1;
    }
    // "it's all knitting now", "it's all about mango now": the complement is the taste.
    if pronoun && w(k) == "all" {
        let at = if w(k + 1) == "about" { k + 2 } else { k + 1 };
        return taste_object(toks, at, end).map(|v| (Slot::Likes, v));
    }
    let subject_thing = || -> Option<String> {
        if pronoun {
            return antecedent.map(str::to_string);
        }
        thing_subject(toks, c)
            .filter(|v| !matches!(v.as_str(), "weather" | "traffic" | "day" | "week"))
    };
    if w(k) == "my" || w(k) == "our" {
        let mut j = k + 1;
        while matches!(
            w(j),
            "absolute" | "all-time" | "new" | "total" | "biggest" | "real"
        ) {
            j += 1;
        }
        if TASTE_NOUNS
            .iter()
            .any(|seq| super::words::match_seq(toks, j, seq).is_some_and(|e| e <= end))
        {
            return subject_thing().map(|v| (Slot::Likes, v));
        }
        return None;
    }
    let k = if w(k) == "a" || w(k) == "an" {
        k + 1
    } else {
        k
    };
    let judged = JUDGED.iter().find(|(j, _)| match j.split_once(' ') {
        Some((a, b)) => w(k) == a && w(k + 1) == b,
        None => w(k) == *j,
    })?;
    // Judged for whom: the speaker, unless the clause names someone else ("for him").
    if (k..end).any(|j| w(j) == "for" && matches!(w(j + 1), "him" | "her" | "them" | "kids")) {
        return None;
    }
    subject_thing().map(|v| (judged.1, v))
}

/// Verbs of replacing one value by another: (lemma, word before the old value, word before
/// the new one). "swap X for Y", "switch from X to Y", "replace X with Y", "leave X for Y".
#[rustfmt::skip]
const REPLACING: &[(&str, &str, &str)] = &[
    ("swap", "", "for"), ("swap", "", "with"), ("trade", "", "for"), ("trade", "in", "for"),
    ("exchange", "", "for"), ("switch", "from", "to"), ("switch", "", "for"),
    ("switch", "", "to"), ("change", "from", "to"), ("replace", "", "with"),
    ("leave", "", "for"), ("ditch", "", "for"), ("drop", "", "for"), ("give", "up", "for"),
];

/// Words that make a replacement's values jobs and employers.
#[rustfmt::skip]
const JOB_CUES: &[&str] = &[
    "job", "jobs", "role", "position", "company", "firm", "offer", "office", "boss", "salary",
    "career", "employer", "payslip", "contract", "desk", "shift", "shifts", "colleagues",
    "hired", "startup", "team", "work", "working",
];

/// The thing a clause's subject names: a noun phrase that is not a person ("green tea has
/// …"), or a word capitalised only because it opens the sentence ("Jazz is …").
fn thing_subject(toks: &[Tok], c: &Clause) -> Option<String> {
    // The subject ends at the verb group.
    let until = |s: usize| {
        (s..c.verb_at)
            .find(|&k| {
                let w = toks[k].word.as_str();
                w == "not" || FINITE_AUXILIARIES.contains(&w)
            })
            .unwrap_or(c.verb_at)
    };
    // The subject's words without a determiner (it may open the clause after punctuation,
    // where an object could not: "Since March, green tea has …").
    let phrase = |s: usize| -> Option<String> {
        let mut a = s;
        if matches!(
            toks[a].word.as_str(),
            "the" | "a" | "an" | "my" | "our" | "these" | "those"
        ) {
            a += 1;
        }
        let e = until(s);
        (e > a && e - a <= 4 && !toks[a..e].iter().any(|t| is_stopword(&t.word)))
            .then(|| {
                taste_object(toks, a, e).or_else(|| {
                    let w: Vec<&str> = toks[a..e].iter().map(|t| t.word.as_str()).collect();
                    Some(w.join(" "))
                })
            })
            .flatten()
    };
    match &c.subject {
        Subject::Other => c.subject_at.and_then(|s| {
            (!matches!(toks[s].word.as_str(), "it" | "that" | "this" | "they"))
                .then(|| phrase(s))
                .flatten()
        }),
        Subject::Person {
            name: Some(_),
            role: None,
        } if c.subject_at == Some(0)
            && !toks.get(1).is_some_and(|t| t.cap)
            && c.with.is_empty() =>
        {
            taste_object(toks, 0, until(0)).map(|v| v.to_lowercase())
        }
        _ => None,
    }
}

/// A value of a replacement at `at`: (value, is a name).
fn replaced_value(toks: &[Tok], at: usize, end: usize, all_lower: bool) -> Option<(String, bool)> {
    // "my job at Tesco", "a role at Aldi": the employer.
    if let Some(k) = (at..end.min(at + 4)).find(|&k| toks[k].word == "at")
        && (at..k).any(|j| JOB_WORDS.contains(&toks[j].word.as_str()) || toks[j].word == "role")
        && let Some((v, _)) = value_at(toks, k + 1, end, all_lower)
    {
        return Some((v, true));
    }
    if let Some(v) = home_place(toks, at, end, all_lower) {
        return Some((v, true));
    }
    if !all_lower && let Some((v, _)) = value_at(toks, at, end, false) {
        return Some((v, true));
    }
    taste_object(toks, at, end).map(|v| (v, false))
}

/// The operations of a clause that replaces one value by another (see [`REPLACING`]): the
/// old value ends in whichever slot holds it, the new one is set in the slot the words
/// point to — a job or employer when the sentence speaks of work, a home when the values
/// are names or homes, else a taste.
fn replacement(
    toks: &[Tok],
    c: &Clause,
    verb: &str,
    r: usize,
    end: usize,
    all_lower: bool,
    sentence_words: &[&str],
) -> Option<Vec<Op>> {
    if !matches!(
        c.subject,
        Subject::Speaker | Subject::Person { .. } | Subject::Other
    ) {
        return None;
    }
    // "green tea has replaced coffee (for me)": the subject is the new value.
    if verb == "replace"
        && let Some(new) = thing_subject(toks, c)
    {
        let old = taste_object(toks, r, end)?;
        return Some(vec![
            Op {
                who: Subject::Speaker,
                slot: Slot::Likes,
                value: Some(new.clone()),
                end: false,
            },
            Op {
                who: Subject::Speaker,
                slot: Slot::Dislikes,
                value: Some(new),
                end: true,
            },
            Op {
                who: Subject::Speaker,
                slot: Slot::Likes,
                value: Some(old),
                end: true,
            },
        ]);
    }
    if c.subject == Subject::Other || thing_subject(toks, c).is_some() {
        return None;
    }
    let (_, before_old, before_new) = REPLACING.iter().find(|(v, b, n)| {
        *v == verb
            && (b.is_empty() || toks.get(r).is_some_and(|t| t.word == *b))
            && (r..end).any(|k| toks[k].word == *n)
    })?;
    let old_at = if before_old.is_empty() { r } else { r + 1 };
    let new_k = (old_at..end).find(|&k| toks[k].word == *before_new)?;
    let old = (new_k > old_at)
        .then(|| replaced_value(toks, old_at, new_k, all_lower))
        .flatten();
    let (new, new_name) = replaced_value(toks, new_k + 1, end, all_lower)?;
    // "leave X for Y" replaces only when both are named: "left for work" is not a change.
    if verb == "leave" && old.is_none() {
        return None;
    }
    let work = sentence_words.iter().any(|w| JOB_CUES.contains(w));
    // A job or a home is named ("a desk" is no employer).
    if work && !new_name {
        return None;
    }
    let named = new_name || old.as_ref().is_some_and(|o| o.1);
    let slot = if work {
        Slot::Employer
    } else if named {
        Slot::Residence
    } else {
        Slot::Likes
    };
    let subjects: Vec<Subject> = std::iter::once(c.subject.clone())
        .chain(c.with.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for s in &subjects {
        if let Some((o, _)) = &old {
            let ends: &[Slot] = if slot == Slot::Likes {
                &[Slot::Likes]
            } else {
                &[Slot::Residence, Slot::Employer]
            };
            for e in ends {
                out.push(Op {
                    who: s.clone(),
                    slot: *e,
                    value: Some(o.clone()),
                    end: true,
                });
            }
        }
        out.push(Op {
            who: s.clone(),
            slot,
            value: Some(new.clone()),
            end: false,
        });
        if slot == Slot::Likes {
            out.push(Op {
                who: s.clone(),
                slot: Slot::Dislikes,
                value: Some(new.clone()),
                end: true,
            });
        }
    }
    Some(out)
}

/// Nouns of a place of work, whose name follows "called"/"named" ("a repair shop called
/// TechFix").
#[rustfmt::skip]
const BUSINESSES: &[&str] = &[
    "shop", "company", "firm", "agency", "restaurant", "cafe", "café", "bakery", "salon",
    "clinic", "startup", "start-up", "contractor", "pub", "bar", "hotel", "store", "studio",
    "practice", "garage", "warehouse", "factory", "hospital", "school", "charity", "brewery",
    "nursery", "office", "consultancy", "business", "outfit", "label", "publisher",
];

/// Verbs of what one does at a place as a customer or visitor, never one's work there.
#[rustfmt::skip]
const VISITOR_VERBS: &[&str] = &[
    "shop", "eat", "dine", "swim", "train", "play", "sing", "stay", "meet", "study", "buy",
    "watch", "drink", "park", "sit", "visit", "see", "have", "go", "come", "get", "pick",
    "drop", "book", "order", "bank", "queue", "spend", "volunteer", "learn", "take", "do",
];

/// Words that make a sentence speak of someone's work.
#[rustfmt::skip]
const WORK_CUES: &[&str] = &[
    "shift", "shifts", "nights", "mornings", "evenings", "customers", "clients", "patients",
    "tables", "till", "reception", "job", "work", "boss", "manager", "colleagues", "team",
    "wage", "wages", "paid", "hours", "rota", "now", "still", "mostly", "full-time",
    "part-time",
];

/// The place of work of a clause whose verb is an activity ("fix laptops at X", "waiting
/// tables at the Marriott", "nanny for a family"): a name after "at"/"for" (or "a BUSINESS
/// called X") in a sentence that speaks of work.
fn workplace(
    toks: &[Tok],
    c: &Clause,
    verb: &str,
    r: usize,
    end: usize,
    all_lower: bool,
    sentence_words: &[&str],
) -> Option<String> {
    if VISITOR_VERBS.contains(&verb)
        || is_lexicon_verb(verb)
        || !matches!(c.subject, Subject::Speaker | Subject::Person { .. })
    {
        return None;
    }
    let at = (r..end.min(r + 5)).find(|&k| matches!(toks[k].word.as_str(), "at" | "for"))?;
    // "a repair shop called TechFix".
    if let Some(k) =
        (at + 1..end.min(at + 6)).find(|&k| matches!(toks[k].word.as_str(), "called" | "named"))
        && (at + 1..k).any(|j| BUSINESSES.contains(&toks[j].word.as_str()))
    {
        return value_at(toks, k + 1, end, all_lower).map(|(v, _)| v);
    }
    if !sentence_words.iter().any(|w| WORK_CUES.contains(w)) {
        return None;
    }
    let k = if toks.get(at + 1).is_some_and(|t| t.word == "the") {
        at + 2
    } else {
        at + 1
    };
    toks.get(k)
        .filter(|t| t.cap && !all_lower)
        .and_then(|_| value_at(toks, k, end, false))
        .map(|(v, _)| v)
}

/// Words of a sentence that make the place someone leaves their home.
#[rustfmt::skip]
const HOME_CUES: &[&str] = &[
    "move", "moving", "moved", "relocate", "relocating", "city", "country", "town", "home",
    "abroad", "emigrate", "emigrating", "live", "living", "weather", "rent", "house", "flat",
    "place", "neighbourhood", "neighborhood", "back",
];

/// What leaving that has not happened presupposes holds now (see [`ops`]): the home one
/// moves from, the employer one quits, the taste one gives up.
fn presupposed(toks: &[Tok], c: &Clause, verb: &str, all_lower: bool) -> Vec<Op> {
    let mut out = Vec::new();
    if !matches!(c.subject, Subject::Speaker | Subject::Person { .. }) {
        return out;
    }
    let end = c.end;
    let r = c.rest.min(end);
    let w = |k: usize| {
        toks.get(k)
            .filter(|_| k < end)
            .map_or("", |t| t.word.as_str())
    };
    let sentence: Vec<&str> = toks.iter().map(|t| t.word.as_str()).collect();
    let work = (r..end.min(r + 4)).any(|k| JOB_WORDS.contains(&w(k)));
    let employer_at = |from: usize| {
        (from..end.min(from + 5))
            .find(|&k| matches!(w(k), "at" | "with" | "from"))
            .and_then(|k| value_at(toks, k + 1, end, all_lower))
            .map(|(v, _)| v)
    };
    let named = |k: usize| {
        toks.get(k)
            .filter(|t| t.cap || all_lower)
            .and_then(|_| value_at(toks, k, end, all_lower))
            .map(|(v, _)| v)
    };
    let (slot, value) = match verb {
        "move" => {
            let from = super::words::match_seq(toks, r, &["from"])
                .or_else(|| super::words::match_seq(toks, r, &["out", "of"]))
                .or_else(|| super::words::match_seq(toks, r, &["away", "from"]));
            match from {
                Some(k) => (
                    Slot::Residence,
                    named(k).or_else(|| home_place(toks, k, end, all_lower)),
                ),
                None => return out,
            }
        }
        "leave" if work => (Slot::Employer, employer_at(r)),
        "leave" => {
            let v = named(r);
            let home = sentence.iter().any(|x| HOME_CUES.contains(x))
                || super::words::contains_seq(&sentence, &["for", "good"])
                || (r + 1..end).any(|k| w(k) == "for" && toks.get(k + 1).is_some_and(|t| t.cap));
            let job = sentence.iter().any(|x| JOB_CUES.contains(x));
            if !home || job {
                return out;
            }
            (Slot::Residence, v)
        }
        "quit" | "resign" => (Slot::Employer, named(r).or_else(|| employer_at(r))),
        "give" if w(r) == "up" => (Slot::Likes, taste_object(toks, r + 1, end)),
        _ => return out,
    };
    let Some(value) = value else { return out };
    for s in std::iter::once(&c.subject).chain(c.with.iter()) {
        out.push(Op {
            who: s.clone(),
            slot,
            value: Some(value.clone()),
            end: false,
        });
    }
    out
}

/// Diets a copula names ("is vegan").
#[rustfmt::skip]
const DIET_WORDS: &[&str] = &[
    "vegetarian", "vegan", "pescatarian", "pescetarian", "keto", "teetotal", "coeliac",
    "celiac", "diabetic", "kosher", "halal",
];

/// Last words of a name that make "join X" a membership.
#[rustfmt::skip]
const MEMBERSHIPS: &[&str] = &[
    "club", "group", "class", "gym", "choir", "band", "league", "society", "association",
    "church", "community", "union", "team", "program", "programme", "course",
];

/// Partner roles, for "left my husband".
const PARTNER_ROLES: &[&str] = &[
    "husband",
    "wife",
    "partner",
    "boyfriend",
    "girlfriend",
    "fiance",
    "fiancé",
    "fiancee",
    "spouse",
];

fn opposite(s: Slot) -> Slot {
    match s {
        Slot::Likes => Slot::Dislikes,
        Slot::Dislikes => Slot::Likes,
        other => other,
    }
}

/// A pronoun or a vague noun that stands for a thing named before: "it", "them", "that",
/// "the stuff".
fn anaphor(toks: &[Tok], at: usize) -> bool {
    let w = |k: usize| toks.get(k).map_or("", |t| t.word.as_str());
    matches!(w(at), "it" | "them" | "those")
        || (w(at) == "the" && matches!(w(at + 1), "stuff" | "thing" | "things"))
}

/// The thing a taste is about: a noun phrase, a gerund phrase ("hiking in the Alps" →
/// "hiking"), lower case unless capitalised as written.
pub fn taste_object(toks: &[Tok], at: usize, end: usize) -> Option<String> {
    let base = object_phrase(toks, at, 4)?;
    // "going on road trips": a light gerund takes its prepositional object along.
    let p = if super::words::is_light_gerund(&toks[base.end - 1].word) {
        super::words::extend_gerund(toks, base)
    } else {
        base
    };
    if p.end > end || p.start >= p.end {
        return None;
    }
    let first = toks[p.start].word.as_str();
    if super::graph::NOT_LIKES.contains(&first)
        || matches!(p.det.as_deref(), Some("your" | "his" | "her" | "their"))
    {
        return None;
    }
    let w: Vec<String> = toks[p.start..p.end].iter().map(written).collect();
    let v = w.join(" ");
    Some(if toks[p.start..p.end].iter().any(|t| t.cap) {
        v
    } else {
        v.to_lowercase()
    })
}

/// The "-ing" form of a lower-case verb: "paint" → "painting", "dance" → "dancing", "run" →
/// "running" (a short consonant-vowel-consonant stem doubles its last letter).
fn gerund(v: &str) -> String {
    let b = v.as_bytes();
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    if let Some(stem) = v.strip_suffix("ie") {
        return format!("{stem}ying");
    }
    if v.ends_with('e') && !v.ends_with("ee") && v.len() > 2 {
        return format!("{}ing", &v[..v.len() - 1]);
    }
    if b.len() == 3
        && !vowel(b[0])
        && vowel(b[1])
        && !vowel(b[2])
        && !matches!(b[2], b'w' | b'x' | b'y')
    {
        return format!("{v}{}ing", b[2] as char);
    }
    format!("{v}ing")
}

/// "Biscuit died", "we lost our cat Luna", "had to put Max down".
fn death_or_loss(
    toks: &[Tok],
    c: &Clause,
    verb: &str,
    r: usize,
    end: usize,
    mut out: Vec<Op>,
) -> Vec<Op> {
    let words: Vec<&str> = toks[r.min(end)..end]
        .iter()
        .map(|t| t.word.as_str())
        .collect();
    let died = verb == "die"
        || (verb == "pass" && words.first() == Some(&"away"))
        || (verb == "put" && (words.contains(&"down") || words.contains(&"sleep")));
    if c.negated || c.tense == Tense::Future {
        return out;
    }
    if died || verb == "rehome" {
        match &c.subject {
            Subject::Person { name, role } if verb != "put" => {
                let pet = role.as_deref().is_some_and(is_pet_role) || role.is_none();
                if pet {
                    out.push(Op {
                        who: Subject::Speaker,
                        slot: Slot::Pet,
                        value: name.clone(),
                        end: true,
                    });
                }
            }
            Subject::Speaker => {
                // "we had to put Max down", "we rehomed Toby".
                if let Some((v, _)) = value_at(toks, r, end, false).or_else(|| {
                    (r..end)
                        .find_map(|k| toks[k].cap.then(|| value_at(toks, k, end, false)).flatten())
                }) {
                    out.push(Op {
                        who: Subject::Speaker,
                        slot: Slot::Pet,
                        value: Some(v),
                        end: true,
                    });
                }
            }
            _ => {}
        }
    }
    if verb == "lose" && c.subject == Subject::Speaker {
        let job = words.iter().take(3).any(|w| JOB_WORDS.contains(w));
        if job {
            out.push(Op {
                who: Subject::Speaker,
                slot: Slot::Employer,
                value: None,
                end: true,
            });
        } else if let Some(k) = (r..end).find(|&k| toks[k].cap)
            && words.iter().take(4).any(|w| is_pet_role(w))
            && let Some((v, _)) = value_at(toks, k, end, false)
        {
            out.push(Op {
                who: Subject::Speaker,
                slot: Slot::Pet,
                value: Some(v),
                end: true,
            });
        }
    }
    // "stopped working at X", "stop liking X".
    if verb == "stop" && c.subject != Subject::Other {
        let w0 = toks.get(r).map(|t| lemma(&t.word)).unwrap_or_default();
        if w0 == "work" {
            let v = (r..end)
                .find(|&k| matches!(toks[k].word.as_str(), "at" | "for"))
                .and_then(|k| value_at(toks, k + 1, end, false).map(|(v, _)| v));
            out.push(Op {
                who: c.subject.clone(),
                slot: Slot::Employer,
                value: v,
                end: true,
            });
        } else if matches!(w0.as_str(), "like" | "love" | "enjoy")
            && let Some(v) = taste_object(toks, r + 1, end)
        {
            out.push(Op {
                who: c.subject.clone(),
                slot: Slot::Likes,
                value: Some(v),
                end: true,
            });
        }
    }
    out
}

fn is_pet_role(w: &str) -> bool {
    matches!(
        w,
        "dog"
            | "cat"
            | "puppy"
            | "kitten"
            | "pup"
            | "rabbit"
            | "bunny"
            | "parrot"
            | "hamster"
            | "horse"
            | "pet"
            | "dogs"
            | "cats"
    )
}
