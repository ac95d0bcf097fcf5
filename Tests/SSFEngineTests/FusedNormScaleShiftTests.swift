// The fused LayerNorm + SSF op against the two ops it replaces: values, all five gradients,
// the fallback for near-zero scales, and the activation memory its backward keeps.
import XCTest
@testable import SSFEngine

final class FusedNormScaleShiftTests: XCTestCase {
    private func maxGap(_ a: Tensor?, _ b: Tensor?) -> Float {
        guard let a, let b else { return .infinity }
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    /// Forward values and gradients of x, w, b, γ, β from the fused op and from layerNorm → scaleShift.
    /// With `frozenNorm` the normalisation's weight and bias are constants (SSF tuning: the one-pass
    /// backward from the output); otherwise all five are watched.
    private func compare(scale: Tensor, frozenNorm: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let c = scale.count
        let x = GradientCheck.normal([3, 5, c], seed: 1, std: 2)
        let w = GradientCheck.normal([c], seed: 2, std: 0.5) + Tensor.ones([c])
        let b = GradientCheck.normal([c], seed: 3, std: 0.5)
        let shift = GradientCheck.normal([c], seed: 5, std: 0.3)
        let upstream = GradientCheck.normal([3, 5, c], seed: 6)
        func run(_ fused: Bool) -> (Tensor, [Tensor?]) {
            let tape = Tape()
            let leaves = [x, w, b, scale, shift].enumerated().map { i, t in frozenNorm && (i == 1 || i == 2) ? t : tape.watch(t) }
            let y = tape.recording { () -> Tensor in
                fused ? layerNormScaleShift(leaves[0], weight: leaves[1], bias: leaves[2], eps: 1e-6, scale: leaves[3], shift: leaves[4])
                      : scaleShift(layerNorm(leaves[0], weight: leaves[1], bias: leaves[2], eps: 1e-6), scale: leaves[3], shift: leaves[4])
            }
            let loss = tape.recording { (y * upstream).sum() }
            let grads = tape.backward(from: loss)
            return (y, leaves.map { grads[$0] })
        }
        let (yf, gf) = run(true), (yu, gu) = run(false)
        XCTAssertLessThanOrEqual(maxGap(yf, yu), 2e-6, "output", file: file, line: line)
        for (i, name) in ["x", "weight", "bias", "scale", "shift"].enumerated() {
            if frozenNorm && (i == 1 || i == 2) {
                XCTAssertNil(gf[i], "a frozen \(name) gets no gradient", file: file, line: line)
                continue
            }
            let magnitude = gu[i].map { $0.scalars.map(abs).max() ?? 0 } ?? 0
            XCTAssertLessThanOrEqual(maxGap(gf[i], gu[i]), 2e-5 * max(1, magnitude), "gradient of \(name)", file: file, line: line)
        }
    }

    func testMatchesLayerNormThenScaleShift() {
        compare(scale: GradientCheck.normal([24], seed: 4, std: 0.3) + Tensor.ones([24]))
    }

    func testWithAFrozenNormalisationTheOnePassBackwardMatches() {
        // 24 channels (whole vectors) and 21 (a partial last vector), rows split across threads.
        for c in [24, 21] {
            compare(scale: GradientCheck.normal([c], seed: 4, std: 0.3) + Tensor.ones([c]), frozenNorm: true)
        }
    }

    func testNearZeroScaleKeepsTheInputAndStaysExact() {
        var scale = GradientCheck.normal([24], seed: 4, std: 0.3) + Tensor.ones([24])
        scale.mutablePointer()[7] = 1e-6
        compare(scale: scale)
    }

    func testFiniteDifferences() {
        let x = GradientCheck.normal([2, 3, 8], seed: 11)
        let w = GradientCheck.normal([8], seed: 12, std: 0.3) + Tensor.ones([8])
        let b = GradientCheck.normal([8], seed: 13, std: 0.3)
        let s = GradientCheck.normal([8], seed: 14, std: 0.3) + Tensor.ones([8])
        let h = GradientCheck.normal([8], seed: 15, std: 0.3)
        GradientCheck.check("layerNormScaleShift", [x, w, b, s, h]) {
            layerNormScaleShift($0[0], weight: $0[1], bias: $0[2], eps: 1e-5, scale: $0[3], shift: $0[4])
        }
    }

    /// With a frozen normalisation and trainable γ/β (SSF tuning) the fused op keeps one activation
    /// of the input's size; the unfused pair keeps two.
    func testBackwardKeepsOneActivationInsteadOfTwo() {
        let x = GradientCheck.normal([64, 256], seed: 21)
        let w = Tensor.ones([256]), b = Tensor.zeros([256])
        let s = GradientCheck.normal([256], seed: 22, std: 0.1) + Tensor.ones([256]), h = Tensor.zeros([256])
        let zeros = Tensor.zeros([256])
        func retained(_ fused: Bool) -> Int {
            let tape = Tape()
            let (xs, ws, hs) = (tape.watch(x), tape.watch(s), tape.watch(h))
            let before = StorageStats.liveBytes
            var y: Tensor? = tape.recording { () -> Tensor in
                let input = xs + zeros   // a fresh, tracked buffer that only the op under test can keep alive
                return fused ? layerNormScaleShift(input, weight: w, bias: b, scale: ws, shift: hs)
                             : scaleShift(layerNorm(input, weight: w, bias: b), scale: ws, shift: hs)
            }
            XCTAssertNotNil(y)
            y = nil
            return StorageStats.liveBytes - before
        }
        let activation = 64 * 256 * 4
        let fused = retained(true), unfused = retained(false)
        XCTAssertLessThan(fused, activation + activation / 2, "fused keeps about one activation (\(fused) bytes)")
        XCTAssertGreaterThanOrEqual(unfused - fused, activation * 9 / 10, "unfused keeps one more (\(unfused) vs \(fused) bytes)")
    }
}
