// The GEMM recorder behind `ssf bench model --roof`'s replay of a model's own matrix products, and
// the bias-gradient column sums.
import XCTest
@testable import SSFEngine

final class GemmRecorderTests: XCTestCase {
    func testRecordsALinearLayersProductWithItsOperands() {
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomNormal([2, 5, 7], using: &rng), w = Tensor.randomNormal([3, 7], using: &rng)
        let b = Tensor.randomNormal([3], using: &rng)
        var out: Tensor?
        let calls = GemmRecorder.record { out = linear(x, weight: w, bias: b) }
        XCTAssertEqual(out?.shape, [2, 5, 3])
        XCTAssertEqual(calls.count, 1)
        let call = calls[0]
        XCTAssertEqual([call.m, call.n, call.k, call.lda, call.ldb, call.ldc], [10, 3, 7, 7, 7, 3])
        XCTAssertFalse(call.transposeA)
        XCTAssertTrue(call.transposeB)
        XCTAssertEqual(call.beta, 0, "the bias is the product's epilogue, not a C operand filled beforehand")
        XCTAssertEqual(call.b, UInt(bitPattern: w.pointer), "B is the weight itself")
        XCTAssertEqual(call.a, UInt(bitPattern: x.pointer))
        XCTAssertEqual(call.flops, 2 * 10 * 3 * 7)
        XCTAssertEqual([call.aExtent, call.bExtent, call.cExtent], [70, 21, 30])
        // Nothing is recorded outside `record`, and a second recording starts empty.
        _ = linear(x, weight: w)
        XCTAssertEqual(GemmRecorder.record {}.count, 0)
    }

    func testRecordsTheBackwardProductsOfATrainableLayer() {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([6, 4], using: &rng), w = Tensor.randomNormal([5, 4], using: &rng)
        let calls = GemmRecorder.record {
            let tape = Tape()
            let ww = tape.watch(w)
            let loss = tape.recording { linear(x, weight: ww).sum() }
            _ = tape.backward(from: loss)
        }
        // Forward x·Wᵀ, then dW = gᵀ·x (x is untracked, so no input gradient).
        XCTAssertEqual(calls.map { [$0.m, $0.n, $0.k] }, [[6, 5, 4], [5, 4, 6]])
        XCTAssertEqual(calls.map(\.transposeA), [false, true])
    }

    func testAttentionsPerHeadProductsAreLeftOut() {
        var rng = RandomGenerator(seed: 6)
        // 20 tokens and 16 channels per head take the per-head BLAS path, on any thread count.
        let qkv = Tensor.randomNormal([2, 20, 3 * 32], using: &rng)
        // On one thread the heads' loop runs serially, outside any parallel region.
        Threading.configure(threads: 1)
        defer { Threading.configure(threads: nil) }
        var out: Tensor?
        let calls = GemmRecorder.record {
            let tape = Tape()
            let q = tape.watch(qkv)
            let loss = tape.recording { scaledDotProductAttention(qkv: q, heads: 2).sum() }
            _ = tape.backward(from: loss)
            out = linear(qkv, weight: Tensor.randomNormal([5, 96], using: &rng))
        }
        XCTAssertEqual(out?.shape, [2, 20, 5])
        XCTAssertEqual(calls.map { [$0.m, $0.n, $0.k] }, [[40, 5, 96]], "only the linear layer's product")
    }

    func testColumnSumsMatchRowOrderSums() {
        var rng = RandomGenerator(seed: 5)
        for cols in [64, 130, 7] {
            let rows = 37
            let m = Tensor.randomNormal([rows, cols], using: &rng)
            let got = columnSums(m.pointer, rows: rows, cols: cols).scalars
            let s = m.scalars
            for c in 0..<cols {
                var want: Float = 0
                for r in 0..<rows { want += s[r * cols + c] }
                XCTAssertEqual(got[c], want, "column \(c) of \(cols)")
            }
        }
    }
}
