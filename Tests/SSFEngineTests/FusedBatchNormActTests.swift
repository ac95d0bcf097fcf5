// The fused evaluation-form batch norm + SSF + clamp op against the ops it replaces (values and
// every gradient, with and without each part, and the unfused fallback for near-zero scales), and
// trailing (asymmetric) convolution padding against an explicitly padded input.
import XCTest
@testable import SSFEngine

final class FusedBatchNormActTests: XCTestCase {
    private func maxGap(_ a: Tensor?, _ b: Tensor?) -> Float {
        guard let a, let b else { return a == nil && b == nil ? 0 : .infinity }
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    private struct Inputs {
        // Values spread over [−6, 12] after the affine map so that both clamp edges are crossed.
        let x = GradientCheck.normal([3, 6, 5, 7], seed: 1, std: 3)
        let mean = GradientCheck.normal([6], seed: 2, std: 0.5)
        let variance = GradientCheck.normal([6], seed: 3, std: 0.3) * GradientCheck.normal([6], seed: 3, std: 0.3) + Tensor.ones([6]) * 0.5
        let weight = GradientCheck.normal([6], seed: 4, std: 0.4) + Tensor.ones([6])
        let bias = GradientCheck.normal([6], seed: 5, std: 1) + Tensor.ones([6]) * 2
        var scale = GradientCheck.normal([6], seed: 6, std: 0.3) + Tensor.ones([6])
        let shift = GradientCheck.normal([6], seed: 7, std: 0.3)
        let upstream = GradientCheck.normal([3, 6, 5, 7], seed: 8)
    }

    /// Output and the gradients of x, weight, bias, scale, shift from the fused op and the unfused chain.
    private func compare(_ inputs: Inputs, ssf: Bool, clamp: ClosedRange<Float>?, file: StaticString = #filePath, line: UInt = #line) {
        func run(_ fused: Bool) -> (Tensor, [Tensor?]) {
            let tape = Tape()
            let leaves = [inputs.x, inputs.weight, inputs.bias, inputs.scale, inputs.shift].map { tape.watch($0) }
            let y = tape.recording { () -> Tensor in
                if fused {
                    return batchNormScaleShiftClamp(leaves[0], mean: inputs.mean, variance: inputs.variance, weight: leaves[1], bias: leaves[2],
                                                    eps: 1e-3, scale: ssf ? leaves[3] : nil, shift: ssf ? leaves[4] : nil, clamp: clamp)
                }
                var y = batchNormInference(leaves[0], mean: inputs.mean, variance: inputs.variance, weight: leaves[1], bias: leaves[2], eps: 1e-3)
                if ssf { y = scaleShift(y, scale: leaves[3], shift: leaves[4], axis: .channelsFirst) }
                if let clamp {
                    XCTAssertEqual(clamp, 0...6)
                    y = relu6(y)
                }
                return y
            }
            let loss = tape.recording { (y * inputs.upstream).sum() }
            let grads = tape.backward(from: loss)
            return (y, leaves.map { grads[$0] })
        }
        let (yf, gf) = run(true), (yu, gu) = run(false)
        XCTAssertLessThanOrEqual(maxGap(yf, yu), 4e-6, "output", file: file, line: line)
        if clamp != nil {
            XCTAssertTrue(yf.scalars.contains(0) && yf.scalars.contains(6), "the inputs cross both clamp edges", file: file, line: line)
        }
        for (i, name) in ["x", "weight", "bias", "scale", "shift"].enumerated() where ssf || i < 3 {
            let magnitude = gu[i].map { $0.scalars.map(abs).max() ?? 0 } ?? 0
            XCTAssertLessThanOrEqual(maxGap(gf[i], gu[i]), 2e-5 * max(1, magnitude), "gradient of \(name)", file: file, line: line)
        }
    }

    func testMatchesBatchNormScaleShiftRelu6() { compare(Inputs(), ssf: true, clamp: 0...6) }
    func testMatchesWithoutTheClamp() { compare(Inputs(), ssf: true, clamp: nil) }
    func testMatchesWithoutTheSite() { compare(Inputs(), ssf: false, clamp: 0...6) }

    func testNearZeroScaleRunsUnfusedAndStaysExact() {
        var inputs = Inputs()
        inputs.scale.mutablePointer()[2] = 1e-6
        compare(inputs, ssf: true, clamp: 0...6)
    }

    func testFiniteDifferences() {
        // Near-identity parameters put the clamp's kinks near x = −1 and x = 5; the inputs keep away.
        let x = GradientCheck.awayFrom([-1, 5], [2, 3, 2, 3], low: -4, high: 8, margin: 0.6, seed: 21)
        let w = GradientCheck.normal([3], seed: 22, std: 0.05) + Tensor.ones([3])
        let b = GradientCheck.normal([3], seed: 23, std: 0.05) + Tensor.ones([3])
        let s = GradientCheck.normal([3], seed: 24, std: 0.05) + Tensor.ones([3])
        let h = GradientCheck.normal([3], seed: 25, std: 0.05)
        let stats = Tensor.zeros([3])
        GradientCheck.check("batchNormScaleShiftClamp", [x, w, b, s, h]) {
            batchNormScaleShiftClamp($0[0], mean: stats, variance: stats + 1, weight: $0[1], bias: $0[2], eps: 0,
                                     scale: $0[3], shift: $0[4], clamp: 0...6)
        }
    }

    /// Frozen norm and trainable γ/β: the backward keeps only the output (one activation).
    func testKeepsOneActivation() {
        let inputs = Inputs()
        let tape = Tape()
        let x = tape.watch(inputs.x), s = tape.watch(inputs.scale), h = tape.watch(inputs.shift)
        let before = StorageStats.liveBytes
        let y = tape.recording {
            batchNormScaleShiftClamp(x, mean: inputs.mean, variance: inputs.variance, weight: inputs.weight, bias: inputs.bias,
                                     eps: 1e-3, scale: s, shift: h, clamp: 0...6)
        }
        let kept = StorageStats.liveBytes - before
        XCTAssertLessThanOrEqual(kept, y.count * 4 + 4096, "the output and per-channel vectors only")
    }

    /// Trailing padding gives what an explicitly zero-padded input gives, values and gradients,
    /// for the im2col path (3×3, stride 2) and the depthwise kernel (5×5, stride 2).
    func testTrailingPaddingMatchesAPaddedInput() {
        for (groups, k) in [(1, 3), (4, 5)] {
            let x = GradientCheck.normal([2, 4, 9, 8], seed: 31, std: 1)
            let w = GradientCheck.normal([4, 4 / groups, k, k], seed: 32, std: 0.3)
            let (top, left, extraH, extraW) = (k / 2 - 1, k / 2 - 1, 1, 2)
            func run(_ trailing: Bool) -> (Tensor, Tensor?, Tensor?) {
                let tape = Tape()
                let lx = tape.watch(x), lw = tape.watch(w)
                let y = tape.recording { () -> Tensor in
                    if trailing {
                        return conv2d(lx, weight: lw, stride: (2, 2), padding: (top, left), trailingPadding: (extraH, extraW), groups: groups)
                    }
                    var p = concat([lx, .zeros([2, 4, extraH, 8])], axis: 2)
                    p = concat([p, .zeros([2, 4, 9 + extraH, extraW])], axis: 3)
                    return conv2d(p, weight: lw, stride: (2, 2), padding: (top, left), groups: groups)
                }
                let upstream = GradientCheck.normal(y.shape, seed: 33)
                let grads = tape.backward(from: tape.recording { (y * upstream).sum() })
                return (y, grads[lx], grads[lw])
            }
            let (yt, gxt, gwt) = run(true), (yp, gxp, gwp) = run(false)
            XCTAssertEqual(yt.shape, yp.shape, "groups \(groups)")
            XCTAssertLessThanOrEqual(maxGap(yt, yp), 1e-5, "output, groups \(groups)")
            XCTAssertLessThanOrEqual(maxGap(gxt, gxp), 1e-5, "input gradient, groups \(groups)")
            XCTAssertLessThanOrEqual(maxGap(gwt, gwp), 1e-4, "weight gradient, groups \(groups)")
        }
    }

    /// A 1×1 convolution over small planes runs as one GEMM over the batch; its values and
    /// gradients against a direct sum.
    func testBatchedPointwiseConvolutionMatchesADirectSum() {
        let (n, c, o, h, w) = (3, 5, 7, 4, 6)
        XCTAssertLessThanOrEqual(h * w, batchedPointwiseMaxPixels, "the planes take the batched path")
        let x = GradientCheck.normal([n, c, h, w], seed: 41), weight = GradientCheck.normal([o, c, 1, 1], seed: 42)
        let bias = GradientCheck.normal([o], seed: 43), upstream = GradientCheck.normal([n, o, h, w], seed: 44)
        let tape = Tape()
        let lx = tape.watch(x), lw = tape.watch(weight), lb = tape.watch(bias)
        let y = tape.recording { conv2d(lx, weight: lw, bias: lb) }
        let grads = tape.backward(from: tape.recording { (y * upstream).sum() })
        let p = h * w
        var worst: [Float] = [0, 0, 0, 0]
        for img in 0..<n {
            for oc in 0..<o {
                for q in 0..<p {
                    var s = bias.scalars[oc]
                    for ch in 0..<c { s += weight.scalars[oc * c + ch] * x.scalars[(img * c + ch) * p + q] }
                    worst[0] = max(worst[0], abs(s - y.scalars[(img * o + oc) * p + q]))
                }
            }
            for ch in 0..<c {
                for q in 0..<p {
                    var s: Float = 0
                    for oc in 0..<o { s += weight.scalars[oc * c + ch] * upstream.scalars[(img * o + oc) * p + q] }
                    worst[1] = max(worst[1], abs(s - grads[lx]!.scalars[(img * c + ch) * p + q]))
                }
            }
        }
        for oc in 0..<o {
            var sb: Float = 0
            for ch in 0..<c {
                var s: Float = 0
                for img in 0..<n { for q in 0..<p { s += upstream.scalars[(img * o + oc) * p + q] * x.scalars[(img * c + ch) * p + q] } }
                worst[2] = max(worst[2], abs(s - grads[lw]!.scalars[oc * c + ch]))
            }
            for img in 0..<n { for q in 0..<p { sb += upstream.scalars[(img * o + oc) * p + q] } }
            worst[3] = max(worst[3], abs(sb - grads[lb]!.scalars[oc]))
        }
        for (i, name) in ["output", "input gradient", "weight gradient", "bias gradient"].enumerated() {
            XCTAssertLessThanOrEqual(worst[i], 1e-4, name)
        }
    }

    /// A convolution's epilogue (frozen batch norm, SSF, ReLU6 applied as the output is written)
    /// gives what the convolution followed by the fused op gives: batched and per-image 1×1,
    /// im2col 3×3 with trailing padding, and depthwise, with and without a bias.
    func testConvolutionEpilogueMatchesTheSeparatePass() {
        let cases: [(shape: [Int], out: Int, k: Int, stride: Int, groups: Int, trailing: (Int, Int))] = [
            ([3, 6, 5, 7], 10, 1, 1, 1, (0, 0)),      // 35 pixels: one GEMM over the batch
            ([2, 6, 20, 20], 10, 1, 1, 1, (0, 0)),    // 400 pixels: a GEMM per image
            ([2, 6, 9, 8], 10, 3, 2, 1, (1, 1)),      // im2col, TensorFlow-style trailing padding
            ([2, 6, 9, 8], 6, 5, 2, 6, (1, 0)),       // depthwise
        ]
        for (i, t) in cases.enumerated() {
            let x = GradientCheck.normal(t.shape, seed: 51 + UInt64(i), std: 2)
            let w = GradientCheck.normal([t.out, t.shape[1] / t.groups, t.k, t.k], seed: 61, std: 0.5)
            let mean = GradientCheck.normal([t.out], seed: 62, std: 0.5)
            let variance = GradientCheck.normal([t.out], seed: 63, std: 0.3) * GradientCheck.normal([t.out], seed: 63, std: 0.3) + Tensor.ones([t.out])
            let nw = GradientCheck.normal([t.out], seed: 64, std: 0.4) + Tensor.ones([t.out]), nb = GradientCheck.normal([t.out], seed: 65) + Tensor.ones([t.out])
            let s = GradientCheck.normal([t.out], seed: 66, std: 0.3) + Tensor.ones([t.out]), h = GradientCheck.normal([t.out], seed: 67, std: 0.3)
            for convBias in [nil, GradientCheck.normal([t.out], seed: 68)] {
                let pad = t.k / 2 - (t.trailing.0 > 0 ? 1 : 0)
                func conv(_ e: ChannelEpilogue?) -> Tensor {
                    conv2d(x, weight: w, bias: convBias, stride: (t.stride, t.stride), padding: (pad, pad), trailingPadding: t.trailing,
                           groups: t.groups, epilogue: e)
                }
                let expected = batchNormScaleShiftClamp(conv(nil), mean: mean, variance: variance, weight: nw, bias: nb, eps: 1e-3,
                                                        scale: s, shift: h, clamp: 0...6)
                let fused = conv(ChannelEpilogue(mean: mean, variance: variance, weight: nw, bias: nb, eps: 1e-3, scale: s, shift: h, clamp: 0...6))
                XCTAssertEqual(fused.shape, expected.shape, "case \(i)")
                XCTAssertLessThanOrEqual(maxGap(fused, expected), 2e-5, "case \(i), bias \(convBias != nil)")
                XCTAssertTrue(expected.scalars.contains(0) && expected.scalars.contains(6), "case \(i) crosses both clamp edges")
            }
        }
    }
}
