//! Layer normalisation with f32 weight and bias, whose gradients come back in f32.

use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use half::bf16;

use super::{MODULE, i32_arg, ptx, row_launch, same_dims, view, wrap};

/// The widest row the layer-norm kernels take (32 values per lane of a warp).
pub const MAX_NORM_WIDTH: usize = 1024;

/// Layer normalisation of the last dimension of bf16 `x` with f32 `weight` and `bias` (the
/// master weights, whose gradients come back in f32), fused forward and backward.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

struct LayerNorm {
    eps: f32,
}

/// `[rows, d]` of `x` and a check that `w` has `d` values.
fn rows_width(xl: &Layout, wl: &Layout) -> Result<(usize, usize)> {
    let d = *xl.dims().last().unwrap_or(&0);
    if d == 0 || wl.shape().elem_count() != d {
        bail!(
            "layer norm: input {:?} with weight {:?}",
            xl.dims(),
            wl.dims()
        );
    }
    Ok((xl.shape().elem_count() / d, d))
}

/// Launches the row kernel `name(x, w, third, out, rows, d, eps)`, one warp a row, over bf16 `x`
/// of `rows × d` values (checked by the caller, as is `third`) and f32 `w` of `d`, and returns
/// `out` (bf16, `x`'s shape). The forward (`third` the f32 bias) and the input gradient (`third`
/// the bf16 upstream gradient) share this signature.
fn launch_rows<T>(
    name: &'static str,
    eps: f32,
    (rows, d): (usize, usize),
    (xs, xl): (&CudaStorage, &Layout),
    (ws, wl): (&CudaStorage, &Layout),
    third: &CudaView<T>,
) -> Result<(CudaStorage, Shape)> {
    let (x, w) = (view::<bf16>(xs, xl)?, view::<f32>(ws, wl)?);
    let dev = &xs.device;
    let mut out = dev.alloc_zeros::<bf16>(rows * d)?;
    let func = dev.get_or_load_custom_func(name, MODULE, ptx()?)?;
    let (r, dd) = (i32_arg(rows)?, i32_arg(d)?);
    let mut l = func.builder();
    l.arg(&x)
        .arg(&w)
        .arg(third)
        .arg(&mut out)
        .arg(&r)
        .arg(&dd)
        .arg(&eps);
    // SAFETY: x and out hold rows × d bf16 values, w d f32 values and third rows × d (gradient)
    // or d (bias) values, as the callers check: the kernel's extent.
    unsafe { l.launch(row_launch(rows)) }.w()?;
    Ok((wrap(dev, out), xl.shape().clone()))
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    cpu_fwd_refused!(3);

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        ws: &CudaStorage,
        wl: &Layout,
        bs: &CudaStorage,
        bl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, d) = rows_width(xl, wl)?;
        rows_width(xl, bl)?;
        let b = view::<f32>(bs, bl)?;
        launch_rows(
            "layer_norm_fwd",
            self.eps,
            (rows, d),
            (xs, xl),
            (ws, wl),
            &b,
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &grad, &LayerNormGradX { eps: self.eps })?;
        let wb = x
            .apply_op2_no_bwd(&grad, &LayerNormGradWb { eps: self.eps })?
            .sum(0)?;
        let d = w.elem_count();
        Ok((
            Some(dx),
            Some(wb.narrow(0, 0, d)?.reshape(w.shape())?),
            Some(wb.narrow(0, d, d)?.reshape(w.shape())?),
        ))
    }
}

/// `(x, w, g) → dx` of [`LayerNorm`].
struct LayerNormGradX {
    eps: f32,
}

impl CustomOp3 for LayerNormGradX {
    fn name(&self) -> &'static str {
        "layer-norm-grad-x"
    }

    cpu_fwd_refused!(3);

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        ws: &CudaStorage,
        wl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, d) = rows_width(xl, wl)?;
        same_dims("layer norm", gl, "input", xl)?;
        let g = view::<bf16>(gs, gl)?;
        launch_rows(
            "layer_norm_bwd_x",
            self.eps,
            (rows, d),
            (xs, xl),
            (ws, wl),
            &g,
        )
    }
}

/// `(x, g) → [blocks, 2·d]` (f32) of [`LayerNorm`]: each block's `[dw; db]` over its rows, to be
/// summed over the first dimension.
struct LayerNormGradWb {
    eps: f32,
}

impl CustomOp2 for LayerNormGradWb {
    fn name(&self) -> &'static str {
        "layer-norm-grad-wb"
    }

    cpu_fwd_refused!(2);

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        same_dims("layer norm", gl, "input", xl)?;
        let d = *xl.dims().last().unwrap_or(&0);
        let rows = xl.shape().elem_count() / d.max(1);
        let (x, g) = (view::<bf16>(xs, xl)?, view::<bf16>(gs, gl)?);
        let dev = &xs.device;
        if d > MAX_NORM_WIDTH {
            bail!("layer norm backward: width {d} over the kernel's {MAX_NORM_WIDTH}");
        }
        let blocks = rows.div_ceil(32).clamp(1, 264);
        let mut out = dev.alloc_zeros::<f32>(blocks * 2 * d)?;
        let func = dev.get_or_load_custom_func("layer_norm_bwd_wb", MODULE, ptx()?)?;
        let (r, dd) = (i32_arg(rows)?, i32_arg(d)?);
        let mut l = func.builder();
        l.arg(&x)
            .arg(&g)
            .arg(&mut out)
            .arg(&r)
            .arg(&dd)
            .arg(&self.eps);
        let config = LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: (4 * 2 * d * 4) as u32,
        };
        // SAFETY: x and g hold rows × d bf16 values, out blocks × 2·d f32 values, the block's
        // shared memory 4 warps × 2·d floats, and d ≤ 32 × 32 fits each lane's registers.
        unsafe { l.launch(config) }.w()?;
        let out = wrap(dev, out);
        Ok((out, Shape::from((blocks, 2 * d))))
    }
}
