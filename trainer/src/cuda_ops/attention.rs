//! The attention weights: a causal softmax fused with its scale and mask.

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use half::bf16;

use super::{MODULE, i32_arg, ptx, row_launch, same_dims, view, wrap};

/// `softmax(scale · x)` over the last dimension of square scores, each query masked to the keys
/// at or before it: the attention weights, fused.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax {
        scale: scale as f32,
    })
}

/// `[rows, cols]` of square `[.., t, t]` scores.
fn rows_cols(layout: &Layout) -> Result<(usize, usize)> {
    let dims = layout.dims();
    let n = dims.len();
    if n < 2 || dims[n - 1] != dims[n - 2] {
        bail!("causal softmax: expected [.., t, t] scores, got {dims:?}");
    }
    Ok((layout.shape().elem_count() / dims[n - 1], dims[n - 1]))
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    cpu_fwd_refused!(1);

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let (rows, cols) = rows_cols(layout)?;
        let x = view::<bf16>(storage, layout)?;
        let dev = &storage.device;
        let mut y = dev.alloc_zeros::<bf16>(rows * cols)?;
        let func = dev.get_or_load_custom_func("causal_softmax_fwd", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut b = func.builder();
        b.arg(&x).arg(&mut y).arg(&r).arg(&c).arg(&self.scale);
        // SAFETY: x and y hold rows × cols bf16 values, the kernel's extent.
        unsafe { b.launch(row_launch(rows)) }.w()?;
        Ok((wrap(dev, y), layout.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(causal_softmax_backward(
            res,
            grad,
            f64::from(self.scale),
        )?))
    }
}

/// The gradient of the scores from that of the weights `y` of [`causal_softmax`] with `scale`
/// (both bf16, `[.., t, t]`), no backward recorded.
pub fn causal_softmax_backward(y: &Tensor, g: &Tensor, scale: f64) -> Result<Tensor> {
    let scale = scale as f32;
    y.contiguous()?
        .apply_op2_no_bwd(&g.contiguous()?, &CausalSoftmaxGrad { scale })
}

/// `(y, g) → dx` of [`CausalSoftmax`].
struct CausalSoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for CausalSoftmaxGrad {
    fn name(&self) -> &'static str {
        "causal-softmax-grad"
    }

    cpu_fwd_refused!(2);

    fn cuda_fwd(
        &self,
        ys: &CudaStorage,
        yl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, cols) = rows_cols(yl)?;
        same_dims("causal softmax", gl, "output", yl)?;
        let (y, g) = (view::<bf16>(ys, yl)?, view::<bf16>(gs, gl)?);
        let dev = &ys.device;
        let mut dx = dev.alloc_zeros::<bf16>(rows * cols)?;
        let func = dev.get_or_load_custom_func("causal_softmax_bwd", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut b = func.builder();
        b.arg(&y)
            .arg(&g)
            .arg(&mut dx)
            .arg(&r)
            .arg(&c)
            .arg(&self.scale);
        // SAFETY: y, g and dx hold rows × cols bf16 values, the kernel's extent.
        unsafe { b.launch(row_launch(rows)) }.w()?;
        Ok((wrap(dev, dx), yl.shape().clone()))
    }
}
