// Swin Transformer against timm: state-dict keys, eval logits (shifted windows, padding), gradients,
// SSF placement and training gradients, parameter counts, and the conversion of timm 0.6 / SSF-reference checkpoints.
// Fixtures come from tools/gen_model_fixtures_swin.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

final class SwinTransformerTests: XCTestCase {
    /// timm's kwargs and the extra fixture entries as stored in the metadata.
    private struct TimmKwargs: Decodable {
        let img_size: Int, patch_size: Int, embed_dim: Int, depths: [Int], num_heads: [Int]
        let window_size: Int, mlp_ratio: Double, num_classes: Int
    }
    private struct Metadata: Decodable {
        let config: TimmKwargs
        let legacy_keys: [[String?]]?
        let param_counts: [String: Int]?
    }

    private struct Fixture {
        let file: SafeTensorsFile
        let metadata: Metadata
        let config: SwinTransformerConfig
        let state: [String: Tensor]
        subscript(_ key: String) -> Tensor { file.tensors[key]! }

        func makeModel(seed: UInt64 = 1) -> SwinTransformer {
            var rng = RandomGenerator(seed: seed)
            return SwinTransformer(config: config, using: &rng)
        }
    }

    private func fixture(_ name: String) throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        let file = try SafeTensors.load(url)
        let metadata = try JSONDecoder().decode(Metadata.self, from: Data(file.metadata["fixture"]!.utf8))
        let kw = metadata.config
        let config = SwinTransformerConfig(imgSize: kw.img_size, patchSize: kw.patch_size, numClasses: kw.num_classes,
                                           embedDim: kw.embed_dim, depths: kw.depths, numHeads: kw.num_heads,
                                           windowSize: kw.window_size, mlpRatio: kw.mlp_ratio)
        return Fixture(file: file, metadata: metadata, config: config, state: tensors(withPrefix: "model.", in: file))
    }

    func testStateDictMatchesTimmExactly() throws {
        for name in ["swin_grad", "swin_pad"] {
            let f = try fixture(name)
            let model = f.makeModel()
            let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value.shape) })
            XCTAssertEqual(Set(shapes.keys), Set(f.state.keys), name)
            for (key, value) in f.state { XCTAssertEqual(shapes[key], value.shape, "\(name): \(key)") }
            XCTAssertTrue(model.load(stateDict: f.state).isExact, name)
            XCTAssertFalse(shapes.keys.contains { $0.hasPrefix("layers.0.downsample") })
        }
    }

    func testEvalLogitsMatchTimm() throws {
        for name in ["swin_grad", "swin_pad"] {
            let f = try fixture(name)
            let model = f.makeModel()
            model.load(stateDict: f.state)
            let err = relativeError(model(f["input"]), f["logits"], floor: 1)
            print("\(name): max |Δlogits| (scaled) = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    func testWindowsShiftsAndMasksFollowTimm() throws {
        let f = try fixture("swin_grad")
        let model = f.makeModel()
        let blocks = model.layers.modules.map { $0.blocks.modules }
        // Stage resolutions 16, 8, 4 with window 4: shifted odd blocks in stages 0 and 1, none in stage 2.
        XCTAssertEqual(blocks.map { $0.map(\.shiftSize) }, [[0, 2], [0, 2], [0, 0]])
        XCTAssertEqual(blocks[0][1].attentionMask?.shape, [16, 16, 16])
        XCTAssertEqual(blocks[1][1].attentionMask?.shape, [4, 16, 16])
        XCTAssertNil(blocks[2][1].attentionMask)
        // The first window of a shifted map is a single region; the last one mixes four.
        let mask = blocks[1][1].attentionMask!.scalars
        XCTAssertTrue(mask[0..<256].allSatisfy { $0 == 0 })
        XCTAssertEqual(Set(mask[(3 * 256)...]), [0, -100])
        XCTAssertEqual(swinRelativePositionIndex(windowSize: 2), [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4])
    }

    func testGradientsMatchTorch() throws {
        let f = try fixture("swin_grad")
        let model = f.makeModel()
        model.load(stateDict: f.state)
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters())
        let tape = Tape()
        var input = f["input"]
        let logits = tape.recording { () -> Tensor in
            input = tape.watch(input)
            return model(input)
        }
        let grads = tape.backward(from: logits, seed: f["R"])
        var worst = relativeError(try XCTUnwrap(grads[input]), f["grad.input"], floor: 1e-3)
        for (name, expected) in tensors(withPrefix: "grad.model.", in: f.file) {
            let g = try XCTUnwrap(grads[key: params[name]!], name)
            let err = relativeError(g, expected, floor: 1e-3)
            XCTAssertLessThanOrEqual(err, 1e-3, name)
            worst = max(worst, err)
        }
        print("swin_grad: worst relative gradient error = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-3)
    }

    func testSSFSitesMatchReferencePlacement() throws {
        let f = try fixture("swin_grad")
        let model = f.makeModel()
        var rng = RandomGenerator(seed: 2)
        model.enableSSF(using: &rng)
        let report = model.load(stateDict: f.state.merging(tensors(withPrefix: "ssf.", in: f.file)) { a, _ in a })
        XCTAssertTrue(report.isExact, "\(report)")
        XCTAssertFalse(model.stateDict().keys.contains { $0.contains("downsample") && $0.contains("ssf_") })
        let err = relativeError(model(f["input"]), f["ssf_logits"], floor: 1)
        print("swin_grad with SSF: max |Δlogits| (scaled) = \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    func testSSFTrainingGradientsMatchTorch() throws {
        let f = try fixture("swin_ssf_grad")
        let model = f.makeModel()
        var rng = RandomGenerator(seed: 2)
        model.enableSSF(using: &rng)
        checkSSFTrainingGradients(model, fixture: f.file, label: "swin_ssf_grad") { $0.hasPrefix("head.") }
    }

    func testLegacyCheckpointLayoutIsConverted() throws {
        let f = try fixture("swin_grad")
        let pairs = try XCTUnwrap(f.metadata.legacy_keys)
        var legacy: [String: Tensor] = [:]
        for pair in pairs {
            let old = try XCTUnwrap(pair[0])
            legacy[old] = pair[1].map { f.state[$0]! } ?? Tensor.zeros([1])
        }
        XCTAssertTrue(legacy.keys.contains("layers.0.downsample.reduction.weight"))
        XCTAssertTrue(legacy.keys.contains("layers.0.blocks.1.attn_mask"))
        XCTAssertTrue(isSwinNonPersistentBuffer("layers.0.blocks.0.attn.relative_position_index"))
        let converted = swinRemapLegacyKeys(legacy)
        XCTAssertEqual(Set(converted.keys), Set(f.state.keys))
        for (key, value) in f.state { XCTAssertEqual(converted[key]?.scalars, value.scalars, key) }
        // Already-converted (and headless) checkpoints pass through unchanged.
        XCTAssertEqual(Set(swinRemapLegacyKeys(f.state).keys), Set(f.state.keys))
        let headless = f.state.filter { !$0.key.hasPrefix("head.") }
        XCTAssertEqual(Set(swinRemapLegacyKeys(headless).keys), Set(headless.keys))
        let model = f.makeModel()
        XCTAssertTrue(model.load(stateDict: try ModelRegistry.spec("swin_tiny_patch4_window7_224").convertCheckpoint(legacy).tensors).isExact)
        XCTAssertLessThanOrEqual(relativeError(model(f["input"]), f["logits"], floor: 1), 1e-4)
    }

    func testDropPathOnlyWhileTrainingAndHeadReset() throws {
        let f = try fixture("swin_pad")
        var config = f.config
        config.dropPathRate = 0.9
        var rng = RandomGenerator(seed: 4)
        let model = SwinTransformer(config: config, using: &rng)
        model.load(stateDict: f.state)
        let eval = model(f["input"])
        XCTAssertLessThanOrEqual(relativeError(eval, f["logits"], floor: 1), 1e-4)
        model.setTraining(true)
        XCTAssertGreaterThan(relativeError(model(f["input"]), eval, floor: 1), 1e-3)
        model.setTraining(false)
        model.resetHead(numClasses: 0, using: &rng)
        XCTAssertEqual(model.numClasses, 0)
        XCTAssertFalse(model.stateDict().keys.contains { $0.hasPrefix("head.") })
        XCTAssertEqual(model(f["input"]).shape, [1, config.numFeatures])
    }

    func testRegisteredModelsHaveTimmParameterCountsAndSSFBudget() throws {
        let counts = try XCTUnwrap(fixture("swin_pad").metadata.param_counts)
        XCTAssertEqual(Set(counts.keys), Set(ModelRegistry.names.filter { $0.hasPrefix("swin_") }))
        for (name, expected) in counts.sorted(by: { $0.key < $1.key }) {
            let spec = try ModelRegistry.spec(name)
            XCTAssertEqual(spec.preprocess, PreprocessConfig(inputSize: 224, mean: PreprocessConfig.imagenetMean,
                                                             std: PreprocessConfig.imagenetStd, cropFraction: 0.9, interpolation: .bicubic))
            let model = try ModelRegistry.create(name)
            XCTAssertEqual(model.parameterCount, expected, name)
            guard name == "swin_base_patch4_window7_224" else { continue }
            // SSF-SPEC: Swin-B has 267,264 SSF parameters; 0.370M trainable at 100 classes.
            var rng = RandomGenerator(seed: 3)
            model.resetHead(numClasses: 100, using: &rng)
            model.enableSSF(using: &rng)
            let ssf = model.namedParameters().filter { $0.0.contains("ssf_scale") || $0.0.contains("ssf_shift") }
            XCTAssertEqual(ssf.reduce(0) { $0 + $1.1.count }, 267_264)
            model.setTrainable { $0.contains("head.") || $0.contains("ssf_scale") || $0.contains("ssf_shift_") }
            XCTAssertEqual(model.trainableCount, 267_264 + 1024 * 100 + 100)  // 369,764 ≈ 0.370M
        }
    }
}
