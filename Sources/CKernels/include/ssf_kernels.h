// Single-precision matrix products with the engine's epilogues, for x86-64 with AVX2 and FMA.
#ifndef SSF_KERNELS_H
#define SSF_KERNELS_H

/// Whether this build has the kernels (x86-64) and this CPU runs them (AVX2 and FMA).
int ssf_gemm_available(void);

/// C (M×N, row-major, row stride ldc) = ((alpha·op(A)·diag(kscale)·op(B) + beta·C) ⊙ scale + bias)
/// ⊙ GELU′(U), on the calling thread. op(A)(i, k) = transA ? A[k·lda + i] : A[i·lda + k];
/// op(B)(k, j) = transB ? B[j·ldb + k] : B[k·ldb + j]. `scale` and `bias` (N floats each, per
/// column) may be NULL: no scaling, no bias. `kscale` (K floats, or NULL) scales op(B)'s row k as
/// it is packed, so a per-channel scale on the inner dimension costs nothing either. `gelu_input`
/// (U: M×N, row stride ldg, or NULL: no such factor) is the input of a GELU whose output's
/// gradient the product is: C is then the gradient of U (GELU′ by the engine's exact-erf formula).
/// With beta 0, C is only written (never read). The epilogue is applied in registers as each
/// block of C is finished, so it costs no pass over C of its own.
void ssf_gemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb, float beta,
              float *C, long ldc, const float *scale, const float *bias, const float *kscale,
              const float *gelu_input, long ldg);

#endif
