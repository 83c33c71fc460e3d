//! Fused CUDA kernels for the places where candle's composed ops are slowest on a GPU: the causal
//! softmax of attention (nine elementwise, broadcast and reduction kernels forward and more
//! backward, over a `[B, heads, T, T]` tensor), layer normalisation and bias addition (broadcasts
//! whose strided index arithmetic dominates), the tanh GELU of the MLP (whose backward candle
//! composes from a dozen elementwise ops) and the cross-entropy over the vocabulary; and AdamW,
//! updated in place in three kernels per parameter instead of a dozen composed ops. Each has a forward and a backward kernel and
//! records its backward in candle's graph through [`CustomOp1`], so every parameter still gets its
//! gradient. The kernels take and give bf16 (the CUDA compute dtype) and compute in f32. They are
//! compiled once per process with NVRTC, which ships with the CUDA libraries the binary already
//! needs. The CPU keeps the composed ops of [`crate::ops`].
//!
//! This is the one module allowed `unsafe`: launching a kernel is unsafe in cudarc. Every launch
//! passes buffers whose lengths are checked against the element counts the kernel reads.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, CudaViewMut, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::cudarc::nvrtc;
use candle_core::cuda_backend::{CudaDevice, CudaStorage, CudaStorageSlice, WrapErr};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, InplaceOp2, InplaceOp3, Layout, Result, Shape,
    Tensor, bail,
};
use half::bf16;

const MODULE: &str = "refinery_trainer";

/// The widest row the layer-norm kernels take (32 values per lane of a warp).
pub const MAX_NORM_WIDTH: usize = 1024;

const SOURCE: &str = r#"
typedef unsigned short bf16_t;
__device__ __forceinline__ float load(bf16_t h) { return __uint_as_float(((unsigned int)h) << 16); }
__device__ __forceinline__ bf16_t store(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// One warp per row of `cols` scores. Row r holds the scores of query r % cols, which sees keys
// 0..=r % cols: y = softmax(scale * x) over those, 0 after them.
extern "C" __global__ void causal_softmax_fwd(const bf16_t* x, bf16_t* y, int rows, int cols, float scale) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int last = row % cols;
    const bf16_t* xr = x + (size_t)row * cols;
    bf16_t* yr = y + (size_t)row * cols;
    float m = __int_as_float(0xff800000);  // -inf
    for (int j = lane; j <= last; j += 32) m = fmaxf(m, load(xr[j]) * scale);
    m = warp_max(m);
    float s = 0.f;
    for (int j = lane; j <= last; j += 32) s += expf(load(xr[j]) * scale - m);
    float inv = 1.f / warp_sum(s);
    for (int j = lane; j < cols; j += 32)
        yr[j] = store(j <= last ? expf(load(xr[j]) * scale - m) * inv : 0.f);
}

// dx = scale * y * (g - sum(g * y)) per row; masked entries (y = 0) get 0.
extern "C" __global__ void causal_softmax_bwd(const bf16_t* y, const bf16_t* g, bf16_t* dx, int rows, int cols, float scale) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int last = row % cols;
    size_t base = (size_t)row * cols;
    float d = 0.f;
    for (int j = lane; j <= last; j += 32) d += load(y[base + j]) * load(g[base + j]);
    d = warp_sum(d);
    for (int j = lane; j < cols; j += 32)
        dx[base + j] = store(j <= last ? scale * load(y[base + j]) * (load(g[base + j]) - d) : 0.f);
}

// Mean and 1/sqrt(var + eps) of a row of `d`, computed by one warp (every lane gets them).
__device__ __forceinline__ void row_stats(const bf16_t* xr, int d, float eps, float* mean, float* rstd) {
    int lane = threadIdx.x & 31;
    float s = 0.f;
    for (int j = lane; j < d; j += 32) s += load(xr[j]);
    float m = warp_sum(s) / d;
    float v = 0.f;
    for (int j = lane; j < d; j += 32) { float c = load(xr[j]) - m; v += c * c; }
    *mean = m;
    *rstd = rsqrtf(warp_sum(v) / d + eps);
}

// y = (x - mean) * rstd * w + b per row of `d`; one warp per row. w and b are f32.
extern "C" __global__ void layer_norm_fwd(const bf16_t* x, const float* w, const float* b, bf16_t* y, int rows, int d, float eps) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const bf16_t* xr = x + (size_t)row * d;
    float m, r;
    row_stats(xr, d, eps, &m, &r);
    for (int j = lane; j < d; j += 32) y[(size_t)row * d + j] = store((load(xr[j]) - m) * r * w[j] + b[j]);
}

// dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)) per row; one warp per row.
extern "C" __global__ void layer_norm_bwd_x(const bf16_t* x, const float* w, const bf16_t* g, bf16_t* dx, int rows, int d, float eps) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    size_t base = (size_t)row * d;
    float m, r;
    row_stats(x + base, d, eps, &m, &r);
    float a = 0.f, c = 0.f;
    for (int j = lane; j < d; j += 32) {
        float gw = load(g[base + j]) * w[j];
        a += gw;
        c += gw * (load(x[base + j]) - m) * r;
    }
    a = warp_sum(a) / d;
    c = warp_sum(c) / d;
    for (int j = lane; j < d; j += 32) {
        float xhat = (load(x[base + j]) - m) * r;
        dx[base + j] = store(r * (load(g[base + j]) * w[j] - a - xhat * c));
    }
}

// Per block, dw[j] = sum over its rows of g * xhat and db[j] = sum of g, written to
// partial[block] = [dw; db] (f32, 2 * d). Each warp strides over rows summing in registers
// (d <= 32 * 32), then the block adds its warps in order through shared memory (warps * 2 * d
// floats): no atomics, so the sums do not depend on scheduling.
extern "C" __global__ void layer_norm_bwd_wb(const bf16_t* x, const bf16_t* g, float* partial, int rows, int d, float eps) {
    extern __shared__ float acc[];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float aw[32], ab[32];
    for (int k = 0; k < 32; k++) { aw[k] = 0.f; ab[k] = 0.f; }
    for (int row = blockIdx.x * warps + warp; row < rows; row += gridDim.x * warps) {
        size_t base = (size_t)row * d;
        float m, r;
        row_stats(x + base, d, eps, &m, &r);
        for (int j = lane, k = 0; j < d; j += 32, k++) {
            float gv = load(g[base + j]);
            aw[k] += gv * (load(x[base + j]) - m) * r;
            ab[k] += gv;
        }
    }
    for (int j = lane, k = 0; j < d; j += 32, k++) {
        acc[warp * 2 * d + j] = aw[k];
        acc[warp * 2 * d + d + j] = ab[k];
    }
    __syncthreads();
    for (int j = threadIdx.x; j < 2 * d; j += blockDim.x) {
        float s = 0.f;
        for (int w = 0; w < warps; w++) s += acc[w * 2 * d + j];
        partial[(size_t)blockIdx.x * 2 * d + j] = s;
    }
}

// (max, sum of exp(x - max)) pairs, merged.
__device__ __forceinline__ void lse_merge(float* m, float* s, float m2, float s2) {
    float mx = fmaxf(*m, m2);
    if (mx == __int_as_float(0xff800000)) return;
    *s = *s * expf(*m - mx) + s2 * expf(m2 - mx);
    *m = mx;
}

// The row's max and sum of exp(x - max), over a block of threads; every thread gets them.
__device__ void row_logsumexp(const bf16_t* xr, int vocab, float* out_m, float* out_s) {
    __shared__ float sm[32], ss[32];
    float m = __int_as_float(0xff800000), s = 0.f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) lse_merge(&m, &s, load(xr[j]), 1.f);
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        lse_merge(&m, &s, m2, s2);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { sm[warp] = m; ss[warp] = s; }
    __syncthreads();
    if (warp == 0) {
        m = lane < warps ? sm[lane] : __int_as_float(0xff800000);
        s = lane < warps ? ss[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) {
            float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            lse_merge(&m, &s, m2, s2);
        }
        if (lane == 0) { sm[0] = m; ss[0] = s; }
    }
    __syncthreads();
    *out_m = sm[0];
    *out_s = ss[0];
}

// One block per row: loss = log(sum exp(x)) - x[target]; a target out of range gives NaN.
extern "C" __global__ void cross_entropy_fwd(const bf16_t* x, const unsigned int* t, float* loss, int vocab) {
    const bf16_t* xr = x + (size_t)blockIdx.x * vocab;
    float m, s;
    row_logsumexp(xr, vocab, &m, &s);
    unsigned int target = t[blockIdx.x];
    if (threadIdx.x == 0)
        loss[blockIdx.x] = target < (unsigned)vocab ? logf(s) + m - load(xr[target]) : __int_as_float(0x7fc00000);
}

// dx = g[row] * (softmax(x) - onehot(target)).
extern "C" __global__ void cross_entropy_bwd(const bf16_t* x, const unsigned int* t, const float* g, bf16_t* dx, int vocab) {
    size_t base = (size_t)blockIdx.x * vocab;
    float m, s;
    row_logsumexp(x + base, vocab, &m, &s);
    float scale = g[blockIdx.x], inv = 1.f / s;
    unsigned int target = t[blockIdx.x];
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        dx[base + j] = store(scale * (expf(load(x[base + j]) - m) * inv - (j == (int)target ? 1.f : 0.f)));
}

// y[i] = x[i] + b[i % cols] over rows × cols; b is f32.
extern "C" __global__ void bias_add_fwd(const bf16_t* x, const float* b, bf16_t* y, size_t n, int cols) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = store(load(x[i]) + b[i % cols]);
}

// partial[chunk][j] = sum of g[row][j] over the rows of chunk blockIdx.y (rows split evenly over
// gridDim.y chunks); f32, summed over chunks afterwards, in a fixed order.
extern "C" __global__ void column_sums(const bf16_t* g, float* partial, int rows, int cols) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    int per = (rows + gridDim.y - 1) / gridDim.y;
    int start = blockIdx.y * per, end = min(rows, start + per);
    float s = 0.f;
    for (int r = start; r < end; r++) s += load(g[(size_t)r * cols + j]);
    partial[(size_t)blockIdx.y * cols + j] = s;
}

// AdamW, in place: a moment m = beta * m + (1 - beta) * g (g squared when `square`).
extern "C" __global__ void adam_moment(float* m, const float* g, size_t n, float beta, int square) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = square ? g[i] * g[i] : g[i];
        m[i] = beta * m[i] + (1.f - beta) * x;
    }
}

// AdamW, in place: w = w * keep - lr * (m / fix1) / (sqrt(v / fix2) + eps).
extern "C" __global__ void adam_weight(float* w, const float* m, const float* v, size_t n, float keep, float lr, float fix1, float fix2, float eps) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        w[i] = w[i] * keep - lr * (m[i] / fix1) / (sqrtf(v[i] / fix2) + eps);
}

#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f
extern "C" __global__ void gelu_fwd(const bf16_t* x, bf16_t* y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = load(x[i]);
        y[i] = store(0.5f * v * (1.f + tanhf(GELU_K * (v + GELU_C * v * v * v))));
    }
}

extern "C" __global__ void gelu_bwd(const bf16_t* x, const bf16_t* g, bf16_t* dx, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = load(x[i]);
        float t = tanhf(GELU_K * (v + GELU_C * v * v * v));
        float d = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * GELU_K * (1.f + 3.f * GELU_C * v * v);
        dx[i] = store(load(g[i]) * d);
    }
}
"#;

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

/// The contiguous bf16 elements of a storage.
fn bf16_view<'a>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, bf16>> {
    let CudaStorageSlice::BF16(slice) = &storage.slice else {
        bail!("fused CUDA op: expected bf16 input");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused CUDA op: input is not contiguous");
    };
    Ok(slice.slice(start..end))
}

fn output(device: &CudaDevice, slice: CudaSlice<bf16>) -> CudaStorage {
    CudaStorage {
        slice: CudaStorageSlice::BF16(slice),
        device: device.clone(),
    }
}

/// `[rows, cols]` of square `[.., t, t]` scores.
fn rows_cols(layout: &Layout) -> Result<(usize, usize)> {
    let dims = layout.dims();
    let n = dims.len();
    if n < 2 || dims[n - 1] != dims[n - 2] {
        bail!("causal softmax: expected [.., t, t] scores, got {dims:?}");
    }
    Ok((layout.shape().elem_count() / dims[n - 1], dims[n - 1]))
}

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

fn cpu_refused(op: &str) -> Result<(CpuStorage, Shape)> {
    bail!("{op} is a CUDA kernel; on the CPU the trainer uses the composed ops")
}

/// `softmax(scale · x)` over the last dimension of square scores, each query masked to the keys
/// at or before it: the attention weights, fused.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax {
        scale: scale as f32,
    })
}

/// Layer normalisation of the last dimension of bf16 `x` with f32 `weight` and `bias` (the
/// master weights, whose gradients come back in f32), fused forward and backward.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

/// Per-row cross-entropy of bf16 `logits` `[rows, vocab]` and u32 `targets` `[rows]`: `[rows]`
/// (f32), computed in f32; the backward writes `softmax − one-hot` once, in bf16.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, CrossEntropy)
}

/// `x + bias` for bf16 `x` `[.., cols]` and the f32 `bias` `[cols]` (a master weight, whose
/// gradient, the column sums of the output's gradient, comes back in f32).
pub fn bias_add(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, BiasAdd)
}

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
        },
    )?;
    v.inplace_op2(
        &g,
        &Moment {
            beta: step.beta2,
            square: true,
        },
    )?;
    w.inplace_op3(m, v, &WeightUpdate(step))
}

/// The tanh approximation of GELU, fused forward and backward.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let (rows, cols) = rows_cols(layout)?;
        let x = bf16_view(storage, layout)?;
        let dev = &storage.device;
        let mut y = dev.alloc_zeros::<bf16>(rows * cols)?;
        let func = dev.get_or_load_custom_func("causal_softmax_fwd", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut b = func.builder();
        b.arg(&x).arg(&mut y).arg(&r).arg(&c).arg(&self.scale);
        // SAFETY: x and y hold rows × cols bf16 values, the kernel's extent.
        unsafe { b.launch(row_launch(rows)) }.w()?;
        Ok((output(dev, y), layout.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(res.apply_op2_no_bwd(
            &grad,
            &CausalSoftmaxGrad { scale: self.scale },
        )?))
    }
}

/// `(y, g) → dx` of [`CausalSoftmax`].
struct CausalSoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for CausalSoftmaxGrad {
    fn name(&self) -> &'static str {
        "causal-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        ys: &CudaStorage,
        yl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, cols) = rows_cols(yl)?;
        if gl.dims() != yl.dims() {
            bail!(
                "causal softmax backward: gradient {:?} for output {:?}",
                gl.dims(),
                yl.dims()
            );
        }
        let (y, g) = (bf16_view(ys, yl)?, bf16_view(gs, gl)?);
        let dev = &ys.device;
        let mut dx = dev.alloc_zeros::<bf16>(rows * cols)?;
        let func = dev.get_or_load_custom_func("causal_softmax_bwd", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut b = func.builder();
        b.arg(&y)
            .arg(&g)
            .arg(&mut dx)
            .arg(&r)
            .arg(&c)
            .arg(&self.scale);
        // SAFETY: y, g and dx hold rows × cols bf16 values, the kernel's extent.
        unsafe { b.launch(row_launch(rows)) }.w()?;
        Ok((output(dev, dx), yl.shape().clone()))
    }
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

/// The contiguous f32 elements of a storage.
fn f32_view<'a>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, f32>> {
    let CudaStorageSlice::F32(slice) = &storage.slice else {
        bail!("fused CUDA op: expected f32 input");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused CUDA op: f32 input is not contiguous");
    };
    Ok(slice.slice(start..end))
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

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
        let (x, w, b) = (bf16_view(xs, xl)?, f32_view(ws, wl)?, f32_view(bs, bl)?);
        let dev = &xs.device;
        let mut y = dev.alloc_zeros::<bf16>(rows * d)?;
        let func = dev.get_or_load_custom_func("layer_norm_fwd", MODULE, ptx()?)?;
        let (r, dd) = (i32_arg(rows)?, i32_arg(d)?);
        let mut l = func.builder();
        l.arg(&x)
            .arg(&w)
            .arg(&b)
            .arg(&mut y)
            .arg(&r)
            .arg(&dd)
            .arg(&self.eps);
        // SAFETY: x and y hold rows × d bf16 values, w and b d f32 values: the kernel's extent.
        unsafe { l.launch(row_launch(rows)) }.w()?;
        Ok((output(dev, y), xl.shape().clone()))
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

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

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
        if gl.dims() != xl.dims() {
            bail!(
                "layer norm backward: gradient {:?} for input {:?}",
                gl.dims(),
                xl.dims()
            );
        }
        let (x, w, g) = (bf16_view(xs, xl)?, f32_view(ws, wl)?, bf16_view(gs, gl)?);
        let dev = &xs.device;
        let mut dx = dev.alloc_zeros::<bf16>(rows * d)?;
        let func = dev.get_or_load_custom_func("layer_norm_bwd_x", MODULE, ptx()?)?;
        let (r, dd) = (i32_arg(rows)?, i32_arg(d)?);
        let mut l = func.builder();
        l.arg(&x)
            .arg(&w)
            .arg(&g)
            .arg(&mut dx)
            .arg(&r)
            .arg(&dd)
            .arg(&self.eps);
        // SAFETY: x, g and dx hold rows × d bf16 values, w d f32 values: the kernel's extent.
        unsafe { l.launch(row_launch(rows)) }.w()?;
        Ok((output(dev, dx), xl.shape().clone()))
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

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        if gl.dims() != xl.dims() {
            bail!(
                "layer norm backward: gradient {:?} for input {:?}",
                gl.dims(),
                xl.dims()
            );
        }
        let d = *xl.dims().last().unwrap_or(&0);
        let rows = xl.shape().elem_count() / d.max(1);
        let (x, g) = (bf16_view(xs, xl)?, bf16_view(gs, gl)?);
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
        let out = CudaStorage {
            slice: CudaStorageSlice::F32(out),
            device: dev.clone(),
        };
        Ok((out, Shape::from((blocks, 2 * d))))
    }
}

/// The contiguous u32 elements of a storage.
fn u32_view<'a>(storage: &'a CudaStorage, layout: &Layout) -> Result<CudaView<'a, u32>> {
    let CudaStorageSlice::U32(slice) = &storage.slice else {
        bail!("fused CUDA op: expected u32 targets");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("fused CUDA op: targets are not contiguous");
    };
    Ok(slice.slice(start..end))
}

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

struct CrossEntropy;

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cuda-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        ls: &CudaStorage,
        ll: &Layout,
        ts: &CudaStorage,
        tl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (rows, vocab) = rows_vocab(ll, tl)?;
        let (x, t) = (bf16_view(ls, ll)?, u32_view(ts, tl)?);
        let dev = &ls.device;
        let mut loss = dev.alloc_zeros::<f32>(rows)?;
        let func = dev.get_or_load_custom_func("cross_entropy_fwd", MODULE, ptx()?)?;
        let v = i32_arg(vocab)?;
        let mut b = func.builder();
        b.arg(&x).arg(&t).arg(&mut loss).arg(&v);
        // SAFETY: x holds rows × vocab bf16 values, t and loss rows values; the kernel reads
        // x[target] only for targets below vocab.
        unsafe { b.launch(block_per_row(rows)) }.w()?;
        let loss = CudaStorage {
            slice: CudaStorageSlice::F32(loss),
            device: dev.clone(),
        };
        Ok((loss, Shape::from(rows)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = logits.apply_op3_no_bwd(targets, &grad.contiguous()?, &CrossEntropyGrad)?;
        Ok((Some(g), None))
    }
}

/// `(logits, targets, g) → dlogits` of [`CrossEntropy`].
struct CrossEntropyGrad;

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cuda-cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
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
        let (x, t, g) = (bf16_view(ls, ll)?, u32_view(ts, tl)?, f32_view(gs, gl)?);
        let dev = &ls.device;
        let mut dx = dev.alloc_zeros::<bf16>(rows * vocab)?;
        let func = dev.get_or_load_custom_func("cross_entropy_bwd", MODULE, ptx()?)?;
        let v = i32_arg(vocab)?;
        let mut b = func.builder();
        b.arg(&x).arg(&t).arg(&g).arg(&mut dx).arg(&v);
        // SAFETY: x and dx hold rows × vocab bf16 values, t and g rows values: the kernel's
        // extent.
        unsafe { b.launch(block_per_row(rows)) }.w()?;
        Ok((output(dev, dx), ll.shape().clone()))
    }
}

struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "bias-add"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        bs: &CudaStorage,
        bl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let cols = *xl.dims().last().unwrap_or(&0);
        if cols == 0 || bl.shape().elem_count() != cols {
            bail!("bias add: input {:?} with bias {:?}", xl.dims(), bl.dims());
        }
        let (x, b) = (bf16_view(xs, xl)?, f32_view(bs, bl)?);
        let n = xl.shape().elem_count();
        let dev = &xs.device;
        let mut y = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("bias_add_fwd", MODULE, ptx()?)?;
        let c = i32_arg(cols)?;
        let mut l = func.builder();
        l.arg(&x).arg(&b).arg(&mut y).arg(&n).arg(&c);
        // SAFETY: x and y hold n bf16 values and b cols f32 values, indexed modulo cols.
        unsafe { l.launch(elementwise_launch(n)) }.w()?;
        Ok((output(dev, y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        _: &Tensor,
        bias: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let sums = grad.apply_op1_no_bwd(&ColumnSums)?.sum(0)?;
        Ok((Some(grad), Some(sums.reshape(bias.shape())?)))
    }
}

/// `g [.., cols] → [chunks, cols]` (f32): column sums over chunks of rows, to be summed over the
/// first dimension.
struct ColumnSums;

/// Row chunks of [`ColumnSums`]: enough blocks to fill the GPU, few enough to sum cheaply.
const ROW_CHUNKS: usize = 64;

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let cols = *layout.dims().last().unwrap_or(&0);
        let rows = layout.shape().elem_count() / cols.max(1);
        let chunks = ROW_CHUNKS.min(rows.max(1));
        let g = bf16_view(storage, layout)?;
        let dev = &storage.device;
        let mut partial = dev.alloc_zeros::<f32>(chunks * cols)?;
        let func = dev.get_or_load_custom_func("column_sums", MODULE, ptx()?)?;
        let (r, c) = (i32_arg(rows)?, i32_arg(cols)?);
        let mut l = func.builder();
        l.arg(&g).arg(&mut partial).arg(&r).arg(&c);
        let config = LaunchConfig {
            grid_dim: (cols.div_ceil(256) as u32, chunks as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: g holds rows × cols bf16 values and partial chunks × cols f32 values.
        unsafe { l.launch(config) }.w()?;
        let partial = CudaStorage {
            slice: CudaStorageSlice::F32(partial),
            device: dev.clone(),
        };
        Ok((partial, Shape::from((chunks, cols))))
    }
}

/// The contiguous f32 elements of a storage, writable.
fn f32_view_mut<'a>(storage: &'a mut CudaStorage, layout: &Layout) -> Result<CudaViewMut<'a, f32>> {
    let CudaStorageSlice::F32(slice) = &mut storage.slice else {
        bail!("AdamW: expected f32 state");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("AdamW: state is not contiguous");
    };
    Ok(slice.slice_mut(start..end))
}

fn same_count(a: &Layout, b: &Layout) -> Result<usize> {
    let n = a.shape().elem_count();
    if b.shape().elem_count() != n {
        bail!("AdamW: {:?} against {:?}", a.dims(), b.dims());
    }
    Ok(n)
}

/// `m ← β·m + (1 − β)·g` (or `g²`), in place.
struct Moment {
    beta: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<()> {
        bail!("{} is a CUDA kernel", self.name())
    }

    fn cuda_fwd(
        &self,
        ms: &mut CudaStorage,
        ml: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<()> {
        let n = same_count(ml, gl)?;
        let dev = ms.device.clone();
        let g = f32_view(gs, gl)?;
        let mut m = f32_view_mut(ms, ml)?;
        let func = dev.get_or_load_custom_func("adam_moment", MODULE, ptx()?)?;
        let square = i32::from(self.square);
        let mut l = func.builder();
        l.arg(&mut m).arg(&g).arg(&n).arg(&self.beta).arg(&square);
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

    fn cpu_fwd(
        &self,
        _: &mut CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<()> {
        bail!("{} is a CUDA kernel", self.name())
    }

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
        let (m, v) = (f32_view(ms, ml)?, f32_view(vs, vl)?);
        let mut w = f32_view_mut(ws, wl)?;
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

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let x = bf16_view(storage, layout)?;
        let n = layout.shape().elem_count();
        let dev = &storage.device;
        let mut y = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("gelu_fwd", MODULE, ptx()?)?;
        let mut b = func.builder();
        b.arg(&x).arg(&mut y).arg(&n);
        // SAFETY: x and y hold n bf16 values, the kernel's extent.
        unsafe { b.launch(elementwise_launch(n)) }.w()?;
        Ok((output(dev, y), layout.shape().clone()))
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

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cpu_refused(self.name())
    }

    fn cuda_fwd(
        &self,
        xs: &CudaStorage,
        xl: &Layout,
        gs: &CudaStorage,
        gl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        if gl.dims() != xl.dims() {
            bail!(
                "gelu backward: gradient {:?} for input {:?}",
                gl.dims(),
                xl.dims()
            );
        }
        let (x, g) = (bf16_view(xs, xl)?, bf16_view(gs, gl)?);
        let n = xl.shape().elem_count();
        let dev = &xs.device;
        let mut dx = dev.alloc_zeros::<bf16>(n)?;
        let func = dev.get_or_load_custom_func("gelu_bwd", MODULE, ptx()?)?;
        let mut b = func.builder();
        b.arg(&x).arg(&g).arg(&mut dx).arg(&n);
        // SAFETY: x, g and dx hold n bf16 values, the kernel's extent.
        unsafe { b.launch(elementwise_launch(n)) }.w()?;
        Ok((output(dev, dx), xl.shape().clone()))
    }
}

/// Each kernel against the composed ops (in f32 where the composed form allows): values and
/// gradients. These need a GPU: `cargo test -p trainer --features cuda cuda_ops` on one.
#[cfg(test)]
mod tests {
    use candle_core::{D, DType, Device, Var};

    use super::*;
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
        let dev = gpu();
        let scores = bf16_var(Tensor::randn(0f32, 3.0, (2, 3, 64, 64), &dev).unwrap());
        let r = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &dev).unwrap();
        let mask = ops::causal_mask(64, DType::F32, &dev).unwrap();
        let x32 = scores.as_tensor().to_dtype(DType::F32).unwrap();
        let reference = ops::causal_softmax(&x32, 0.125, &mask).unwrap();
        let fused = causal_softmax(scores.as_tensor(), 0.125).unwrap();
        assert!(
            gap(&fused, &reference) < 4e-3,
            "{}",
            gap(&fused, &reference)
        );
        let rows = fused.to_dtype(DType::F32).unwrap().sum(D::Minus1).unwrap();
        assert!(gap(&rows, &rows.ones_like().unwrap()) < 1e-2);
        // Row 0 of each head sees only key 0.
        let first = fused.narrow(2, 0, 1).unwrap().narrow(3, 1, 63).unwrap();
        assert_eq!(largest(&first), 0.0);
        let g = grad_of(&fused, &r, scores.as_tensor());
        let x32 = Var::from_tensor(&x32).unwrap();
        let expected = grad_of(
            &ops::causal_softmax(x32.as_tensor(), 0.125, &mask).unwrap(),
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
        let fused = cross_entropy(logits.as_tensor(), &targets).unwrap();
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
                opt.step(&params, &[g.to_device(device).unwrap()], 1e-2)
                    .unwrap();
            }
            params[0].var.as_tensor().to_device(&Device::Cpu).unwrap()
        };
        let (on_gpu, on_cpu) = (run(&dev), run(&Device::Cpu));
        assert!(gap(&on_gpu, &on_cpu) < 1e-5, "{}", gap(&on_gpu, &on_cpu));
        assert!(gap(&on_cpu, &values) > 1e-2, "the steps moved the weights");
    }

    #[test]
    fn out_of_range_targets_give_nan_not_a_read_past_the_row() {
        let dev = gpu();
        let logits = Tensor::zeros((2, 10), DType::BF16, &dev).unwrap();
        let targets = Tensor::new(&[3u32, 10], &dev).unwrap();
        let loss = cross_entropy(&logits, &targets)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((loss[0] - 10f32.ln()).abs() < 1e-5 && loss[1].is_nan());
    }

    #[test]
    fn the_bf16_model_gives_every_parameter_a_finite_nonzero_gradient() {
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
        for p in gpu_model.params() {
            let g = store.get(p.var.as_tensor()).expect(&p.name);
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{}: {norm}", p.name);
        }
    }
}
