// ConvNeXt against timm: state-dict keys, eval logits, gradients, SSF placement, SSF training
// gradients and parameter counts.
// Fixtures come from tools/gen_model_fixtures_convnext.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

final class ConvNeXtTests: XCTestCase {
    /// The fixture's `__metadata__["fixture"]`: timm's kwargs and full-size parameter counts.
    private struct Metadata: Decodable {
        struct TimmKwargs: Decodable {
            let depths: [Int], dims: [Int], num_classes: Int
            let kernel_sizes: Int?
        }
        let config: TimmKwargs
        let param_counts: [String: Int]?
    }

    private struct Fixture {
        let file: SafeTensorsFile
        let metadata: Metadata
        let model: ConvNeXt
        let state: [String: Tensor]
        subscript(_ key: String) -> Tensor { file.tensors[key]! }
    }

    private func fixture(_ name: String) throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        let file = try SafeTensors.load(url)
        let metadata = try JSONDecoder().decode(Metadata.self, from: Data(try XCTUnwrap(file.metadata["fixture"]).utf8))
        let kwargs = metadata.config
        let config = ConvNeXtConfig(depths: kwargs.depths, dims: kwargs.dims, numClasses: kwargs.num_classes,
                                    kernelSize: kwargs.kernel_sizes ?? 7)
        var rng = RandomGenerator(seed: 1)
        let model = ConvNeXt(config: config, using: &rng)
        var state: [String: Tensor] = [:]
        for (key, value) in file.tensors where key.hasPrefix("model.") { state[String(key.dropFirst(6))] = value }
        return Fixture(file: file, metadata: metadata, model: model, state: state)
    }

    func testStateDictMatchesTimmExactly() throws {
        for name in ["convnext_grad", "convnext_odd"] {
            let f = try fixture(name)
            let report = f.model.load(stateDict: f.state)
            XCTAssertTrue(report.isExact, "\(name): \(report)")
            XCTAssertEqual(Set(f.model.stateDict().keys), Set(f.state.keys))
        }
    }

    func testEvalLogitsMatchTimm() throws {
        for name in ["convnext_grad", "convnext_odd"] {
            let f = try fixture(name)
            f.model.load(stateDict: f.state)
            let logits = f.model(f["input"])
            let err = relativeError(logits, f["logits"], floor: 1)
            print("\(name): max |Δlogits| (scaled) = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    func testGradientsMatchTorch() throws {
        let f = try fixture("convnext_grad")
        f.model.load(stateDict: f.state)
        let params = Dictionary(uniqueKeysWithValues: f.model.namedParameters())
        let tape = Tape()
        var input = f["input"]
        let logits = tape.recording { () -> Tensor in
            input = tape.watch(input)
            return f.model(input)
        }
        let grads = tape.backward(from: logits, seed: f["R"])
        var worst: Float = 0
        let gx = try XCTUnwrap(grads[input])
        worst = max(worst, relativeError(gx, f["grad.input"], floor: 1e-3))
        for (key, expected) in f.file.tensors where key.hasPrefix("grad.model.") {
            let name = String(key.dropFirst("grad.model.".count))
            let g = try XCTUnwrap(grads[key: params[name]!], name)
            let err = relativeError(g, expected, floor: 1e-3)
            XCTAssertLessThanOrEqual(err, 1e-3, name)
            worst = max(worst, err)
        }
        print("convnext_grad: worst relative gradient error = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-3)
    }

    func testSSFSitesMatchReferencePlacement() throws {
        let f = try fixture("convnext_grad")
        var rng = RandomGenerator(seed: 2)
        f.model.enableSSF(using: &rng)
        var state = f.state
        for (key, value) in f.file.tensors where key.hasPrefix("ssf.") { state[String(key.dropFirst(4))] = value }
        let report = f.model.load(stateDict: state)
        XCTAssertTrue(report.isExact, "\(report)")
        let err = relativeError(f.model(f["input"]), f["ssf_logits"], floor: 1)
        print("convnext_grad with SSF: max |Δlogits| (scaled) = \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    /// The reference trains `head.norm` with the SSF vectors and `head.fc`.
    func testSSFTrainingGradientsMatchTorch() throws {
        let f = try fixture("convnext_ssf_grad")
        var rng = RandomGenerator(seed: 2)
        f.model.enableSSF(using: &rng)
        checkSSFTrainingGradients(f.model, fixture: f.file, label: "convnext_ssf_grad") { $0.hasPrefix("head.") }
    }

    func testRegisteredModelsHaveTimmParameterCountsAndSSFBudget() throws {
        let f = try fixture("convnext_odd")
        let counts = try XCTUnwrap(f.metadata.param_counts)
        XCTAssertEqual(counts.count, 3)
        for (name, expected) in counts.sorted(by: { $0.key < $1.key }) {
            let spec = try ModelRegistry.spec(name)
            XCTAssertEqual(spec.preprocess.inputSize, 224)
            XCTAssertEqual(spec.preprocess.interpolation, .bicubic)
            let model = try ModelRegistry.create(name)
            XCTAssertEqual(model.parameterCount, expected, name)
            guard name == "convnext_base" else { continue }
            // SSF-SPEC: ConvNeXt-B has 255,232 SSF parameters; 0.360M trainable at 100 classes with head.norm.
            var rng = RandomGenerator(seed: 3)
            model.resetHead(numClasses: 100, using: &rng)
            model.enableSSF(using: &rng)
            let ssf = model.namedParameters().filter { $0.0.contains("ssf_scale") || $0.0.contains("ssf_shift") }
            XCTAssertEqual(ssf.reduce(0) { $0 + $1.1.count }, 255_232)
            model.setTrainable { $0.contains("head.") || $0.contains("ssf_scale") || $0.contains("ssf_shift_") }
            XCTAssertEqual(model.trainableCount, 255_232 + 2 * 1024 + 1024 * 100 + 100) // 359,780 ≈ 0.360M
        }
    }

    func testPlainModelHasNoSSFEntriesAndHeadReset() {
        var rng = RandomGenerator(seed: 4)
        let model = ConvNeXt(config: .init(depths: [1, 1, 1, 1], dims: [8, 8, 8, 8], numClasses: 3), using: &rng)
        XCTAssertFalse(model.stateDict().keys.contains { $0.contains("ssf_") })
        XCTAssertFalse(model.stateDict().keys.contains { $0.hasPrefix("stages.0.downsample") })
        model.resetHead(numClasses: 0, using: &rng)
        XCTAssertEqual(model.numClasses, 0)
        XCTAssertEqual(model(Tensor.zeros([1, 3, 32, 32])).shape, [1, 8])
    }
}
