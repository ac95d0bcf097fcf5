// AS-MLP against the SSF reference PyTorch model: state-dict keys, eval logits, gradients, SSF
// placement, parameter counts, and the axial shift against a composition of engine ops.
// Fixtures come from tools/gen_model_fixtures_asmlp.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

final class ASMLPTests: XCTestCase {
    /// The fixture's `__metadata__["fixture"]`: the reference `AS_MLP` kwargs, and full-size counts.
    private struct Metadata: Decodable {
        struct Kwargs: Decodable {
            let imgSize, patchSize, inChans, numClasses, embedDim, shiftSize: Int
            let depths: [Int]
            let mlpRatio: Float
            let asBias, patchNorm: Bool
            let tuningMode: String?
        }
        struct Counts: Decodable {
            let params, ssf, ssfTrainable100: Int
        }
        let config: Kwargs
        let referenceCounts: [String: Counts]?
    }

    private struct Fixture {
        let file: SafeTensorsFile
        let metadata: Metadata
        let model: ASMLP
        let state: [String: Tensor]
        subscript(_ key: String) -> Tensor { file.tensors[key]! }
    }

    /// Loads a fixture and builds its config (with SSF sites when the reference had them).
    private func fixture(_ name: String) throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        let file = try SafeTensors.load(url)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let metadata = try decoder.decode(Metadata.self, from: Data(try XCTUnwrap(file.metadata["fixture"]).utf8))
        let k = metadata.config
        let config = ASMLPConfig(embedDim: k.embedDim, depths: k.depths, numClasses: k.numClasses, inChannels: k.inChans,
                                 patchSize: k.patchSize, shiftSize: k.shiftSize, mlpRatio: k.mlpRatio, bias: k.asBias,
                                 patchNorm: k.patchNorm)
        var rng = RandomGenerator(seed: 1)
        let model = ASMLP(config: config, using: &rng)
        if k.tuningMode == "ssf" { model.enableSSF(using: &rng) }
        var state: [String: Tensor] = [:]
        for (key, value) in file.tensors where key.hasPrefix("model.") { state[String(key.dropFirst(6))] = value }
        return Fixture(file: file, metadata: metadata, model: model, state: state)
    }

    /// ‖a − b‖∞.
    private func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    private let fixtureNames = ["asmlp_plain", "asmlp_ssf"]

    func testStateDictMatchesReferenceExactly() throws {
        for name in fixtureNames {
            let f = try fixture(name)
            let report = f.model.load(stateDict: f.state)
            XCTAssertTrue(report.isExact, "\(name): \(report)")
            XCTAssertEqual(Set(f.model.stateDict().keys), Set(f.state.keys), name)
        }
    }

    func testEvalLogitsMatchReference() throws {
        for name in fixtureNames {
            let f = try fixture(name)
            f.model.load(stateDict: f.state)
            let err = maxAbsDiff(f.model(f["input"]), f["logits"])
            print("\(name): max |Δlogits| = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    /// Input and parameter gradients of (logits · R).sum(); for asmlp_ssf these cover every SSF vector.
    func testGradientsMatchReference() throws {
        for name in fixtureNames {
            let f = try fixture(name)
            f.model.load(stateDict: f.state)
            let params = Dictionary(uniqueKeysWithValues: f.model.namedParameters())
            let tape = Tape()
            var input = f["input"]
            let logits = tape.recording { () -> Tensor in
                input = tape.watch(input)
                return f.model(input)
            }
            XCTAssertLessThanOrEqual(maxAbsDiff(logits, f["logits"]), 1e-4, name)
            let grads = tape.backward(from: logits, seed: f["R"])
            var worst = relativeError(try XCTUnwrap(grads[input]), f["grad.input"], floor: 1e-3)
            XCTAssertLessThanOrEqual(worst, 1e-3, "\(name) input")
            var checked = 0
            for (key, expected) in f.file.tensors where key.hasPrefix("grad.model.") {
                let param = String(key.dropFirst("grad.model.".count))
                let g = try XCTUnwrap(grads[key: try XCTUnwrap(params[param], param)], param)
                let err = relativeError(g, expected, floor: 1e-3)
                XCTAssertLessThanOrEqual(err, 1e-3, "\(name) \(param)")
                worst = max(worst, err)
                checked += 1
            }
            print("\(name): \(checked) parameter gradients + input, worst relative error = \(worst)")
            XCTAssertGreaterThan(checked, 10, name)
        }
    }

    func testSSFSiteNamesAndCountsFollowReference() throws {
        let f = try fixture("asmlp_ssf")
        let names = Set(f.model.stateDict().keys.filter { $0.contains("ssf_") })
        XCTAssertEqual(names, Set(f.state.keys.filter { $0.contains("ssf_") }))
        for prefix in ["layers.1.blocks.1.", "layers.1.blocks.1.axial_shift.", "layers.1.blocks.1.mlp."] {
            let sites = prefix.hasSuffix("axial_shift.") ? 4 : 2
            for k in 1...sites { XCTAssertTrue(names.contains(prefix + "ssf_scale_\(k)"), prefix + "ssf_scale_\(k)") }
        }
        XCTAssertTrue(names.contains("ssf_scale_1") && names.contains("ssf_shift_1"))
        XCTAssertFalse(names.contains { $0.hasPrefix("patch_embed.") || $0.contains("downsample.") })
    }

    /// Builds each registered size once: parameter counts as the reference file's `AS_MLP`
    /// (printed into asmlp_plain's metadata), and SSF-SPEC's budget for AS-MLP-B.
    func testRegisteredModelsHaveReferenceParameterCountsAndSSFBudget() throws {
        let counts = try XCTUnwrap(try fixture("asmlp_plain").metadata.referenceCounts)
        XCTAssertEqual(counts["as_base_patch4_window7_224"]?.ssf, 266_752)
        XCTAssertEqual(Set(counts.keys), Set(asMLPSpecs.map(\.name)))
        for spec in asMLPSpecs {
            let expected = try XCTUnwrap(counts[spec.name])
            XCTAssertEqual(spec.family, "asmlp")
            XCTAssertEqual(spec.preprocess, PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean,
                                                             std: PreprocessConfig.imagenetStd, cropFraction: 0.9,
                                                             interpolation: .bicubic))
            let model = try ModelRegistry.create(spec.name)
            XCTAssertEqual(model.parameterCount, expected.params, spec.name)
            var rng = RandomGenerator(seed: 3)
            model.resetHead(numClasses: 100, using: &rng)
            model.enableSSF(using: &rng)
            model.setTrainable { $0.contains("head.") || $0.contains("ssf_scale") || $0.contains("ssf_shift_") }
            let ssf = model.namedParameters().filter { $0.0.contains("ssf_") }.reduce(0) { $0 + $1.1.count }
            XCTAssertEqual(ssf, expected.ssf, spec.name)
            XCTAssertEqual(model.trainableCount, expected.ssfTrainable100, spec.name)
        }
        // SSF-SPEC: AS-MLP-B has 266,752 SSF parameters and 0.369M trainable with a 100-class head.
        XCTAssertEqual(counts["as_base_patch4_window7_224"]?.ssfTrainable100, 369_252)
    }

    /// The shift as the reference writes it: zero-pad, split channels like `torch.chunk`, take
    /// each group's window at its offset, concatenate — all recorded engine ops.
    private func composedShift(_ x: Tensor, axis: Int, shiftSize: Int) -> Tensor {
        let pad = shiftSize / 2, length = x.shape[axis], channels = x.shape[1]
        var zeroShape = x.shape
        zeroShape[axis] = pad
        let padded = concat([.zeros(zeroShape), x, .zeros(zeroShape)], axis: axis)
        let groupSize = (channels + shiftSize - 1) / shiftSize
        let groups = stride(from: 0, to: channels, by: groupSize).enumerated().map { g, start in
            let s = g - pad
            return padded.slice(axis: 1, range: start..<min(start + groupSize, channels))
                .slice(axis: axis, range: (pad - s)..<(pad - s + length))
        }
        return concat(groups, axis: 1)
    }

    func testAxialShiftMatchesComposedOpsForwardAndBackward() {
        var rng = RandomGenerator(seed: 5)
        for (shape, shiftSize) in [([2, 7, 5, 6], 5), ([1, 16, 3, 4], 5), ([2, 33, 6, 2], 5), ([1, 10, 4, 4], 3), ([1, 6, 3, 3], 7)] {
            let x = Tensor.randomNormal(shape, mean: 0, std: 1, using: &rng)
            let seed = Tensor.randomNormal(shape, mean: 0, std: 1, using: &rng)
            for axis in [2, 3] {
                let label = "shape \(shape), shift size \(shiftSize), axis \(axis)"
                var results: [(Tensor, Tensor)] = []
                let shifts: [(Tensor, Int, Int) -> Tensor] = [axialShifted(_:axis:shiftSize:), composedShift(_:axis:shiftSize:)]
                for shift in shifts {
                    let tape = Tape()
                    var xw = x
                    let y = tape.recording { () -> Tensor in
                        xw = tape.watch(x)
                        return shift(xw, axis, shiftSize)
                    }
                    results.append((y.untracked, tape.backward(from: y, seed: seed)[xw]!))
                }
                XCTAssertEqual(relativeError(results[0].0, results[1].0, floor: 1), 0, "output, \(label)")
                XCTAssertEqual(relativeError(results[0].1, results[1].1, floor: 1), 0, "gradient, \(label)")
            }
        }
    }
}
