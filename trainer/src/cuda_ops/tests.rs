//! Each kernel against the composed ops (in f32 where the composed form allows): values and
//! gradients. These need a GPU: `cargo test -p trainer --features cuda cuda_ops` on one.
use candle_core::{D, DType, Device, Tensor, Var};

use super::{bias_add, causal_softmax, gelu, layer_norm, merge_heads, split_heads, sum_of_squares};
use crate::cross_entropy::fused_cross_entropy;
use crate::nodes::{attention_composed, causal_attention, embedding, head_cross_entropy, linear};
use crate::ops;

fn gpu() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA GPU")
}

fn largest(t: &Tensor) -> f32 {
    let t = t.to_dtype(DType::F32).unwrap();
    t.abs().unwrap().max_all().unwrap().to_scalar().unwrap()
}

fn gap(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    largest(&(a - b.to_dtype(DType::F32).unwrap()).unwrap())
}

fn bf16_var(t: Tensor) -> Var {
    Var::from_tensor(&t.to_dtype(DType::BF16).unwrap()).unwrap()
}

/// Gradient of `sum(y · r)` with respect to `v`.
fn grad_of(y: &Tensor, r: &Tensor, v: &Tensor) -> Tensor {
    let y = y.to_dtype(DType::F32).unwrap();
    let store = (y * r).unwrap().sum_all().unwrap().backward().unwrap();
    store.get(v).expect("gradient recorded").clone()
}

#[test]
fn causal_softmax_matches_the_composed_softmax() {
    // Rows of up to 1,024 scores are held in registers; longer ones are read from memory.
    for (heads, t) in [(3, 64), (1, 1100)] {
        softmax_matches(heads, t);
    }
}

fn softmax_matches(heads: usize, t: usize) {
    let dev = gpu();
    let scores = bf16_var(Tensor::randn(0f32, 3.0, (2, heads, t, t), &dev).unwrap());
    let r = Tensor::randn(0f32, 1.0, (2, heads, t, t), &dev).unwrap();
    let x32 = scores.as_tensor().to_dtype(DType::F32).unwrap();
    let reference = ops::causal_softmax(&x32, 0.125).unwrap();
    let fused = causal_softmax(scores.as_tensor(), 0.125).unwrap();
    assert!(
        gap(&fused, &reference) < 4e-3,
        "{}",
        gap(&fused, &reference)
    );
    let rows = fused.to_dtype(DType::F32).unwrap().sum(D::Minus1).unwrap();
    assert!(gap(&rows, &rows.ones_like().unwrap()) < 1e-2);
    // Row 0 of each head sees only key 0.
    let first = fused.narrow(2, 0, 1).unwrap().narrow(3, 1, t - 1).unwrap();
    assert_eq!(largest(&first), 0.0);
    let g = grad_of(&fused, &r, scores.as_tensor());
    let x32 = Var::from_tensor(&x32).unwrap();
    let expected = grad_of(
        &ops::causal_softmax(x32.as_tensor(), 0.125).unwrap(),
        &r,
        x32.as_tensor(),
    );
    assert!(gap(&g, &expected) < 0.02 * largest(&expected));
}

#[test]
fn layer_norm_matches_the_composed_norm_with_f32_parameter_gradients() {
    let dev = gpu();
    let x = bf16_var(Tensor::randn(1f32, 2.0, (3, 50, 96), &dev).unwrap());
    let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 96, &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 96, &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (3, 50, 96), &dev).unwrap();
    let fused = layer_norm(x.as_tensor(), &w, &b, 1e-5).unwrap();
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = ops::layer_norm(x32.as_tensor(), &w, &b, 1e-5).unwrap();
    assert!(gap(&fused, &reference) < 0.02 * largest(&reference));
    for (fv, rv) in [(x.as_tensor(), x32.as_tensor()), (&w, &w), (&b, &b)] {
        let got = grad_of(&fused, &r, fv);
        let want = grad_of(&reference, &r, rv);
        assert_eq!(got.dtype(), fv.dtype(), "gradient in the parameter's dtype");
        assert!(
            gap(&got, &want) < 0.02 * largest(&want),
            "{}",
            gap(&got, &want)
        );
    }
}

#[test]
fn gelu_matches_the_f32_gelu_and_its_gradient() {
    let dev = gpu();
    let x = bf16_var(Tensor::randn(0f32, 2.0, (40, 300), &dev).unwrap());
    let r = Tensor::randn(0f32, 1.0, (40, 300), &dev).unwrap();
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = x32.as_tensor().gelu().unwrap();
    let fused = gelu(x.as_tensor()).unwrap();
    // Within bf16 rounding of values up to about 8.
    assert!(gap(&fused, &reference) < 1.6e-2);
    let got = grad_of(&fused, &r, x.as_tensor());
    let want = grad_of(&reference, &r, x32.as_tensor());
    assert!(gap(&got, &want) < 0.02 * largest(&want));
}

#[test]
fn bias_add_matches_broadcast_add_with_an_f32_bias_gradient() {
    let dev = gpu();
    let x = bf16_var(Tensor::randn(0f32, 1.0, (300, 200), &dev).unwrap());
    let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 200, &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (300, 200), &dev).unwrap();
    let fused = bias_add(x.as_tensor(), &b).unwrap();
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = x32.as_tensor().broadcast_add(&b).unwrap();
    assert!(gap(&fused, &reference) < 0.02);
    let got = grad_of(&fused, &r, &b);
    assert_eq!(got.dtype(), DType::F32);
    let want = grad_of(&reference, &r, &b);
    assert!(gap(&got, &want) < 0.01 * largest(&want));
    let gx = grad_of(&fused, &r, x.as_tensor());
    assert!(gap(&gx, &r) < 0.01 * largest(&r));
}

#[test]
fn cross_entropy_matches_the_composed_loss_and_gradient() {
    let dev = gpu();
    let logits = bf16_var(Tensor::randn(0f32, 3.0, (16, 1000), &dev).unwrap());
    let targets = Tensor::rand(0f32, 999.0, 16, &dev)
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap();
    let r = Tensor::randn(0f32, 1.0, 16, &dev).unwrap();
    let x32 = Var::from_tensor(&logits.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = ops::composed_cross_entropy(x32.as_tensor(), &targets).unwrap();
    let fused = fused_cross_entropy(logits.as_tensor(), &targets).unwrap();
    assert_eq!(fused.dtype(), DType::F32);
    assert!(gap(&fused, &reference) < 1e-4);
    let got = grad_of(&fused, &r, logits.as_tensor());
    let want = grad_of(&reference, &r, x32.as_tensor());
    assert!(gap(&got, &want) < 0.01 * largest(&want));
}

#[test]
fn fused_adamw_takes_the_same_steps_as_the_cpu_optimizer() {
    use crate::config::OptimConfig;
    use crate::model::Param;
    use crate::optimizer::AdamW;
    let dev = gpu();
    let values = Tensor::randn(0f32, 1.0, (16, 24), &Device::Cpu).unwrap();
    let grads: Vec<Tensor> = (0..3)
        .map(|_| Tensor::randn(0f32, 0.5, (16, 24), &Device::Cpu).unwrap())
        .collect();
    let run = |device: &Device| {
        let param = Param {
            name: "w".into(),
            var: Var::from_tensor(&values.to_device(device).unwrap()).unwrap(),
            decay: true,
        };
        let config = OptimConfig {
            weight_decay: 0.1,
            ..OptimConfig::default()
        };
        let params = [param];
        let mut opt = AdamW::new(config, &params).unwrap();
        for g in &grads {
            // A clipping factor, applied inside the kernels on the GPU.
            opt.step(&params, &[g.to_device(device).unwrap()], 1e-2, 0.5)
                .unwrap();
        }
        params[0].var.as_tensor().to_device(&Device::Cpu).unwrap()
    };
    let (on_gpu, on_cpu) = (run(&dev), run(&Device::Cpu));
    assert!(gap(&on_gpu, &on_cpu) < 1e-5, "{}", gap(&on_gpu, &on_cpu));
    assert!(gap(&on_cpu, &values) > 1e-2, "the steps moved the weights");
}

#[test]
fn sum_of_squares_matches_the_cpu_norm_and_repeats_exactly() {
    let dev = gpu();
    // Sizes below, at and far above one block's share, and an empty tensor.
    let grads: Vec<Tensor> = [1usize, 300, 65_536, 1_000_003, 0]
        .iter()
        .map(|&n| Tensor::randn(0f32, 0.1, n, &Device::Cpu).unwrap())
        .collect();
    let on_gpu: Vec<Tensor> = grads.iter().map(|g| g.to_device(&dev).unwrap()).collect();
    let gpu_sum = sum_of_squares(&on_gpu).unwrap();
    let cpu_norm = crate::optimizer::global_norm(&grads).unwrap();
    assert!(
        (gpu_sum.sqrt() - cpu_norm).abs() < 1e-5 * cpu_norm,
        "{} vs {cpu_norm}",
        gpu_sum.sqrt()
    );
    assert_eq!(sum_of_squares(&on_gpu).unwrap(), gpu_sum);
    assert_eq!(
        crate::optimizer::global_norm(&on_gpu).unwrap(),
        gpu_sum.sqrt()
    );
}

#[test]
fn attention_node_matches_the_composed_attention_and_its_gradient() {
    // Heads of 16 go through the permutation kernels; heads of 4 (not a whole 16-byte vector)
    // through candle's copies.
    for (batch, t, heads, width) in [(2, 48, 4, 64), (3, 20, 4, 16)] {
        attention_matches(batch, t, heads, width);
    }
}

fn attention_matches(batch: usize, t: usize, heads: usize, width: usize) {
    let dev = gpu();
    let qkv = bf16_var(Tensor::randn(0f32, 1.0, (batch * t, 3 * width), &dev).unwrap());
    let r = Tensor::randn(0f32, 1.0, (batch * t, width), &dev).unwrap();
    let fused = causal_attention(qkv.as_tensor(), batch, heads).unwrap();
    let x32 = Var::from_tensor(&qkv.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = attention_composed(x32.as_tensor(), batch, heads).unwrap();
    assert_eq!(fused.dims(), &[batch * t, width]);
    assert!(gap(&fused, &reference) < 0.02 * largest(&reference));
    // The first query of a window sees only the first value: its output is that value.
    let first_value = qkv
        .as_tensor()
        .narrow(0, t, 1)
        .unwrap()
        .narrow(1, 2 * width, width);
    let first_out = fused.narrow(0, t, 1).unwrap();
    assert!(gap(&first_out, &first_value.unwrap()) < 1e-2);
    let got = grad_of(&fused, &r, qkv.as_tensor());
    let want = grad_of(&reference, &r, x32.as_tensor());
    assert!(
        gap(&got, &want) < 0.03 * largest(&want),
        "{} of {}",
        gap(&got, &want),
        largest(&want)
    );
}

#[test]
fn head_permutations_equal_the_composed_transposes_exactly() {
    let dev = gpu();
    let (batch, t, heads, hw) = (3, 40, 4, 16);
    let width = heads * hw;
    let x = Tensor::randn(0f32, 1.0, (batch * t, 3 * width), &dev)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let split = split_heads(&x, batch, heads, 3).unwrap();
    assert_eq!(split.dims(), &[3, batch, heads, t, hw]);
    let composed = x
        .reshape((batch, t, 3, heads, hw))
        .unwrap()
        .permute((2, 0, 3, 1, 4))
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(gap(&split, &composed), 0.0);
    let parts: Vec<Tensor> = (0..3).map(|i| split.get(i).unwrap()).collect();
    let merged = merge_heads(&[&parts[0], &parts[1], &parts[2]]).unwrap();
    assert_eq!(merged.dims(), x.dims());
    assert_eq!(gap(&merged, &x), 0.0, "merge undoes split");
    // One part: the gradient of attention's output and the output itself.
    let one = x.narrow(1, width, width).unwrap();
    let back = merge_heads(&[&split_heads(&one, batch, heads, 1)
        .unwrap()
        .squeeze(0)
        .unwrap()]);
    assert_eq!(gap(&back.unwrap(), &one), 0.0);
    let odd = split_heads(&x, batch, 16, 3).unwrap_err().to_string();
    assert!(odd.contains("head width 4 is not a multiple of 8"), "{odd}");
}

#[test]
fn head_loss_node_matches_the_composed_head_and_loss() {
    let dev = gpu();
    let (rows, width, vocab) = (64, 48, 1000);
    let x = bf16_var(Tensor::randn(0f32, 1.0, (rows, width), &dev).unwrap());
    let e = Var::from_tensor(&Tensor::randn(0f32, 0.2, (vocab, width), &dev).unwrap()).unwrap();
    let ids: Vec<u32> = (0..rows as u32).map(|i| i * 37 % vocab as u32).collect();
    let targets = Tensor::new(ids.as_slice(), &dev).unwrap();
    let r = Tensor::randn(0f32, 1.0, rows, &dev).unwrap();
    let node = head_cross_entropy(x.as_tensor(), &e, &targets).unwrap();
    assert_eq!((node.dims(), node.dtype()), (&[rows][..], DType::F32));
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let logits = x32.matmul(&e.t().unwrap()).unwrap();
    let reference = ops::composed_cross_entropy(&logits, &targets).unwrap();
    assert!(gap(&node, &reference) < 0.02 * largest(&reference));
    for (nv, rv) in [(x.as_tensor(), x32.as_tensor()), (&e, &e)] {
        let got = grad_of(&node, &r, nv);
        let want = grad_of(&reference, &r, rv);
        assert_eq!(got.dtype(), nv.dtype(), "gradient in the input's dtype");
        assert!(
            gap(&got, &want) < 0.02 * largest(&want),
            "{} of {}",
            gap(&got, &want),
            largest(&want)
        );
    }
}

#[test]
fn linear_node_matches_the_composed_layer_with_f32_parameter_gradients() {
    let dev = gpu();
    let x = bf16_var(Tensor::randn(0f32, 1.0, (96, 64), &dev).unwrap());
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (48, 64), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 0.1, 48, &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (96, 48), &dev).unwrap();
    let node = linear(x.as_tensor(), &w, &b).unwrap();
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let reference = ops::linear(x32.as_tensor(), &w, &b).unwrap();
    assert_eq!(node.dtype(), DType::BF16);
    assert!(gap(&node, &reference) < 0.02 * largest(&reference));
    for (nv, rv) in [(x.as_tensor(), x32.as_tensor()), (&w, &w), (&b, &b)] {
        let got = grad_of(&node, &r, nv);
        let want = grad_of(&reference, &r, rv);
        assert_eq!(got.dtype(), nv.dtype());
        assert!(gap(&got, &want) < 0.02 * largest(&want));
    }
}

#[test]
fn embedding_gradient_equals_the_cpu_gradient_bit_for_bit() {
    let dev = gpu();
    let table = Tensor::randn(0f32, 1.0, (300, 40), &Device::Cpu).unwrap();
    // 2,000 positions over 300 tokens: many repeats, some tokens unused.
    let ids: Vec<u32> = (0..2000u32).map(|i| (i * i + 7 * i) % 257).collect();
    let r = Tensor::randn(0f32, 1.0, (2000, 40), &Device::Cpu).unwrap();
    let grad = |device: &Device| {
        let table = Var::from_tensor(&table.to_device(device).unwrap()).unwrap();
        let ids = Tensor::from_vec(ids.clone(), (4, 500), device).unwrap();
        let rows = embedding(&table, &ids).unwrap();
        let y = (rows * r.to_device(device).unwrap()).unwrap();
        let store = y.sum_all().unwrap().backward().unwrap();
        let g = store.get(&table).unwrap().to_device(&Device::Cpu).unwrap();
        g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (on_gpu, on_cpu) = (grad(&dev), grad(&Device::Cpu));
    assert_eq!(on_gpu, on_cpu);
    assert!(
        on_cpu[299 * 40..].iter().all(|&v| v == 0.0),
        "token 299 is unused"
    );
}

#[test]
fn out_of_range_targets_give_nan_not_a_read_past_the_row() {
    let dev = gpu();
    let logits = Tensor::zeros((2, 10), DType::BF16, &dev).unwrap();
    let targets = Tensor::new(&[3u32, 10], &dev).unwrap();
    let loss = fused_cross_entropy(&logits, &targets)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!((loss[0] - 10f32.ln()).abs() < 1e-5 && loss[1].is_nan());
}

#[test]
fn the_bf16_model_gives_every_parameter_the_f32_cpu_gradient_direction() {
    let dev = gpu();
    let dims = crate::config::ModelDims {
        layers: 2,
        heads: 4,
        width: 64,
        context: 32,
        vocab: 128,
    };
    let cpu = crate::Gpt::new(dims, 7, &Device::Cpu, DType::F32).unwrap();
    let gpu_model = crate::Gpt::new(dims, 7, &dev, DType::BF16).unwrap();
    let ids: Vec<u32> = (0..2 * 33).map(|i| (i * 37 % 128) as u32).collect();
    let loss = |model: &crate::Gpt, device: &Device| {
        let ids = Tensor::from_vec(ids.clone(), (2, 33), device).unwrap();
        let x = ids.narrow(1, 0, 32).unwrap().contiguous().unwrap();
        let y = ids.narrow(1, 1, 32).unwrap().contiguous().unwrap();
        model.window_losses(&x, &y).unwrap().mean_all().unwrap()
    };
    let on_gpu = loss(&gpu_model, &dev);
    let on_cpu = loss(&cpu, &Device::Cpu);
    let (a, b) = (
        on_gpu.to_scalar::<f32>().unwrap(),
        on_cpu.to_scalar::<f32>().unwrap(),
    );
    assert!((a - b).abs() < 0.02, "bf16 GPU loss {a}, f32 CPU loss {b}");
    let store = on_gpu.backward().unwrap();
    let cpu_store = on_cpu.backward().unwrap();
    let dot = |a: &Tensor, b: &Tensor| -> f32 {
        (a * b).unwrap().sum_all().unwrap().to_scalar().unwrap()
    };
    for (p, q) in gpu_model.params().iter().zip(cpu.params()) {
        let g = store.get(p.var.as_tensor()).expect(&p.name);
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm.is_finite() && norm > 0.0, "{}: {norm}", p.name);
        // The same direction as the f32 CPU model's gradient, bf16 noise aside.
        let g = g.to_device(&Device::Cpu).unwrap();
        let want = cpu_store.get(q.var.as_tensor()).expect(&q.name);
        let cosine = dot(&g, want) / (dot(&g, &g) * dot(want, want)).sqrt();
        assert!(cosine > 0.98, "{}: cosine {cosine}", p.name);
    }
}
