//! The model's numerics, composed of primitive tensor ops that all record a backward pass.
//!
//! candle's fused `softmax_last_dim`, `layer_norm` and `rms_norm` kernels (and
//! `candle_nn::LayerNorm` on contiguous input) record no backward, so parameters upstream of them
//! would silently get no gradient. Nothing here uses them; `tests::every_parameter_gets_a_nonzero_gradient`
//! holds the model to it. Normalisation and softmax run in f32 whatever the compute dtype.

use candle_core::{D, DType, Result, Tensor};

/// Layer normalisation over the last dimension: `(x - mean) / sqrt(var + eps) * weight + bias`.
/// On CUDA in bf16 (with f32 `weight` and `bias`) fused kernels (`cuda_ops`).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda()
        && x.dtype() == DType::BF16
        && weight.dtype() == DType::F32
        && weight.elem_count() <= crate::cuda_ops::MAX_NORM_WIDTH
    {
        return crate::cuda_ops::layer_norm(x, weight, bias, eps);
    }
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed
        .to_dtype(dtype)?
        .broadcast_mul(&weight.to_dtype(dtype)?)?
        .broadcast_add(&bias.to_dtype(dtype)?)
}

/// Softmax over the last dimension, in f32 (the shift by the maximum carries no gradient: the
/// result does not depend on it).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let x = x.to_dtype(DType::F32)?;
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Attention weights from raw scores `q·kᵀ` `[.., t, t]`: `softmax(scale · scores + mask)` in
/// the scores' dtype, `mask` being [`causal_mask`]. On CUDA in bf16 one fused kernel forward and
/// one backward (`cuda_ops`), which masks by position; elsewhere the composed ops, the
/// softmax in f32.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if scores.device().is_cuda() && scores.dtype() == DType::BF16 {
        return crate::cuda_ops::causal_softmax(scores, scale);
    }
    let t = scores.dim(D::Minus1)?;
    let mask = causal_mask(t, scores.dtype(), scores.device())?;
    softmax_last(&(scores * scale)?.broadcast_add(&mask)?)?.to_dtype(scores.dtype())
}

/// GELU, tanh approximation. On CUDA in bf16 a fused kernel forward and backward
/// (`cuda_ops`); elsewhere candle's op, whose backward is composed.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() && x.dtype() == DType::BF16 {
        return crate::cuda_ops::gelu(x);
    }
    x.gelu()
}

/// Cross-entropy of each row of `[rows, vocab]` f32 logits from primitive ops: the reference the
/// fused op of [`crate::cross_entropy`] is tested against.
#[cfg(test)]
pub(crate) fn composed_cross_entropy(x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let log_sum = shifted.exp()?.sum(D::Minus1)?.log()?;
    let picked = shifted
        .gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?
        .squeeze(D::Minus1)?;
    log_sum - picked
}

/// `x @ weightᵀ + bias` for `x` of shape `[N, in]` and `weight` `[out, in]`. On CUDA in bf16
/// with an f32 bias, the bias is added by a fused kernel (`cuda_ops`).
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let product = x.matmul(&weight.to_dtype(dtype)?.t()?)?;
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() && dtype == DType::BF16 && bias.dtype() == DType::F32 {
        return crate::cuda_ops::bias_add(&product, bias);
    }
    product.broadcast_add(&bias.to_dtype(dtype)?)
}

/// A `[t, t]` additive causal mask: 0 on and below the diagonal, −∞ above.
pub fn causal_mask(t: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(mask, (t, t), device)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_formula() {
        let x = t(&[1.0, 2.0, 3.0, -1.0, 0.0, 1000.0], (2, 3));
        let s = softmax_last(&x).unwrap().to_vec2::<f32>().unwrap();
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let z: f32 = e.iter().sum();
        for j in 0..3 {
            assert!((s[0][j] - e[j] / z).abs() < 1e-6);
        }
        assert!((s[1][2] - 1.0).abs() < 1e-6 && s[1][0] < 1e-30);
    }

    #[test]
    fn layer_norm_standardises_and_has_gradients() {
        let x = Var::from_tensor(&t(&[1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 6.0], (2, 4))).unwrap();
        let w = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0, 1.0, 1.0], &Device::Cpu).unwrap())
            .unwrap();
        let b = Var::from_tensor(&Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap()).unwrap();
        let y = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let rows = y.to_vec2::<f32>().unwrap();
        // Row 0 standardised: (-1.342, -0.447, 0.447, 1.342), second column doubled.
        assert!((rows[0][0] + 1.3416).abs() < 1e-3 && (rows[0][1] + 0.8944).abs() < 1e-3);
        let loss = (y.sqr().unwrap().sum_all().unwrap() + y.sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for v in [&x, &w, &b] {
            let g = grads.get(v.as_tensor()).expect("gradient recorded");
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0);
        }
    }

    #[test]
    fn mask_hides_the_future() {
        let m = causal_mask(3, DType::F32, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m[0][0], 0.0);
        assert!(m[0][1].is_infinite() && m[1][2].is_infinite());
        assert_eq!(m[2][0], 0.0);
    }
}
