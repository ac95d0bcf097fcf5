// Per-sample SSF: `[N, C]` scale/shift (and the fused LayerNorm + SSF) equal the per-sample ops
// applied to each sample alone, forward and backward.
import XCTest
@testable import SSFEngine

final class PerSampleScaleShiftTests: XCTestCase {
    private func sample(_ x: Tensor, _ n: Int) -> Tensor { x.slice(axis: 0, range: n..<(n + 1)) }
    private func row(_ t: Tensor, _ n: Int) -> Tensor { t.slice(axis: 0, range: n..<(n + 1)).reshaped([t.shape[1]]) }

    func testScaleShiftPerSampleMatchesEachSampleAlone() {
        var rng = RandomGenerator(seed: 3)
        for (shape, axis) in [([3, 5, 7], ChannelAxis.last), ([3, 4, 5, 6], .channelsFirst), ([6, 2, 4], .last)] {
            let channels = axis == .last ? shape.last! : shape[1]
            let samples = 3
            let x = Tensor.randomNormal(shape, using: &rng)
            let s = Tensor.randomNormal([samples, channels], mean: 1, std: 0.3, using: &rng)
            let h = Tensor.randomNormal([samples, channels], std: 0.3, using: &rng)
            let seed = Tensor.randomNormal(shape, using: &rng)
            let tape = Tape()
            let (xv, sv, hv) = (tape.watch(x), tape.watch(s), tape.watch(h))
            let y = tape.recording { scaleShiftPerSample(xv, scale: sv, shift: hv, axis: axis) }
            let grads = tape.backward(from: y, seed: seed)
            let per = shape[0] / samples
            for n in 0..<samples {
                let part = x.slice(axis: 0, range: (n * per)..<((n + 1) * per))
                let t2 = Tape()
                let (pv, rs, rh) = (t2.watch(part), t2.watch(row(s, n)), t2.watch(row(h, n)))
                let want = t2.recording { scaleShift(pv, scale: rs, shift: rh, axis: axis) }
                let g2 = t2.backward(from: want, seed: seed.slice(axis: 0, range: (n * per)..<((n + 1) * per)))
                XCTAssertEqual(y.slice(axis: 0, range: (n * per)..<((n + 1) * per)).scalars, want.scalars, "\(shape) sample \(n)")
                XCTAssertEqual(grads[xv]!.slice(axis: 0, range: (n * per)..<((n + 1) * per)).scalars, g2[pv]!.scalars, "\(shape) grad x")
                for (a, b) in zip(row(grads[sv]!, n).scalars, g2[rs]!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b))) }
                for (a, b) in zip(row(grads[hv]!, n).scalars, g2[rh]!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b))) }
            }
        }
    }

    /// The inference-only fused `linear` + SSF equals `linear` then `scaleShift` (one task) and
    /// `scaleShiftPerSample` (one vector pair per sample), with and without a bias.
    func testLinearScaleShiftMatchesLinearThenScaleShift() {
        var rng = RandomGenerator(seed: 9)
        for (shape, samples, withBias) in [([3, 7, 20], 1, true), ([3, 7, 20], 3, true), ([6, 20], 3, false), ([4, 5, 20], 2, true)] {
            let x = Tensor.randomNormal(shape, using: &rng)
            let w = Tensor.randomNormal([33, 20], std: 0.2, using: &rng)
            let b: Tensor? = withBias ? Tensor.randomNormal([33], using: &rng) : nil
            let s = Tensor.randomNormal([samples, 33], mean: 1, std: 0.3, using: &rng)
            let h = Tensor.randomNormal([samples, 33], std: 0.3, using: &rng)
            let fused = linearScaleShift(x, weight: w, bias: b, scale: s, shift: h)
            let plain = linear(x, weight: w, bias: b)
            let want = samples == 1 ? scaleShift(plain, scale: s.reshaped([33]), shift: h.reshaped([33]))
                                    : scaleShiftPerSample(plain, scale: s, shift: h)
            XCTAssertEqual(fused.shape, want.shape)
            for (a, e) in zip(fused.scalars, want.scalars) { XCTAssertEqual(a, e, accuracy: 1e-5 * max(1, abs(e)), "\(shape), \(samples) sample rows") }
        }
    }

    func testFusedLayerNormPerSampleMatchesEachSampleAlone() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([2, 9, 20], using: &rng)
        let w = Tensor.randomNormal([20], mean: 1, std: 0.2, using: &rng), b = Tensor.randomNormal([20], std: 0.2, using: &rng)
        let s = Tensor.randomNormal([2, 20], mean: 1, std: 0.3, using: &rng), h = Tensor.randomNormal([2, 20], std: 0.3, using: &rng)
        let y = layerNormScaleShiftPerSample(x, weight: w, bias: b, eps: 1e-6, scale: s, shift: h)
        for n in 0..<2 {
            let want = layerNormScaleShift(sample(x, n), weight: w, bias: b, eps: 1e-6, scale: row(s, n), shift: row(h, n))
            for (a, e) in zip(sample(y, n).scalars, want.scalars) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        }
        // Under a tape: the differentiable composition, same values.
        let tape = Tape()
        let sv = tape.watch(s)
        let yt = tape.recording { layerNormScaleShiftPerSample(x, weight: w, bias: b, eps: 1e-6, scale: sv, shift: h) }
        for (a, e) in zip(yt.scalars, y.scalars) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        XCTAssertEqual(tape.backward(from: yt)[sv]?.shape, [2, 20])
    }
}
