// The tuning methods: parity with PyTorch reference implementations (tools/gen_method_fixtures.py),
// trainable counts on ViT-B/16 and Swin-T, merging of the foldable methods, the refusals, and
// proof that frozen parameters cost no gradient work.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
@testable import SSFTuning
import SSFTestSupport

final class MethodTests: XCTestCase {
    /// The fixture: timm kwargs and method options from its metadata, every tensor by name.
    private struct Fixture {
        struct Config: Decodable {
            let img_size: Int, patch_size: Int, embed_dim: Int, depth: Int, num_heads: Int
            let mlp_ratio: Double, num_classes: Int, qkv_bias: Bool
        }
        struct Options: Decodable {
            let adapter_dim: Int, prompts: Int, lora_rank: Int, lora_alpha: Float, lora_targets: [String]
        }
        struct Metadata: Decodable { let config: Config, options: Options, methods: [String] }

        let tensors: [String: Tensor]
        let meta: Metadata

        init() throws {
            let url = try XCTUnwrap(Bundle.module.url(forResource: "vit_methods", withExtension: "safetensors", subdirectory: "Fixtures"))
            let file = try SafeTensors.load(url)
            tensors = file.tensors
            meta = try JSONDecoder().decode(Metadata.self, from: Data(file.metadata["fixture"]!.utf8))
        }

        /// The tensors under `prefix`, with the prefix removed.
        func group(_ prefix: String) -> [String: Tensor] {
            var out: [String: Tensor] = [:]
            for (k, v) in tensors where k.hasPrefix(prefix) { out[String(k.dropFirst(prefix.count))] = v }
            return out
        }

        func plainModel(seed: UInt64 = 3) -> VisionTransformer {
            let c = meta.config
            var rng = RandomGenerator(seed: seed)
            return VisionTransformer(config: .init(imgSize: c.img_size, patchSize: c.patch_size, numClasses: c.num_classes,
                                                   embedDim: c.embed_dim, depth: c.depth, numHeads: c.num_heads,
                                                   mlpRatio: c.mlp_ratio, qkvBias: c.qkv_bias), using: &rng)
        }

        /// `name` with the fixture's options.
        func method(_ name: String) throws -> TuningMethod {
            var m = try XCTUnwrap(TuningMethod(rawValue: name), name)
            m.options.adapterDim = meta.options.adapter_dim
            m.options.prompts = meta.options.prompts
            m.options.loraRank = meta.options.lora_rank
            m.options.loraAlpha = meta.options.lora_alpha
            m.options.loraTargets = meta.options.lora_targets
            return m
        }

        /// The model tuned with `name`, holding the fixture's base weights and method tensors.
        func tunedModel(_ name: String) throws -> (VisionTransformer, TuningMethod) {
            let model = plainModel()
            let method = try method(name)
            var rng = RandomGenerator(seed: 4)
            try method.apply(to: model, family: "vit", using: &rng)
            let report = model.load(stateDict: group("model.").merging(group("\(name).param.")) { a, _ in a })
            XCTAssertTrue(report.isExact, "\(name): \(report)")
            return (model, method)
        }
    }

    // MARK: Parity with the PyTorch references

    func testLogitsAndGradientsMatchPyTorch() throws {
        let f = try Fixture()
        for name in f.meta.methods {
            let (model, method) = try f.tunedModel(name)
            let tape = Tape()
            let logits = tape.recording { model(f.tensors["input"]!) }
            let logitsError = relativeError(logits, f.tensors["\(name).logits"]!, floor: 1)
            XCTAssertLessThanOrEqual(logitsError, 1e-4, "\(name) logits")
            let grads = tape.backward(from: logits, seed: f.tensors["R"]!)
            let expected = f.group("\(name).grad.")
            let params = model.namedParameters()
            XCTAssertEqual(Set(params.map(\.0).filter { method.trains($0, in: model) }), Set(expected.keys), "\(name): trained tensors")
            var worst: (Float, String) = (0, "")
            for (key, p) in params {
                guard method.trains(key, in: model) else {
                    XCTAssertNil(grads[key: p], "\(name): frozen \(key) got a gradient")
                    continue
                }
                guard let g = grads[key: p], let want = expected[key] else { XCTFail("\(name): no gradient for \(key)"); continue }
                let err = relativeError(g, want, floor: 1e-3)
                XCTAssertLessThanOrEqual(err, 1e-3, "\(name) \(key)")
                if err >= worst.0 { worst = (err, key) }
            }
            print("\(name): max |Δlogits| (scaled) = \(logitsError), worst relative gradient error = \(worst.0) (\(worst.1)) over \(expected.count) tensors")
        }
    }

    /// A freshly applied adapter or LoRA (zero up-projection / zero B) leaves the logits unchanged.
    func testFreshAdapterAndLoRAStartAsThePlainModel() throws {
        let f = try Fixture()
        let plain = f.plainModel()
        plain.load(stateDict: f.group("model."))
        let expected = plain(f.tensors["input"]!)
        for name in ["adapter", "lora"] {
            let model = f.plainModel()
            var rng = RandomGenerator(seed: 8)
            try f.method(name).apply(to: model, family: "vit", using: &rng)
            let report = model.load(stateDict: f.group("model."))
            XCTAssertTrue(report.unexpected.isEmpty && report.shapeMismatches.isEmpty, "\(report)")
            XCTAssertLessThanOrEqual(relativeError(model(f.tensors["input"]!), expected, floor: 1), 1e-6, name)
        }
    }

    // MARK: Merging

    func testMergedFoldableMethodsReproduceTheUnmergedLogits() throws {
        let f = try Fixture()
        let images = f.tensors["input"]!
        for name in ["lora", "ssf+lora", "bias", "ssf"] {
            // `ssf` alone uses the SSF vectors of the ssf+lora case.
            let source = name == "ssf" ? "ssf+lora" : name
            let model = f.plainModel()
            let method = try f.method(name)
            var rng = RandomGenerator(seed: 4)
            try method.apply(to: model, family: "vit", using: &rng)
            let added = f.group("\(source).param.").filter { name != "ssf" || TuningMethod.isSSF($0.key) }
            XCTAssertTrue(model.load(stateDict: f.group("model.").merging(added) { a, _ in a }).isExact, name)
            let expected = model(images)

            let result = try MethodMerge.merge(model.stateDict(), model: model, method: method)
            XCTAssertTrue(result.unfolded.isEmpty, name)
            let plain = f.plainModel(seed: 9)
            XCTAssertEqual(Set(result.merged.keys), Set(plain.stateDict().keys), "\(name): merged keys are not timm's")
            XCTAssertTrue(plain.load(stateDict: result.merged).isExact, name)
            let diff = zip(plain(images).scalars, expected.scalars).map { abs($0 - $1) }.max()!
            print("\(name): merged vs unmerged max |Δlogits| = \(diff), \(result.foldedSites) sites folded")
            XCTAssertLessThanOrEqual(diff, 1e-4, name)
        }
    }

    /// LoRA (with SSF) merges on the hierarchical families too: Swin on every target, ConvNeXt on its MLP.
    func testHierarchicalLoRAMerges() throws {
        var rng = RandomGenerator(seed: 13)
        let images = Tensor.randomNormal([2, 3, 32, 32], using: &rng)
        let builds: [(String, [String], () -> ImageClassifier)] = [
            ("swin", ["qkv", "proj", "fc1", "fc2"], {
                var r = RandomGenerator(seed: 1)
                return SwinTransformer(config: .init(imgSize: 32, patchSize: 4, numClasses: 5, embedDim: 12, depths: [2, 1],
                                                     numHeads: [2, 2], windowSize: 4, dropPathRate: 0), using: &r)
            }),
            ("convnext", ["fc1", "fc2"], {
                var r = RandomGenerator(seed: 1)
                return ConvNeXt(config: ConvNeXtConfig(depths: [1, 1], dims: [8, 16], numClasses: 5), using: &r)
            }),
        ]
        for (family, targets, build) in builds {
            var method = try XCTUnwrap(TuningMethod(rawValue: "ssf+lora"))
            method.options.loraTargets = targets
            method.options.loraRank = 2
            method.options.loraAlpha = 3
            let model = build()
            try method.apply(to: model, family: family, using: &rng)
            // Non-trivial method tensors, and a head that makes the logits O(1).
            for (name, p) in model.namedParameters() where TuningMethod.isAdded(name) || name.hasPrefix("head.") {
                let scale = name.contains("ssf_scale") || name.hasSuffix("norm.weight")
                p.value = Tensor.randomNormal(p.value.shape, mean: scale ? 1 : 0, std: 0.3, using: &rng)
            }
            let expected = model(images)
            let result = try MethodMerge.merge(model.stateDict(), model: model, method: method)
            let plain = build()
            var file = result.merged
            for (k, v) in result.unfolded { file[k] = v }
            if let convNeXt = plain as? ConvNeXt { convNeXt.enableOutputSSF(using: &rng) }
            XCTAssertTrue(plain.load(stateDict: file).isExact, family)
            let diff = zip(plain(images).scalars, expected.scalars).map { abs($0 - $1) }.max()!
            print("\(family) ssf+lora: merged vs unmerged max |Δlogits| = \(diff) (max |logit| \(expected.scalars.map(abs).max()!))")
            XCTAssertLessThanOrEqual(diff, 1e-4, family)
        }
    }

    func testAdapterAndVPTRefuseToMergeWithAReason() throws {
        let f = try Fixture()
        for name in ["adapter", "vpt-shallow", "vpt-deep"] {
            let (model, method) = try f.tunedModel(name)
            XCTAssertThrowsError(try MethodMerge.merge(model.stateDict(), model: model, method: method)) { error in
                XCTAssertTrue("\(error)".contains("cannot fold into the plain") && "\(error)".contains("keep the"), "\(error)")
            }
        }
        XCTAssertTrue(MethodMerge.unfoldableReason(.adapter, family: "vit")!.hasPrefix("adapter adds a nonlinear branch"))
    }

    func testMergeRejectsTensorsTheMethodDoesNotAdd() throws {
        let state: [String: Tensor] = ["blocks.0.attn.qkv.weight": .ones([6, 2]), "blocks.0.attn.qkv.lora_A": .ones([1, 2]),
                                       "blocks.0.attn.qkv.lora_B": .ones([6, 1])]
        let plain = ModuleList<Linear>([])
        XCTAssertThrowsError(try MethodMerge.merge(state, model: plain, method: .bias)) { error in
            XCTAssertTrue("\(error)".contains("lora_A"), "\(error)")
        }
        let folded = try MethodMerge.merge(state, model: plain, method: .lora)
        XCTAssertEqual(folded.merged["blocks.0.attn.qkv.weight"]!.scalars, [Float](repeating: 2, count: 12))
    }

    // MARK: Trainable counts

    /// ViT-B/16 with a 100-class head (76,900 parameters): every method's trainable count from its
    /// closed form. Per block: biases 8,448 (norm1 768, qkv 2,304, proj 768, norm2 768, fc1 3,072,
    /// fc2 768); SSF 16,896; adapter 2·768·8 + 8 + 768 = 13,064; LoRA r = 8 on qkv and proj
    /// 8·(768 + 2,304) + 8·(768 + 768) = 36,864.
    func testTrainableCountsViTB16() throws {
        let head = 768 * 100 + 100
        let expected: [(String, Int)] = [
            ("full", 85_875_556), ("linear", head), ("bias", 12 * 8_448 + 768 + 768 + head),
            ("ssf", 205_824 + head), ("adapter", 12 * 13_064 + head), ("vpt-shallow", 10 * 768 + head),
            ("vpt-deep", 12 * 10 * 768 + head), ("lora", 12 * 36_864 + head), ("ssf+lora", 205_824 + 12 * 36_864 + head),
        ]
        for (name, count) in expected {
            let model = try ModelRegistry.create("vit_base_patch16_224", numClasses: 100)
            var rng = RandomGenerator(seed: 1)
            try XCTUnwrap(TuningMethod(rawValue: name)).apply(to: model, family: "vit", using: &rng)
            XCTAssertEqual(TrainableSummary(model).total, count, name)
            XCTAssertEqual(TrainableSummary(model).backbone, 85_798_656, name)
        }
        XCTAssertEqual(expected[1].1, 76_900)
        XCTAssertEqual(expected[2].1, 179_812)
        XCTAssertEqual(expected[3].1, 282_724)
    }

    /// Swin-T (widths C = 96·2^i, depths 2, 2, 6, 2: Σ depth·C = 4,416) with 100 classes.
    func testTrainableCountsSwinT() throws {
        let head = 768 * 100 + 100, sumC = 4_416
        let expected: [(String, Int)] = [
            ("full", 27_596_254), ("linear", head),
            // patch embed conv + norm 192, 11·C per block, patch merging norms 4·(96 + 192 + 384), final norm 768
            ("bias", 192 + 11 * sumC + 2_688 + 768 + head),
            // patch embed 2·2·96, 22·C per block, final norm 2·768
            ("ssf", 384 + 22 * sumC + 1_536 + head),
            ("adapter", 17 * sumC + 8 * 12 + head),
            ("lora", 48 * sumC + head),
            ("lora+adapter", 48 * sumC + 17 * sumC + 8 * 12 + head),
        ]
        for (name, count) in expected {
            let model = try ModelRegistry.create("swin_tiny_patch4_window7_224", numClasses: 100)
            var rng = RandomGenerator(seed: 1)
            try XCTUnwrap(TuningMethod(rawValue: name)).apply(to: model, family: "swin", using: &rng)
            XCTAssertEqual(TrainableSummary(model).total, count, name)
        }
    }

    func testMethodsThatDoNotApplyExplainWhy() throws {
        var rng = RandomGenerator(seed: 1)
        let convNeXt = ConvNeXt(config: ConvNeXtConfig(depths: [1, 1], dims: [8, 16], numClasses: 5), using: &rng)
        let swin = SwinTransformer(config: .init(imgSize: 32, patchSize: 4, numClasses: 5, embedDim: 12, depths: [2, 1],
                                                 numHeads: [2, 2], windowSize: 4, dropPathRate: 0), using: &rng)
        func message(_ method: TuningMethod, _ model: ImageClassifier, _ family: String) -> String {
            do { try method.check(model, family: family); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(.vptDeep, convNeXt, "convnext"), "vpt-deep does not apply to convnext: it has no token sequence")
        XCTAssertTrue(message(.vptShallow, swin, "swin").hasPrefix("vpt-shallow does not apply to swin"))
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 8)]
        let efficientNet = EfficientNet(config: .init(stages: stages, stemChannels: 8, numFeatures: 16, numClasses: 5,
                                                      padding: .tensorFlowSame, batchNormEps: 1e-3), using: &rng)
        XCTAssertTrue(message(.adapter, efficientNet, "efficientnet").hasPrefix("adapter does not apply to efficientnet"))
        XCTAssertTrue(message(.lora, efficientNet, "efficientnet").hasPrefix("lora target(s) qkv, proj do not apply to efficientnet"))
        XCTAssertEqual(message(.adapter, convNeXt, "convnext"), "")
        XCTAssertTrue(message(.lora, convNeXt, "convnext").contains("try --lora-targets fc1,fc2"), message(.lora, convNeXt, "convnext"))
        var mlpLoRA = TuningMethod.lora
        mlpLoRA.options.loraTargets = ["fc1", "fc2"]
        XCTAssertEqual(message(mlpLoRA, convNeXt, "convnext"), "")
        mlpLoRA.apply(to: convNeXt, using: &rng)
        XCTAssertEqual(convNeXt.namedParameters().filter { TuningMethod.isLoRA($0.0) }.count, 8)
        // ConvNeXt adapters (r = 8) on widths 8 and 16: (2·8·8 + 8 + 8) + (2·16·8 + 8 + 16) plus the head.
        TuningMethod.adapter.apply(to: convNeXt, using: &rng)
        XCTAssertEqual(TrainableSummary(convNeXt).total, 144 + 280 + 16 * 5 + 5 + 2 * 16)
        // AS-MLP adapters run channels-last on the NCHW MLP output; fresh ones change nothing.
        let asmlp = ASMLP(config: .init(embedDim: 8, depths: [1, 1], numClasses: 5, dropPathRate: 0), using: &rng)
        let images = Tensor.randomNormal([1, 3, 32, 32], using: &rng)
        let before = asmlp(images)
        try TuningMethod.adapter.apply(to: asmlp, family: "asmlp", using: &rng)
        XCTAssertEqual(TrainableSummary(asmlp).total, 144 + 280 + 16 * 5 + 5)
        XCTAssertEqual(asmlp(images).scalars, before.scalars)
    }

    /// Prompt dropout acts only in training mode; evaluation is deterministic.
    func testPromptDropoutOnlyWhileTraining() throws {
        let f = try Fixture()
        var method = try f.method("vpt-deep")
        method.options.promptDropout = 0.5
        let model = f.plainModel()
        var rng = RandomGenerator(seed: 4)
        method.apply(to: model, using: &rng)
        let images = f.tensors["input"]!
        let a = model(images).scalars, b = model(images).scalars
        XCTAssertEqual(a, b)
        model.setTraining(true)
        XCTAssertNotEqual(model(images).scalars, a)
    }

    func testMethodNamesParse() {
        XCTAssertEqual(TuningMethod(rawValue: "lora+ssf")?.rawValue, "ssf+lora")
        XCTAssertEqual(TuningMethod(rawValue: "vpt-deep"), .vptDeep)
        XCTAssertNil(TuningMethod(rawValue: "vpt-shallow+vpt-deep"))
        XCTAssertNil(TuningMethod(rawValue: "ssf+ssf"))
        XCTAssertNil(TuningMethod(rawValue: "prefix"))
        XCTAssertNil(TuningMethod(rawValue: ""))
        XCTAssertEqual(TuningMethod.allCases.count, 8)
    }

    // MARK: Frozen parameters cost no gradient work

    /// Under `linear` the tape records only the head, and the backward allocates only the head's two
    /// gradients: no weight-gradient GEMM (and no input gradient) runs in the frozen backbone. Under
    /// `bias` every frozen weight matrix is skipped: the backward allocates at least one tensor fewer
    /// per frozen tensor than under `full`.
    func testFrozenParametersGetNoGradientWork() throws {
        let config = VisionTransformerConfig(imgSize: 32, patchSize: 8, numClasses: 10, embedDim: 48, depth: 3, numHeads: 4)
        var rng = RandomGenerator(seed: 2)
        let images = Tensor.randomNormal([2, 3, 32, 32], using: &rng)
        func backwardAllocations(_ method: TuningMethod) -> (operations: Int, allocations: Int, frozen: Int) {
            var r = RandomGenerator(seed: 6)
            let model = VisionTransformer(config: config, using: &r)
            method.apply(to: model, using: &r)
            let tape = Tape()
            let logits = tape.recording { model(images) }
            let operations = tape.operationCount
            let before = StorageStats.allocations
            _ = tape.backward(from: logits)
            return (operations, StorageStats.allocations - before, model.namedParameters().filter { !$0.1.trainable }.count)
        }
        let linear = backwardAllocations(.linear)
        XCTAssertEqual(linear.operations, 1, "only the head's linear is recorded")
        XCTAssertLessThanOrEqual(linear.allocations, 3, "the head's weight and bias gradients (and the seed)")
        let bias = backwardAllocations(.bias), full = backwardAllocations(.full)
        XCTAssertEqual(full.frozen, 0)
        print("backward allocations: linear \(linear.allocations), bias \(bias.allocations), full \(full.allocations); \(bias.frozen) tensors frozen under bias")
        XCTAssertGreaterThanOrEqual(full.allocations - bias.allocations, bias.frozen)
    }
}
