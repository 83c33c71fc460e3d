//! Sampling text from a model: temperature and top-k over the last position's logits.

use candle_core::{D, DType, Tensor};

use crate::error::Result;
use crate::model::{Gpt, KvCache};
use crate::rng::Rng;

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// New tokens to generate.
    pub max_tokens: usize,
    /// Softmax temperature (0: always the most likely token).
    pub temperature: f64,
    /// Sample among the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Seeds the draws.
    pub seed: u64,
    /// Stop after emitting this token (the end-of-document token).
    pub stop: Option<u32>,
}

/// `prompt` followed by up to `sampling.max_tokens` sampled tokens. The model sees at most its
/// context of the most recent tokens. Until the text outgrows the context, each new token runs
/// through the blocks alone, attending to the keys and values kept of the ones before
/// ([`Gpt::extend`]); after that each token runs the whole window again.
pub fn generate(model: &Gpt, prompt: &[u32], sampling: &Sampling) -> Result<Vec<u32>> {
    let mut rng = Rng::new(sampling.seed, "generate");
    let context = model.dims().context;
    let mut ids = prompt.to_vec();
    let mut cache = KvCache::default();
    for _ in 0..sampling.max_tokens {
        let logits = if ids.len() <= context {
            // The window still starts at the first id: only the new ids run through the blocks.
            model.extend(&ids[cache.positions()..], &mut cache)?
        } else {
            // The window slides, so every position moves: the whole window runs again.
            let window = &ids[ids.len() - context..];
            let input = Tensor::from_vec(window.to_vec(), (1, window.len()), model.device())?;
            model
                .next_logits(&input)?
                .detach()
                .squeeze(0)?
                .to_dtype(DType::F32)?
        };
        let next = pick(&logits, sampling, &mut rng)?;
        ids.push(next);
        if Some(next) == sampling.stop {
            break;
        }
    }
    Ok(ids)
}

fn pick(logits: &Tensor, sampling: &Sampling, rng: &mut Rng) -> Result<u32> {
    if sampling.temperature <= 0.0 {
        return Ok(logits.argmax(D::Minus1)?.to_scalar::<u32>()?);
    }
    let logits: Vec<f32> = logits.to_vec1()?;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if sampling.top_k > 0 {
        order.truncate(sampling.top_k);
    }
    let top = f64::from(logits[order[0]]);
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - top) / sampling.temperature).exp())
        .collect();
    let mut r = rng.uniform() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        if r < *w {
            return Ok(i as u32);
        }
        r -= w;
    }
    Ok(order[order.len() - 1] as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn sampling(temperature: f64, top_k: usize, seed: u64) -> Sampling {
        Sampling {
            max_tokens: 1,
            temperature,
            top_k,
            seed,
            stop: None,
        }
    }

    #[test]
    fn greedy_and_top_k_pick_from_the_best() {
        let logits = Tensor::new(&[0.0f32, 5.0, 4.9, -3.0, 1.0], &Device::Cpu).unwrap();
        let mut rng = Rng::new(0, "t");
        assert_eq!(pick(&logits, &sampling(0.0, 0, 0), &mut rng).unwrap(), 1);
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut rng = Rng::new(seed, "t");
            seen.insert(pick(&logits, &sampling(1.0, 2, seed), &mut rng).unwrap());
        }
        assert_eq!(
            seen,
            [1, 2].into_iter().collect(),
            "top-2 samples only the best two"
        );
    }

    #[test]
    fn cached_generation_equals_running_the_whole_window_each_token() {
        let dims = crate::model::tests::small_dims();
        let model = Gpt::new(dims, 9, &Device::Cpu, DType::F32).unwrap();
        let prompt = [3u32, 17, 40];
        let greedy = Sampling {
            max_tokens: 12,
            ..sampling(0.0, 0, 0)
        };
        let got = generate(&model, &prompt, &greedy).unwrap();
        // The reference: the whole window through the model for every token, past the context.
        let mut want = prompt.to_vec();
        for _ in 0..12 {
            let window = &want[want.len().saturating_sub(8)..];
            let input = Tensor::new(window, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = model.next_logits(&input).unwrap().squeeze(0).unwrap();
            want.push(logits.argmax(0).unwrap().to_scalar::<u32>().unwrap());
        }
        assert_eq!(got, want);
        assert_eq!(got.len(), 15, "past the context of 8");
    }
}
