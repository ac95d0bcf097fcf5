// Tape mechanics: gradient accumulation over shared inputs, frozen weights, recording only
// under an active tape, flat inference memory, and reuse of watched and reshaped leaves.
import XCTest
@testable import SSFEngine

final class AutodiffTests: XCTestCase {
    private func assertClose(_ a: Tensor, _ b: [Float], _ message: String, tolerance: Float = 1e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let gap = zip(a.scalars, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(gap, tolerance, "\(message): max difference \(gap)", file: file, line: line)
    }

    /// y = x∘x + linear(x, W): the gradients of both branches add up at x.
    func testGradientAccumulatesOverSeveralUses() {
        let x = GradientCheck.normal([2, 3], seed: 1), w = GradientCheck.normal([3, 3], seed: 2)
        let tape = Tape()
        let xw = tape.watch(x)
        let y = tape.recording { xw * xw + linear(xw, weight: w) }
        XCTAssertEqual(tape.operationCount, 3)
        let gx = tape.backward(from: y)[xw]
        // d/dx of sum(y) = 2x + column sums of W (each output o adds W[o, j]).
        let ws = w.scalars
        var columnSums = [Float](repeating: 0, count: 3)
        for (k, v) in ws.enumerated() { columnSums[k % 3] += v }
        let expected: [Float] = x.scalars.enumerated().map { i, v in 2 * v + columnSums[i % 3] }
        XCTAssertNotNil(gx)
        if let gx { assertClose(gx, expected, "gradient of x*x + linear(x, W)") }
        GradientCheck.check("x*x + linear(x, W)", [x, w]) { $0[0] * $0[0] + linear($0[0], weight: $0[1]) }
    }

    /// A frozen weight receives no gradient, and the backward closure is told not to compute it.
    func testFrozenWeightGetsNoGradient() {
        let x = GradientCheck.normal([4, 3], seed: 3), w = GradientCheck.normal([5, 3], seed: 4)

        let tape = Tape()
        let xw = tape.watch(x)
        var asked: [Bool] = []
        let y = tape.recording { () -> Tensor in
            let h = linear(xw, weight: w)
            return tape.record(h, inputs: [h, w]) { g, needs in
                asked = needs
                return [g, needs[1] ? g : nil]
            }
        }
        let grads = tape.backward(from: y)
        XCTAssertEqual(asked, [true, false], "backward must be asked only for tracked inputs")
        XCTAssertNil(grads[w], "an unwatched weight has no gradient")
        XCTAssertEqual(grads[xw]?.shape, [4, 3])

        // The frozen linear skips the [out, in] weight-gradient GEMM, so its backward allocates less.
        func backwardAllocations(trainWeight: Bool) -> Int {
            let tape = Tape()
            let xw = tape.watch(x), ww = trainWeight ? tape.watch(w) : w
            let y = tape.recording { linear(xw, weight: ww) }
            let before = StorageStats.allocations
            let grads = tape.backward(from: y)
            XCTAssertEqual(grads[ww] != nil, trainWeight)
            return StorageStats.allocations - before
        }
        XCTAssertLessThan(backwardAllocations(trainWeight: false), backwardAllocations(trainWeight: true))
    }

    /// Without an active tape nothing is recorded, even for watched tensors.
    func testNothingRecordedWithoutActiveTape() {
        let x = GradientCheck.normal([2, 3], seed: 5), w = GradientCheck.normal([4, 3], seed: 6)
        let tape = Tape()
        let xw = tape.watch(x)
        let outside = linear(xw, weight: w) * xw.sum() + 1
        XCTAssertFalse(outside.isTracked)
        XCTAssertFalse(tape.tracks(outside))
        XCTAssertEqual(tape.operationCount, 0)

        // Under the tape, ops on untracked tensors record nothing either.
        let untracked = tape.recording { () -> Tensor in
            XCTAssertTrue(xw.isTracked)
            XCTAssertFalse(x.isTracked)
            return linear(x, weight: w).reshaped([8]) * 2
        }
        XCTAssertFalse(tape.tracks(untracked))
        XCTAssertEqual(tape.operationCount, 0)
        let tracked = tape.recording { linear(xw, weight: w) }
        XCTAssertTrue(tape.tracks(tracked))
        XCTAssertEqual(tape.operationCount, 1)
    }

    /// Inference keeps nothing: 100 tape-free forward passes leave the live storage exactly
    /// where the first one left it. Recording under a tape keeps the activations until the
    /// tape is released.
    func testInferenceMemoryIsFlat() {
        let x = GradientCheck.normal([64, 128], seed: 10)
        let w1 = GradientCheck.normal([256, 128], seed: 11, std: 0.1), b1 = GradientCheck.normal([256], seed: 12)
        let gamma = Tensor.ones([256]), beta = Tensor.zeros([256])
        let w2 = GradientCheck.normal([64, 256], seed: 13, std: 0.1)
        func forward(_ w1: Tensor, _ w2: Tensor) -> Tensor {
            softmax(linear(gelu(layerNorm(linear(x, weight: w1, bias: b1), weight: gamma, bias: beta)), weight: w2))
        }
        func inferOnce() -> Float { forward(w1, w2).scalars[0] }
        let hiddenBytes = 64 * 256 * MemoryLayout<Float>.stride

        let base = StorageStats.liveBytes
        _ = inferOnce()
        let afterFirst = StorageStats.liveBytes
        for _ in 0..<99 { _ = inferOnce() }
        XCTAssertEqual(StorageStats.liveBytes, afterFirst, "tape-free inference must not accumulate storage")
        XCTAssertLessThan(afterFirst - base, hiddenBytes, "tape-free inference must not keep activations")

        func trainOnce() {
            let tape = Tape()
            let y = tape.recording { forward(tape.watch(w1), tape.watch(w2)) }
            XCTAssertGreaterThanOrEqual(StorageStats.liveBytes - base, 3 * hiddenBytes,
                                        "a recording tape keeps the activations for backward")
            XCTAssertEqual(tape.operationCount, 5)
            _ = y.scalars[0]
        }
        for _ in 0..<3 { trainOnce() }
        XCTAssertEqual(StorageStats.liveBytes, afterFirst, "releasing the tape releases its activations")
    }

    /// A watched leaf used directly and through a reshape twice gets all three contributions.
    func testReshapedLeafReusedTwice() {
        let x = GradientCheck.normal([2, 3], seed: 7)
        let tape = Tape()
        let xw = tape.watch(x)
        let y = tape.recording { () -> Tensor in
            let r = xw.reshaped([3, 2])
            return (r * r).sum() + (r * 3).sum() + xw.sum()
        }
        XCTAssertEqual(y.shape, [])
        let gx = tape.backward(from: y)[xw]
        XCTAssertEqual(gx?.shape, [2, 3])
        if let gx { assertClose(gx, x.scalars.map { 2 * $0 + 4 }, "gradient of reshaped leaf reused twice") }
    }

    /// Every use of a keyed variable shares one slot, so its gradients accumulate.
    func testKeyedVariableSharesGradient() {
        final class Parameter {}
        let key = Parameter()
        let w = GradientCheck.normal([3], seed: 8), x = GradientCheck.normal([3], seed: 9)
        let tape = Tape()
        let y = tape.recording { () -> Tensor in
            let first = tape.variable(for: key, w) * x
            let second = tape.variable(for: key, w) * 2
            return (first + second).sum()
        }
        let g = tape.backward(from: y)[key: key]
        XCTAssertNotNil(g)
        if let g { assertClose(g, x.scalars.map { $0 + 2 }, "gradient of a keyed variable used twice") }
    }
}
