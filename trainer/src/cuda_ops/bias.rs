//! Bias addition with an f32 bias, whose gradient (column sums) comes back in f32.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use half::bf16;

use super::{MODULE, i32_arg, ptx, view, wrap};

/// `x + bias` for bf16 `x` `[.., cols]` and the f32 `bias` `[cols]` (a master weight, whose
/// gradient, the column sums of the output's gradient, comes back in f32).
pub fn bias_add(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, BiasAdd)
}

struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "bias-add"
    }

    cpu_fwd_refused!(2);

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        bs: &CudaStorage,
        bl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let cols = *xl.dims().last().unwrap_or(&0);
        if cols == 0 || bl.shape().elem_count() != cols {
            bail!("bias add: input {:?} with bias {:?}", xl.dims(), bl.dims());
        }
        let (x, b) = (view::<bf16>(xs, xl)?, view::<f32>(bs, bl)?);
        let n = xl.shape().elem_count();
        let rows = n / cols;
        let dev = &xs.device;
        let mut y = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("bias_add_fwd", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut l = func.builder();
        l.arg(&x).arg(&b).arg(&mut y).arg(&r).arg(&c);
        let config = LaunchConfig {
            grid_dim: (rows.clamp(1, 1 << 16) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: x and y hold rows × cols bf16 values and b cols f32 values.
        unsafe { l.launch(config) }.w()?;
        Ok((wrap(dev, y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        _: &Tensor,
        bias: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let sums = column_sums(&grad)?;
        Ok((Some(grad), Some(sums.reshape(bias.shape())?)))
    }
}

/// Column sums of bf16 `g` `[.., cols]`: `[cols]` (f32), the gradient of a bias.
pub fn column_sums(g: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op1_no_bwd(&ColumnSums)?.sum(0)
}

/// `g [.., cols] → [chunks, cols]` (f32): column sums over chunks of rows, to be summed over the
/// first dimension.
struct ColumnSums;

/// Row chunks of [`ColumnSums`]: enough blocks to fill the GPU, few enough to sum cheaply.
const ROW_CHUNKS: usize = 64;

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    cpu_fwd_refused!(1);

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let cols = *layout.dims().last().unwrap_or(&0);
        let rows = layout.shape().elem_count() / cols.max(1);
        let chunks = ROW_CHUNKS.min(rows.max(1));
        let g = view::<bf16>(storage, layout)?;
        let dev = &storage.device;
        let mut partial = dev.alloc_zeros::<f32>(chunks * cols)?;
        let func = dev.get_or_load_custom_func("column_sums", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut l = func.builder();
        l.arg(&g).arg(&mut partial).arg(&r).arg(&c);
        let config = LaunchConfig {
            grid_dim: (cols.div_ceil(256) as u32, chunks as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: g holds rows × cols bf16 values and partial chunks × cols f32 values.
        unsafe { l.launch(config) }.w()?;
        let partial = wrap(dev, partial);
        Ok((partial, Shape::from((chunks, cols))))
    }
}
