// Finite-difference gradient checking: compares the tape's analytic gradients of an op with
// central differences of the scalar loss sum(op(inputs) * R) for a fixed random R.
import XCTest
@testable import SSFEngine

enum GradientCheck {
    /// Checks the gradient of `build` with respect to every tensor in `inputs`.
    ///
    /// `build` receives the inputs (watched on a tape for the analytic pass, plain for the
    /// numeric passes) and must be deterministic: an op that draws random numbers has to
    /// create its generator from a fixed seed inside `build`. Constants the op needs but that
    /// are not differentiated are captured by the closure. The loss is accumulated in Double;
    /// an element fails when |analytic − numeric| exceeds `tolerance` times the largest
    /// gradient magnitude of that input.
    static func check(
        _ op: String,
        _ inputs: [Tensor],
        eps: Float = 1e-2,
        tolerance: Double = 1e-2,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ build: ([Tensor]) -> Tensor
    ) {
        let plain = build(inputs)
        var rng = RandomGenerator(seed: 0x5EED)
        let r = Tensor.randomNormal(plain.shape, using: &rng)
        let rs = r.scalars.map(Double.init)
        func loss(_ xs: [Tensor]) -> Double {
            let out = build(xs)
            precondition(out.shape == plain.shape, "\(op): output shape changed under perturbation")
            return zip(out.scalars, rs).reduce(0) { $0 + Double($1.0) * $1.1 }
        }

        let tape = Tape()
        let watched = inputs.map { tape.watch($0) }
        let out = tape.recording { build(watched) }
        guard tape.tracks(out) else {
            XCTFail("\(op): output is not recorded on the tape", file: file, line: line)
            return
        }
        XCTAssertEqual(out.shape, plain.shape, "\(op): recorded output shape differs", file: file, line: line)
        let forwardGap = zip(out.scalars, plain.scalars).map { abs($0 - $1) }.max() ?? 0
        let forwardScale = plain.scalars.map(abs).max() ?? 0
        XCTAssertLessThanOrEqual(forwardGap, 1e-5 * max(forwardScale, 1),
                                 "\(op): recorded forward differs from unrecorded forward by \(forwardGap)",
                                 file: file, line: line)
        let grads = tape.backward(from: out, seed: r)

        for (i, x) in inputs.enumerated() {
            let analytic: [Float]
            if let g = grads[watched[i]] {
                guard g.shape == x.shape else {
                    XCTFail("\(op): input \(i) gradient has shape \(g.shape), input has \(x.shape)", file: file, line: line)
                    continue
                }
                analytic = g.scalars
            } else {
                analytic = [Float](repeating: 0, count: x.count)
            }
            var numeric = [Double](repeating: 0, count: x.count)
            var xs = inputs
            for j in 0..<x.count {
                let v = x.scalars[j]
                let up = v + eps, down = v - eps
                xs[i] = perturbed(x, j, up)
                let fUp = loss(xs)
                xs[i] = perturbed(x, j, down)
                let fDown = loss(xs)
                numeric[j] = (fUp - fDown) / Double(up - down)
            }
            let scale = max(analytic.map { Double(abs($0)) }.max() ?? 0, numeric.map(abs).max() ?? 0, 1e-3)
            var failures: [String] = []
            for j in 0..<x.count {
                let a = Double(analytic[j]), n = numeric[j]
                if !(abs(a - n) <= tolerance * scale) {
                    failures.append("element \(j) \(multiIndex(j, x.shape)): analytic \(a), numeric \(n), diff \(abs(a - n))")
                }
            }
            if !failures.isEmpty {
                let missing = grads[watched[i]] == nil ? " (no gradient returned)" : ""
                XCTFail("\(op): input \(i) \(x.shape)\(missing): \(failures.count)/\(x.count) elements off by more than "
                        + "\(tolerance) × \(scale):\n  " + failures.prefix(6).joined(separator: "\n  "),
                        file: file, line: line)
            }
        }
    }

    private static func perturbed(_ x: Tensor, _ j: Int, _ value: Float) -> Tensor {
        var t = x.untracked
        t.mutablePointer()[j] = value
        return t
    }

    private static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// Standard-normal test values.
    static func normal(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.randomNormal(shape, std: std, using: &rng)
    }

    /// Uniform test values in [low, high) kept at least `margin` away from each kink of a
    /// piecewise op, so that central differences never straddle one.
    static func awayFrom(_ kinks: [Float], _ shape: [Int], low: Float, high: Float, margin: Float = 0.1, seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        var values: [Float] = []
        while values.count < Tensor.elementCount(shape) {
            let v = low + (high - low) * rng.nextUniform()
            if kinks.allSatisfy({ abs(v - $0) >= margin }) { values.append(v) }
        }
        return Tensor(shape: shape, values)
    }
}
