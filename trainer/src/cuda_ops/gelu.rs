//! The tanh approximation of GELU.

use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::{CudaStorage, WrapErr};
use candle_core::{CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use half::bf16;

use super::{MODULE, elementwise_launch, ptx, same_dims, view, wrap};

/// The tanh approximation of GELU, fused forward and backward.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    cpu_fwd_refused!(1);

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let x = view::<bf16>(storage, layout)?;
        let n = layout.shape().elem_count();
        let dev = &storage.device;
        let mut y = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("gelu_fwd", MODULE, ptx()?)?;
        let mut b = func.builder();
        b.arg(&x).arg(&mut y).arg(&n);
        // SAFETY: x and y hold n bf16 values, the kernel's extent.
        unsafe { b.launch(elementwise_launch(n)) }.w()?;
        Ok((wrap(dev, y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(x.contiguous()?.apply_op2_no_bwd(&grad, &GeluGrad)?))
    }
}

/// `(x, g) → dx` of [`Gelu`].
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    cpu_fwd_refused!(2);

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        same_dims("gelu", gl, "input", xl)?;
        let (x, g) = (view::<bf16>(xs, xl)?, view::<bf16>(gs, gl)?);
        let n = xl.shape().elem_count();
        let dev = &xs.device;
        let mut dx = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("gelu_bwd", MODULE, ptx()?)?;
        let mut b = func.builder();
        b.arg(&x).arg(&g).arg(&mut dx).arg(&n);
        // SAFETY: x, g and dx hold n bf16 values, the kernel's extent.
        unsafe { b.launch(elementwise_launch(n)) }.w()?;
        Ok((wrap(dev, dx), xl.shape().clone()))
    }
}
