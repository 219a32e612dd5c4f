//! [`MiniLm`]: the production embedder, sentence-transformers all-MiniLM-L6-v2 on the CPU
//! with candle's BERT (`candle_transformers::models::bert`).
//!
//! The pipeline reproduces sentence-transformers (`1_Pooling/config.json`: mean pooling;
//! `sentence_bert_config.json`: `max_seq_length` 256; then `Normalize`):
//! tokenize (truncated to [`MAX_TOKENS`]) → pad each sub-batch to its longest text → BERT →
//! mean over the real tokens (attention mask) → L2 normalisation.
//!
//! Trap avoided here (see `DEPENDENCIES.md`): the shipped `tokenizer.json` pads every input
//! to a fixed 128 tokens and truncates at 128. [`MiniLm::load`] replaces that with
//! per-batch padding ([`PaddingStrategy::BatchLongest`]) and truncation at 256, and pooling
//! always uses the attention mask, so a text's vector does not depend on what it is batched
//! with.
//!
//! Threading: candle sizes its CPU parallelism from the environment, process-wide; see the
//! [`super::pool`] module docs for the settings and measurements.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{
    Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, pad_encodings,
};

use super::{Embedder, l2_normalise};

/// Model id stored next to MiniLM vectors (the Hugging Face repository name).
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Dimensions of MiniLM vectors (`hidden_size` in its `config.json`).
pub const DIM: usize = 384;

/// Texts are truncated to this many tokens, `[CLS]` and `[SEP]` included
/// (`max_seq_length` in the model's `sentence_bert_config.json`). Longer text is ignored
/// silently, as sentence-transformers does: chunk long documents before embedding them.
pub const MAX_TOKENS: usize = 256;

/// At most this many texts go through one forward pass.
const MAX_SUB_BATCH: usize = 32;

/// At most this many padded tokens (texts × longest text) go through one forward pass,
/// bounding activation memory for long texts (attention scores are
/// texts × 12 heads × tokens² `f32`s: 16 texts of 256 tokens ≈ 50 MB per layer).
const MAX_SUB_BATCH_TOKENS: usize = 4096;

/// all-MiniLM-L6-v2 loaded on the CPU. Cheap to clone: clones share the weights (~90 MB)
/// and the tokenizer, so a pool of threads can each own a clone.
#[derive(Clone)]
pub struct MiniLm {
    model: Arc<BertModel>,
    tokenizer: Arc<Tokenizer>,
    padding: PaddingParams,
    dim: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("model_id", &MODEL_ID)
            .field("dim", &self.dim)
            .finish()
    }
}

impl MiniLm {
    /// Loads the model from `dir`, which must hold `config.json`, `tokenizer.json` and
    /// `model.safetensors` (see [`super::fetch`]; [`super::fetch::verify`] also checks the
    /// weights' sha256, which this does not). Takes ~0.3 s and ~90 MB of memory.
    ///
    /// # Errors
    /// A file is missing or unreadable (the message says to run `reflector model fetch`), or
    /// the files are not a BERT model candle can load.
    pub fn load(dir: &Path) -> anyhow::Result<MiniLm> {
        let missing = |file: &str| {
            format!(
                "cannot read {}: run `reflector model fetch` to install the model \
                 (or set REFLECTOR_MODEL_DIR)",
                dir.join(file).display()
            )
        };
        let config_json = std::fs::read_to_string(dir.join("config.json"))
            .with_context(|| missing("config.json"))?;
        let config: Config = serde_json::from_str(&config_json)
            .with_context(|| format!("parsing {}", dir.join("config.json").display()))?;

        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            anyhow::bail!(missing("tokenizer.json"));
        }
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| anyhow!("loading {}: {e}", tokenizer_path.display()))?;
        // Keep the file's pad token and id, but pad per batch instead of to a fixed 128.
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_to_multiple_of: None,
            ..tokenizer.get_padding().cloned().unwrap_or_default()
        };
        tokenizer.with_padding(Some(padding.clone()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("configuring truncation: {e}"))?;

        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            anyhow::bail!(missing("model.safetensors"));
        }
        let device = Device::Cpu;
        // Read into memory rather than mmap: safe even if the file changes afterwards.
        let tensors = candle_core::safetensors::load(&weights_path, &device)
            .with_context(|| format!("reading {}", weights_path.display()))?;
        let vb = VarBuilder::from_tensors(tensors, DTYPE, &device);
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("loading BERT weights from {}", weights_path.display()))?;

        Ok(MiniLm {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            padding,
            dim: config.hidden_size,
        })
    }

    /// Number of tokens `text` is embedded from (with `[CLS]` and `[SEP]`, after truncation
    /// to [`MAX_TOKENS`]).
    ///
    /// # Errors
    /// The tokenizer fails on the text.
    pub fn token_count(&self, text: &str) -> anyhow::Result<usize> {
        Ok(self.encode(text)?.len())
    }

    fn encode(&self, text: &str) -> anyhow::Result<Encoding> {
        self.tokenizer
            .encode(text, true)
            .map_err(|e| anyhow!("tokenizing text: {e}"))
    }

    /// One forward pass over `batch` (already padded to a common length): returns one
    /// normalised vector per encoding.
    fn forward(&self, batch: &[Encoding]) -> anyhow::Result<Vec<Vec<f32>>> {
        let n = batch.len();
        let len = batch[0].len();
        let mut ids = Vec::with_capacity(n * len);
        let mut type_ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in batch {
            debug_assert_eq!(e.len(), len, "sub-batch not padded");
            ids.extend_from_slice(e.get_ids());
            type_ids.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let device = &self.model.device;
        let ids = Tensor::from_vec(ids, (n, len), device)?;
        let type_ids = Tensor::from_vec(type_ids, (n, len), device)?;
        let mask = Tensor::from_vec(mask, (n, len), device)?;

        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (n, len, dim)
        // Mean over real tokens only: padding positions get weight 0.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, dim)
        let counts = mask.sum(1)?; // (n, 1), >= 2: [CLS] and [SEP]
        let mut rows = summed.broadcast_div(&counts)?.to_vec2::<f32>()?;
        for row in &mut rows {
            l2_normalise(row);
        }
        Ok(rows)
    }
}

impl Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// Tokenizes all texts, sorts them by token count so that each forward pass pads as
    /// little as possible, runs sub-batches of at most 32 texts and 4,096 padded tokens,
    /// and returns the vectors in input order. Blocking; ~20 ms for one short sentence,
    /// ~100 sentences/s of ~19 tokens on one core (see [`super::pool`]).
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut encodings = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        let mut out = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            // Lengths grow along `order`, so the last text of a sub-batch is its longest.
            let mut end = start + 1;
            while end < order.len()
                && end - start < MAX_SUB_BATCH
                && (end - start + 1) * encodings[order[end]].len() <= MAX_SUB_BATCH_TOKENS
            {
                end += 1;
            }
            let mut batch: Vec<Encoding> = order[start..end]
                .iter()
                .map(|&i| std::mem::take(&mut encodings[i]))
                .collect();
            pad_encodings(&mut batch, &self.padding).map_err(|e| anyhow!("padding: {e}"))?;
            for (&i, v) in order[start..end].iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{cosine, test_minilm};

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Reference values from DEPENDENCIES.md (checked there against an independent numpy
    /// implementation of sentence-transformers' pipeline).
    #[test]
    fn matches_sentence_transformers_reference_values() {
        let m = test_minilm();
        let v = m
            .embed(&[
                "A man is eating food.",
                "A man is eating a piece of bread.",
                "The girl is carrying a baby.",
            ])
            .unwrap();
        assert_eq!(v.len(), 3);
        for x in &v {
            assert_eq!(x.len(), DIM);
            let norm = x.iter().map(|a| a * a).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
        let bread = cosine(&v[0], &v[1]);
        let baby = cosine(&v[0], &v[2]);
        assert!(
            (bread - 0.7553).abs() < 1e-3,
            "cos(food, bread) = {bread}, expected 0.7553"
        );
        assert!(
            (baby - -0.1050).abs() < 1e-3,
            "cos(food, baby) = {baby}, expected -0.1050"
        );
        assert_eq!(m.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
        assert_eq!(m.dim(), 384);
    }

    #[test]
    fn fixed_padding_from_tokenizer_json_is_disabled() {
        let m = test_minilm();
        // [CLS] hello [SEP], not 128 tokens.
        assert_eq!(m.token_count("hello").unwrap(), 3);
        let long = "word ".repeat(1000);
        assert_eq!(m.token_count(&long).unwrap(), MAX_TOKENS);
    }

    /// A short text padded inside a batch with a much longer one must embed exactly as it
    /// does alone: the mask must hide the padding from attention and from pooling.
    #[test]
    fn batching_with_longer_text_does_not_change_vectors() {
        let m = test_minilm();
        let short = "A man is eating food.";
        let long = "Yesterday evening, after a long and exhausting day at the office, the \
                    man finally sat down at the kitchen table and ate a large plate of \
                    spaghetti with tomato sauce, fresh basil and grated parmesan cheese, \
                    while listening to the radio and thinking about his holiday plans.";
        let (ns, nl) = (m.token_count(short).unwrap(), m.token_count(long).unwrap());
        assert!(
            nl > 4 * ns,
            "long text must be much longer: {nl} vs {ns} tokens"
        );

        let alone = m.embed(&[short]).unwrap();
        let long_alone = m.embed(&[long]).unwrap();
        // Both orders, and the short text twice, all in one padded forward pass.
        let mixed = m.embed(&[long, short, short]).unwrap();
        let diff = max_abs_diff(&alone[0], &mixed[1]).max(max_abs_diff(&alone[0], &mixed[2]));
        assert!(
            diff < 1e-4,
            "short text changed by batching: max abs diff {diff}"
        );
        let diff = max_abs_diff(&long_alone[0], &mixed[0]);
        assert!(
            diff < 1e-4,
            "long text changed by batching: max abs diff {diff}"
        );
    }

    #[test]
    fn keeps_input_order_across_sub_batches() {
        let m = test_minilm();
        // 70 texts of varied lengths: sorted into several sub-batches, then scattered back.
        let texts: Vec<String> = (0..70)
            .map(|i| {
                format!(
                    "memory {i}: {}",
                    "the user likes tea ".repeat(1 + (i * 7) % 13)
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let batch = m.embed(&refs).unwrap();
        assert_eq!(batch.len(), 70);
        for i in [0, 1, 13, 35, 69] {
            let alone = m.embed(&refs[i..=i]).unwrap();
            let diff = max_abs_diff(&alone[0], &batch[i]);
            assert!(diff < 1e-4, "text {i}: max abs diff {diff}");
        }
        assert!(m.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn truncates_long_text_at_256_tokens() {
        let m = test_minilm();
        let base = "the quick brown fox jumps over the lazy dog ".repeat(40); // > 256 tokens
        let more = format!("{base} and then something completely different happened");
        let v = m.embed(&[&base, &more, ""]).unwrap();
        assert!(
            max_abs_diff(&v[0], &v[1]) < 1e-4,
            "text past 256 tokens must be ignored"
        );
        let norm = v[2].iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "empty text still gets a unit vector"
        );
    }

    #[test]
    fn load_error_says_how_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let err = MiniLm::load(dir.path()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("reflector model fetch"), "{msg}");
        assert!(msg.contains("config.json"), "{msg}");
    }
}
