// A blocked single-precision GEMM for AVX2/FMA with a per-column scale and bias applied as each
// tile of C is stored, and optionally a product with GELU′ of a second matrix (the input
// gradient of a linear layer that follows a GELU, in one pass).
//
// Layout of the work, per call on one thread: op(B) is packed, KC rows at a time and NC columns
// at a time, into 16-column panels (k-major, zero beyond N), which the 6×16 micro-kernel reads
// with two aligned loads per k; A is not packed: the kernel broadcasts op(A)'s six rows straight
// from memory (contiguous in k without transpose, contiguous across the six rows with it), which
// at the engine's shapes costs less than packing it. For each block of MC rows, every panel of the
// packed block runs over it, so those rows stay in L2 while the panels stream from L2/L3. A tile
// is written once per KC block: the first block applies beta, the last the scale and bias.
#include "ssf_kernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define SSF_MR 6
#define SSF_NR 16
#define SSF_KC 512
#define SSF_MC 48
#define SSF_NC 2048

int ssf_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/// This thread's packing buffer, grown on demand and kept for the thread's life (the engine's
/// worker threads live as long as the process).
static __thread float *ssf_pack_buffer;
static __thread long ssf_pack_capacity;

static float *ssf_pack(long floats) {
    if (floats > ssf_pack_capacity) {
        free(ssf_pack_buffer);
        ssf_pack_buffer = aligned_alloc(64, (size_t)((floats * 4 + 63) / 64 * 64));
        ssf_pack_capacity = ssf_pack_buffer ? floats : 0;
    }
    return ssf_pack_buffer;
}

/// Packs op(B)'s rows p0 ..< p0+kc, columns j0 ..< j0+nc into ⌈nc/16⌉ panels of kc×16 floats,
/// row k scaled by kscale[k] when `kscale` is not NULL (multiplying by one otherwise, which is exact).
__attribute__((target("avx2,fma")))
static void ssf_pack_b(int transB, const float *B, long ldb, long p0, long kc, long j0, long nc, const float *kscale,
                       float *dst) {
#define SSF_KS(k) (kscale ? kscale[p0 + (k)] : 1.0f)
    for (long j = 0; j < nc; j += SSF_NR) {
        long cols = nc - j < SSF_NR ? nc - j : SSF_NR;
        float *d = dst + j * kc;
        if (!transB) {
            const float *s = B + p0 * ldb + j0 + j;
            if (cols == SSF_NR) {
                for (long k = 0; k < kc; k++) {
                    const __m256 f = _mm256_set1_ps(SSF_KS(k));
                    _mm256_store_ps(d + k * SSF_NR, _mm256_mul_ps(f, _mm256_loadu_ps(s + k * ldb)));
                    _mm256_store_ps(d + k * SSF_NR + 8, _mm256_mul_ps(f, _mm256_loadu_ps(s + k * ldb + 8)));
                }
            } else {
                for (long k = 0; k < kc; k++)
                    for (long c = 0; c < SSF_NR; c++) d[k * SSF_NR + c] = c < cols ? SSF_KS(k) * s[k * ldb + c] : 0;
            }
            continue;
        }
        // op(B)(k, j) = B[j·ldb + k]: sixteen rows of B become the panel's columns, in 8×8 tiles.
        const float *s = B + (j0 + j) * ldb + p0;
        long k = 0;
        if (cols == SSF_NR) {
            for (; k + 8 <= kc; k += 8) {
                for (int h = 0; h < 2; h++) {
                    const float *t = s + h * 8 * ldb + k;
                    __m256 r0 = _mm256_loadu_ps(t), r1 = _mm256_loadu_ps(t + ldb), r2 = _mm256_loadu_ps(t + 2 * ldb),
                           r3 = _mm256_loadu_ps(t + 3 * ldb), r4 = _mm256_loadu_ps(t + 4 * ldb), r5 = _mm256_loadu_ps(t + 5 * ldb),
                           r6 = _mm256_loadu_ps(t + 6 * ldb), r7 = _mm256_loadu_ps(t + 7 * ldb);
                    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
                           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    float *o = d + k * SSF_NR + h * 8;
#define SSF_ROW(r, v) _mm256_store_ps(o + (r) * SSF_NR, _mm256_mul_ps(_mm256_set1_ps(SSF_KS(k + (r))), (v)))
                    SSF_ROW(0, _mm256_permute2f128_ps(u0, u4, 0x20));
                    SSF_ROW(1, _mm256_permute2f128_ps(u1, u5, 0x20));
                    SSF_ROW(2, _mm256_permute2f128_ps(u2, u6, 0x20));
                    SSF_ROW(3, _mm256_permute2f128_ps(u3, u7, 0x20));
                    SSF_ROW(4, _mm256_permute2f128_ps(u0, u4, 0x31));
                    SSF_ROW(5, _mm256_permute2f128_ps(u1, u5, 0x31));
                    SSF_ROW(6, _mm256_permute2f128_ps(u2, u6, 0x31));
                    SSF_ROW(7, _mm256_permute2f128_ps(u3, u7, 0x31));
#undef SSF_ROW
                }
            }
        }
        for (; k < kc; k++)
            for (long c = 0; c < SSF_NR; c++) d[k * SSF_NR + c] = c < cols ? SSF_KS(k) * s[c * ldb + k] : 0;
    }
#undef SSF_KS
}

/// What a tile's store does: `first` (this KC block is the first: beta applies) and `last` (the
/// scale and bias apply).
typedef struct {
    float alpha, beta;
    int first, last;
    const float *scale, *bias; // at the tile's first column, or NULL
    const float *aux;          // the elementwise operand at the tile's first element, or NULL
    long ldaux;
} ssf_store_rule;

/// e^x for eight lanes, the engine's `vexp` step for step: x clamped to [−87.34, 88.72], n = round(x/ln 2),
/// a degree-6 polynomial on the remainder, times 2ⁿ; zero below the clamp.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 ssf_exp8(__m256 x) {
    const __m256 lower = _mm256_set1_ps(-87.33654f), magic = _mm256_set1_ps(12582912.0f);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lower), _mm256_set1_ps(88.72283f));
    const __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504f), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.1219444e-4f), r);
    __m256 p = _mm256_set1_ps(1.98756915e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.39819995e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665796e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.66666655e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
    const __m256 two_n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lower, _CMP_LT_OQ), _mm256_mul_ps(p, two_n));
}

/// erf(x) for eight lanes, the engine's `verf`: x·P(x²)/Q(x²) with x clamped to [−4, 4].
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 ssf_erf8(__m256 x0) {
    const __m256 x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

/// GELU′(u) = Φ(u) + u·φ(u) for eight lanes, as the engine's GELU backward computes it.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 ssf_gelu_grad8(__m256 u) {
    const __m256 cdf = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), ssf_erf8(_mm256_mul_ps(u, _mm256_set1_ps(0.7071067811865475f))),
                                       _mm256_set1_ps(0.5f));
    const __m256 e = ssf_exp8(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), u), u));
    return _mm256_fmadd_ps(_mm256_mul_ps(u, _mm256_set1_ps(0.3989422804014327f)), e, cdf);
}

/// Finishes one row of a tile (8 columns per vector; `cols` < 16 only at the right edge).
__attribute__((target("avx2,fma"), always_inline))
static inline void ssf_store_row(float *c, long cols, const ssf_store_rule *r, long row, __m256 x0, __m256 x1) {
    const float *aux = r->aux ? r->aux + row * r->ldaux : NULL;
    if (cols == SSF_NR) {
        const __m256 va = _mm256_set1_ps(r->alpha);
        x0 = _mm256_mul_ps(x0, va); x1 = _mm256_mul_ps(x1, va);
        if (!r->first) {
            x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c)); x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
        } else if (r->beta != 0) {
            const __m256 vb = _mm256_set1_ps(r->beta);
            x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0); x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
        }
        if (r->last) {
            if (r->scale) { x0 = _mm256_mul_ps(x0, _mm256_loadu_ps(r->scale)); x1 = _mm256_mul_ps(x1, _mm256_loadu_ps(r->scale + 8)); }
            if (r->bias) { x0 = _mm256_add_ps(x0, _mm256_loadu_ps(r->bias)); x1 = _mm256_add_ps(x1, _mm256_loadu_ps(r->bias + 8)); }
            if (aux) {
                x0 = _mm256_mul_ps(x0, ssf_gelu_grad8(_mm256_loadu_ps(aux)));
                x1 = _mm256_mul_ps(x1, ssf_gelu_grad8(_mm256_loadu_ps(aux + 8)));
            }
        }
        _mm256_storeu_ps(c, x0); _mm256_storeu_ps(c + 8, x1);
        return;
    }
    float t[SSF_NR], d[SSF_NR] = {0};
    _mm256_storeu_ps(t, x0); _mm256_storeu_ps(t + 8, x1);
    if (r->last && aux) {
        float u[SSF_NR] = {0};
        for (long j = 0; j < cols; j++) u[j] = aux[j];
        _mm256_storeu_ps(d, ssf_gelu_grad8(_mm256_loadu_ps(u)));
        _mm256_storeu_ps(d + 8, ssf_gelu_grad8(_mm256_loadu_ps(u + 8)));
    }
    for (long j = 0; j < cols; j++) {
        float v = r->alpha * t[j];
        if (!r->first) v += c[j];
        else if (r->beta != 0) v += r->beta * c[j];
        if (r->last) {
            if (r->scale) v *= r->scale[j];
            if (r->bias) v += r->bias[j];
            if (aux) v *= d[j];
        }
        c[j] = v;
    }
}

/// One tile: rows (≤ 6) × 16 columns of C from kc steps of the panel (k-major). Without `trans`,
/// op(A)'s rows are `a`, `a + lda`, …, each contiguous in k; with it, op(A)(r, k) = a[k·lda + r],
/// the six rows adjacent at each k. Inlined with constant `rows` and `trans` into the small
/// functions below, so the twelve accumulators and the row pointers stay in registers.
__attribute__((target("avx2,fma"), always_inline))
static inline void ssf_tile(const int rows, const int trans, long kc, const float *a, long lda, const float *panel,
                            float *c, long ldc, long cols, const ssf_store_rule *rule) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (!trans) {
        const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
        for (long k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_load_ps(panel + k * SSF_NR), b1 = _mm256_load_ps(panel + k * SSF_NR + 8);
            __m256 s = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(s, b0, c00); c01 = _mm256_fmadd_ps(s, b1, c01);
            if (rows > 1) { s = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(s, b0, c10); c11 = _mm256_fmadd_ps(s, b1, c11); }
            if (rows > 2) { s = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(s, b0, c20); c21 = _mm256_fmadd_ps(s, b1, c21); }
            if (rows > 3) { s = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(s, b0, c30); c31 = _mm256_fmadd_ps(s, b1, c31); }
            if (rows > 4) { s = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(s, b0, c40); c41 = _mm256_fmadd_ps(s, b1, c41); }
            if (rows > 5) { s = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(s, b0, c50); c51 = _mm256_fmadd_ps(s, b1, c51); }
        }
    } else {
        for (long k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_load_ps(panel), b1 = _mm256_load_ps(panel + 8);
            __m256 s = _mm256_broadcast_ss(a);
            c00 = _mm256_fmadd_ps(s, b0, c00); c01 = _mm256_fmadd_ps(s, b1, c01);
            if (rows > 1) { s = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(s, b0, c10); c11 = _mm256_fmadd_ps(s, b1, c11); }
            if (rows > 2) { s = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(s, b0, c20); c21 = _mm256_fmadd_ps(s, b1, c21); }
            if (rows > 3) { s = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(s, b0, c30); c31 = _mm256_fmadd_ps(s, b1, c31); }
            if (rows > 4) { s = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(s, b0, c40); c41 = _mm256_fmadd_ps(s, b1, c41); }
            if (rows > 5) { s = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(s, b0, c50); c51 = _mm256_fmadd_ps(s, b1, c51); }
            a += lda;
            panel += SSF_NR;
        }
    }
    ssf_store_row(c, cols, rule, 0, c00, c01);
    if (rows > 1) ssf_store_row(c + ldc, cols, rule, 1, c10, c11);
    if (rows > 2) ssf_store_row(c + 2 * ldc, cols, rule, 2, c20, c21);
    if (rows > 3) ssf_store_row(c + 3 * ldc, cols, rule, 3, c30, c31);
    if (rows > 4) ssf_store_row(c + 4 * ldc, cols, rule, 4, c40, c41);
    if (rows > 5) ssf_store_row(c + 5 * ldc, cols, rule, 5, c50, c51);
}

#define SSF_TILE_VARIANT(name, R, T) \
    __attribute__((target("avx2,fma"), noinline)) \
    static void name(long kc, const float *a, long lda, const float *panel, float *c, long ldc, long cols, \
                     const ssf_store_rule *rule) { ssf_tile(R, T, kc, a, lda, panel, c, ldc, cols, rule); }
SSF_TILE_VARIANT(ssf_tile6n, 6, 0)
SSF_TILE_VARIANT(ssf_tile5n, 5, 0)
SSF_TILE_VARIANT(ssf_tile4n, 4, 0)
SSF_TILE_VARIANT(ssf_tile3n, 3, 0)
SSF_TILE_VARIANT(ssf_tile2n, 2, 0)
SSF_TILE_VARIANT(ssf_tile1n, 1, 0)
SSF_TILE_VARIANT(ssf_tile6t, 6, 1)
SSF_TILE_VARIANT(ssf_tile5t, 5, 1)
SSF_TILE_VARIANT(ssf_tile4t, 4, 1)
SSF_TILE_VARIANT(ssf_tile3t, 3, 1)
SSF_TILE_VARIANT(ssf_tile2t, 2, 1)
SSF_TILE_VARIANT(ssf_tile1t, 1, 1)

typedef void (*ssf_tile_fn)(long, const float *, long, const float *, float *, long, long, const ssf_store_rule *);
static const ssf_tile_fn ssf_tiles[2][7] = {
    {NULL, ssf_tile1n, ssf_tile2n, ssf_tile3n, ssf_tile4n, ssf_tile5n, ssf_tile6n},
    {NULL, ssf_tile1t, ssf_tile2t, ssf_tile3t, ssf_tile4t, ssf_tile5t, ssf_tile6t},
};

__attribute__((target("avx2,fma")))
void ssf_gemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb, float beta,
              float *C, long ldc, const float *scale, const float *bias, const float *kscale,
              const float *gelu_input, long ldg) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) {
                float v = beta == 0 ? 0 : beta * C[i * ldc + j];
                if (scale) v *= scale[j];
                if (bias) v += bias[j];
                if (gelu_input) {
                    float u[8] = {gelu_input[i * ldg + j]}, d[8];
                    _mm256_storeu_ps(d, ssf_gelu_grad8(_mm256_loadu_ps(u)));
                    v *= d[0];
                }
                C[i * ldc + j] = v;
            }
        return;
    }
    // op(A)'s element (i, k) is at A + i·rs + k·cs.
    const long rs = transA ? 1 : lda, cs = transA ? lda : 1;
    const ssf_tile_fn *tiles = ssf_tiles[transA ? 1 : 0];
    const long ncMax = N < SSF_NC ? N : SSF_NC, kcMax = K < SSF_KC ? K : SSF_KC;
    float *pack = ssf_pack(kcMax * ((ncMax + SSF_NR - 1) / SSF_NR) * SSF_NR);
    if (!pack) abort();
    for (long jc = 0; jc < N; jc += SSF_NC) {
        const long nc = N - jc < SSF_NC ? N - jc : SSF_NC;
        for (long pc = 0; pc < K; pc += SSF_KC) {
            const long kc = K - pc < SSF_KC ? K - pc : SSF_KC;
            ssf_pack_b(transB, B, ldb, pc, kc, jc, nc, kscale, pack);
            ssf_store_rule rule = {alpha, beta, pc == 0, pc + kc >= K, NULL, NULL, NULL, ldg};
            for (long ic = 0; ic < M; ic += SSF_MC) {
                const long mc = M - ic < SSF_MC ? M - ic : SSF_MC;
                for (long jr = 0; jr < nc; jr += SSF_NR) {
                    const long cols = nc - jr < SSF_NR ? nc - jr : SSF_NR;
                    const float *panel = pack + jr * kc;
                    rule.scale = scale ? scale + jc + jr : NULL;
                    rule.bias = bias ? bias + jc + jr : NULL;
                    for (long ir = 0; ir < mc; ir += SSF_MR) {
                        const long i = ic + ir, rows = mc - ir < SSF_MR ? mc - ir : SSF_MR;
                        rule.aux = gelu_input ? gelu_input + i * ldg + jc + jr : NULL;
                        tiles[rows](kc, A + i * rs + pc * cs, lda, panel, C + i * ldc + jc + jr, ldc, cols, &rule);
                    }
                }
            }
        }
    }
}

#else

int ssf_gemm_available(void) { return 0; }

void ssf_gemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb, float beta,
              float *C, long ldc, const float *scale, const float *bias, const float *kscale,
              const float *gelu_input, long ldg) {
    (void)transA; (void)transB; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc; (void)scale; (void)bias; (void)kscale;
    (void)gelu_input; (void)ldg;
    abort();
}

#endif
