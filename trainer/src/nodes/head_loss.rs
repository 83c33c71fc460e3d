//! The tied output head and the cross-entropy as one node. Composed, the logits `[B·T, vocab]`
//! are an edge of the graph (a gradient addition over the largest tensor of the step: 2.2 ms at
//! batch 8 on an H100), and so are the head's bf16 weight, its transpose and its cast from the
//! f32 embedding (three more vocabulary-sized additions). The node's backward turns the loss's
//! gradient into the logits' gradient and that into the two inputs' gradients directly. On the
//! CPU the forward pass turns the logits into their gradient in place ([`LossGradient`]), so a
//! step holds one `[B·T, vocab]` tensor, not two.

use candle_core::{CustomOp3, Result, Tensor};

use super::Precomputed;
use crate::cross_entropy::{
    LossGradient, cross_entropy_grad, cross_entropy_in_place, fused_cross_entropy,
};

/// Per-row cross-entropy `[rows]` (f32) of the logits `x @ embeddingᵀ` for `x` `[rows, width]`
/// in the compute dtype, the f32 master `embedding` `[vocab, width]` and `targets` `[rows]`
/// (u32). The gradients of `x` and `embedding` come back in their dtypes.
pub fn head_cross_entropy(x: &Tensor, embedding: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let weight = embedding.detach().to_dtype(x.dtype())?;
    let logits = x.detach().matmul(&weight.t()?)?;
    let targets = targets.contiguous()?;
    let (out, kept) = if logits.device().is_cpu() {
        let (out, gradient) = cross_entropy_in_place(logits, &targets)?;
        (out, Kept::Gradient(gradient))
    } else {
        let out = fused_cross_entropy(&logits, &targets)?;
        (out, Kept::Logits(logits))
    };
    x.apply_op3(
        embedding,
        &targets,
        HeadLoss {
            kept,
            weight,
            out: Precomputed::new(out),
        },
    )
}

/// `(x, embedding, targets) → losses` (computed outside the graph), keeping what the backward
/// pass needs of the logits, and the head's weight in the compute dtype.
struct HeadLoss {
    kept: Kept,
    weight: Tensor,
    out: Precomputed,
}

/// What the head keeps of its `[rows, vocab]` logits for the backward pass.
enum Kept {
    /// On the CPU: their gradient, computed in their buffer by the forward pass.
    Gradient(LossGradient),
    /// On a GPU (bf16): the logits, from which the backward kernel computes the gradient.
    Logits(Tensor),
}

impl CustomOp3 for HeadLoss {
    fn name(&self) -> &'static str {
        "head-cross-entropy"
    }

    precomputed_fwd!(3);

    fn bwd(
        &self,
        x: &Tensor,
        embedding: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d_logits = match &self.kept {
            Kept::Gradient(gradient) => gradient.take(grad)?,
            Kept::Logits(logits) => cross_entropy_grad(logits, targets, grad)?,
        };
        let d_x = d_logits.matmul(&self.weight)?;
        let d_embedding = d_logits
            .t()?
            .matmul(&x.detach())?
            .to_dtype(embedding.dtype())?;
        Ok((Some(d_x), Some(d_embedding), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn randn(shape: (usize, usize)) -> Tensor {
        Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn the_node_matches_the_composed_head_and_loss_and_their_gradients() {
        let (rows, width, vocab) = (7, 6, 11);
        let x = Var::from_tensor(&randn((rows, width))).unwrap();
        let e = Var::from_tensor(&randn((vocab, width))).unwrap();
        let targets = Tensor::new(&[0u32, 3, 10, 3, 5, 1, 9], &Device::Cpu).unwrap();
        let r = randn((1, rows)).flatten_all().unwrap();
        let node = head_cross_entropy(&x, &e, &targets).unwrap();
        let logits = x.matmul(&e.t().unwrap()).unwrap();
        let composed = fused_cross_entropy(&logits, &targets).unwrap();
        let gap = |a: &Tensor, b: &Tensor| -> f32 {
            let d = (a - b).unwrap().abs().unwrap();
            d.max_all().unwrap().to_scalar().unwrap()
        };
        assert_eq!(node.dims(), &[rows]);
        assert_eq!(gap(&node, &composed), 0.0, "the same forward");
        let grads = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (got, want) = (grads(&node), grads(&composed));
        for v in [&x, &e] {
            let (g, w) = (got.get(v).unwrap(), want.get(v).unwrap());
            assert_eq!(g.dims(), v.dims());
            let largest: f32 = w.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(largest > 0.01, "a gradient to compare");
            assert!(gap(g, w) < 1e-5, "{}", gap(g, w));
        }
    }
}
