//! AdamW, in place: three kernels per parameter.

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{InplaceOp2, InplaceOp3, Layout, Result, Tensor, bail};

use super::{MODULE, elementwise_launch, ptx, view, view_mut};

/// The scalars of one AdamW update of one parameter.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// Learning rate.
    pub lr: f32,
    /// `1 − lr · weight decay` (1 for parameters without decay).
    pub keep: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Bias corrections `1 − β₁ᵗ` and `1 − β₂ᵗ`.
    pub fix1: f32,
    /// See `fix1`.
    pub fix2: f32,
    /// Denominator guard.
    pub eps: f32,
    /// Factor on the gradient (gradient clipping; 1 for none).
    pub grad_scale: f32,
}

/// One AdamW update in place: the f32 moments `m` and `v` from gradient `g`, then the f32 weight
/// `w`: three kernels instead of a dozen composed ops, and no new tensors.
pub fn adamw_update(w: &Tensor, m: &Tensor, v: &Tensor, g: &Tensor, step: AdamStep) -> Result<()> {
    let g = g.to_dtype(candle_core::DType::F32)?.contiguous()?;
    m.inplace_op2(
        &g,
        &Moment {
            beta: step.beta1,
            square: false,
            scale: step.grad_scale,
        },
    )?;
    v.inplace_op2(
        &g,
        &Moment {
            beta: step.beta2,
            square: true,
            scale: step.grad_scale,
        },
    )?;
    w.inplace_op3(m, v, &WeightUpdate(step))
}

fn same_count(a: &Layout, b: &Layout) -> Result<usize> {
    let n = a.shape().elem_count();
    if b.shape().elem_count() != n {
        bail!("AdamW: {:?} against {:?}", a.dims(), b.dims());
    }
    Ok(n)
}

/// `m ← β·m + (1 − β)·x` with `x = scale·g` (or its square), in place.
struct Moment {
    beta: f32,
    square: bool,
    scale: f32,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    cpu_fwd_refused!(inplace 2);

    fn cuda_fwd(
        &self,
        ms: &mut CudaStorage,
        ml: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<()> {
        let n = same_count(ml, gl)?;
        let dev = ms.device.clone();
        let g = view::<f32>(gs, gl)?;
        let mut m = view_mut::<f32>(ms, ml)?;
        let func = dev.get_or_load_custom_func("adam_moment", MODULE, ptx()?)?;
        let square = i32::from(self.square);
        let mut l = func.builder();
        l.arg(&mut m)
            .arg(&g)
            .arg(&n)
            .arg(&self.beta)
            .arg(&square)
            .arg(&self.scale);
        // SAFETY: m and g hold n f32 values, the kernel's extent.
        unsafe { l.launch(elementwise_launch(n)) }.w()?;
        Ok(())
    }
}

/// `w ← w·keep − lr·m̂/(√v̂ + ε)`, in place.
struct WeightUpdate(AdamStep);

impl InplaceOp3 for WeightUpdate {
    fn name(&self) -> &'static str {
        "adam-weight"
    }

    cpu_fwd_refused!(inplace 3);

    fn cuda_fwd(
        &self,
        ws: &mut CudaStorage,
        wl: &Layout,
        ms: &CudaStorage,
        ml: &Layout,
        vs: &CudaStorage,
        vl: &Layout,
    ) -> Result<()> {
        let n = same_count(wl, ml)?;
        same_count(wl, vl)?;
        let dev = ws.device.clone();
        let (m, v) = (view::<f32>(ms, ml)?, view::<f32>(vs, vl)?);
        let mut w = view_mut::<f32>(ws, wl)?;
        let func = dev.get_or_load_custom_func("adam_weight", MODULE, ptx()?)?;
        let s = &self.0;
        let mut l = func.builder();
        l.arg(&mut w).arg(&m).arg(&v).arg(&n);
        l.arg(&s.keep)
            .arg(&s.lr)
            .arg(&s.fix1)
            .arg(&s.fix2)
            .arg(&s.eps);
        // SAFETY: w, m and v hold n f32 values, the kernel's extent.
        unsafe { l.launch(elementwise_launch(n)) }.w()?;
        Ok(())
    }
}
