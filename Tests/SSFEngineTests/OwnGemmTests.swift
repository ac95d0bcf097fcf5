// The engine's blocked GEMM (`ssf_gemm`), its fused per-column epilogue and inner-dimension scale, through `BLAS.sgemm`,
// against a double-precision reference; and the same calls with the kernel off (BLAS plus the
// epilogue's pass), so both routes are held to the same answer.
import XCTest
@testable import SSFEngine

final class OwnGemmTests: XCTestCase {
    private func reference(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                           _ a: [Float], _ lda: Int, _ b: [Float], _ ldb: Int, _ beta: Float, _ c: [Float], _ ldc: Int,
                           _ scale: [Float]?, _ bias: [Float]?, _ inner: [Float]?) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(x) * Double(y) * Double(inner?[p] ?? 1)
                }
                var v = Double(alpha) * acc + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j]))
                if let scale { v *= Double(scale[j]) }
                if let bias { v += Double(bias[j]) }
                out[i * ldc + j] = Float(v)
            }
        }
        return out
    }

    func testProductsAndEpiloguesMatchTheReferenceOnBothRoutes() throws {
        #if !arch(x86_64)
        throw XCTSkip("the engine's GEMM kernel is written for x86-64 (AVX2/FMA); elsewhere every product is a BLAS call")
        #else
        var rng = RandomGenerator(seed: 41)
        // (m, n, k): whole and ragged 6×16 tiles; K past one 512-deep block; N past one 2048-wide
        // block and split by columns across threads; M split by rows; empty K.
        let shapes = [(12, 32, 8), (7, 17, 5), (49, 33, 130), (13, 40, 1100), (70, 2100, 600), (300, 96, 130), (5, 3, 0)]
        var checked = 0
        for (m, n, k) in shapes {
            for (transposeA, transposeB) in [(false, true), (false, false), (true, false), (true, true)] {
                // Epilogue bits: 1 column bias, 2 column scale, 4 inner-dimension scale.
                for (alpha, beta, epilogue) in [(Float(1), Float(0), 0), (1, 0, 1), (0.5, 1, 6), (2, -0.75, 7)] {
                    let lda = (transposeA ? m : k) + 3, ldb = (transposeB ? k : n) + 5, ldc = n + 2
                    let a = Tensor.randomNormal([max(1, (transposeA ? k : m) * lda)], using: &rng).scalars
                    let b = Tensor.randomNormal([max(1, (transposeB ? n : k) * ldb)], using: &rng).scalars
                    let c0 = Tensor.randomNormal([m * ldc], using: &rng).scalars
                    let scale: [Float]? = epilogue & 2 != 0 ? Tensor.randomNormal([n], using: &rng).scalars : nil
                    let bias: [Float]? = epilogue & 1 != 0 ? Tensor.randomNormal([n], using: &rng).scalars : nil
                    let inner: [Float]? = epilogue & 4 != 0 ? Tensor.randomNormal([k], using: &rng).scalars : nil
                    let expected = reference(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc, scale, bias, inner)
                    for own in [true, false] {
                        let previous = BLAS.ownKernelEnabled
                        BLAS.ownKernelEnabled = own
                        defer { BLAS.ownKernelEnabled = previous }
                        var c = c0
                        a.withUnsafeBufferPointer { ap in
                            b.withUnsafeBufferPointer { bp in
                                c.withUnsafeMutableBufferPointer { cp in
                                    let sp = scale?.withUnsafeBufferPointer { $0.baseAddress! }
                                    let hp = bias?.withUnsafeBufferPointer { $0.baseAddress! }
                                    let ip = inner?.withUnsafeBufferPointer { $0.baseAddress! }
                                    withExtendedLifetime((scale, bias, inner)) {
                                        BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                                   a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb, beta: beta,
                                                   c: cp.baseAddress!, ldc: ldc, columnScale: sp, columnBias: hp, innerScale: ip)
                                    }
                                }
                            }
                        }
                        let label = "m \(m) n \(n) k \(k) transA \(transposeA) transB \(transposeB) alpha \(alpha) beta \(beta) epilogue \(epilogue) own kernel \(own)"
                        let worst = worstGemmGap(c, expected, before: c0, m: m, n: n, ldc: ldc, label: label)
                        XCTAssertLessThan(worst, 1e-5 * Float(max(k, 1)).squareRoot(), label)
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, shapes.count * 4 * 4 * 2)
        #endif
    }

    /// Which products the kernel takes: op(A) untransposed and K or N at most 512; ViT-B's larger
    /// projections and every weight gradient (op(A) = gᵀ) stay with BLAS.
    func testRouting() throws {
        guard BLAS.ownKernelEnabled else { throw XCTSkip("the engine's GEMM kernel is off here (no AVX2/FMA, or SSF_GEMM=blas)") }
        XCTAssertTrue(BLAS.ownKernelApplies(transposeA: false, n: 384, k: 128))
        XCTAssertTrue(BLAS.ownKernelApplies(transposeA: false, n: 2048, k: 512))
        XCTAssertFalse(BLAS.ownKernelApplies(transposeA: false, n: 3072, k: 768))
        XCTAssertFalse(BLAS.ownKernelApplies(transposeA: true, n: 128, k: 128))
    }

    /// A linear layer's output and gradients are the same with its bias fused into the kernel's
    /// stores as with the bias rows written before a BLAS product.
    func testLinearWithTheFusedBiasMatchesBLAS() {
        var rng = RandomGenerator(seed: 43)
        let x = Tensor.randomNormal([3, 37, 96], using: &rng)
        let w = Tensor.randomNormal([200, 96], using: &rng), bias = Tensor.randomNormal([200], using: &rng)
        let seed = Tensor.randomNormal([3, 37, 200], using: &rng)
        func run(own: Bool) -> [Tensor] {
            let previous = BLAS.ownKernelEnabled
            BLAS.ownKernelEnabled = own
            defer { BLAS.ownKernelEnabled = previous }
            let tape = Tape()
            let (tx, tw, tb) = (tape.watch(x), tape.watch(w), tape.watch(bias))
            let y = tape.recording { linear(tx, weight: tw, bias: tb) }
            let g = tape.backward(from: y, seed: seed)
            return [y, g[tx]!, g[tw]!, g[tb]!]
        }
        let ours = run(own: true), theirs = run(own: false)
        for (o, t, what) in zip(zip(ours, theirs), ["output", "input gradient", "weight gradient", "bias gradient"]).map({ ($0.0, $0.1, $1) }) {
            XCTAssertEqual(o.shape, t.shape, what)
            let worst = zip(o.scalars, t.scalars).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, what)
        }
    }
}
