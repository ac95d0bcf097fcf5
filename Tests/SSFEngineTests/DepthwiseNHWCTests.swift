// The channels-last depthwise convolution against the NCHW one (itself checked against a direct
// loop and PyTorch fixtures): forward values and every gradient, over channel counts that do and
// do not fill whole 8-lane vectors and 32-channel groups, widths below and between 8-pixel blocks,
// and paddings 0 to k − 1.
import XCTest
@testable import SSFEngine

final class DepthwiseNHWCTests: XCTestCase {
    private func normal(_ shape: [Int], _ seed: UInt64) -> Tensor { GradientCheck.normal(shape, seed: seed) }

    private func assertClose(_ actual: Tensor?, _ expected: Tensor?, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let actual, let expected else { return XCTFail("\(message): missing gradient", file: file, line: line) }
        XCTAssertEqual(actual.shape, expected.shape, message, file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let scale = Swift.max(expected.scalars.map(abs).max() ?? 0, 1)
        let gap = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(gap, 2e-5 * scale, "\(message): max difference \(gap)", file: file, line: line)
    }

    private let toNHWC = [0, 2, 3, 1], toNCHW = [0, 3, 1, 2]

    func testMatchesNCHWForwardAndGradients() {
        let cases: [(c: Int, k: Int, padding: Int, h: Int, w: Int)] = [
            (8, 7, 3, 14, 14), (13, 7, 3, 9, 11), (3, 7, 3, 2, 3), (16, 7, 3, 7, 7), (64, 7, 3, 5, 17),
            (40, 3, 1, 6, 5), (70, 3, 0, 5, 9), (9, 5, 2, 4, 13), (8, 5, 4, 3, 6),
        ]
        for (i, t) in cases.enumerated() {
            let label = "c=\(t.c) k=\(t.k) p=\(t.padding) \(t.h)×\(t.w)"
            let seed = UInt64(100 + 10 * i)
            let x = normal([2, t.c, t.h, t.w], seed), wt = normal([t.c, 1, t.k, t.k], seed + 1), b = normal([t.c], seed + 2)
            let xl = x.permuted(toNHWC)

            let reference = depthwiseConv2d(x, weight: wt, bias: b, padding: t.padding)
            let out = depthwiseConv2dNHWC(xl, weight: wt, bias: b, padding: t.padding)
            assertClose(out, reference.permuted(toNHWC), label + " forward")
            assertClose(depthwiseConv2dNHWC(xl, weight: wt, padding: t.padding), depthwiseConv2d(x, weight: wt, padding: t.padding).permuted(toNHWC),
                        label + " forward without bias")

            let seedGrad = normal(reference.shape, seed + 3)
            let tapeA = Tape(), xa = tapeA.watch(x), wa = tapeA.watch(wt), ba = tapeA.watch(b)
            let ya = tapeA.recording { depthwiseConv2d(xa, weight: wa, bias: ba, padding: t.padding) }
            let ga = tapeA.backward(from: ya, seed: seedGrad)

            let tapeB = Tape(), xb = tapeB.watch(xl), wb = tapeB.watch(wt), bb = tapeB.watch(b)
            let yb = tapeB.recording { depthwiseConv2dNHWC(xb, weight: wb, bias: bb, padding: t.padding) }
            let gb = tapeB.backward(from: yb, seed: seedGrad.permuted(toNHWC))

            assertClose(gb[xb]?.permuted(toNCHW), ga[xa], label + " input gradient")
            assertClose(gb[wb], ga[wa], label + " filter gradient")
            assertClose(gb[bb], ga[ba], label + " bias gradient")
        }
    }

    func testInputGradientIsTheCorrelationWithTheFlippedFilter() {
        let x = normal([1, 4, 6, 10], 7), wt = normal([10, 1, 3, 3], 8)
        let tape = Tape(), xw = tape.watch(x)
        let y = tape.recording { depthwiseConv2dNHWC(xw, weight: wt, padding: 1) }
        let seed = normal(y.shape, 9)
        let g = tape.backward(from: y, seed: seed)
        let flipped = Tensor(shape: [10, 1, 3, 3], (0..<10).flatMap { ch in wt.scalars[(ch * 9)..<(ch * 9 + 9)].reversed() })
        let expected = depthwiseConv2dNHWC(seed, weight: flipped, padding: 1)
        assertClose(g[xw], expected, "input gradient = correlation with the flipped filter")
    }

    func testFiniteDifferences() {
        let x = normal([2, 5, 4, 6], 31), wt = normal([6, 1, 3, 3], 32), b = normal([6], 33)
        GradientCheck.check("depthwiseConv2dNHWC k=3 p=1", [x, wt, b]) { depthwiseConv2dNHWC($0[0], weight: $0[1], bias: $0[2], padding: 1) }
    }
}
