// BLAS entry points (OpenBLAS's CBLAS on Linux, Accelerate on Apple platforms) and allocator tuning.
#ifndef SSF_CBLAS_SHIM_H
#define SSF_CBLAS_SHIM_H
/// Asks the cache for the line holding `p` (for reading / for writing); no effect on results.
static inline void ssf_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
static inline void ssf_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
#if defined(__x86_64__)
#include <xmmintrin.h>
/// Sets this thread's SSE control register to flush denormal results to zero (FTZ): on Intel cores
/// every instruction that produces one otherwise takes a microcode assist of a hundred cycles or
/// more, and so does every later one that reads it. Denormal inputs are still read as they are (no
/// DAZ): converting a subnormal half-precision value, for one, must not give 0.
static inline void ssf_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8000); }
/// Whether this thread flushes denormal results (FTZ set).
static inline int ssf_flushes_denormals(void) { return (_mm_getcsr() & 0x8000) == 0x8000; }
#else
static inline void ssf_flush_denormals(void) {}
static inline int ssf_flushes_denormals(void) { return 0; }
#endif
/// dst[c·dstLD + r] = src[r·srcLD + c] for r < rows, c < cols: a 2-D transpose, in 8×8 tiles with
/// AVX shuffles where the CPU has them (x86-64; the engine's Swift code requires AVX2 anyway).
#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2")))
static inline void ssf_transpose_tile8(const float *src, long srcLD, float *dst, long dstLD) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + srcLD), r2 = _mm256_loadu_ps(src + 2 * srcLD),
           r3 = _mm256_loadu_ps(src + 3 * srcLD), r4 = _mm256_loadu_ps(src + 4 * srcLD), r5 = _mm256_loadu_ps(src + 5 * srcLD),
           r6 = _mm256_loadu_ps(src + 6 * srcLD), r7 = _mm256_loadu_ps(src + 7 * srcLD);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
           u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + dstLD, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dstLD, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dstLD, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dstLD, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dstLD, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dstLD, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dstLD, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#define SSF_HAS_TILE8 1
// Products of attention's per-head matrices (197×197×64 for ViT-B/16) on one thread. At these
// sizes a BLAS call's own packing of both operands and its dispatch cost a sixth of its time: here
// op(B) is packed once into 16-column panels, A is read in place, and each 6×16 tile of C
// accumulates in 12 registers.
/// Stores one row of a tile: c[j] = alpha·x[j] + beta·c[j] for j < cols (c only written when beta is 0).
__attribute__((target("avx2,fma"), always_inline))
static inline void ssf_small_store(float *c, long cols, float alpha, float beta, __m256 x0, __m256 x1) {
    const __m256 va = _mm256_set1_ps(alpha);
    x0 = _mm256_mul_ps(x0, va); x1 = _mm256_mul_ps(x1, va);
    if (cols == 16) {
        if (beta != 0) {
            const __m256 vb = _mm256_set1_ps(beta);
            x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0);
            x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
        }
        _mm256_storeu_ps(c, x0); _mm256_storeu_ps(c + 8, x1);
    } else {
        float t[16];
        _mm256_storeu_ps(t, x0); _mm256_storeu_ps(t + 8, x1);
        for (long j = 0; j < cols; j++) c[j] = beta != 0 ? t[j] + beta * c[j] : t[j];
    }
}
/// One tile of C (rows ≤ 6, 16 columns): C = alpha·Σ_k a(r, k)·panel[k·16 + j] + beta·C, where
/// a(r, k) = a[r·rs + k·cs]. Columns past `cols` are computed (on the panel's zero padding) but
/// not stored. Inlined with a constant `rows`, so the 12 accumulators stay in registers.
__attribute__((target("avx2,fma"), always_inline))
static inline void ssf_small_tile(const int rows, long K, const float *a, long rs, long cs, const float *panel,
                                  float alpha, float beta, float *c, long ldc, long cols) {
    // Named accumulators (an array of them would be kept on the stack).
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs, *a5 = a + 5 * rs;
    for (long k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(panel + k * 16), b1 = _mm256_loadu_ps(panel + k * 16 + 8);
        const long o = k * cs;
        __m256 s = _mm256_broadcast_ss(a + o);
        c00 = _mm256_fmadd_ps(s, b0, c00); c01 = _mm256_fmadd_ps(s, b1, c01);
        if (rows > 1) { s = _mm256_broadcast_ss(a1 + o); c10 = _mm256_fmadd_ps(s, b0, c10); c11 = _mm256_fmadd_ps(s, b1, c11); }
        if (rows > 2) { s = _mm256_broadcast_ss(a2 + o); c20 = _mm256_fmadd_ps(s, b0, c20); c21 = _mm256_fmadd_ps(s, b1, c21); }
        if (rows > 3) { s = _mm256_broadcast_ss(a3 + o); c30 = _mm256_fmadd_ps(s, b0, c30); c31 = _mm256_fmadd_ps(s, b1, c31); }
        if (rows > 4) { s = _mm256_broadcast_ss(a4 + o); c40 = _mm256_fmadd_ps(s, b0, c40); c41 = _mm256_fmadd_ps(s, b1, c41); }
        if (rows > 5) { s = _mm256_broadcast_ss(a5 + o); c50 = _mm256_fmadd_ps(s, b0, c50); c51 = _mm256_fmadd_ps(s, b1, c51); }
    }
    ssf_small_store(c, cols, alpha, beta, c00, c01);
    if (rows > 1) ssf_small_store(c + ldc, cols, alpha, beta, c10, c11);
    if (rows > 2) ssf_small_store(c + 2 * ldc, cols, alpha, beta, c20, c21);
    if (rows > 3) ssf_small_store(c + 3 * ldc, cols, alpha, beta, c30, c31);
    if (rows > 4) ssf_small_store(c + 4 * ldc, cols, alpha, beta, c40, c41);
    if (rows > 5) ssf_small_store(c + 5 * ldc, cols, alpha, beta, c50, c51);
}

/// C (M×N, row-major, ldc) = alpha·op(A)·op(B) + beta·C on one thread, for the products inside
/// attention: op(A)(i, k) = transA ? A[k·lda + i] : A[i·lda + k], op(B)(k, j) = transB ? B[j·ldb + k]
/// : B[k·ldb + j]. op(B) is packed into 16-column panels in `pack` (at least K·⌈N/16⌉·16 floats); A
/// is read in place. With beta 0, C is only written.
__attribute__((target("avx2,fma")))
static inline void ssf_small_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                                   const float *A, long lda, const float *B, long ldb, float beta,
                                   float *C, long ldc, float *pack) {
    long panels = (N + 15) / 16;
    for (long p = 0; p < panels; p++) {
        float *d = pack + p * K * 16;
        long j0 = p * 16, cols = N - j0 < 16 ? N - j0 : 16;
        if (!transB) {
            for (long k = 0; k < K; k++) {
                const float *src = B + k * ldb + j0;
                if (cols == 16) {
                    _mm256_storeu_ps(d + k * 16, _mm256_loadu_ps(src));
                    _mm256_storeu_ps(d + k * 16 + 8, _mm256_loadu_ps(src + 8));
                } else {
                    for (long j = 0; j < 16; j++) d[k * 16 + j] = j < cols ? src[j] : 0;
                }
            }
        } else {
            for (long j = 0; j < 16; j++) {
                if (j < cols) {
                    const float *src = B + (j0 + j) * ldb;
                    for (long k = 0; k < K; k++) d[k * 16 + j] = src[k];
                } else {
                    for (long k = 0; k < K; k++) d[k * 16 + j] = 0;
                }
            }
        }
    }
    long rs = transA ? 1 : lda, cs = transA ? lda : 1;
    for (long p = 0; p < panels; p++) {
        const float *panel = pack + p * K * 16;
        long j0 = p * 16, cols = N - j0 < 16 ? N - j0 : 16;
        long i = 0;
        for (; i + 6 <= M; i += 6) ssf_small_tile(6, K, A + i * rs, rs, cs, panel, alpha, beta, C + i * ldc + j0, ldc, cols);
        const float *a = A + i * rs;
        float *c = C + i * ldc + j0;
        switch (M - i) {
            case 5: ssf_small_tile(5, K, a, rs, cs, panel, alpha, beta, c, ldc, cols); break;
            case 4: ssf_small_tile(4, K, a, rs, cs, panel, alpha, beta, c, ldc, cols); break;
            case 3: ssf_small_tile(3, K, a, rs, cs, panel, alpha, beta, c, ldc, cols); break;
            case 2: ssf_small_tile(2, K, a, rs, cs, panel, alpha, beta, c, ldc, cols); break;
            case 1: ssf_small_tile(1, K, a, rs, cs, panel, alpha, beta, c, ldc, cols); break;
            default: break;
        }
    }
}
#define SSF_HAS_SMALL_SGEMM 1
#endif
#if defined(__x86_64__)
/// The core's peak FMA rate, for `ssf bench ops`: `iterations` rounds of 12 independent 8-lane FMA
/// chains a <- 0.999·a + 1e-4 (192 FLOP a round; each chain tends to 0.1). Written in assembly so
/// the compiler cannot merge or shorten the chains; returns a lane of their sum so the caller has a
/// result to keep (and a test something to check). 0 without AVX2/FMA.
__attribute__((target("avx2,fma")))
static inline float ssf_fma_peak_avx2(long iterations) {
    __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-4f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3),
           a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7),
           a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    for (long k = 0; k < iterations; k++) {
        __asm__ volatile(
            "vfmadd213ps %13, %12, %0\n\tvfmadd213ps %13, %12, %1\n\tvfmadd213ps %13, %12, %2\n\t"
            "vfmadd213ps %13, %12, %3\n\tvfmadd213ps %13, %12, %4\n\tvfmadd213ps %13, %12, %5\n\t"
            "vfmadd213ps %13, %12, %6\n\tvfmadd213ps %13, %12, %7\n\tvfmadd213ps %13, %12, %8\n\t"
            "vfmadd213ps %13, %12, %9\n\tvfmadd213ps %13, %12, %10\n\tvfmadd213ps %13, %12, %11"
            : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
              "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11)
            : "x"(x), "x"(y));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    return _mm256_cvtss_f32(s);
}
static inline float ssf_fma_peak(long iterations) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    return ssf_fma_peak_avx2(iterations);
}
#else
static inline float ssf_fma_peak(long iterations) { (void)iterations; return 0; }
#endif
static inline void ssf_transpose(const float *src, long rows, long cols, long srcLD, float *dst, long dstLD) {
    long c0 = 0;
#if defined(SSF_HAS_TILE8)
    // Strips of 8 columns; within a strip the 8×8 tiles run down the rows, so the source lines a
    // strip reads are read again by the next strip while they are still in L1.
    for (; c0 + 8 <= cols; c0 += 8) {
        long r = 0;
        for (; r + 8 <= rows; r += 8) ssf_transpose_tile8(src + r * srcLD + c0, srcLD, dst + c0 * dstLD + r, dstLD);
        for (; r < rows; r++)
            for (long c = c0; c < c0 + 8; c++) dst[c * dstLD + r] = src[r * srcLD + c];
    }
#endif
    for (long r = 0; r < rows; r++)
        for (long c = c0; c < cols; c++) dst[c * dstLD + r] = src[r * srcLD + c];
}
#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
static inline void ssf_blas_set_threads(int n) { (void)n; }
static inline int ssf_blas_get_threads(void) { return 1; }
static inline void ssf_keep_freed_memory(void) {}
static inline void ssf_release_freed_memory(void) {}
static inline const char *ssf_blas_core_name(void) { return "Accelerate"; }
static inline int ssf_cpu_vector_level(void) { return 0; }
#else
#include <cblas.h>
#include <malloc.h>
/// Serve large allocations from the heap and keep freed memory for reuse (no mmap/munmap per tensor).
static inline void ssf_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
/// Returns the heap's free memory to the system.
static inline void ssf_release_freed_memory(void) { malloc_trim(0); }
static inline void ssf_blas_set_threads(int n) { openblas_set_num_threads(n); }
static inline int ssf_blas_get_threads(void) { return openblas_get_num_threads(); }
/// The kernel set OpenBLAS selected for this CPU (e.g. "Haswell", "SkylakeX").
static inline const char *ssf_blas_core_name(void) { return openblas_get_corename(); }
#if defined(__x86_64__)
/// The widest x86 vector level this CPU runs: 2 = AVX-512 (F, BW, DQ, VL), 1 = AVX2 with FMA, 0 = older.
static inline int ssf_cpu_vector_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}
#else
static inline int ssf_cpu_vector_level(void) { return 0; }
#endif
#if defined(__linux__)
#include <stddef.h>
/// glibc's mremap, declared here so the shim does not depend on _GNU_SOURCE being set.
extern void *ssf_mremap_raw(void *old_address, size_t old_size, size_t new_size, int flags, ...) __asm__("mremap");
/// Resizes an anonymous mapping, moving it if needed (MREMAP_MAYMOVE); the pages it keeps stay
/// resident. NULL on failure.
static inline void *ssf_remap(void *p, size_t old_size, size_t new_size) {
    void *q = ssf_mremap_raw(p, old_size, new_size, 1);
    return q == (void *)-1 ? (void *)0 : q;
}
#endif
#endif
#endif
