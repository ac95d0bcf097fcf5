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
