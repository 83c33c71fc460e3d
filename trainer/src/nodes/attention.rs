//! Causal multi-head self-attention as one node. Composed, a layer's attention records a dozen
//! nodes (reshape, three narrows, transposes, two matmuls, the softmax, the head merge), with two
//! `[B, heads, T, T]` gradient additions and a zero-padded concatenation per narrow in the
//! backward pass. The node's backward recomputes the attention weights (one matmul and one
//! softmax) and writes the gradient of `qkv` once; no `[B, heads, T, T]` tensor is kept for it.
//! [`cached_attention`] is the forward alone for generation, keeping each position's keys and
//! values so that a new token attends to them without recomputing them.

use candle_core::{CustomOp1, D, DType, Result, Tensor};

use super::Precomputed;
use crate::ops::{causal_softmax, softmax_last};

/// Causal multi-head self-attention of `qkv` `[B·T, 3·width]` (queries, keys and values side by
/// side, each split into `heads` heads) for `batch` windows: `[B·T, width]`, heads merged.
pub fn causal_attention(qkv: &Tensor, batch: usize, heads: usize) -> Result<Tensor> {
    let (q, k, v) = split_heads(&qkv.detach(), batch, heads)?;
    let out = merge_heads(&[&weights(&q, &k, scale(qkv, heads)?)?.matmul(&v)?])?;
    qkv.apply_op1(Attention {
        batch,
        heads,
        out: Precomputed::new(out),
    })
}

/// Keys and values `[1, heads, positions, head width]` of one block for the positions of one
/// window seen so far (generation).
pub type KeysValues = Option<(Tensor, Tensor)>;

/// The attention output `[n, width]` of the newest `n` positions of one window, `qkv`
/// `[n, 3·width]`, whose keys and values are appended to `cache`. With an empty cache this is
/// [`causal_attention`]'s forward over the `n` positions; after that each call takes one new
/// position, which attends to every position before it and itself. Records no backward pass.
pub fn cached_attention(qkv: &Tensor, heads: usize, cache: &mut KeysValues) -> Result<Tensor> {
    if cache.is_some() && qkv.dim(0)? != 1 {
        candle_core::bail!("a cached attention takes one new position at a time");
    }
    let (q, k, v) = split_heads(&qkv.detach(), 1, heads)?;
    let scale = scale(qkv, heads)?;
    let (w, k, v) = match cache.take() {
        None => (weights(&q, &k, scale)?, k, v),
        Some((keys, values)) => {
            let (k, v) = (
                Tensor::cat(&[&keys, &k], 2)?,
                Tensor::cat(&[&values, &v], 2)?,
            );
            let scores = (q.matmul(&k.t()?)? * scale)?;
            (softmax_last(&scores)?.to_dtype(q.dtype())?, k, v)
        }
    };
    let out = merge_heads(&[&w.matmul(&v)?])?;
    *cache = Some((k, v));
    Ok(out)
}

/// [`causal_attention`] as composed ops, each recording its backward (the reference the node is
/// tested against).
pub fn attention_composed(qkv: &Tensor, batch: usize, heads: usize) -> Result<Tensor> {
    let (q, k, v) = qkv_composed(qkv, batch, heads)?;
    merge_heads_composed(&weights(&q, &k, scale(qkv, heads)?)?.matmul(&v)?)
}

/// `1/√(head width)`, the scale of the scores, for `qkv` `[B·T, 3·width]` of `heads` heads.
fn scale(qkv: &Tensor, heads: usize) -> Result<f64> {
    let head_width = qkv.dim(1)? / 3 / heads;
    Ok(1.0 / (head_width as f64).sqrt())
}

/// The attention weights `softmax(scale · q·kᵀ)`, causal.
fn weights(q: &Tensor, k: &Tensor, scale: f64) -> Result<Tensor> {
    causal_softmax(&q.matmul(&k.t()?)?, scale)
}

/// Whether the head split and merge of `t`, with heads `head_width` wide, run as CUDA kernels:
/// bf16 on a GPU, each head a whole number of the kernels' 16-byte vectors.
#[cfg(feature = "cuda")]
fn permute_on_gpu(t: &Tensor, head_width: usize) -> bool {
    t.device().is_cuda()
        && t.dtype() == DType::BF16
        && head_width.is_multiple_of(crate::cuda_ops::HEAD_VECTOR)
}

/// Queries, keys and values `[B, heads, T, head width]` (contiguous) of `qkv` `[B·T, 3·width]`:
/// on CUDA in bf16 one permutation kernel ([`crate::cuda_ops::split_heads`]).
fn split_heads(qkv: &Tensor, batch: usize, heads: usize) -> Result<(Tensor, Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if permute_on_gpu(qkv, qkv.dim(1)? / 3 / heads) {
        let all = crate::cuda_ops::split_heads(qkv, batch, heads, 3)?;
        return Ok((all.get(0)?, all.get(1)?, all.get(2)?));
    }
    qkv_composed(qkv, batch, heads)
}

/// The `parts` `[B, heads, T, head width]` tensors of `x` `[B·T, parts·width]` from composed ops.
fn split_heads_composed(
    x: &Tensor,
    batch: usize,
    heads: usize,
    parts: usize,
) -> Result<Vec<Tensor>> {
    let (rows, cols) = x.dims2()?;
    let (t, head_width) = (rows / batch, cols / parts / heads);
    let x = x.reshape((batch, t, parts, heads, head_width))?;
    (0..parts)
        .map(|i| x.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous())
        .collect()
}

/// The three tensors of [`split_heads_composed`] of `qkv`.
fn qkv_composed(qkv: &Tensor, batch: usize, heads: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let [q, k, v]: [Tensor; 3] = split_heads_composed(qkv, batch, heads, 3)?
        .try_into()
        .expect("three parts were split");
    Ok((q, k, v))
}

/// `parts` `[B, heads, T, head width]` merged side by side into `[B·T, parts·width]`: on CUDA in
/// bf16 one permutation kernel per part ([`crate::cuda_ops::merge_heads`]).
fn merge_heads(parts: &[&Tensor]) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if permute_on_gpu(parts[0], parts[0].dim(3)?) {
        return crate::cuda_ops::merge_heads(parts);
    }
    let merged = parts
        .iter()
        .map(|p| merge_heads_composed(p))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&merged, 1)
}

/// One `[B, heads, T, head width]` merged into `[B·T, width]` from composed ops.
fn merge_heads_composed(x: &Tensor) -> Result<Tensor> {
    let (b, heads, t, head_width) = x.dims4()?;
    x.transpose(1, 2)?
        .contiguous()?
        .reshape((b * t, heads * head_width))
}

/// The gradient of the scores from that of the attention weights `y = softmax(scale · scores)`
/// (masked entries have `y = 0`, so they get none): `scale · y · (g − Σ g·y)`. On CUDA in bf16
/// the softmax's fused backward kernel.
fn softmax_backward(y: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if y.device().is_cuda() && y.dtype() == DType::BF16 {
        return crate::cuda_ops::causal_softmax_backward(y, g, scale);
    }
    let dtype = y.dtype();
    let (y, g) = (y.to_dtype(DType::F32)?, g.to_dtype(DType::F32)?);
    let dot = (&g * &y)?.sum_keepdim(D::Minus1)?;
    ((g.broadcast_sub(&dot)? * y)? * scale)?.to_dtype(dtype)
}

/// `qkv → output` (computed outside the graph), with the gradient for `qkv`.
struct Attention {
    batch: usize,
    heads: usize,
    out: Precomputed,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    precomputed_fwd!(1);

    fn bwd(&self, qkv: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (b, heads) = (self.batch, self.heads);
        let scale = scale(qkv, heads)?;
        let (q, k, v) = split_heads(&qkv.detach(), b, heads)?;
        let weights = weights(&q, &k, scale)?;
        let d_out = split_grad(grad, b, heads)?;
        let d_weights = d_out.matmul(&v.t()?)?;
        let d_v = weights.t()?.matmul(&d_out)?;
        let d_scores = softmax_backward(&weights, &d_weights, scale)?;
        let d_q = d_scores.matmul(&k)?;
        let d_k = d_scores.t()?.matmul(&q)?;
        Ok(Some(merge_heads(&[&d_q, &d_k, &d_v])?))
    }
}

/// The output's gradient `[B·T, width]` as `[B, heads, T, head width]`.
fn split_grad(grad: &Tensor, batch: usize, heads: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if permute_on_gpu(grad, grad.dim(1)? / heads) {
        return crate::cuda_ops::split_heads(grad, batch, heads, 1)?.squeeze(0);
    }
    let mut parts = split_heads_composed(grad, batch, heads, 1)?;
    Ok(parts.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn max_gap(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn the_node_matches_the_composed_attention_and_its_gradient() {
        let (batch, t, heads, width) = (3, 20, 4, 32);
        let qkv = Var::from_tensor(
            &Tensor::randn(0f32, 1.0, (batch * t, 3 * width), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let r = Tensor::randn(0f32, 1.0, (batch * t, width), &Device::Cpu).unwrap();
        let node = causal_attention(qkv.as_tensor(), batch, heads).unwrap();
        let composed = attention_composed(qkv.as_tensor(), batch, heads).unwrap();
        assert_eq!(node.dims(), &[batch * t, width]);
        assert_eq!(max_gap(&node, &composed), 0.0, "the same forward");
        let grad = |y: &Tensor| {
            let store = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            store.get(qkv.as_tensor()).expect("gradient").clone()
        };
        let (got, want) = (grad(&node), grad(&composed));
        let largest: f32 = want.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(largest > 0.1, "a gradient to compare");
        assert!(
            max_gap(&got, &want) < 1e-5 * largest.max(1.0),
            "{}",
            max_gap(&got, &want)
        );
        // The first query of a window sees only the first key: its output is the first value.
        let first_row = qkv.as_tensor().narrow(0, 0, 1).unwrap();
        let first_value = first_row.narrow(1, 2 * width, width).unwrap();
        assert!(max_gap(&node.narrow(0, 0, 1).unwrap(), &first_value) < 1e-6);
    }

    #[test]
    fn equal_scores_give_the_analytic_gradient() {
        // All-ones input: every query weighs the keys it sees equally (1/(i+1) for query i), so
        // the gradient of Σ output reaches the values only: value j gets Σ_{i ≥ j} 1/(i+1); the
        // scores are all equal and queries and keys get none.
        let (batch, t, heads, width) = (2, 4, 2, 8);
        let qkv = Tensor::ones((batch * t, 3 * width), DType::F32, &Device::Cpu).unwrap();
        let qkv = Var::from_tensor(&qkv).unwrap();
        let y = causal_attention(qkv.as_tensor(), batch, heads).unwrap();
        let store = y.sum_all().unwrap().backward().unwrap();
        let g = store
            .get(qkv.as_tensor())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (row, grads) in g.iter().enumerate() {
            let j = row % t;
            let expect: f32 = (j..t).map(|i| 1.0 / (i + 1) as f32).sum();
            for (col, &v) in grads.iter().enumerate() {
                let want = if col >= 2 * width { expect } else { 0.0 };
                assert!(
                    (v - want).abs() < 1e-6,
                    "row {row} col {col}: {v} vs {want}"
                );
            }
        }
    }
}
