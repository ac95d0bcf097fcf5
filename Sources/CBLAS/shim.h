// BLAS entry points (OpenBLAS's CBLAS on Linux, Accelerate on Apple platforms) and allocator tuning.
#ifndef SSF_CBLAS_SHIM_H
#define SSF_CBLAS_SHIM_H
#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
static inline void ssf_blas_set_threads(int n) { (void)n; }
static inline int ssf_blas_get_threads(void) { return 1; }
static inline void ssf_keep_freed_memory(void) {}
static inline void ssf_release_freed_memory(void) {}
static inline const char *ssf_blas_core_name(void) { return "Accelerate"; }
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
#endif
#endif
