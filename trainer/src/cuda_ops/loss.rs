//! The CUDA backend of [`crate::cross_entropy`]: per-row cross-entropy of bf16 logits, computed in
//! f32, and its `softmax − one-hot` gradient, written once in bf16.

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{Layout, Result, Shape, bail};
use half::bf16;

use super::{MODULE, i32_arg, ptx, view, wrap};

/// `[rows, vocab]` of logits with one target per row.
fn rows_vocab(ll: &Layout, tl: &Layout) -> Result<(usize, usize)> {
    let (rows, vocab) = ll.shape().dims2()?;
    if tl.shape().elem_count() != rows {
        bail!(
            "cross-entropy: {rows} rows of logits, {:?} targets",
            tl.dims()
        );
    }
    Ok((rows, vocab))
}

/// One block of 256 threads per row.
fn block_per_row(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `(logits [rows, vocab] bf16, targets [rows] u32) → loss [rows]` (f32).
pub(crate) fn cross_entropy_forward(
    ls: &CudaStorage,
    ll: &Layout,
    ts: &CudaStorage,
    tl: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (rows, vocab) = rows_vocab(ll, tl)?;
    let (x, t) = (view::<bf16>(ls, ll)?, view::<u32>(ts, tl)?);
    let dev = &ls.device;
    let mut loss = dev.alloc_zeros::<f32>(rows)?;
    let func = dev.get_or_load_custom_func("cross_entropy_fwd", MODULE, ptx()?)?;
    let v = i32_arg(vocab)?;
    let mut b = func.builder();
    b.arg(&x).arg(&t).arg(&mut loss).arg(&v);
    // SAFETY: x holds rows × vocab bf16 values, t and loss rows values; the kernel reads
    // x[target] only for targets below vocab.
    unsafe { b.launch(block_per_row(rows)) }.w()?;
    Ok((wrap(dev, loss), Shape::from(rows)))
}

/// `(logits, targets, g [rows] f32) → dlogits` (bf16, the logits' shape).
pub(crate) fn cross_entropy_backward(
    ls: &CudaStorage,
    ll: &Layout,
    ts: &CudaStorage,
    tl: &Layout,
    gs: &CudaStorage,
    gl: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (rows, vocab) = rows_vocab(ll, tl)?;
    if gl.shape().elem_count() != rows {
        bail!(
            "cross-entropy backward: {rows} rows, gradient {:?}",
            gl.dims()
        );
    }
    let (x, t, g) = (
        view::<bf16>(ls, ll)?,
        view::<u32>(ts, tl)?,
        view::<f32>(gs, gl)?,
    );
    let dev = &ls.device;
    let mut dx = dev.alloc_zeros::<bf16>(rows * vocab)?;
    let func = dev.get_or_load_custom_func("cross_entropy_bwd", MODULE, ptx()?)?;
    let v = i32_arg(vocab)?;
    let mut b = func.builder();
    b.arg(&x).arg(&t).arg(&g).arg(&mut dx).arg(&v);
    // SAFETY: x and dx hold rows × vocab bf16 values, t and g rows values: the kernel's extent.
    unsafe { b.launch(block_per_row(rows)) }.w()?;
    Ok((wrap(dev, dx), ll.shape().clone()))
}
