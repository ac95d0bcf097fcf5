// BLAS entry points: OpenBLAS's CBLAS on Linux, Accelerate on Apple platforms.
#ifndef SSF_CBLAS_SHIM_H
#define SSF_CBLAS_SHIM_H
#if defined(__APPLE__)
#include <Accelerate/Accelerate.h>
static inline void ssf_blas_set_threads(int n) { (void)n; }
static inline int ssf_blas_get_threads(void) { return 1; }
#else
#include <cblas.h>
static inline void ssf_blas_set_threads(int n) { openblas_set_num_threads(n); }
static inline int ssf_blas_get_threads(void) { return openblas_get_num_threads(); }
#endif
#endif
