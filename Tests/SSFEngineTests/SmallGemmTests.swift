// The one-thread kernel behind attention's per-head products must give what BLAS gives, for
// every transpose, ragged edges in rows and columns, strided operands, alpha and beta.
import XCTest
@testable import SSFEngine

final class SmallGemmTests: XCTestCase {
    func testSmallProductsMatchBLAS() {
        var rng = RandomGenerator(seed: 29)
        // (m, n, k): whole 6×16 tiles, ragged rows and columns, ViT-B's head shapes, tiny and empty K.
        let shapes = [(12, 32, 8), (7, 17, 5), (197, 197, 64), (197, 64, 197), (1, 1, 1), (5, 3, 0), (6, 16, 33)]
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.125, 0), (0.5, 1), (2, -0.75)] {
                        // Row strides wider than the matrices, as attention's heads are read in place.
                        let lda = (transposeA ? m : k) + 3, ldb = (transposeB ? k : n) + 5, ldc = n + 2
                        let a = Tensor.randomNormal([(transposeA ? k : m) * lda + 1], using: &rng)
                        let b = Tensor.randomNormal([(transposeB ? n : k) * ldb + 1], using: &rng)
                        let c0 = Tensor.randomNormal([m * ldc], using: &rng)
                        var ours = c0, theirs = c0
                        let pack = UnsafeMutablePointer<Float>.allocate(capacity: max(1, BLAS.smallPackCount(n: n, k: k)))
                        defer { pack.deallocate() }
                        BLAS.smallSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                        a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: beta,
                                        c: ours.mutablePointer(), ldc: ldc, pack: pack)
                        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                   a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: beta,
                                   c: theirs.mutablePointer(), ldc: ldc)
                        let label = "m \(m) n \(n) k \(k) transA \(transposeA) transB \(transposeB) alpha \(alpha) beta \(beta)"
                        // Padding columns of C are never touched.
                        let worst = worstGemmGap(ours.scalars, theirs.scalars, before: c0.scalars, m: m, n: n, ldc: ldc, label: label)
                        XCTAssertLessThan(worst, 1e-5 * Float(max(k, 1)).squareRoot(), label)
                    }
                }
            }
        }
    }

    /// ViT-style attention (tokens past the window kernels' 56) gives the same outputs and input
    /// gradients with its per-head products on the small kernel as on BLAS.
    func testAttentionOnTheSmallKernelMatchesBLAS() {
        var rng = RandomGenerator(seed: 31)
        let qkv = Tensor.randomNormal([2, 61, 3 * 3 * 64], using: &rng)
        let seed = Tensor.randomNormal([2, 61, 3 * 64], using: &rng)
        func run(small: Bool) -> (Tensor, Tensor) {
            let previous = BLAS.smallKernelEnabled
            BLAS.smallKernelEnabled = small
            defer { BLAS.smallKernelEnabled = previous }
            let tape = Tape()
            let x = tape.watch(qkv)
            let y = tape.recording { scaledDotProductAttention(qkv: x, heads: 3) }
            let grads = tape.backward(from: y, seed: seed)
            return (y, grads[x]!)
        }
        let (ySmall, gSmall) = run(small: true), (yBLAS, gBLAS) = run(small: false)
        XCTAssertEqual(ySmall.shape, yBLAS.shape)
        for (ours, theirs, what) in [(ySmall, yBLAS, "output"), (gSmall, gBLAS, "qkv gradient")] {
            let worst = zip(ours.scalars, theirs.scalars).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, what)
        }
    }
}
