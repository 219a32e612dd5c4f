//! Text embeddings: turn texts into L2-normalised `f32` vectors for dense recall.
//!
//! One responsibility per file:
//!
//! - `mod.rs` (this file): the [`Embedder`] trait every backend implements, and
//!   [`cosine`], the similarity the rest of the service uses on embedder output.
//! - [`minilm`]: the production embedder, sentence-transformers all-MiniLM-L6-v2
//!   (384 dimensions) run on the CPU with candle.
//! - [`hash`]: [`hash::HashEmbedder`], a fast deterministic feature-hashing embedder for
//!   tests and offline smoke runs. Not for production recall quality.
//! - [`fetch`]: where the MiniLM model files live on disk ([`fetch::default_model_dir`]),
//!   checking them ([`fetch::verify`]) and installing them ([`fetch::fetch`], the code behind
//!   `reflector model fetch`).
//! - [`pool`]: [`pool::EmbedService`], the async, cloneable front end that many tasks
//!   share: a few OS threads, each owning one embedder, batch the waiting requests.
//!
//! Typical wiring:
//!
//! ```ignore
//! use crate::embed::{fetch, minilm::MiniLm, pool::{EmbedService, PoolConfig}};
//! let dir = fetch::default_model_dir();
//! fetch::verify(&dir)?; // tells the user to run `reflector model fetch` if missing
//! let service = EmbedService::from_clones(MiniLm::load(&dir)?, PoolConfig::default())?;
//! let v = service.embed_query("A man is eating food.".to_owned()).await?;
//! assert_eq!(v.len(), service.dim());
//! ```

pub mod fetch;
pub mod hash;
pub mod minilm;
pub mod pool;

pub use hash::HashEmbedder;
pub use minilm::MiniLm;
pub use pool::{EmbedService, Lane, PoolConfig};

/// A text embedding model.
///
/// Implementations are blocking and CPU-bound: call them from a dedicated thread (as
/// [`pool::EmbedService`] does), never directly from an async task.
pub trait Embedder: Send + Sync {
    /// Stable identifier of the model that produced the vectors, e.g.
    /// `"sentence-transformers/all-MiniLM-L6-v2"` or `"hash-384"`. Store it next to every
    /// persisted vector: vectors from different models must never be compared.
    fn model_id(&self) -> &str;

    /// Number of dimensions of every vector returned by [`Embedder::embed`].
    fn dim(&self) -> usize;

    /// Embeds `texts`, returning one vector per text in the same order.
    ///
    /// Shape: `texts.len()` vectors of [`Embedder::dim`] `f32`s, each with L2 norm 1 (to
    /// within float rounding), so [`cosine`] is a plain dot product. An empty input returns
    /// an empty output. Errors come from the backend (tokenizer or tensor failures) and
    /// apply to the whole call.
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}

impl<E: Embedder + ?Sized> Embedder for Box<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        (**self).embed(texts)
    }
}

impl<E: Embedder + ?Sized> Embedder for std::sync::Arc<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        (**self).embed(texts)
    }
}

/// Cosine similarity of two L2-normalised vectors, i.e. their dot product, in `[-1, 1]`.
///
/// Only meaningful for vectors from the same [`Embedder`] (which normalises its output); for
/// unnormalised input this is just the dot product.
///
/// # Panics
/// If `a` and `b` have different lengths (vectors from different models).
#[inline]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "cosine of vectors with different dimensions"
    );
    // Sixteen independent partial sums: a plain `zip().sum()` is one dependent chain of f32
    // additions, which the compiler may not reorder, so it neither vectorises nor pipelines
    // (~90 ms for 100k vectors of 384 here); lanes of 16 let it use SIMD registers.
    const LANES: usize = 16;
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit L2 norm in place; a zero vector is left unchanged.
pub(crate) fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}

/// The real MiniLM model for tests, loaded once per test binary from
/// [`fetch::default_model_dir`] (which honours `REFLECTOR_MODEL_DIR`).
///
/// # Panics
/// With instructions to run `reflector model fetch` when the model is missing or fails
/// verification: tests that need the model fail rather than silently skip.
#[cfg(test)]
pub(crate) fn test_minilm() -> &'static MiniLm {
    static MODEL: std::sync::OnceLock<MiniLm> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = fetch::default_model_dir();
        if let Err(e) = fetch::verify(&dir) {
            panic!(
                "this test needs the all-MiniLM-L6-v2 model: {e:#}\n\
                 Run `reflector model fetch` (or set REFLECTOR_MODEL_DIR to a directory holding \
                 config.json, tokenizer.json and model.safetensors)."
            );
        }
        MiniLm::load(&dir).unwrap_or_else(|e| panic!("loading {}: {e:#}", dir.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_lanes_match_the_plain_sum_for_every_length() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0, 1, 15, 16, 17, 37, 384] {
            let a: Vec<f32> = (0..len).map(|_| rng.f32() - 0.5).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.f32() - 0.5).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((cosine(&a, &b) as f64 - plain).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn cosine_is_dot_product() {
        let mut a = vec![3.0, 4.0];
        l2_normalise(&mut a);
        assert_eq!(a, vec![0.6, 0.8]);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-6);
        assert!((cosine(&a, &[0.8, -0.6])).abs() < 1e-6);
    }

    #[test]
    fn zero_vector_stays_zero() {
        let mut z = vec![0.0f32; 4];
        l2_normalise(&mut z);
        assert_eq!(z, vec![0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "different dimensions")]
    fn cosine_rejects_mismatched_lengths() {
        cosine(&[1.0], &[1.0, 0.0]);
    }
}
