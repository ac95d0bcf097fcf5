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

    // MARK: - Normalisation

    func testLayerNorm() {
        let x = normal([3, 8], 24), w = normal([8], 25), b = normal([8], 26)
        GradientCheck.check("layerNorm", [x, w, b]) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
        GradientCheck.check("layerNorm without affine", [x]) { layerNorm($0[0], weight: nil, bias: nil) }
    }

    func testLayerNorm2d() {
        let x = normal([2, 4, 2, 3], 27), w = normal([4], 28), b = normal([4], 29)
        GradientCheck.check("layerNorm2d", [x, w, b]) { layerNorm2d($0[0], weight: $0[1], bias: $0[2]) }
        GradientCheck.check("layerNorm2d without affine", [x]) { layerNorm2d($0[0], weight: nil, bias: nil) }
    }

    func testGroupNorm() {
        let x = normal([2, 4, 2, 3], 30), w = normal([4], 31), b = normal([4], 32)
        for groups in [1, 2] {
            GradientCheck.check("groupNorm(groups: \(groups))", [x, w, b]) {
                groupNorm($0[0], groups: groups, weight: $0[1], bias: $0[2])
            }
        }
        GradientCheck.check("groupNorm on [N, C, L] without affine", [normal([2, 4, 5], 33)]) {
            groupNorm($0[0], groups: 2, weight: nil, bias: nil)
        }
    }

    func testBatchNormInference() {
        let x = normal([2, 3, 2, 2], 34), w = normal([3], 35), b = normal([3], 36)
        let mean = normal([3], 37), variance = Tensor(shape: [3], [0.5, 1.2, 2.0])
        GradientCheck.check("batchNormInference", [x, w, b]) {
            batchNormInference($0[0], mean: mean, variance: variance, weight: $0[1], bias: $0[2])
        }
        GradientCheck.check("batchNormInference without affine", [x]) {
            batchNormInference($0[0], mean: mean, variance: variance, weight: nil, bias: nil)
        }
    }

    // MARK: - Softmax and activations

    func testSoftmax() {
        let x = normal([3, 5], 38, std: 2)
        GradientCheck.check("softmax", [x]) { softmax($0[0]) }
        GradientCheck.check("logSoftmax", [x]) { logSoftmax($0[0]) }
        GradientCheck.check("softmax rank 3", [normal([2, 2, 4], 39)]) { softmax($0[0]) }
    }

    func testSmoothActivations() {
        let x = normal([4, 6], 40, std: 2)
        GradientCheck.check("gelu", [x]) { gelu($0[0]) }
        GradientCheck.check("silu", [x]) { silu($0[0]) }
        GradientCheck.check("sigmoid", [x]) { sigmoid($0[0]) }
    }

    func testPiecewiseActivations() {
        GradientCheck.check("relu", [GradientCheck.awayFrom([0], [4, 6], low: -3, high: 3, seed: 41)]) { relu($0[0]) }
        GradientCheck.check("relu6", [GradientCheck.awayFrom([0, 6], [4, 6], low: -2, high: 8, seed: 42)]) { relu6($0[0]) }
        GradientCheck.check("hardSwish", [GradientCheck.awayFrom([-3, 3], [4, 6], low: -5, high: 5, seed: 43)]) {
            hardSwish($0[0])
        }
    }

    // MARK: - Stochastic regularisers

    func testDropout() {
        let x = normal([4, 6], 44)
        let dropped = { (x: Tensor) -> Tensor in
            var rng = RandomGenerator(seed: 99)
            return dropout(x, probability: 0.3, using: &rng)
        }
        let zeros = dropped(x).scalars.filter { $0 == 0 }.count
        XCTAssert(zeros > 0 && zeros < x.count, "the mask should drop some elements and keep others, dropped \(zeros)")
        GradientCheck.check("dropout", [x]) { dropped($0[0]) }
    }

    func testDropPath() {
        let x = normal([6, 3, 2], 45)
        let dropped = { (x: Tensor) -> Tensor in
            var rng = RandomGenerator(seed: 7)
            return dropPath(x, probability: 0.5, using: &rng)
        }
        let zeroSamples = dropped(x).reshaped([6, 6]).sum(axes: [1]).scalars.filter { $0 == 0 }.count
        XCTAssert(zeroSamples > 0 && zeroSamples < 6, "the mask should drop some samples and keep others, dropped \(zeroSamples)")
        GradientCheck.check("dropPath", [x]) { dropped($0[0]) }
    }

    // MARK: - Shape ops

    func testRoll() {
        let x = normal([2, 4, 5], 46)
        GradientCheck.check("roll", [x]) { roll($0[0], shifts: [1, -2], axes: [1, 2]) }
        GradientCheck.check("roll negative axis", [x]) { roll($0[0], shifts: [3], axes: [-1]) }
    }

    func testWindowPartitionAndReverse() {
        GradientCheck.check("windowPartition", [normal([2, 4, 4, 3], 47)]) { windowPartition($0[0], windowSize: 2) }
        GradientCheck.check("windowReverse", [normal([8, 2, 2, 3], 48)]) {
            windowReverse($0[0], windowSize: 2, height: 4, width: 4)
        }
    }

    func testConcatAndStack() {
        let a = normal([2, 3], 49), b = normal([2, 2], 50), c = normal([1, 3], 51), d = normal([2, 3], 52)
        GradientCheck.check("concat axis 1", [a, b]) { concat([$0[0], $0[1]], axis: 1) }
        GradientCheck.check("concat axis 0", [a, c, d]) { concat([$0[0], $0[1], $0[2]], axis: 0) }
        GradientCheck.check("concat same tensor twice", [a]) { concat([$0[0], $0[0]], axis: -1) }
        GradientCheck.check("stack axis 0", [a, d]) { stack([$0[0], $0[1]], axis: 0) }
        GradientCheck.check("stack axis 2", [a, d, a]) { stack([$0[0], $0[1], $0[2]], axis: 2) }
    }

    func testPermutedAndTransposed() {
        let x = normal([2, 3, 4], 53)
        GradientCheck.check("permuted [2, 0, 1]", [x]) { $0[0].permuted([2, 0, 1]) }
        GradientCheck.check("permuted [0, 2, 1]", [x]) { $0[0].permuted([0, 2, 1]) }
        GradientCheck.check("transposed(0, 2)", [x]) { $0[0].transposed(0, 2) }
        GradientCheck.check("transposed(-1, -2)", [x]) { $0[0].transposed(-1, -2) }
    }

    func testSliceIndexSelectGather() {
        let x = normal([2, 4, 3], 54)
        GradientCheck.check("slice axis 1", [x]) { $0[0].slice(axis: 1, range: 1..<3) }
        GradientCheck.check("slice last axis", [x]) { $0[0].slice(axis: -1, range: 2..<3) }
        GradientCheck.check("indexSelect with repeats", [x]) { $0[0].indexSelect(axis: 1, indices: [3, 0, 3, 1]) }
        GradientCheck.check("indexSelect axis 0", [x]) { $0[0].indexSelect(axis: 0, indices: [1, 1, 0]) }
        let indices = [0, 3, 3, 1, 2, 0, 2, 2, 1, 3, 0, 0]
        GradientCheck.check("gather axis 1", [x]) { $0[0].gather(axis: 1, indices: indices, indexShape: [2, 2, 3]) }
        GradientCheck.check("gather last axis", [x]) {
            $0[0].gather(axis: 2, indices: [2, 2, 0, 1, 0, 0, 1, 2], indexShape: [2, 4, 1])
        }
    }


    func testReshaped() {
        let x = normal([2, 3, 4], 21)
        GradientCheck.check("reshaped", [x]) { $0[0].reshaped([6, -1]) }
    }

    func testExpanded() {
        GradientCheck.check("expanded [3,1] -> [2,3,4]", [normal([3, 1], 22)]) { $0[0].expanded(to: [2, 3, 4]) }
        GradientCheck.check("expanded [4] -> [3,4]", [normal([4], 23)]) { $0[0].expanded(to: [3, 4]) }
    }

    // MARK: - Losses

    func testCrossEntropy() {
        let logits = normal([4, 5], 55, std: 2), labels = [0, 3, 4, 1]
        GradientCheck.check("crossEntropy", [logits]) { crossEntropy($0[0], labels: labels) }
        GradientCheck.check("crossEntropy label smoothing 0.1", [logits]) {
            crossEntropy($0[0], labels: labels, labelSmoothing: 0.1)
        }
        let targets = softmax(normal([4, 5], 56))
        GradientCheck.check("crossEntropy soft targets", [logits]) { crossEntropy($0[0], softTargets: targets) }
    }

    // MARK: - Attention

    func testScaledDotProductAttention() {
        let qkv = normal([2, 4, 18], 57)
        GradientCheck.check("attention", [qkv]) { scaledDotProductAttention(qkv: $0[0], heads: 2) }
        GradientCheck.check("attention explicit scale", [qkv]) { scaledDotProductAttention(qkv: $0[0], heads: 3, scale: 0.7) }
        let bias = normal([2, 4, 4], 58)
        GradientCheck.check("attention with bias", [qkv, bias]) {
            scaledDotProductAttention(qkv: $0[0], heads: 2, bias: $0[1])
        }
    }

    func testScaledDotProductAttentionWithMask() {
        // Four windows, two mask patterns (window b uses mask b % 2), as in shifted Swin blocks.
        let qkv = normal([4, 4, 12], 59), bias = normal([2, 4, 4], 60)
        let maskValues = (0..<32).map { k -> Float in
            let (w, i, j) = (k / 16, k / 4 % 4, k % 4)
            return w == 1 && i / 2 != j / 2 ? -100 : 0
        }
        let mask = Tensor(shape: [2, 4, 4], maskValues)
        GradientCheck.check("attention with mask", [qkv]) { scaledDotProductAttention(qkv: $0[0], heads: 2, mask: mask) }
        GradientCheck.check("attention with bias and mask", [qkv, bias]) {
            scaledDotProductAttention(qkv: $0[0], heads: 2, bias: $0[1], mask: mask)
        }
    }
}
