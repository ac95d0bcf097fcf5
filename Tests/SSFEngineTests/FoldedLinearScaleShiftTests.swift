// SSF folded into a frozen linear layer while the site trains: the same values and gradients as
// linear → scaleShift, and the site's routing (folded only where it pays, never for small γ).
import XCTest
@testable import SSFEngine
@testable import SSFNN

final class FoldedLinearScaleShiftTests: XCTestCase {
    private func maxGap(_ a: Tensor?, _ b: Tensor?) -> Float {
        guard let a, let b else { return .infinity }
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    /// On the engine's GEMM (γ in the forward's stores and in the backward's packing of W) and
    /// on BLAS (γ folded into a copy of W).
    func testValuesAndGradientsMatchLinearThenScaleShift() {
        for (rows, inF, outF, withBias, own) in [(37, 9, 13, true, true), (64, 16, 40, false, true), (5, 20, 7, true, true),
                                                 (300, 40, 70, true, true), (37, 9, 13, true, false), (300, 40, 70, true, false)] {
            let previous = BLAS.ownKernelEnabled
            BLAS.ownKernelEnabled = own && previous
            defer { BLAS.ownKernelEnabled = previous }
            let x = GradientCheck.normal([rows, inF], seed: 1)
            let w = GradientCheck.normal([outF, inF], seed: 2, std: 0.3)
            let b: Tensor? = withBias ? GradientCheck.normal([outF], seed: 3) : nil
            let scale = GradientCheck.normal([outF], seed: 4, std: 0.3) + Tensor.ones([outF])
            let shift = GradientCheck.normal([outF], seed: 5, std: 0.3)
            let upstream = GradientCheck.normal([rows, outF], seed: 6)
            func run(_ folded: Bool) -> (Tensor, [Tensor?]) {
                let tape = Tape()
                let (xv, sv, hv) = (tape.watch(x), tape.watch(scale), tape.watch(shift))
                let y = tape.recording { () -> Tensor in
                    folded ? linearFoldedScaleShift(xv, weight: w, bias: b, scale: sv, shift: hv)
                           : scaleShift(linear(xv, weight: w, bias: b), scale: sv, shift: hv)
                }
                let loss = tape.recording { (y * upstream).sum() }
                let grads = tape.backward(from: loss)
                return (y, [grads[xv], grads[sv], grads[hv]])
            }
            let (yf, gf) = run(true), (yu, gu) = run(false)
            let label = "\(rows)×\(inF)→\(outF)\(BLAS.ownKernelEnabled ? " (engine's GEMM)" : " (BLAS)")"
            XCTAssertLessThanOrEqual(maxGap(yf, yu), 1e-5, "output \(label)")
            for (i, name) in ["x", "scale", "shift"].enumerated() {
                let magnitude = gu[i].map { $0.scalars.map(abs).max() ?? 0 } ?? 0
                XCTAssertGreaterThan(magnitude, 0, "\(name) \(label)")
                XCTAssertLessThanOrEqual(maxGap(gf[i], gu[i]), 2e-5 * max(1, magnitude), "\(name) gradient \(label)")
            }
        }
    }

    /// The MLP's GELU → linear → site as one op: the same values and gradients as GELU, then the
    /// folded linear, with GELU′ applied in the input-gradient product's stores (engine's GEMM) or
    /// in the pass after it (BLAS).
    func testGELUThroughTheFoldedLinearMatchesGELUThenTheFoldedLinear() {
        for (rows, inF, outF, own) in [(37, 40, 13, true), (300, 70, 48, true), (301, 36, 20, true), (37, 40, 13, false), (300, 70, 48, false)] {
            let previous = BLAS.ownKernelEnabled
            BLAS.ownKernelEnabled = own && previous
            defer { BLAS.ownKernelEnabled = previous }
            let u = GradientCheck.normal([rows, inF], seed: 11, std: 1.5)
            let w = GradientCheck.normal([outF, inF], seed: 12, std: 0.3)
            let b = GradientCheck.normal([outF], seed: 13)
            let scale = GradientCheck.normal([outF], seed: 14, std: 0.3) + Tensor.ones([outF])
            let shift = GradientCheck.normal([outF], seed: 15, std: 0.3)
            let upstream = GradientCheck.normal([rows, outF], seed: 16)
            func run(_ fused: Bool) -> (Tensor, [Tensor?]) {
                let tape = Tape()
                let (uv, sv, hv) = (tape.watch(u), tape.watch(scale), tape.watch(shift))
                let y = tape.recording { () -> Tensor in
                    fused ? geluLinearFoldedScaleShift(uv, weight: w, bias: b, scale: sv, shift: hv)
                          : linearFoldedScaleShift(gelu(uv), weight: w, bias: b, scale: sv, shift: hv)
                }
                let loss = tape.recording { (y * upstream).sum() }
                let grads = tape.backward(from: loss)
                return (y, [grads[uv], grads[sv], grads[hv]])
            }
            let (yf, gf) = run(true), (yu, gu) = run(false)
            let label = "\(rows)×\(inF)→\(outF)\(BLAS.ownKernelEnabled ? " (engine's GEMM)" : " (BLAS)")"
            XCTAssertEqual(maxGap(yf, yu), 0, "output \(label)")
            for (i, name) in ["u", "scale", "shift"].enumerated() {
                let magnitude = gu[i].map { $0.scalars.map(abs).max() ?? 0 } ?? 0
                XCTAssertGreaterThan(magnitude, 0, "\(name) \(label)")
                XCTAssertLessThanOrEqual(maxGap(gf[i], gu[i]), 1e-6 * max(1, magnitude), "\(name) gradient \(label)")
            }
        }
    }

    func testTheSiteFoldsOnlyOverAFrozenLayerWithEnoughRowsAndUsableScales() {
        var rng = RandomGenerator(seed: 7)
        let layer = Linear(8, 6, using: &rng)
        let site = ScaleShift(channels: 6, after: "fc", using: &rng)
        /// The op kinds one training step of `layer` then `site` runs, with the layer trainable or not.
        func kinds(rows: Int, trainLayer: Bool) -> [String] {
            layer.weight.trainable = trainLayer
            layer.bias?.trainable = trainLayer
            let x = Tensor.randomNormal([rows, 8], using: &rng)
            let (_, report) = OpProfile.measure { () -> Void in
                let tape = Tape()
                let y = tape.recording { layer(x, then: site).sum() }
                XCTAssertNotNil(tape.backward(from: y)[key: site.scale])
            }
            return report.entries.map(\.name)
        }
        // Folded: the linear op applies the site, no scale-shift op runs.
        XCTAssertFalse(kinds(rows: 40, trainLayer: false).contains("scale-shift"))
        // Few rows: folded where the engine's GEMM runs both products (γ costs nothing there); on
        // BLAS, too few for the fold to pay: linear, then the site.
        let previous = BLAS.ownKernelEnabled
        XCTAssertEqual(!kinds(rows: 12, trainLayer: false).contains("scale-shift"), previous)
        BLAS.ownKernelEnabled = false
        XCTAssertTrue(kinds(rows: 12, trainLayer: false).contains("scale-shift"))
        XCTAssertFalse(kinds(rows: 40, trainLayer: false).contains("scale-shift"))
        BLAS.ownKernelEnabled = previous
        // A trained layer: linear, then the site.
        XCTAssertTrue(kinds(rows: 40, trainLayer: true).contains("scale-shift"))
        // Behind a GELU the folded layer takes the GELU's gradient too: no activation backward.
        layer.weight.trainable = false
        layer.bias?.trainable = false
        let (_, report) = OpProfile.measure { () -> Void in
            let tape = Tape()
            let y = tape.recording { layer.afterGELU(Tensor.randomNormal([40, 8], using: &rng), then: site).sum() }
            XCTAssertNotNil(tape.backward(from: y)[key: site.scale])
        }
        XCTAssertEqual(report.entries.map(\.name).filter { $0.hasPrefix("activation") || $0 == "scale-shift" }, ["activation"])
        // A γ near zero: the pre-scale output cannot be recovered from the output, so no fold.
        site.scale.value = Tensor.zeros([6])
        XCTAssertTrue(kinds(rows: 40, trainLayer: false).contains("scale-shift"))
    }
}
