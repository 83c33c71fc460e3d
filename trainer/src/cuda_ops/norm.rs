//! The sum of squares of every gradient (for the global gradient norm): one kernel per tensor,
//! one sum and one read back, instead of three kernels per tensor and a stack.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{DType, InplaceOp2, Layout, Result, Tensor, bail};

use super::{MODULE, ptx, view, view_mut};

/// Blocks per tensor: each writes one partial sum. A fixed grid keeps the sum's order, and so
/// its value, the same on every run.
const BLOCKS: usize = 256;

/// `Σ g²` over every element of every tensor of `grads` (CUDA, f32 or castable), in f64.
pub fn sum_of_squares(grads: &[Tensor]) -> Result<f64> {
    let Some(first) = grads.first() else {
        return Ok(0.0);
    };
    let partials = Tensor::zeros(grads.len() * BLOCKS, DType::F64, first.device())?;
    for (slot, g) in grads.iter().enumerate() {
        if g.elem_count() == 0 {
            continue; // its partial sums stay 0
        }
        let g = g.to_dtype(DType::F32)?.contiguous()?;
        partials.inplace_op2(&g, &SumSquares { slot })?;
    }
    partials.sum_all()?.to_scalar::<f64>()
}

/// Writes the partial sums of squares of a tensor into `partials[slot·BLOCKS ..][.. BLOCKS]`.
struct SumSquares {
    slot: usize,
}

impl InplaceOp2 for SumSquares {
    fn name(&self) -> &'static str {
        "sum-squares"
    }

    cpu_fwd_refused!(inplace 2);

    fn cuda_fwd(
        &self,
        ps: &mut CudaStorage,
        pl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<()> {
        let range = self.slot * BLOCKS..(self.slot + 1) * BLOCKS;
        if range.end > pl.shape().elem_count() {
            bail!("sum of squares: slot {} past the partial sums", self.slot);
        }
        let dev = ps.device.clone();
        let g = view::<f32>(gs, gl)?;
        let n = g.len();
        let mut all = view_mut::<f64>(ps, pl)?;
        let mut partial = all.slice_mut(range);
        let func = dev.get_or_load_custom_func("sum_squares", MODULE, ptx()?)?;
        let mut l = func.builder();
        l.arg(&g).arg(&n).arg(&mut partial);
        let config = LaunchConfig {
            grid_dim: (BLOCKS as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: g holds n f32 values and partial BLOCKS f64 slots, one per block.
        unsafe { l.launch(config) }.w()?;
        Ok(())
    }
}
