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
