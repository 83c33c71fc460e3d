//! Where the time of one `gpt2-124m` training step goes on a CUDA GPU: forward (with the loss),
//! backward, gradient norm and AdamW (with clipping), each timed between device
//! synchronisations, on random tokens. Build with `--features cuda` and run on the GPU machine:
//! `gpu_step [BATCH]` (default 8; sequence 1024, vocabulary 50,304, bf16).
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use trainer::config::{ModelDims, OptimConfig};
use trainer::model::Gpt;
use trainer::optimizer::{AdamW, clip_scale, global_norm};

/// Runs `f` between two synchronisations and prints its wall time.
fn timed<T>(device: &Device, label: &str, f: impl FnOnce() -> candle_core::Result<T>) -> T {
    device.synchronize().expect("synchronise");
    let start = Instant::now();
    let out = f().unwrap_or_else(|e| panic!("{label}: {e}"));
    device.synchronize().expect("synchronise");
    println!("{label:<12} {:8.2} ms", start.elapsed().as_secs_f64() * 1e3);
    out
}

fn main() -> candle_core::Result<()> {
    let batch: usize = match std::env::args().nth(1) {
        Some(b) => b.parse().expect("BATCH is a number"),
        None => 8,
    };
    let device = Device::new_cuda(0)?;
    let dims = ModelDims {
        layers: 12,
        heads: 12,
        width: 768,
        context: 1024,
        vocab: 50304,
    };
    let model = Gpt::new(dims, 0, &device, DType::BF16)?;
    let ids = Tensor::rand(
        0f32,
        (dims.vocab - 1) as f32,
        (batch, dims.context + 1),
        &device,
    )?
    .to_dtype(DType::U32)?;
    let inputs = ids.narrow(1, 0, dims.context)?.contiguous()?;
    let targets = ids.narrow(1, 1, dims.context)?.contiguous()?;
    let mut optimizer = AdamW::new(OptimConfig::default(), model.params())?;
    for step in 0..4 {
        println!("-- step {step}, batch {batch} x {}", dims.context);
        let loss = timed(&device, "forward", || {
            model.window_losses(&inputs, &targets)?.mean_all()
        });
        let store = timed(&device, "backward", || loss.backward());
        let grads = model
            .params()
            .iter()
            .map(|p| store.get(p.var.as_tensor()).cloned())
            .collect::<Option<Vec<_>>>()
            .expect("every parameter has a gradient");
        let norm = timed(&device, "grad norm", || global_norm(&grads));
        timed(&device, "adamw", || {
            optimizer.step(model.params(), &grads, 1e-4, clip_scale(norm, 1.0))
        });
    }
    Ok(())
}
