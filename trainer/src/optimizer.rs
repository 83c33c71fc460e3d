//! AdamW with f32 moments, decoupled weight decay on matrices only, and gradient clipping by
//! global norm (candle-nn's `AdamW` keeps moments in the parameter dtype, decays every variable
//! and cannot clip).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Result, Tensor};

use crate::config::OptimConfig;
use crate::model::Param;

/// The optimizer state: first and second moments per parameter and the update count.
pub struct AdamW {
    config: OptimConfig,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far (bias correction uses it).
    pub updates: u64,
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(config: OptimConfig, params: &[Param]) -> Result<Self> {
        let zeros = |p: &Param| Tensor::zeros(p.var.shape(), DType::F32, p.var.device());
        Ok(Self {
            config,
            m: params.iter().map(zeros).collect::<Result<_>>()?,
            v: params.iter().map(zeros).collect::<Result<_>>()?,
            updates: 0,
        })
    }

    /// One update of every parameter with its gradient times `grad_scale` (the factor of
    /// [`clip_scale`]; 1 for none) at learning rate `lr`. On CUDA each parameter and its moments
    /// are updated in place by fused kernels (`cuda_ops`), the scale applied inside.
    pub fn step(
        &mut self,
        params: &[Param],
        grads: &[Tensor],
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        let c = &self.config;
        self.updates += 1;
        let t = self.updates as i32;
        let (fix1, fix2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            #[cfg(feature = "cuda")]
            if p.var.device().is_cuda() {
                let decay = if p.decay { c.weight_decay } else { 0.0 };
                let step = crate::cuda_ops::AdamStep {
                    lr: lr as f32,
                    keep: (1.0 - lr * decay) as f32,
                    beta1: c.beta1 as f32,
                    beta2: c.beta2 as f32,
                    fix1: fix1 as f32,
                    fix2: fix2 as f32,
                    eps: c.eps as f32,
                    grad_scale: grad_scale as f32,
                };
                crate::cuda_ops::adamw_update(&p.var, &self.m[i], &self.v[i], g, step)?;
                continue;
            }
            let mut g = g.to_dtype(DType::F32)?;
            if grad_scale != 1.0 {
                g = (g * grad_scale)?;
            }
            self.m[i] = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            self.v[i] = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((&self.v[i] / fix2)?.sqrt()? + c.eps)?;
            let update = ((&self.m[i] / fix1)? / denom)?;
            let mut w = p.var.as_detached_tensor();
            if p.decay && c.weight_decay > 0.0 {
                w = (w * (1.0 - lr * c.weight_decay))?;
            }
            p.var.set(&(w - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments by name (`m.<param>`, `v.<param>`), as saved in `optimizer.safetensors`.
    pub fn named_tensors(&self, params: &[Param]) -> HashMap<String, Tensor> {
        let mut out = HashMap::with_capacity(2 * params.len());
        for (i, p) in params.iter().enumerate() {
            out.insert(format!("m.{}", p.name), self.m[i].clone());
            out.insert(format!("v.{}", p.name), self.v[i].clone());
        }
        out
    }

    /// Reads the moments saved by [`Self::named_tensors`]; `updates` comes from the checkpoint.
    pub fn load(&mut self, params: &[Param], path: &Path, updates: u64) -> Result<()> {
        let device = params.first().map(|p| p.var.device().clone());
        let Some(device) = device else { return Ok(()) };
        let mut saved = crate::checkpoint::read_tensors(path, &device)?;
        for (i, p) in params.iter().enumerate() {
            for (slot, prefix) in [(&mut self.m[i], "m"), (&mut self.v[i], "v")] {
                let name = format!("{prefix}.{}", p.name);
                let t = saved.remove(&name).ok_or_else(|| {
                    candle_core::Error::Msg(format!("{} lacks `{name}`", path.display()))
                })?;
                if t.dims() != p.var.dims() {
                    candle_core::bail!("{}: `{name}` has the wrong shape", path.display());
                }
                *slot = t;
            }
        }
        self.updates = updates;
        Ok(())
    }
}

/// The global L2 norm of `grads`: each tensor's sum of squares added up on the device, so that
/// a GPU waits for the result once rather than once per tensor. On CUDA one kernel per tensor
/// (`cuda_ops::sum_of_squares`).
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    if grads.is_empty() {
        return Ok(0.0);
    }
    #[cfg(feature = "cuda")]
    if grads[0].device().is_cuda() {
        return Ok(crate::cuda_ops::sum_of_squares(grads)?.sqrt());
    }
    let sums = grads
        .iter()
        .map(|g| g.to_dtype(DType::F32)?.sqr()?.sum_all())
        .collect::<Result<Vec<_>>>()?;
    let sum = Tensor::stack(&sums, 0)?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok(sum.sqrt())
}

/// The factor that brings gradients of global norm `norm` down to at most `max_norm`
/// (1 when they are within it, or when `max_norm` is 0: no clipping).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn param(name: &str, values: &[f32], shape: &[usize], decay: bool) -> Param {
        let t = Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap();
        Param {
            name: name.into(),
            var: Var::from_tensor(&t).unwrap(),
            decay,
        }
    }

    fn values(p: &Param) -> Vec<f32> {
        p.var.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn first_step_moves_by_lr_times_sign_and_decays_only_matrices() {
        let config = OptimConfig {
            weight_decay: 0.5,
            ..OptimConfig::default()
        };
        let params = vec![
            param("w", &[1.0, -1.0, 2.0, 0.5], &[2, 2], true),
            param("b", &[1.0, 1.0], &[2], false),
        ];
        let grads = vec![
            Tensor::new(&[[0.3f32, -2.0], [1e-3, -0.1]], &Device::Cpu).unwrap(),
            Tensor::new(&[4.0f32, -4.0], &Device::Cpu).unwrap(),
        ];
        let mut opt = AdamW::new(config, &params).unwrap();
        let lr = 0.1;
        opt.step(&params, &grads, lr, 1.0).unwrap();
        // After one step m̂ = g and v̂ = g², so the update is lr·sign(g) (ε aside).
        let w = values(&params[0]);
        let decayed = |w: f32| w * (1.0 - 0.1 * 0.5);
        let expect_w = [
            decayed(1.0) - 0.1,
            decayed(-1.0) + 0.1,
            decayed(2.0) - 0.1,
            decayed(0.5) + 0.1,
        ];
        for (a, e) in w.iter().zip(expect_w) {
            assert!((a - e).abs() < 1e-4, "{w:?}");
        }
        assert_eq!(values(&params[1]).len(), 2);
        assert!(
            (values(&params[1])[0] - 0.9).abs() < 1e-6,
            "biases are not decayed"
        );
        assert_eq!(opt.updates, 1);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let grads = vec![
            Tensor::new(&[3.0f32], &Device::Cpu).unwrap(),
            Tensor::new(&[4.0f32], &Device::Cpu).unwrap(),
        ];
        let norm = global_norm(&grads).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let scale = clip_scale(norm, 1.0);
        let clipped: Vec<Tensor> = grads.iter().map(|g| (g * scale).unwrap()).collect();
        assert!((global_norm(&clipped).unwrap() - 1.0).abs() < 1e-5);
        assert_eq!(clip_scale(1.0, 10.0), 1.0);
        assert_eq!(clip_scale(50.0, 0.0), 1.0, "0 turns clipping off");
    }

    #[test]
    fn a_scaled_step_equals_a_step_on_scaled_gradients() {
        let run = |grad: &[f32], scale: f64| {
            let params = vec![param("w", &[1.0, -1.0, 2.0], &[3], false)];
            let g = vec![Tensor::new(grad, &Device::Cpu).unwrap()];
            // A large ε makes the update depend on the gradient's scale, not just its sign.
            let config = OptimConfig {
                eps: 1.0,
                ..OptimConfig::default()
            };
            let mut opt = AdamW::new(config, &params).unwrap();
            for _ in 0..3 {
                opt.step(&params, &g, 0.1, scale).unwrap();
            }
            values(&params[0])
        };
        assert_eq!(
            run(&[0.5, -2.0, 0.01], 0.25),
            run(&[0.125, -0.5, 0.0025], 1.0)
        );
        assert_ne!(run(&[0.5, -2.0, 0.01], 0.25), run(&[0.5, -2.0, 0.01], 1.0));
    }
}
