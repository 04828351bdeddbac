//! Text search terms: words are lower-cased runs of letters and digits (after NFKC), English
//! stop words are dropped, and the rest is stemmed with the Snowball English stemmer, so
//! "running", "runs" and "run" are one term.

use std::collections::BTreeMap;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;

/// The fields a term can come from, as bits of a posting's `mask`.
pub const TITLE: u8 = 1;
pub const DESCRIPTION: u8 = 2;
pub const TAGS: u8 = 4;

/// Distinct terms indexed per event. Each term is one item in the event's write transaction,
/// and an update may delete every old term and add every new one in the same transaction
/// (DynamoDB allows 100 items): 2 × 48 + the event itself + the caller's session check + the
/// outbox item = 99.
pub const MAX_TERMS: usize = 48;

/// A term longer than this (in UTF-8 bytes) is indexed as a digest of itself: it becomes part
/// of a partition key, which DynamoDB bounds at 2 048 bytes (with the city, also bounded).
pub const MAX_TERM_BYTES: usize = 64;

/// Terms in one search.
pub const MAX_QUERY_TERMS: usize = 5;

const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// The search terms of `text`, in order of first appearance, without repeats.
pub fn terms(text: &str) -> Vec<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    let normalised: String = text.nfkc().collect::<String>().to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for word in normalised.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || STOP_WORDS.contains(&word) {
            continue;
        }
        let stem = stemmer.stem(word).into_owned();
        if stem.chars().count() < 2 && !stem.chars().all(|c| c.is_numeric()) {
            continue;
        }
        let stem = bounded(stem);
        if !out.contains(&stem) {
            out.push(stem);
        }
    }
    out
}

/// An overlong term as a fixed-size digest of itself ('#' and 32 hex digits: no word has a
/// '#', so it cannot collide with one). The same word in a search digests the same way, so it
/// still finds the event.
fn bounded(term: String) -> String {
    use sha2::{Digest, Sha256};
    if term.len() <= MAX_TERM_BYTES {
        return term;
    }
    let digest = Sha256::digest(term.as_bytes());
    format!("#{}", data_encoding::HEXLOWER.encode(&digest[..16]))
}

/// The terms an event is indexed under, each with the fields it occurs in. Title terms come
/// first, then tags, then the description in order, up to [`MAX_TERMS`] distinct terms; a
/// term already chosen still records every field it occurs in.
pub fn index_terms(title: &str, description: &str, tags: &[String]) -> BTreeMap<String, u8> {
    let mut chosen: BTreeMap<String, u8> = BTreeMap::new();
    let sources = [
        (terms(title), TITLE),
        (terms(&tags.join(" ")), TAGS),
        (terms(description), DESCRIPTION),
    ];
    for (words, bit) in sources {
        for w in words {
            if let Some(mask) = chosen.get_mut(&w) {
                *mask |= bit;
            } else if chosen.len() < MAX_TERMS {
                chosen.insert(w, bit);
            }
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_words_become_bounded_terms_in_bytes_and_still_match_themselves() {
        let ascii = "x".repeat(2100);
        let two_byte = "é".repeat(1100); // 2 200 bytes, 1 100 characters
        for word in [&ascii, &two_byte] {
            let t = terms(&format!("jazz {word} night"));
            assert_eq!(t.len(), 3, "{t:?}");
            assert!(t.iter().all(|t| t.len() <= MAX_TERM_BYTES), "{t:?}");
            assert_eq!(terms(word), vec![t[1].clone()], "a search for it finds it");
        }
        assert_ne!(terms(&ascii), terms(&"x".repeat(2101)));
        let edge = "é".repeat(MAX_TERM_BYTES / 2); // exactly the limit in bytes
        assert_eq!(terms(&edge), vec![edge.clone()]);
        assert!(terms(&format!("{edge}é"))[0].starts_with('#'));
    }

    #[test]
    fn inflections_share_a_stem() {
        for group in [
            ["run", "running", "runs"],
            ["concert", "concerts", "Concerts"],
            ["festival", "festivals", "FESTIVALS"],
        ] {
            let stems: Vec<Vec<String>> = group.iter().map(|w| terms(w)).collect();
            assert!(
                stems.iter().all(|s| s == &stems[0] && s.len() == 1),
                "{group:?} → {stems:?}"
            );
        }
    }

    #[test]
    fn stop_words_and_punctuation_are_dropped_and_repeats_collapse() {
        assert_eq!(terms("The Run, and the RUNNING of the runs!"), vec!["run"]);
        assert!(terms("the and of to").is_empty());
    }

    #[test]
    fn index_terms_record_every_field_and_cap_the_count() {
        let t = index_terms(
            "Jazz concert",
            "A jazz night",
            &["music".into(), "jazz".into()],
        );
        assert_eq!(t["jazz"], TITLE | DESCRIPTION | TAGS);
        assert_eq!(t["concert"], TITLE);
        assert_eq!(t["night"], DESCRIPTION);
        let long: String = (0..200).map(|i| format!("word{i} ")).collect();
        let capped = index_terms("Title here", &long, &[]);
        assert_eq!(capped.len(), MAX_TERMS);
        assert!(
            capped.contains_key(&terms("title")[0]),
            "title terms come first: {capped:?}"
        );
    }
}
