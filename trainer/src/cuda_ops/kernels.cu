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

// Causal softmax rows of up to 32 * CACHED_ROW values are held in registers (each lane's
// columns j = lane + 32 * k): one read of the row from memory instead of three.
#define CACHED_ROW 32

// One warp per row of `cols` scores. Row r holds the scores of query r % cols, which sees keys
// 0..=r % cols: y = softmax(scale * x) over those, 0 after them. Only those are read.
extern "C" __global__ void causal_softmax_fwd(const bf16_t* x, bf16_t* y, int rows, int cols, float scale) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int last = row % cols;
    const bf16_t* xr = x + (size_t)row * cols;
    bf16_t* yr = y + (size_t)row * cols;
    const float neg_inf = __int_as_float(0xff800000);
    if (cols <= 32 * CACHED_ROW) {
        float v[CACHED_ROW];
        float m = neg_inf;
#pragma unroll
        for (int k = 0; k < CACHED_ROW; k++) {
            int j = lane + 32 * k;
            v[k] = j <= last ? load(xr[j]) * scale : neg_inf;
            m = fmaxf(m, v[k]);
        }
        m = warp_max(m);
        float s = 0.f;
#pragma unroll
        for (int k = 0; k < CACHED_ROW; k++) {
            int j = lane + 32 * k;
            v[k] = j <= last ? expf(v[k] - m) : 0.f;
            s += v[k];
        }
        float inv = 1.f / warp_sum(s);
#pragma unroll
        for (int k = 0; k < CACHED_ROW; k++) {
            int j = lane + 32 * k;
            if (j < cols) yr[j] = store(v[k] * inv);
        }
        return;
    }
    float m = neg_inf;
    for (int j = lane; j <= last; j += 32) m = fmaxf(m, load(xr[j]) * scale);
    m = warp_max(m);
    float s = 0.f;
    for (int j = lane; j <= last; j += 32) s += expf(load(xr[j]) * scale - m);
    float inv = 1.f / warp_sum(s);
    for (int j = lane; j < cols; j += 32)
        yr[j] = store(j <= last ? expf(load(xr[j]) * scale - m) * inv : 0.f);
}

// dx = scale * y * (g - sum(g * y)) per row; masked entries (y = 0) get 0 and are not read.
extern "C" __global__ void causal_softmax_bwd(const bf16_t* y, const bf16_t* g, bf16_t* dx, int rows, int cols, float scale) {
    int row = (int)((blockIdx.x * (unsigned)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    int last = row % cols;
    size_t base = (size_t)row * cols;
    if (cols <= 32 * CACHED_ROW) {
        float yv[CACHED_ROW], gv[CACHED_ROW];
        float d = 0.f;
#pragma unroll
        for (int k = 0; k < CACHED_ROW; k++) {
            int j = lane + 32 * k;
            yv[k] = j <= last ? load(y[base + j]) : 0.f;
            gv[k] = j <= last ? load(g[base + j]) : 0.f;
            d += yv[k] * gv[k];
        }
        d = warp_sum(d);
#pragma unroll
        for (int k = 0; k < CACHED_ROW; k++) {
            int j = lane + 32 * k;
            if (j < cols) dx[base + j] = store(j <= last ? scale * yv[k] * (gv[k] - d) : 0.f);
        }
        return;
    }
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
// (d <= 32 * 32; the loops over a lane's columns are unrolled so that the sums stay in
// registers), then the block adds its warps in order through shared memory (warps * 2 * d
// floats): no atomics, so the sums do not depend on scheduling.
extern "C" __global__ void layer_norm_bwd_wb(const bf16_t* x, const bf16_t* g, float* partial, int rows, int d, float eps) {
    extern __shared__ float acc[];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float aw[32], ab[32];
#pragma unroll
    for (int k = 0; k < 32; k++) { aw[k] = 0.f; ab[k] = 0.f; }
    for (int row = blockIdx.x * warps + warp; row < rows; row += gridDim.x * warps) {
        size_t base = (size_t)row * d;
        float m, r;
        row_stats(x + base, d, eps, &m, &r);
#pragma unroll
        for (int k = 0; k < 32; k++) {
            int j = lane + 32 * k;
            if (j < d) {
                float gv = load(g[base + j]);
                aw[k] += gv * (load(x[base + j]) - m) * r;
                ab[k] += gv;
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 32; k++) {
        int j = lane + 32 * k;
        if (j < d) {
            acc[warp * 2 * d + j] = aw[k];
            acc[warp * 2 * d + d + j] = ab[k];
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < 2 * d; j += blockDim.x) {
        float s = 0.f;
        for (int w = 0; w < warps; w++) s += acc[w * 2 * d + j];
        partial[(size_t)blockIdx.x * 2 * d + j] = s;
    }
}

// Attention's heads, moved as 16-byte vectors (8 bf16; `hv` = head width / 8). `heads_split`:
// src [B*T, parts * heads * head width] (row b*T+s holds part p's head h at vector column
// (p * heads + h) * hv) to dst [parts, B, heads, T, head width].
extern "C" __global__ void heads_split(const bf16_t* src, bf16_t* dst, int batch, int t, int heads, int hv, int parts) {
    const uint4* from = (const uint4*)src;
    uint4* to = (uint4*)dst;
    int n = parts * batch * heads * t * hv;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int c = i % hv, r = i / hv;
        int s = r % t; r /= t;
        int h = r % heads; r /= heads;
        int b = r % batch, p = r / batch;
        to[i] = from[((size_t)(b * t + s) * parts + p) * heads * hv + h * hv + c];
    }
}

// The inverse of `heads_split` for part p: src [B, heads, T, head width] to part p's columns of
// dst [B*T, parts * heads * head width].
extern "C" __global__ void heads_merge(const bf16_t* src, bf16_t* dst, int batch, int t, int heads, int hv, int parts, int p) {
    const uint4* from = (const uint4*)src;
    uint4* to = (uint4*)dst;
    int n = batch * heads * t * hv;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int c = i % hv, r = i / hv;
        int s = r % t; r /= t;
        int h = r % heads, b = r / heads;
        to[((size_t)(b * t + s) * parts + p) * heads * hv + h * hv + c] = from[i];
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

// y = x + b row by row (rows × cols; b is f32): blocks stride over rows, threads over columns.
extern "C" __global__ void bias_add_fwd(const bf16_t* x, const float* b, bf16_t* y, int rows, int cols) {
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        size_t base = (size_t)r * cols;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) y[base + j] = store(load(x[base + j]) + b[j]);
    }
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

// Sum of squares of n f32 values, in f64: block b writes its share to partial[b]. The grid is
// fixed by the caller, so the sum is the same on every run.
extern "C" __global__ void sum_squares(const float* g, size_t n, double* partial) {
    __shared__ double warps[32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        double v = g[i];
        s += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += warps[w];
        partial[blockIdx.x] = t;
    }
}

// Gradient of an embedding table (zeroed by the caller): block s sums the rows of g at positions
// order[starts[s] .. starts[s + 1]], in that order, into row tokens[s].
extern "C" __global__ void embedding_bwd(const float* g, const unsigned int* order, const unsigned int* starts, const unsigned int* tokens, float* table, int width) {
    unsigned int a = starts[blockIdx.x], e = starts[blockIdx.x + 1];
    float* row = table + (size_t)tokens[blockIdx.x] * width;
    for (int c = threadIdx.x; c < width; c += blockDim.x) {
        float acc = 0.f;
        for (unsigned int i = a; i < e; i++) acc += g[(size_t)order[i] * width + c];
        row[c] = acc;
    }
}

// AdamW, in place: a moment m = beta * m + (1 - beta) * x, x being the gradient times `scale`
// (the clipping factor), squared when `square`.
extern "C" __global__ void adam_moment(float* m, const float* g, size_t n, float beta, int square, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = square ? (g[i] * scale) * (g[i] * scale) : g[i] * scale;
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
