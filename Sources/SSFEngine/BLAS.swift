// Row-major single-precision GEMM through the system BLAS.
import CBLAS

/// Thin wrappers over CBLAS `sgemm` in row-major order.
public enum BLAS {
    /// C = alpha · op(A) · op(B) + beta · C, with op(X) = Xᵀ when the flag is set.
    /// A is M×K (K×M if transposed), B is K×N (N×K if transposed), C is M×N; leading
    /// dimensions are row strides.
    @inlinable public static func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// The kernel set the BLAS library uses on this CPU (OpenBLAS's core name, e.g. "Haswell";
    /// `OPENBLAS_CORETYPE` overrides OpenBLAS's own choice).
    public static var coreName: String { String(cString: ssf_blas_core_name()) }
}
