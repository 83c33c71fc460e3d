//! A fused cross-entropy: per-row loss forward, `softmax − one-hot` backward.
//!
//! Composed of primitive ops, the loss over a large vocabulary keeps half a dozen `[rows, vocab]`
//! tensors alive for the backward pass (4 GiB for the tiny model on OLMo's 50k vocabulary at
//! batch 8 × 256). This op keeps none: the forward returns one loss per row, the backward
//! recomputes the softmax row by row and writes the gradient once. On the CPU the logits are f32
//! and rows run in parallel (rayon); with the `cuda` feature the same op takes bf16 logits on a
//! GPU, one block of threads per row (`crate::cuda_ops`, computed in f32).

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, InplaceOp2, Layout, Result, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

/// Per-row cross-entropy of `logits` `[rows, vocab]` (f32 on the CPU, bf16 on CUDA) and
/// `targets` `[rows]` (u32): `[rows]` (f32), with a backward pass.
pub fn fused_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, CrossEntropy)
}

struct CrossEntropy;

struct CrossEntropyGrad;

/// Where the contiguous `[rows, vocab]` logits (or any rows) and `[rows]` targets (or one value
/// per row) lie in their storages, and `vocab`.
fn spans(l1: &Layout, l2: &Layout) -> Result<(Range<usize>, Range<usize>, usize)> {
    let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
        candle_core::bail!("cross-entropy needs contiguous inputs");
    };
    let (rows, vocab) = l1.shape().dims2()?;
    if d - c != rows {
        candle_core::bail!("cross-entropy: {rows} rows, {} values for them", d - c);
    }
    Ok((a..b, c..d, vocab))
}

/// The f32 logits and u32 targets of two storages (see [`spans`]).
fn inputs<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> Result<(&'a [f32], &'a [u32], usize)> {
    let (logit_span, target_span, vocab) = spans(l1, l2)?;
    let logits = &s1.as_slice::<f32>()?[logit_span];
    Ok((logits, &s2.as_slice::<u32>()?[target_span], vocab))
}

/// The writable f32 rows of `s1` (`[rows, width]`), one value of `s2` per row, and `width`.
fn rows_mut<'a, T: WithDType>(
    s1: &'a mut CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> Result<(&'a mut [f32], &'a [T], usize)> {
    let (row_span, per_row_span, width) = spans(l1, l2)?;
    let per_row = &s2.as_slice::<T>()?[per_row_span];
    let CpuStorage::F32(values) = s1 else {
        candle_core::bail!("an in-place row op needs f32 rows");
    };
    Ok((&mut values[row_span], per_row, width))
}

/// The row's maximum and `Σ exp(x − max)`.
fn normaliser(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, row.iter().map(|&x| (x - max).exp()).sum())
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = inputs(s1, l1, s2, l2)?;
        let losses: Vec<f32> = logits
            .par_chunks(vocab)
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                let (max, sum) = normaliser(row);
                sum.ln() + max - row[t as usize]
            })
            .collect();
        let n = losses.len();
        Ok((CpuStorage::F32(losses), Shape::from(n)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda_ops::cross_entropy_forward(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(cross_entropy_grad(logits, targets, grad)?), None))
    }
}

/// The gradient of the logits of [`fused_cross_entropy`] for the gradient `grad` `[rows]` (f32)
/// of its per-row losses: `grad · (softmax(logits) − one-hot(target))` per row, in the logits'
/// dtype; no backward of its own.
pub(crate) fn cross_entropy_grad(
    logits: &Tensor,
    targets: &Tensor,
    grad: &Tensor,
) -> Result<Tensor> {
    logits.contiguous()?.apply_op3_no_bwd(
        &targets.contiguous()?,
        &grad.contiguous()?,
        &CrossEntropyGrad,
    )
}

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "fused-cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (logits, targets, vocab) = inputs(s1, l1, s2, l2)?;
        let (CpuStorage::F32(grad), Some((a, b))) = (s3, l3.contiguous_offsets()) else {
            candle_core::bail!("cross-entropy gradient needs a contiguous f32 upstream gradient");
        };
        let grad = &grad[a..b];
        let mut out = vec![0f32; logits.len()];
        out.par_chunks_mut(vocab)
            .zip(logits.par_chunks(vocab))
            .zip(targets.par_iter().zip(grad.par_iter()))
            .for_each(|((out, row), (&t, &g))| {
                let (max, sum) = normaliser(row);
                let scale = g / sum;
                for (o, &x) in out.iter_mut().zip(row) {
                    *o = (x - max).exp() * scale;
                }
                out[t as usize] -= g;
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda_ops::cross_entropy_backward(s1, l1, s2, l2, s3, l3)
    }
}

/// The gradient of a batch of per-row losses with respect to their f32 CPU logits, held as
/// `softmax − one-hot` per row in the logits' own buffer until the backward pass scales it, in
/// place, by the losses' gradient. The head's backward then allocates no `[rows, vocab]` tensor
/// of its own: one such tensor per step instead of two (the largest of the step on a large
/// vocabulary), and one pass of `exp` over it instead of two.
pub(crate) struct LossGradient {
    unit: Tensor,
    used: AtomicBool,
}

/// Per-row cross-entropy `[rows]` (f32) of the f32 CPU `logits` `[rows, vocab]` and `targets`
/// `[rows]` (u32), turning `logits` into their [`LossGradient`] (the values are gone after this).
pub(crate) fn cross_entropy_in_place(
    logits: Tensor,
    targets: &Tensor,
) -> Result<(Tensor, LossGradient)> {
    let logits = logits.contiguous()?;
    let op = IntoGradient(Mutex::new(Vec::new()));
    logits.inplace_op2(&targets.contiguous()?, &op)?;
    let losses = std::mem::take(&mut *op.0.lock().unwrap_or_else(|e| e.into_inner()));
    let rows = losses.len();
    let gradient = LossGradient {
        unit: logits,
        used: AtomicBool::new(false),
    };
    Ok((Tensor::from_vec(losses, rows, targets.device())?, gradient))
}

impl LossGradient {
    /// The logits' gradient for the gradient `grad` `[rows]` (f32) of the losses. Scales the
    /// held buffer, so it can be asked once.
    pub(crate) fn take(&self, grad: &Tensor) -> Result<Tensor> {
        if self.used.swap(true, Ordering::Relaxed) {
            candle_core::bail!("the cross-entropy's backward pass ran twice over one graph");
        }
        self.unit.inplace_op2(&grad.contiguous()?, &ScaleRows)?;
        Ok(self.unit.clone())
    }
}

/// Logits → `softmax − one-hot` per row, in place, keeping each row's loss.
struct IntoGradient(Mutex<Vec<f32>>);

impl InplaceOp2 for IntoGradient {
    fn name(&self) -> &'static str {
        "cross-entropy-into-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (logits, targets, vocab) = rows_mut::<u32>(s1, l1, s2, l2)?;
        let losses = logits
            .par_chunks_mut(vocab)
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                let (max, sum) = normaliser(row);
                let loss = sum.ln() + max - row[t as usize];
                let scale = sum.recip();
                for x in row.iter_mut() {
                    *x = (*x - max).exp() * scale;
                }
                row[t as usize] -= 1.0;
                loss
            })
            .collect();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = losses;
        Ok(())
    }
}

/// `[rows, n]` f32 × per-row f32 factors `[rows]`, in place.
struct ScaleRows;

impl InplaceOp2 for ScaleRows {
    fn name(&self) -> &'static str {
        "scale-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (values, factors, n) = rows_mut::<f32>(s1, l1, s2, l2)?;
        values
            .par_chunks_mut(n)
            .zip(factors.par_iter())
            .for_each(|(row, &f)| row.iter_mut().for_each(|x| *x *= f));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::composed_cross_entropy as composed;
    use candle_core::{Device, Var};
    use proptest::prelude::*;

    #[test]
    fn per_row_losses_match_the_formula() {
        let logits = Tensor::new(&[[1.0f32, 2.0, 3.0], [0.5, -1.0, 0.0]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[2u32, 1], &Device::Cpu).unwrap();
        let ce = fused_cross_entropy(&logits, &targets)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let nll = |row: [f32; 3], t: usize| row.iter().map(|v| v.exp()).sum::<f32>().ln() - row[t];
        let expect = [nll([1.0, 2.0, 3.0], 2), nll([0.5, -1.0, 0.0], 1)];
        for (got, want) in ce.iter().zip(expect) {
            assert!((got - want).abs() < 1e-6, "{ce:?} vs {expect:?}");
        }
    }

    #[test]
    fn uniform_logits_give_log_vocab() {
        let logits = Tensor::zeros((6, 50), candle_core::DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[1u32, 2, 3, 4, 5, 49], &Device::Cpu).unwrap();
        let ce = fused_cross_entropy(&logits, &targets)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for v in ce {
            assert!((v - 50f32.ln()).abs() < 1e-5);
        }
    }

    /// Logits `[rows, vocab]` of standard deviation `scale`, targets `[rows]` and per-row
    /// weights `[rows]`, drawn from `seed`.
    fn random_case(seed: u64, rows: usize, vocab: usize, scale: f64) -> (Tensor, Tensor, Tensor) {
        let mut rng = crate::rng::Rng::new(seed, "ce");
        let values = rng.normal_vec(rows * vocab, scale);
        let targets: Vec<u32> = (0..rows)
            .map(|_| (rng.next_u64() % vocab as u64) as u32)
            .collect();
        let weights = rng.normal_vec(rows, 1.0);
        let cpu = &Device::Cpu;
        (
            Tensor::from_vec(values, (rows, vocab), cpu).unwrap(),
            Tensor::from_vec(targets, rows, cpu).unwrap(),
            Tensor::from_vec(weights, rows, cpu).unwrap(),
        )
    }

    proptest! {
        #[test]
        fn fused_and_in_place_losses_and_gradients_equal_the_composed_ops(
            rows in 1usize..6,
            vocab in 2usize..40,
            seed in 0u64..1000,
            scale in 0.1f64..20.0,
        ) {
            let (logits, t, w) = random_case(seed, rows, vocab, scale);
            let x = Var::from_tensor(&logits).unwrap();
            let mut results = Vec::new();
            for fused in [true, false] {
                let loss = if fused { fused_cross_entropy(&x, &t).unwrap() } else { composed(&x, &t).unwrap() };
                let total = (&loss * &w).unwrap().sum_all().unwrap();
                let grad = total.backward().unwrap().get(&x).unwrap().flatten_all().unwrap();
                results.push((loss.to_vec1::<f32>().unwrap(), grad.to_vec1::<f32>().unwrap()));
            }
            let tol = 1e-4 * (1.0 + scale as f32);
            for (a, b) in results[0].0.iter().zip(&results[1].0) {
                prop_assert!((a - b).abs() < tol, "loss {a} vs {b}");
            }
            for (a, b) in results[0].1.iter().zip(&results[1].1) {
                prop_assert!((a - b).abs() < tol, "gradient {a} vs {b}");
            }

            // The in-place form equals the fused op.
            let g = w;
            let want_loss = fused_cross_entropy(&logits, &t).unwrap().to_vec1::<f32>().unwrap();
            let want_grad = cross_entropy_grad(&logits, &t, &g).unwrap();
            let (loss, gradient) = cross_entropy_in_place(logits.copy().unwrap(), &t).unwrap();
            prop_assert_eq!(loss.to_vec1::<f32>().unwrap(), want_loss);
            let got = gradient.take(&g).unwrap();
            prop_assert_eq!(got.dims(), want_grad.dims());
            let (got, want) = (got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want_grad.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "gradient {a} vs {b}");
            }
            prop_assert!(gradient.take(&g).is_err(), "a second backward pass is refused");
        }
    }
}
