//! Layers as single graph nodes with hand-written backward passes.
//!
//! candle's backward pass adds every node's gradient into a fresh zero tensor, so each edge of
//! the graph costs a full-size memset and addition. Profiled on an H100 (`gpt2-124m`, batch 8),
//! these additions were half of the backward pass: over `[B, heads, T, T]` attention tensors, the
//! zero-padded concatenations that back-propagate a `narrow`, the strided transposes of weights.
//! The embedding node replaces a slow backward instead (candle's serial `index_add`); the head
//! node keeps the logits, the largest tensor of a step, out of the graph.
//! A layer here runs its forward on detached inputs (the composed ops of [`crate::ops`], or the
//! fused kernels on CUDA), and one node carries the result into the graph; its backward computes
//! the inputs' gradients directly. Each is tested against the composed layer's autograd.

/// The `cpu_fwd` and `cuda_fwd` of a node with 1 or 3 inputs: a copy of its precomputed `out`
/// (the inputs were used outside the graph already).
macro_rules! precomputed_fwd {
    (1) => { precomputed_fwd!(_s1 _l1); };
    (3) => { precomputed_fwd!(_s1 _l1, _s2 _l2, _s3 _l3); };
    ($($storage:ident $layout:ident),+) => {
        fn cpu_fwd(
            &self,
            $($storage: &candle_core::CpuStorage, $layout: &candle_core::Layout),+
        ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
            self.out.cpu()
        }

        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &self,
            $($storage: &candle_core::CudaStorage, $layout: &candle_core::Layout),+
        ) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
            self.out.cuda()
        }
    };
}

mod attention;
mod embedding;
mod head_loss;
mod linear;

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{Layout, Result, Shape, Storage, Tensor, bail};

pub use attention::{KeysValues, attention_composed, cached_attention, causal_attention};
pub use embedding::embedding;
pub use head_loss::head_cross_entropy;
pub use linear::linear;

/// A forward result computed outside the graph, handed once to the forward of the node that
/// carries it in (and then dropped, so the graph does not keep a second copy).
struct Precomputed(Mutex<Option<Tensor>>);

impl Precomputed {
    fn new(t: Tensor) -> Self {
        Self(Mutex::new(Some(t)))
    }

    /// A copy of the result's storage, picked out of candle's storage enum by `pick`.
    fn storage<S: BackendStorage>(
        &self,
        pick: impl Fn(&Storage) -> Option<&S>,
    ) -> Result<(S, Shape)> {
        let taken = self.0.lock().map(|mut slot| slot.take());
        let Ok(Some(t)) = taken else {
            bail!("a node's precomputed forward was used twice");
        };
        let (storage, layout) = t.storage_and_layout();
        whole(layout)?;
        let Some(s) = pick(&storage) else {
            bail!("a node's precomputed forward is on another device");
        };
        Ok((s.try_clone(layout)?, layout.shape().clone()))
    }

    fn cpu(&self) -> Result<(candle_core::CpuStorage, Shape)> {
        self.storage(|s| match s {
            Storage::Cpu(s) => Some(s),
            _ => None,
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Result<(candle_core::CudaStorage, Shape)> {
        self.storage(|s| match s {
            Storage::Cuda(s) => Some(s),
            _ => None,
        })
    }
}

/// Checks that a result fills its storage from the start, so that a copy of the storage is the
/// result.
fn whole(layout: &Layout) -> Result<()> {
    if layout.contiguous_offsets() != Some((0, layout.shape().elem_count())) {
        bail!("a node's precomputed forward is not a whole contiguous tensor");
    }
    Ok(())
}
