// Finite-difference checks of every engine op's backward pass (conv and pooling ops are
// covered by their own tests). Inputs are small so the whole file runs in seconds in debug.
import XCTest
@testable import SSFEngine

final class FiniteDifferenceTests: XCTestCase {
    private func normal(_ shape: [Int], _ seed: UInt64, std: Float = 1) -> Tensor {
        GradientCheck.normal(shape, seed: seed, std: std)
    }

    /// Values in [low, high) with random signs, bounded away from zero (divisors).
    private func nonZero(_ shape: [Int], _ seed: UInt64, low: Float = 0.5, high: Float = 1.5) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let values = (0..<Tensor.elementCount(shape)).map { _ -> Float in
            let v = low + (high - low) * rng.nextUniform()
            return rng.nextUniform() < 0.5 ? -v : v
        }
        return Tensor(shape: shape, values)
    }

    // MARK: - Matrix products

    func testMatmulTransposeCases() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = normal(ta ? [4, 3] : [3, 4], 1), b = normal(tb ? [5, 4] : [4, 5], 2)
            GradientCheck.check("matmul(tA: \(ta), tB: \(tb))", [a, b]) {
                matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testMatmulBatched() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = normal(ta ? [2, 4, 3] : [2, 3, 4], 3), b = normal(tb ? [2, 5, 4] : [2, 4, 5], 4)
            GradientCheck.check("batched matmul(tA: \(ta), tB: \(tb))", [a, b]) {
                matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testMatmulSharedMatrix() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = normal(ta ? [2, 2, 4, 3] : [2, 2, 3, 4], 5), b = normal(tb ? [5, 4] : [4, 5], 6)
            GradientCheck.check("matmul shared b (tA: \(ta), tB: \(tb))", [a, b]) {
                matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testLinear() {
        let x = normal([2, 3, 4], 7), w = normal([5, 4], 8), b = normal([5], 9)
        GradientCheck.check("linear with bias", [x, w, b]) { linear($0[0], weight: $0[1], bias: $0[2]) }
        GradientCheck.check("linear without bias", [x, w]) { linear($0[0], weight: $0[1]) }
    }

    // MARK: - Arithmetic

    func testBroadcastArithmetic() {
        let cases: [(String, [Int], [Int])] = [
            ("same shape", [2, 3, 4], [2, 3, 4]),
            ("rhs trailing", [2, 3, 4], [4]),
            ("rhs column", [2, 3, 4], [3, 1]),
            ("lhs broadcast", [3, 1], [2, 3, 4]),
            ("both ways", [2, 1, 4], [3, 1]),
            ("scalar tensor", [2, 3], []),
        ]
        for (name, sa, sb) in cases {
            let a = normal(sa, 10), b = normal(sb, 11), d = nonZero(sb, 12)
            GradientCheck.check("add \(name)", [a, b]) { $0[0] + $0[1] }
            GradientCheck.check("sub \(name)", [a, b]) { $0[0] - $0[1] }
            GradientCheck.check("mul \(name)", [a, b]) { $0[0] * $0[1] }
            GradientCheck.check("div \(name)", [a, d]) { $0[0] / $0[1] }
        }
    }

    func testScalarArithmetic() {
        let a = normal([3, 5], 13)
        GradientCheck.check("tensor * scalar", [a]) { $0[0] * 1.7 }
        GradientCheck.check("scalar * tensor", [a]) { -0.6 * $0[0] }
        GradientCheck.check("tensor + scalar", [a]) { $0[0] + 2.5 }
        GradientCheck.check("tensor - scalar", [a]) { $0[0] - 2.5 }
        GradientCheck.check("tensor / scalar", [a]) { $0[0] / 3 }
        GradientCheck.check("negation", [a]) { -$0[0] }
    }

    func testScaleShift() {
        let x = normal([2, 3, 4], 14), scale = normal([4], 15), shift = normal([4], 16)
        GradientCheck.check("scaleShift last", [x, scale, shift]) { scaleShift($0[0], scale: $0[1], shift: $0[2]) }
        let y = normal([2, 3, 2, 2], 17), cScale = normal([3], 18), cShift = normal([3], 19)
        GradientCheck.check("scaleShift channelsFirst", [y, cScale, cShift]) {
            scaleShift($0[0], scale: $0[1], shift: $0[2], axis: .channelsFirst)
        }
    }

    // MARK: - Reductions

    func testSumAndMean() {
        let x = normal([2, 3, 4], 20)
        for axes in [[0], [1], [-1], [0, 2], [0, 1, 2]] {
            for keep in [false, true] {
                GradientCheck.check("sum(axes: \(axes), keepDims: \(keep))", [x]) { $0[0].sum(axes: axes, keepDims: keep) }
                GradientCheck.check("mean(axes: \(axes), keepDims: \(keep))", [x]) { $0[0].mean(axes: axes, keepDims: keep) }
            }
        }
        GradientCheck.check("sum()", [x]) { $0[0].sum() }
        GradientCheck.check("mean()", [x]) { $0[0].mean() }
    }

    // MARK: - Shape ops

    func testReshaped() {
        let x = normal([2, 3, 4], 21)
        GradientCheck.check("reshaped", [x]) { $0[0].reshaped([6, -1]) }
    }

    func testExpanded() {
        GradientCheck.check("expanded [3,1] -> [2,3,4]", [normal([3, 1], 22)]) { $0[0].expanded(to: [2, 3, 4]) }
        GradientCheck.check("expanded [4] -> [3,4]", [normal([4], 23)]) { $0[0].expanded(to: [3, 4]) }
    }
}
