//! A linear layer as one node. Composed, `x @ weightᵀ + bias` with f32 master weights records a
//! cast, a transpose, a matmul and a bias addition: four edges, two of them weight-sized (one a
//! strided transpose) and one the size of the output, each a gradient addition in the backward
//! pass. The node's backward writes the three gradients directly.

use candle_core::{CustomOp3, DType, Result, Tensor};

use super::Precomputed;
use crate::ops;

/// `x @ weightᵀ + bias` for `x` `[N, in]` in the compute dtype and the f32 masters `weight`
/// `[out, in]` and `bias` `[out]`; their gradients come back in f32.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let out = ops::linear(&x.detach(), &weight.detach(), &bias.detach())?;
    x.apply_op3(
        weight,
        bias,
        Linear {
            out: Precomputed::new(out),
        },
    )
}

/// `(x, weight, bias) → output` (computed outside the graph), with all three gradients.
struct Linear {
    out: Precomputed,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    precomputed_fwd!(3);

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let d_x = grad.matmul(&weight.detach().to_dtype(x.dtype())?)?;
        let d_weight = grad.t()?.matmul(&x.detach())?.to_dtype(weight.dtype())?;
        let d_bias = column_sums(&grad)?.to_dtype(bias.dtype())?;
        Ok((Some(d_x), Some(d_weight), Some(d_bias)))
    }
}

/// Column sums of `[N, out]` in f32: on CUDA in bf16 the bias kernel's backward
/// ([`crate::cuda_ops::column_sums`]).
fn column_sums(g: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if g.device().is_cuda() && g.dtype() == DType::BF16 {
        return crate::cuda_ops::column_sums(g);
    }
    g.to_dtype(DType::F32)?.sum(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn randn(shape: (usize, usize)) -> Tensor {
        Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn the_node_matches_the_composed_layer_and_its_gradients() {
        let x = Var::from_tensor(&randn((6, 5))).unwrap();
        let w = Var::from_tensor(&randn((4, 5))).unwrap();
        let b = Var::from_tensor(&randn((1, 4)).flatten_all().unwrap()).unwrap();
        let r = randn((6, 4));
        let node = linear(&x, &w, &b).unwrap();
        let composed = ops::linear(&x, &w, &b).unwrap();
        let gap = |a: &Tensor, b: &Tensor| -> f32 {
            let d = (a - b).unwrap().abs().unwrap();
            d.max_all().unwrap().to_scalar().unwrap()
        };
        assert_eq!(gap(&node, &composed), 0.0, "the same forward");
        let grads = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (got, want) = (grads(&node), grads(&composed));
        for v in [&x, &w, &b] {
            let (g, e) = (got.get(v).unwrap(), want.get(v).unwrap());
            assert_eq!(g.dims(), v.dims());
            assert!(gap(g, e) < 1e-5, "{}", gap(g, e));
        }
        // ∂/∂bias of Σ y·r is the column sums of r.
        let sums = r.sum(0).unwrap();
        assert!(gap(got.get(&b).unwrap(), &sums) < 1e-5);
    }
}
