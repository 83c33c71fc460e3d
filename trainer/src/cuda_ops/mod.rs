//! Fused CUDA kernels for the places where candle's composed ops are slowest on a GPU: the causal
//! softmax of attention (nine elementwise, broadcast and reduction kernels forward and more
//! backward, over a `[B, heads, T, T]` tensor), layer normalisation and bias addition (broadcasts
//! whose strided index arithmetic dominates), the tanh GELU of the MLP (whose backward candle
//! composes from a dozen elementwise ops) and the cross-entropy over the vocabulary. Each has a
//! forward and a backward kernel and records its backward in candle's graph through
//! [`candle_core::CustomOp1`], so every parameter still gets its gradient. Outside the graph:
//! AdamW, updated in place in three kernels per parameter instead of a dozen composed ops, with
//! the clipping factor applied inside; and the sum of squares behind the global gradient norm,
//! one kernel per gradient instead of three and a stack; and the gradient of the embedding
//! table, one block per distinct token (candle's `index_add` walks the tokens serially); and
//! attention's head split and merge, permutations that candle runs as slow strided copies. The
//! kernels take and give bf16 (the CUDA compute dtype) and compute in f32. They are compiled
//! once per process with NVRTC, which ships with the CUDA libraries the binary already needs.
//! The CPU keeps the composed ops of [`crate::ops`].
//!
//! This is the one module allowed `unsafe`: launching a kernel is unsafe in cudarc. Every launch
//! passes buffers whose lengths are checked against the element counts the kernel reads.
#![allow(unsafe_code)]

/// The `cpu_fwd` of a custom op with 1, 2 or 3 inputs, or of an in-place op with 2 or 3 (the
/// `CustomOp1/2/3` and `InplaceOp2/3` traits require one): these ops run on CUDA only, and on
/// the CPU the trainer uses the composed ops.
macro_rules! cpu_fwd_refused {
    (1) => { cpu_fwd_refused!(_s1 _l1); };
    (2) => { cpu_fwd_refused!(_s1 _l1, _s2 _l2); };
    (3) => { cpu_fwd_refused!(_s1 _l1, _s2 _l2, _s3 _l3); };
    (inplace 2) => { cpu_fwd_refused!(inplace _s1 _l1; _s2 _l2); };
    (inplace 3) => { cpu_fwd_refused!(inplace _s1 _l1; _s2 _l2, _s3 _l3); };
    ($($storage:ident $layout:ident),+) => {
        fn cpu_fwd(
            &self,
            $($storage: &candle_core::CpuStorage, $layout: &candle_core::Layout),+
        ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
            $crate::cuda_ops::cpu_refused(self.name())
        }
    };
    (inplace $target:ident $target_layout:ident; $($storage:ident $layout:ident),+) => {
        fn cpu_fwd(
            &self,
            $target: &mut candle_core::CpuStorage,
            $target_layout: &candle_core::Layout,
            $($storage: &candle_core::CpuStorage, $layout: &candle_core::Layout),+
        ) -> candle_core::Result<()> {
            $crate::cuda_ops::cpu_refused(self.name())
        }
    };
}

mod adamw;
mod attention;
mod bias;
mod embedding;
mod gelu;
mod heads;
mod layer_norm;
mod loss;
mod norm;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchConfig};
use candle_core::cuda_backend::cudarc::nvrtc;
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage};
use candle_core::{Layout, Result, bail};

pub use adamw::{AdamStep, adamw_update};
pub use attention::{causal_softmax, causal_softmax_backward};
pub use bias::{bias_add, column_sums};
pub use embedding::embedding_backward;
pub use gelu::gelu;
pub use heads::{HEAD_VECTOR, merge_heads, split_heads};
pub use layer_norm::{MAX_NORM_WIDTH, layer_norm};
pub(crate) use loss::{cross_entropy_backward, cross_entropy_forward};
pub use norm::sum_of_squares;

/// The name the kernels' module is loaded under.
const MODULE: &str = "refinery_trainer";

/// The kernels' CUDA C source.
const SOURCE: &str = include_str!("kernels.cu");

/// The kernels' PTX, compiled on first use.
fn ptx() -> Result<&'static str> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| candle_core::Error::Msg(format!("compiling the trainer's CUDA kernels: {e}")))
}

/// The contiguous elements of a storage, as `T` (an error names the dtype found).
fn view<'a, T: CudaDType>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, T>> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused CUDA op: input is not contiguous");
    };
    Ok(storage.as_cuda_slice::<T>()?.slice(start..end))
}

/// The contiguous elements of a storage, as `T`, writable.
fn view_mut<'a, T: CudaDType>(
    storage: &'a mut CudaStorage,
    layout: &Layout,
) -> Result<CudaViewMut<'a, T>> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused CUDA op: state is not contiguous");
    };
    Ok(storage.as_cuda_slice_mut::<T>()?.slice_mut(start..end))
}

/// A kernel's output as candle storage on `device`.
fn wrap<T: CudaDType>(device: &CudaDevice, slice: CudaSlice<T>) -> CudaStorage {
    CudaStorage::wrap_cuda_slice(slice, device.clone())
}

/// `v` as a kernel's `int` argument.
fn i32_arg(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("{v} exceeds a kernel's i32")))
}

/// One warp per row, four rows per block.
fn row_launch(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(4) as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A grid-stride loop over `n` elements.
fn elementwise_launch(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(256).clamp(1, 1 << 16) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn cpu_refused<T>(op: &str) -> Result<T> {
    bail!("{op} is a CUDA kernel; on the CPU the trainer uses the composed ops")
}

/// Checks that `op`'s upstream gradient has the shape of its `what` (input or output).
fn same_dims(op: &str, grad: &Layout, what: &str, layout: &Layout) -> Result<()> {
    if grad.dims() != layout.dims() {
        bail!(
            "{op} backward: gradient {:?} for {what} {:?}",
            grad.dims(),
            layout.dims()
        );
    }
    Ok(())
}
