//! A decoder-only transformer (GPT-2 layout): learned positions, pre-LayerNorm blocks of causal
//! self-attention and a GELU MLP, a final LayerNorm, and an output head tied to the token
//! embedding.
//!
//! Parameters are f32 [`Var`]s (the master weights). The forward pass casts each to the compute
//! dtype where it is used (bf16 on CUDA, a no-op on the CPU), so gradients reach the f32 masters
//! through the cast.
//!
//! Initialisation follows GPT-2: normal(0, 0.02) for matrices and embeddings, scaled by
//! `1/sqrt(2·layers)` for the two projections that feed the residual stream, zero biases, unit
//! LayerNorm gains. Each parameter draws from its own stream of the seed, so a parameter's
//! initial values depend only on the seed and its name.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Result, Tensor, Var};

use crate::config::ModelDims;
use crate::nodes::{
    KeysValues, cached_attention, causal_attention, embedding, head_cross_entropy, linear,
};
use crate::ops::{gelu, layer_norm};
use crate::rng::Rng;

const LN_EPS: f64 = 1e-5;

/// One named parameter.
pub struct Param {
    /// Its name in checkpoints (`h.0.attn.qkv.weight`, …).
    pub name: String,
    /// Its f32 master value.
    pub var: Var,
    /// Whether weight decay applies (matrices and embeddings; not biases or gains).
    pub decay: bool,
}

struct Block {
    ln1: (Var, Var),
    qkv: (Var, Var),
    attn_proj: (Var, Var),
    ln2: (Var, Var),
    fc: (Var, Var),
    mlp_proj: (Var, Var),
}

impl Block {
    /// The block on the residual stream `x` `[rows, width]`, with `attend` mapping the
    /// attention's `qkv` `[rows, 3·width]` to its heads' output `[rows, width]`.
    fn forward(
        &self,
        x: &Tensor,
        attend: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let h = layer_norm(x, &self.ln1.0, &self.ln1.1, LN_EPS)?;
        let heads = attend(&linear(&h, &self.qkv.0, &self.qkv.1)?)?;
        let x = (x + linear(&heads, &self.attn_proj.0, &self.attn_proj.1)?)?;
        let h = layer_norm(&x, &self.ln2.0, &self.ln2.1, LN_EPS)?;
        let h = gelu(&linear(&h, &self.fc.0, &self.fc.1)?)?;
        x + linear(&h, &self.mlp_proj.0, &self.mlp_proj.1)?
    }
}

/// What [`Gpt::extend`] keeps between calls: each block's keys and values for the positions of
/// the window seen so far.
#[derive(Default)]
pub struct KvCache {
    layers: Vec<KeysValues>,
    positions: usize,
}

impl KvCache {
    /// Positions of the window seen so far.
    pub fn positions(&self) -> usize {
        self.positions
    }
}

/// The language model. See the module docs.
pub struct Gpt {
    dims: ModelDims,
    dtype: DType,
    device: Device,
    wte: Var,
    wpe: Var,
    blocks: Vec<Block>,
    ln_f: (Var, Var),
    params: Vec<Param>,
}

enum Init {
    Normal(f64),
    Zeros,
    Ones,
}

struct Builder<'a> {
    seed: u64,
    device: &'a Device,
    params: Vec<Param>,
}

impl Builder<'_> {
    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Var> {
        let n: usize = shape.iter().product();
        let values = match init {
            Init::Normal(std) => Rng::new(self.seed, name).normal_vec(n, std),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
        };
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, self.device)?)?;
        self.params.push(Param {
            name: name.to_string(),
            var: var.clone(),
            decay: shape.len() >= 2,
        });
        Ok(var)
    }

    fn norm(&mut self, name: &str, width: usize) -> Result<(Var, Var)> {
        Ok((
            self.param(&format!("{name}.weight"), &[width], Init::Ones)?,
            self.param(&format!("{name}.bias"), &[width], Init::Zeros)?,
        ))
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize, std: f64) -> Result<(Var, Var)> {
        Ok((
            self.param(&format!("{name}.weight"), &[out, inp], Init::Normal(std))?,
            self.param(&format!("{name}.bias"), &[out], Init::Zeros)?,
        ))
    }
}

impl Gpt {
    /// A freshly initialised model; `dtype` is the compute dtype (weights stay f32).
    pub fn new(dims: ModelDims, seed: u64, device: &Device, dtype: DType) -> Result<Self> {
        let d = dims.width;
        let std = 0.02;
        let residual_std = std / (2.0 * dims.layers as f64).sqrt();
        let mut b = Builder {
            seed,
            device,
            params: Vec::new(),
        };
        let wte = b.param("wte", &[dims.vocab, d], Init::Normal(std))?;
        let wpe = b.param("wpe", &[dims.context, d], Init::Normal(std))?;
        let mut blocks = Vec::with_capacity(dims.layers);
        for l in 0..dims.layers {
            let p = format!("h.{l}");
            blocks.push(Block {
                ln1: b.norm(&format!("{p}.ln_1"), d)?,
                qkv: b.linear(&format!("{p}.attn.qkv"), 3 * d, d, std)?,
                attn_proj: b.linear(&format!("{p}.attn.proj"), d, d, residual_std)?,
                ln2: b.norm(&format!("{p}.ln_2"), d)?,
                fc: b.linear(&format!("{p}.mlp.fc"), 4 * d, d, std)?,
                mlp_proj: b.linear(&format!("{p}.mlp.proj"), d, 4 * d, residual_std)?,
            });
        }
        let ln_f = b.norm("ln_f", d)?;
        Ok(Self {
            dims,
            dtype,
            device: device.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
            params: b.params,
        })
    }

    /// Every parameter, in a fixed order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The model's shape.
    pub fn dims(&self) -> ModelDims {
        self.dims
    }

    /// The device it lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of parameter values (the tied head counted once).
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }

    /// Training FLOPs per token of a forward and backward pass at sequence length `t`
    /// (PaLM appendix B: `6·N + 12·layers·t·width`).
    pub fn flops_per_token(&self, t: usize) -> f64 {
        6.0 * self.parameter_count() as f64 + 12.0 * (self.dims.layers * t * self.dims.width) as f64
    }

    /// Logits `[B, vocab]` (compute dtype) of the token after each window of ids `[B, T]` (u32,
    /// `T ≤ context`). Only the last position of each window goes through the output head, the
    /// largest matmul of the model at a large vocabulary.
    pub fn next_logits(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let hidden = self.hidden_rows(ids)?.reshape((b, t, self.dims.width))?;
        self.head(&hidden.narrow(1, t - 1, 1)?.squeeze(1)?)
    }

    /// Logits `[rows, vocab]` of hidden rows `[rows, width]`: the output head, tied to the token
    /// embedding.
    fn head(&self, rows: &Tensor) -> Result<Tensor> {
        rows.matmul(&self.wte.to_dtype(self.dtype)?.t()?)
    }

    /// Mean cross-entropy of each window: `[B]` (f32), for token ids `inputs` and their next
    /// tokens `targets` (`[B, T]`, u32). The head and the loss are one node of the graph
    /// ([`head_cross_entropy`]).
    pub fn window_losses(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let (b, t) = targets.dims2()?;
        let hidden = self.hidden_rows(inputs)?;
        head_cross_entropy(&hidden, &self.wte, &targets.flatten_all()?)?
            .reshape((b, t))?
            .mean(D::Minus1)
    }

    /// The final LayerNorm's output `[B·T, width]`, window by window. The residual stream stays
    /// `[B·T, width]` through every block and the loss, so the only reshapes in the graph are
    /// the two around the position embedding's broadcast (each reshape costs the backward pass
    /// a full-size gradient addition).
    fn hidden_rows(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.dims.context {
            candle_core::bail!(
                "sequence of {t} tokens exceeds the context of {}",
                self.dims.context
            );
        }
        let d = self.dims.width;
        // Rows picked from the f32 embedding, then cast: the backward pass adds the rows'
        // gradients into an f32 table, not a bf16 one.
        let tokens = embedding(&self.wte, ids)?.to_dtype(self.dtype)?;
        let positions = self.wpe.narrow(0, 0, t)?.to_dtype(self.dtype)?;
        let mut x = tokens
            .reshape((b, t, d))?
            .broadcast_add(&positions)?
            .reshape((b * t, d))?;
        for block in &self.blocks {
            x = block.forward(&x, |qkv| causal_attention(qkv, b, self.dims.heads))?;
        }
        layer_norm(&x, &self.ln_f.0, &self.ln_f.1, LN_EPS)
    }

    /// Logits `[vocab]` of the token after one window, fed to the model in pieces: the first
    /// call takes the window's ids so far, each later call one more id, at the next position.
    /// `cache` keeps every block's keys and values, so a call runs only its new positions
    /// through the blocks. Fails past the context. For generation: records no backward pass.
    pub fn extend(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let (start, n) = (cache.positions, ids.len());
        if n == 0 || start + n > self.dims.context {
            candle_core::bail!(
                "{n} new tokens after {start} do not fit the context of {}",
                self.dims.context
            );
        }
        cache.layers.resize(self.blocks.len(), None);
        let ids = Tensor::new(ids, &self.device)?;
        let tokens = embedding(&self.wte, &ids)?.to_dtype(self.dtype)?;
        let positions = self.wpe.narrow(0, start, n)?.to_dtype(self.dtype)?;
        let mut x = (tokens + positions)?.detach();
        for (block, kv) in self.blocks.iter().zip(&mut cache.layers) {
            x = block
                .forward(&x, |qkv| cached_attention(qkv, self.dims.heads, kv))?
                .detach();
        }
        cache.positions += n;
        let last = layer_norm(&x.narrow(0, n - 1, 1)?, &self.ln_f.0, &self.ln_f.1, LN_EPS)?;
        self.head(&last)?.squeeze(0)?.detach().to_dtype(DType::F32)
    }

    /// The weights by name (f32), as saved in `model.safetensors`.
    pub fn named_tensors(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_detached_tensor()))
            .collect()
    }

    /// Writes the weights as safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.named_tensors(), path)
    }

    /// Replaces every weight with the one of the same name in a safetensors file; every name and
    /// shape must match.
    pub fn load(&self, path: &Path) -> Result<()> {
        let mut saved = crate::checkpoint::read_tensors(path, &self.device)?;
        for p in &self.params {
            let t = saved.remove(&p.name).ok_or_else(|| {
                candle_core::Error::Msg(format!("{} lacks `{}`", path.display(), p.name))
            })?;
            if t.dims() != p.var.dims() {
                candle_core::bail!(
                    "{}: `{}` has shape {:?}, the model {:?}",
                    path.display(),
                    p.name,
                    t.dims(),
                    p.var.dims()
                );
            }
            p.var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A model shape small enough for exact comparisons: 2 layers, 2 heads, 16 wide, a context
    /// of 8, 64 embedding rows.
    pub(crate) fn small_dims() -> ModelDims {
        ModelDims {
            layers: 2,
            heads: 2,
            width: 16,
            context: 8,
            vocab: 64,
        }
    }

    /// The largest absolute difference of two tensors.
    fn gap(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap();
        d.max_all().unwrap().to_scalar().unwrap()
    }

    /// [`Gpt::next_logits`] of one window, `[vocab]`.
    fn whole(model: &Gpt, ids: &[u32]) -> Tensor {
        let window = Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        model.next_logits(&window).unwrap().squeeze(0).unwrap()
    }

    #[test]
    fn next_logits_are_the_last_position_of_every_prefix() {
        let dims = small_dims();
        let model = Gpt::new(dims, 5, &Device::Cpu, DType::F32).unwrap();
        let ids: Vec<u32> = (0..16).map(|i| (i * 11 % 64) as u32).collect();
        let ids = Tensor::from_vec(ids, (2, 8), &Device::Cpu).unwrap();
        // Every position's logits, from the hidden rows through the whole head.
        let all = model
            .hidden_rows(&ids)
            .unwrap()
            .matmul(&model.wte.t().unwrap())
            .unwrap()
            .reshape((2, 8, 64))
            .unwrap();
        for k in 1..=8 {
            let next = model.next_logits(&ids.narrow(1, 0, k).unwrap()).unwrap();
            assert_eq!(next.dims(), &[2, 64]);
            let want = all.narrow(1, k - 1, 1).unwrap().squeeze(1).unwrap();
            let gap = gap(&next, &want);
            assert!(gap < 1e-5, "prefix {k}: {gap}");
        }
    }

    #[test]
    fn extending_a_cache_equals_running_the_whole_prefix() {
        let dims = small_dims();
        let model = Gpt::new(dims, 7, &Device::Cpu, DType::F32).unwrap();
        let ids: Vec<u32> = (0..8).map(|i| (i * 13 % 64) as u32).collect();
        let mut cache = KvCache::default();
        let mut fed = 0;
        for k in 3..=8 {
            let got = model.extend(&ids[fed..k], &mut cache).unwrap();
            fed = k;
            assert_eq!(cache.positions(), k);
            let gap = gap(&got, &whole(&model, &ids[..k]));
            assert!(gap < 1e-5, "prefix {k}: {gap}");
        }
        assert!(model.extend(&[1], &mut cache).is_err(), "past the context");
        let mut two_at_once = KvCache::default();
        model.extend(&ids[..2], &mut two_at_once).unwrap();
        assert!(model.extend(&ids[2..4], &mut two_at_once).is_err());
        let one = model.extend(&ids[2..3], &mut two_at_once).unwrap();
        let gap = gap(&one, &whole(&model, &ids[..3]));
        assert!(
            gap < 1e-5,
            "a refused call leaves the cache as it was: {gap}"
        );
    }
}
