// Vision Transformer against timm: state-dict keys, eval logits, gradients, SSF placement, parameter
// counts, SSF training gradients, position-embedding resampling, and a full-size ViT-B/16 with
// closed-form weights.
// Fixtures come from tools/gen_model_fixtures_vit.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
import SSFTestSupport

/// A ViT fixture file: the timm state (`model.` prefix stripped), its other tensors, and the model
/// built from the stored timm kwargs.
struct ViTFixture {
    /// timm's kwargs as stored in the fixture metadata.
    private struct TimmKwargs: Decodable {
        let img_size: Int, patch_size: Int, embed_dim: Int, depth: Int, num_heads: Int
        let mlp_ratio: Double, num_classes: Int, qkv_bias: Bool
        let init_values: Float?
    }
    private struct Metadata: Decodable { let config: TimmKwargs }

    let file: SafeTensorsFile
    let config: VisionTransformerConfig
    let state: [String: Tensor]

    init(_ name: String) throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        file = try SafeTensors.load(url)
        let kw = try JSONDecoder().decode(Metadata.self, from: Data(file.metadata["fixture"]!.utf8)).config
        config = VisionTransformerConfig(imgSize: kw.img_size, patchSize: kw.patch_size, numClasses: kw.num_classes,
                                         embedDim: kw.embed_dim, depth: kw.depth, numHeads: kw.num_heads,
                                         mlpRatio: kw.mlp_ratio, qkvBias: kw.qkv_bias, layerScaleInit: kw.init_values)
        state = tensors(withPrefix: "model.", in: file)
    }

    subscript(_ key: String) -> Tensor { file.tensors[key]! }

    /// A model with this fixture's configuration (random weights).
    func makeModel(seed: UInt64 = 1) -> VisionTransformer {
        var rng = RandomGenerator(seed: seed)
        return VisionTransformer(config: config, using: &rng)
    }
}

/// The tensors of `file` whose names start with `prefix`, with the prefix removed.
func tensors(withPrefix prefix: String, in file: SafeTensorsFile) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (key, value) in file.tensors where key.hasPrefix(prefix) { out[String(key.dropFirst(prefix.count))] = value }
    return out
}

/// SSF training as the reference sets it up, checked against a `<family>_ssf_grad` fixture: loads the
/// backbone (`model.`) and SSF vectors (`ssf.`) into `model` (SSF enabled), trains only the SSF vectors
/// and the head, and compares the logits and the gradients of (logits · R).sum() with the fixture's
/// `logits` and `grad.<key>` (one per SSF vector and head parameter). Frozen tensors must get none.
func checkSSFTrainingGradients(_ model: some ImageClassifier, fixture file: SafeTensorsFile, label: String,
                               isHead: (String) -> Bool) {
    let state = tensors(withPrefix: "model.", in: file).merging(tensors(withPrefix: "ssf.", in: file)) { a, _ in a }
    let report = model.load(stateDict: state)
    XCTAssertTrue(report.isExact, "\(label): \(report)")
    func trains(_ name: String) -> Bool { name.contains("ssf_scale") || name.contains("ssf_shift_") || isHead(name) }
    model.setTrainable(where: trains)
    let tape = Tape()
    let logits = tape.recording { model(file.tensors["input"]!) }
    let logitsError = relativeError(logits, file.tensors["logits"]!, floor: 1)
    XCTAssertLessThanOrEqual(logitsError, 1e-4, "\(label) logits")
    let grads = tape.backward(from: logits, seed: file.tensors["R"]!)
    let expected = tensors(withPrefix: "grad.", in: file)
    let params = model.namedParameters()
    XCTAssertEqual(Set(params.map(\.0).filter(trains)), Set(expected.keys), "\(label): trained tensors")
    var worst: (error: Float, name: String) = (0, "")
    for (name, p) in params {
        guard trains(name) else {
            XCTAssertNil(grads[key: p], "\(label): frozen \(name) got a gradient")
            continue
        }
        guard let g = grads[key: p], let want = expected[name] else {
            XCTFail("\(label): no gradient for \(name)")
            continue
        }
        let err = relativeError(g, want, floor: 1e-3)
        XCTAssertLessThanOrEqual(err, 1e-3, "\(label) \(name)")
        if err >= worst.error { worst = (err, name) }
    }
    print("\(label) (SSF + head trainable): max |Δlogits| (scaled) = \(logitsError), "
          + "worst relative gradient error = \(worst.error) (\(worst.name)) over \(expected.count) tensors")
}

final class VisionTransformerTests: XCTestCase {
    private var rngForTests = RandomGenerator(seed: 5)

    func testStateDictMatchesTimmExactly() throws {
        for name in ["vit_grad", "vit_jax"] {
            let f = try ViTFixture(name)
            let model = f.makeModel()
            let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value.shape) })
            XCTAssertEqual(Set(shapes.keys), Set(f.state.keys), name)
            for (key, value) in f.state { XCTAssertEqual(shapes[key], value.shape, "\(name): \(key)") }
            let report = model.load(stateDict: f.state)
            XCTAssertTrue(report.isExact, "\(name): \(report)")
        }
    }

    func testEvalLogitsMatchTimm() throws {
        for name in ["vit_grad", "vit_jax"] {
            let f = try ViTFixture(name)
            let model = f.makeModel()
            model.load(stateDict: f.state)
            let err = relativeError(model(f["input"]), f["logits"], floor: 1)
            print("\(name): max |Δlogits| (scaled) = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-4, name)
        }
    }

    func testGradientsMatchTorch() throws {
        let f = try ViTFixture("vit_grad")
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
        print("vit_grad: worst relative gradient error = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-3)
    }

    func testSSFSitesMatchReferencePlacement() throws {
        let f = try ViTFixture("vit_grad")
        let model = f.makeModel()
        var rng = RandomGenerator(seed: 2)
        model.enableSSF(using: &rng)
        let ssf = tensors(withPrefix: "ssf.", in: f.file)
        let report = model.load(stateDict: f.state.merging(ssf) { a, _ in a })
        XCTAssertTrue(report.isExact, "\(report)")
        let err = relativeError(model(f["input"]), f["ssf_logits"], floor: 1)
        print("vit_grad with SSF: max |Δlogits| (scaled) = \(err)")
        XCTAssertLessThanOrEqual(err, 1e-4)
    }

    func testSSFTrainingGradientsMatchTorch() throws {
        let f = try ViTFixture("vit_ssf_grad")
        let model = f.makeModel()
        var rng = RandomGenerator(seed: 2)
        model.enableSSF(using: &rng)
        checkSSFTrainingGradients(model, fixture: f.file, label: "vit_ssf_grad") { $0.hasPrefix("head.") }
    }

    func testPositionEmbeddingResampleMatchesTimm() throws {
        let f = try ViTFixture("vit_jax")
        let pos = f.state["pos_embed"]!
        for (h, w) in [(5, 5), (2, 2), (4, 6)] {
            let resampled = try resamplePositionEmbedding(pos, gridSize: (h, w))
            let err = relativeError(resampled, f["posembed.\(h)x\(w)"], floor: 1)
            XCTAssertLessThanOrEqual(err, 1e-5, "\(h)x\(w)")
        }
        XCTAssertEqual(try resamplePositionEmbedding(pos, gridSize: (3, 3)).scalars, pos.scalars)
        XCTAssertThrowsError(try resamplePositionEmbedding(pos, gridSize: (4, 4), oldGridSize: (2, 4)))
    }

    func testOtherImageSizeLoadsResampledCheckpoint() throws {
        let f = try ViTFixture("vit_jax")
        var config = f.config
        config.imgSize = 40  // a 5×5 patch grid instead of the checkpoint's 3×3
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: config, using: &rng)
        XCTAssertFalse(model.load(stateDict: f.state).isExact)
        let adapted = try vitAdaptCheckpoint(f.state, config: config)
        XCTAssertEqual(relativeError(adapted["pos_embed"]!, f["posembed.5x5"], floor: 1), 0, accuracy: 1e-5)
        XCTAssertTrue(model.load(stateDict: adapted).isExact)
        XCTAssertEqual(model(Tensor.zeros([2, 3, 40, 40])).shape, [2, config.numClasses])
    }

    func testDropPathOnlyWhileTraining() throws {
        let f = try ViTFixture("vit_grad")
        var config = f.config
        config.dropPathRate = 0.5
        var rng = RandomGenerator(seed: 4)
        let model = VisionTransformer(config: config, using: &rng)
        model.load(stateDict: f.state)
        let eval = model(f["input"])
        XCTAssertLessThanOrEqual(relativeError(eval, f["logits"], floor: 1), 1e-4)
        model.setTraining(true)
        XCTAssertGreaterThan(relativeError(model(f["input"]), eval, floor: 1), 1e-3)
        model.setTraining(false)
        XCTAssertEqual(model(f["input"]).scalars, eval.scalars)
    }

    func testHeadlessModelReturnsClassTokenFeaturesAndHeadReset() throws {
        let f = try ViTFixture("vit_jax")
        let model = f.makeModel()
        model.load(stateDict: f.state)
        let logits = model(f["input"])
        model.resetHead(numClasses: 0, using: &rngForTests)
        XCTAssertEqual(model.numClasses, 0)
        XCTAssertFalse(model.stateDict().keys.contains { $0.hasPrefix("head.") })
        let features = model(f["input"])
        XCTAssertEqual(features.shape, [1, f.config.embedDim])
        let head = linear(features, weight: f.state["head.weight"]!, bias: f.state["head.bias"]!)
        XCTAssertLessThanOrEqual(relativeError(head, logits, floor: 1), 1e-6)
        model.resetHead(numClasses: 5, using: &rngForTests)
        XCTAssertEqual(model(f["input"]).shape, [1, 5])
    }

    func testRegisteredSpecsFollowTimmPretrainedConfigs() throws {
        for name in ModelRegistry.names where name.hasPrefix("vit_") {
            let spec = try ModelRegistry.spec(name)
            XCTAssertEqual(spec.family, "vit")
            XCTAssertEqual(spec.preprocess.mean, [0.5, 0.5, 0.5])
            XCTAssertEqual(spec.preprocess.std, [0.5, 0.5, 0.5])
            XCTAssertEqual(spec.preprocess.interpolation, .bicubic)
            let is384 = name.contains("384")
            XCTAssertEqual(spec.preprocess.inputSize, is384 ? 384 : 224, name)
            XCTAssertEqual(spec.preprocess.cropFraction, is384 ? 1.0 : 0.9, name)
        }
        XCTAssertEqual(try ModelRegistry.spec("vit_base_patch16_224.augreg_in21k").defaultNumClasses, 21843)
        XCTAssertEqual(try ModelRegistry.spec("vit_base_patch16_224.orig_in21k").defaultNumClasses, 0)
    }
}

/// Full-size models: timm's parameter counts, the SSF budget, and the seeded ViT-B/16 comparison.
final class VisionTransformerFullSizeTests: XCTestCase {
    private struct SeededMetadata: Decodable { let param_counts: [String: Int] }

    private func seededFixture() throws -> SafeTensorsFile {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "vit_b16_seeded", withExtension: "safetensors", subdirectory: "Fixtures"))
        return try SafeTensors.load(url)
    }

    /// u ∈ [−1, 1) for element `i` of `stream`: SplitMix64's finaliser of i·φ + s·c, top 24 bits
    /// (the formula in the fixture's metadata and tools/gen_model_fixtures_vit.py).
    private static func closedFormUniform(_ i: Int, stream: UInt64) -> Double {
        var z = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ stream &* 0xD1B5_4A32_D192_ED03
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return 2 * (Double(z >> 40) / 16_777_216) - 1
    }

    /// The closed-form tensor for a parameter name, shape and stream, rounded to Float32.
    private static func closedFormTensor(_ name: String, shape: [Int], stream: UInt64) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let count = t.count
        let fanIn = count / shape[0]
        let value: (Double) -> Double
        if shape.count == 1 && name.contains("norm") && name.hasSuffix("weight") {
            value = { 1 + 0.25 * $0 }
        } else if shape.count == 1 {
            value = { 0.1 * $0 }
        } else if name == "cls_token" {
            value = { 0.5 * $0 }
        } else if name == "pos_embed" {
            value = { 0.1 * $0 }
        } else if name == "input" {
            value = { $0 }
        } else {
            let bound = (3 / Double(fanIn)).squareRoot()
            value = { $0 * bound }
        }
        let p = t.mutablePointer()
        Threading.parallelFor(count, minimumPerThread: 1 << 16) { range in
            for i in range { p[i] = Float(value(closedFormUniform(i, stream: stream))) }
        }
        return t
    }

    func testSeededFullSizeViTB16MatchesTimm() throws {
        let file = try seededFixture()
        let model = try ModelRegistry.create("vit_base_patch16_224")
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value.shape) })
        var state: [String: Tensor] = [:]
        for (t, name) in shapes.keys.sorted().enumerated() {
            state[name] = Self.closedFormTensor(name, shape: shapes[name]!, stream: UInt64(t + 1))
        }
        XCTAssertTrue(model.load(stateDict: state).isExact)
        let image = Self.closedFormTensor("input", shape: [1, 3, 224, 224], stream: 1_000_003)
        let logits = model(image)
        let expected = file.tensors["logits"]!, expected64 = file.tensors["logits_f64"]!
        let diff = relativeError(logits, expected, floor: .greatestFiniteMagnitude) * .greatestFiniteMagnitude
        let diff64 = relativeError(logits, expected64, floor: .greatestFiniteMagnitude) * .greatestFiniteMagnitude
        print("seeded ViT-B/16: max |Δlogits| vs torch float32 = \(diff), vs torch float64 = \(diff64), "
              + "max |logit| = \(expected.scalars.map(abs).max()!)")
        XCTAssertLessThanOrEqual(diff, 1e-4)
    }

    func testRegisteredModelsHaveTimmParameterCountsAndSSFBudget() throws {
        let counts = try JSONDecoder().decode(SeededMetadata.self, from: Data(seededFixture().metadata["fixture"]!.utf8)).param_counts
        XCTAssertEqual(Set(counts.keys), Set(ModelRegistry.names.filter { $0.hasPrefix("vit_") }))
        for (name, expected) in counts.sorted(by: { $0.key < $1.key }) {
            let model = try ModelRegistry.create(name)
            XCTAssertEqual(model.parameterCount, expected, name)
            guard name == "vit_base_patch16_224" else { continue }
            // SSF-SPEC: ViT-B/16 has 205,824 SSF parameters (16,896 per block); 0.283M trainable at 100 classes.
            var rng = RandomGenerator(seed: 3)
            model.resetHead(numClasses: 100, using: &rng)
            model.enableSSF(using: &rng)
            let ssf = model.namedParameters().filter { $0.0.contains("ssf_scale") || $0.0.contains("ssf_shift") }
            XCTAssertEqual(ssf.reduce(0) { $0 + $1.1.count }, 205_824)
            XCTAssertEqual(ssf.filter { $0.0.hasPrefix("blocks.0.") }.reduce(0) { $0 + $1.1.count }, 16_896)
            model.setTrainable { $0.contains("head.") || $0.contains("ssf_scale") || $0.contains("ssf_shift_") }
            XCTAssertEqual(model.trainableCount, 282_724)
        }
    }
}
