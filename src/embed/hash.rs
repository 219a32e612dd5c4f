//! [`HashEmbedder`]: a deterministic feature-hashing embedder for tests and offline smoke
//! runs.
//!
//! It needs no model files and costs microseconds per text, so test suites and offline
//! smoke runs can exercise the whole store-and-recall path. Its vectors only capture
//! shared words and word pairs (no synonyms, no paraphrase): never use it for production
//! recall quality.

use super::{Embedder, l2_normalise};

/// Dimensions of [`HashEmbedder`] vectors, equal to all-MiniLM-L6-v2's so either embedder
/// fits the same storage.
pub const HASH_DIM: usize = 384;

/// Model id of [`HashEmbedder`] (stored next to its vectors).
pub const HASH_MODEL_ID: &str = "hash-384";

/// Feature-hashing embedder: lower-cased word unigrams and bigrams, each hashed to one of
/// [`HASH_DIM`] buckets with a hashed sign (±1), summed, then L2-normalised.
///
/// Words are maximal runs of Unicode alphanumeric characters. The hash is FNV-1a 64 with a
/// murmur3 finaliser, fixed here, so vectors are identical across runs, processes and
/// platforms. A text without any word (empty, punctuation only) maps to one fixed unit
/// vector, so every output has norm 1.
///
/// Not for production recall quality: see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashEmbedder;

impl HashEmbedder {
    /// A new embedder (stateless; construction is free).
    pub fn new() -> Self {
        Self
    }

    /// Embeds one text: [`HASH_DIM`] `f32`s with L2 norm 1.
    pub fn embed_text(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; HASH_DIM];
        let lower = text.to_lowercase();
        let mut words = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty());
        let Some(mut prev) = words.next() else {
            add_feature(&mut v, b"\x00empty", b"");
            return v;
        };
        add_feature(&mut v, b"u", prev.as_bytes());
        for w in words {
            add_feature(&mut v, b"u", w.as_bytes());
            let mut bigram = Vec::with_capacity(prev.len() + 1 + w.len());
            bigram.extend_from_slice(prev.as_bytes());
            bigram.push(b' ');
            bigram.extend_from_slice(w.as_bytes());
            add_feature(&mut v, b"b", &bigram);
            prev = w;
        }
        // n words give 2n - 1 features of weight ±1: an odd total, so the buckets can never
        // all cancel to zero and the normalised vector always has norm 1.
        l2_normalise(&mut v);
        v
    }
}

/// Adds ±1 to the bucket of feature `kind:bytes`.
fn add_feature(v: &mut [f32], kind: &[u8], bytes: &[u8]) {
    let h = hash64(kind, bytes);
    let bucket = (h % v.len() as u64) as usize;
    let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
    v[bucket] += sign;
}

/// FNV-1a 64 over `kind`, a 0xff separator (never in UTF-8) and `bytes`, then the murmur3
/// `fmix64` finaliser so that the low bits (bucket) and the top bit (sign) are well mixed.
fn hash64(kind: &[u8], bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for &b in kind.iter().chain(&[0xff]).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        HASH_MODEL_ID
    }

    fn dim(&self) -> usize {
        HASH_DIM
    }

    /// Never fails.
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_text(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::cosine;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn unit_norm_and_dim() {
        let e = HashEmbedder::new();
        for t in [
            "",
            "  ...  ",
            "Hello",
            "A man is eating food.",
            "Ünïcödé wörds ça",
        ] {
            let v = e.embed_text(t);
            assert_eq!(v.len(), HASH_DIM);
            assert!((norm(&v) - 1.0).abs() < 1e-5, "{t:?}");
        }
        assert_eq!(e.model_id(), "hash-384");
        assert_eq!(e.dim(), 384);
    }

    #[test]
    fn deterministic_and_case_insensitive() {
        let e = HashEmbedder::new();
        let a = e.embed_text("The Cat sat on the mat");
        assert_eq!(a, e.embed_text("the cat SAT on the mat!"));
        assert_eq!(a, HashEmbedder::new().embed_text("The Cat sat on the mat"));
        // Pin a value so a change of hash function (which would silently invalidate stored
        // hash vectors) fails the test.
        let v = e.embed_text("hello");
        let (i, x) = v.iter().enumerate().find(|(_, x)| **x != 0.0).unwrap();
        assert_eq!((i, *x), (PINNED_HELLO_BUCKET, PINNED_HELLO_SIGN));
    }

    // Checked against an independent Python implementation of `hash64`.
    const PINNED_HELLO_BUCKET: usize = 81;
    const PINNED_HELLO_SIGN: f32 = 1.0;

    #[test]
    fn similarity_tracks_word_overlap() {
        let e = HashEmbedder::new();
        let v = e
            .embed(&[
                "I moved to Berlin last year",
                "last year I moved to Berlin",
                "my dog likes long walks",
            ])
            .unwrap();
        let close = cosine(&v[0], &v[1]);
        let far = cosine(&v[0], &v[2]);
        assert!(close > 0.6, "{close}");
        assert!(far < 0.3, "{far}");
        assert!(close > far);
    }

    #[test]
    fn batch_matches_single_and_keeps_order() {
        let e = HashEmbedder::new();
        let texts = ["one", "two words", ""];
        let batch = e.embed(&texts).unwrap();
        for (t, v) in texts.iter().zip(&batch) {
            assert_eq!(&e.embed_text(t), v);
        }
        assert!(e.embed(&[]).unwrap().is_empty());
    }
}
