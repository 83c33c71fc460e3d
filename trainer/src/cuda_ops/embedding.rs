//! The gradient of an embedding table: one block per distinct token sums that token's rows of
//! the upstream gradient in position order ([`crate::token_groups::TokenGroups`]).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

use super::{MODULE, i32_arg, ptx, view, wrap};
use crate::token_groups::TokenGroups;

/// `[vocab, width]` (f32) gradient of a table from `grad` `[positions, width]` (f32, CUDA) of
/// the rows at the positions `groups` was made from.
pub fn embedding_backward(grad: &Tensor, groups: &TokenGroups, vocab: usize) -> Result<Tensor> {
    let (positions, width) = grad.dims2()?;
    if groups.order.len() != positions {
        bail!(
            "embedding backward: {positions} rows for {} ids",
            groups.order.len()
        );
    }
    if groups.tokens.iter().any(|&t| t as usize >= vocab) {
        bail!("embedding backward: a token id is not below the vocabulary of {vocab}");
    }
    // order, starts and tokens in one upload.
    let index: Vec<u32> = [&groups.order, &groups.starts, &groups.tokens]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let len = index.len();
    let index = Tensor::from_vec(index, len, grad.device())?;
    grad.to_dtype(DType::F32)?.contiguous()?.apply_op2_no_bwd(
        &index,
        &TableGrad {
            positions,
            groups: groups.tokens.len(),
            vocab,
            width,
        },
    )
}

/// `(grad, index) → table gradient`, `index` holding order, starts and tokens back to back.
struct TableGrad {
    positions: usize,
    groups: usize,
    vocab: usize,
    width: usize,
}

impl CustomOp2 for TableGrad {
    fn name(&self) -> &'static str {
        "embedding-grad"
    }

    cpu_fwd_refused!(2);

    fn cuda_fwd(
        &self,
        gs: &CudaStorage,
        gl: &Layout,
        is: &CudaStorage,
        il: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (n, s) = (self.positions, self.groups);
        let g = view::<f32>(gs, gl)?;
        let index = view::<u32>(is, il)?;
        if g.len() != n * self.width || index.len() != n + 2 * s + 1 {
            bail!("embedding backward: inputs of the wrong length");
        }
        let (order, starts, tokens) = (
            index.slice(0..n),
            index.slice(n..n + s + 1),
            index.slice(n + s + 1..),
        );
        let dev = &gs.device;
        let mut table = dev.alloc_zeros::<f32>(self.vocab * self.width)?;
        if s > 0 {
            let func = dev.get_or_load_custom_func("embedding_bwd", MODULE, ptx()?)?;
            let width = i32_arg(self.width)?;
            let mut l = func.builder();
            l.arg(&g)
                .arg(&order)
                .arg(&starts)
                .arg(&tokens)
                .arg(&mut table)
                .arg(&width);
            let config = LaunchConfig {
                grid_dim: (s as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: g holds n × width f32 values; order holds n positions below n, starts
            // s + 1 ascending offsets into order ending at n, tokens s ids below vocab (checked
            // above); table holds vocab × width f32 values.
            unsafe { l.launch(config) }.w()?;
        }
        Ok((wrap(dev, table), Shape::from((self.vocab, self.width))))
    }
}
