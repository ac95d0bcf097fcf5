// Folding SSF into the preceding ops: for every family the merged plain model reproduces the SSF model.
import XCTest
import SSFEngine
import SSFNN
@testable import SSFModels
@testable import SSFTuning

final class MergeTests: XCTestCase {
    /// Gives every SSF vector and every norm affine non-trivial values, so a fold into the wrong
    /// op or axis changes the logits.
    private func perturb(_ model: Module, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for (name, p) in model.namedParameters() where !p.isBuffer && p.value.rank == 1 {
            if name.contains("ssf_scale") || name.hasSuffix("norm.weight") || name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") {
                p.value = Tensor.randomNormal(p.value.shape, mean: 1, std: 0.3, using: &rng)
            } else if name.contains("ssf_shift") || name.hasSuffix(".bias") {
                p.value = Tensor.randomNormal(p.value.shape, mean: 0, std: 0.3, using: &rng)
            }
        }
    }

    private func checkMerge(family: String, imageSize: Int, build: (inout RandomGenerator) -> ImageClassifier,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = RandomGenerator(seed: 11)
        let tuned = build(&rng)
        TuningMethod.ssf.apply(to: tuned, using: &rng)
        perturb(tuned, seed: 5)
        let images = Tensor.randomNormal([2, 3, imageSize, imageSize], using: &rng)
        let expected = tuned(images)

        let result = try SSFMerge.merge(tuned.stateDict(), model: tuned)
        XCTAssertTrue(result.unfolded.isEmpty, "\(family): unfolded sites \(result.unfolded.keys.sorted())", file: file, line: line)
        XCTAssertGreaterThan(result.foldedSites, 0, file: file, line: line)
        let plain = build(&rng)
        XCTAssertEqual(Set(result.merged.keys), Set(plain.stateDict().keys), "\(family): merged keys differ from the plain model's", file: file, line: line)
        let report = plain.load(stateDict: result.merged)
        XCTAssertTrue(report.isExact, "\(family): \(report)", file: file, line: line)
        let got = plain(images)
        let diff = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-4, "\(family): merged logits differ by \(diff)", file: file, line: line)
    }

    func testViT() throws {
        try checkMerge(family: "vit", imageSize: 32) {
            VisionTransformer(config: .init(imgSize: 32, patchSize: 8, numClasses: 5, embedDim: 24, depth: 2, numHeads: 3), using: &$0)
        }
    }

    func testSwin() throws {
        try checkMerge(family: "swin", imageSize: 32) {
            SwinTransformer(config: .init(imgSize: 32, patchSize: 4, numClasses: 5, embedDim: 12, depths: [2, 1], numHeads: [2, 2], windowSize: 4, dropPathRate: 0), using: &$0)
        }
    }

    func testASMLP() throws {
        try checkMerge(family: "asmlp", imageSize: 32) {
            ASMLP(config: .init(embedDim: 8, depths: [1, 1], numClasses: 5, dropPathRate: 0), using: &$0)
        }
    }

    func testEfficientNet() throws {
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 8),
                                                  .init(.invertedResidual, repeats: 2, kernelSize: 5, stride: 2, expansion: 3, channels: 16)]
        try checkMerge(family: "efficientnet", imageSize: 32) {
            EfficientNet(config: .init(stages: stages, stemChannels: 8, numFeatures: 32, numClasses: 5, padding: .tensorFlowSame, batchNormEps: 1e-3), using: &$0)
        }
    }

    func testConvNeXtKeepsItsLastStageSiteAside() throws {
        var rng = RandomGenerator(seed: 2)
        let config = ConvNeXtConfig(depths: [1, 1], dims: [8, 16], numClasses: 5)
        let tuned = ConvNeXt(config: config, using: &rng)
        TuningMethod.ssf.apply(to: tuned, using: &rng)
        perturb(tuned, seed: 9)
        let result = try SSFMerge.merge(tuned.stateDict(), model: tuned)
        XCTAssertEqual(result.unfolded.keys.sorted(), ["ssf_scale_1", "ssf_shift_1"])
        let plain = ConvNeXt(config: config, using: &rng)
        XCTAssertEqual(Set(result.merged.keys), Set(plain.stateDict().keys))
    }

    func testMismatchedSiteIsReported() throws {
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: .init(imgSize: 16, patchSize: 8, numClasses: 2, embedDim: 6, depth: 1, numHeads: 2), using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        var state = model.stateDict()
        state["blocks.0.attn.ssf_scale_1"] = .ones([4])
        state["blocks.0.attn.ssf_shift_1"] = .zeros([4])
        XCTAssertThrowsError(try SSFMerge.merge(state, model: model)) { error in
            XCTAssertTrue("\(error)".contains("4 channels") && "\(error)".contains("qkv.weight"), "\(error)")
        }
        // An SSF tensor no declared site accounts for has no fold rule: refused, never dropped.
        var stray = model.stateDict()
        stray["blocks.0.mlp.ssf_scale_3"] = .ones([6])
        XCTAssertThrowsError(try SSFMerge.merge(stray, model: model)) { error in
            XCTAssertTrue("\(error)".contains("blocks.0.mlp.ssf_scale_3") && "\(error)".contains("no fold rule"), "\(error)")
        }
        // A declared site the state lacks.
        var missing = model.stateDict()
        missing["norm.weight"] = nil
        XCTAssertThrowsError(try SSFMerge.merge(missing, model: model)) { error in
            XCTAssertTrue("\(error)".contains("norm.weight"), "\(error)")
        }
    }

    /// Every SSF tensor of every registered family belongs to a site that declares its fold:
    /// walking the declared sites accounts for all of them, and each target exists with the
    /// site's channel count on its weight's first axis.
    func testEverySiteOfEveryFamilyDeclaresItsFold() throws {
        let small: [(String, () -> ImageClassifier)] = [
            ("vit", { var r = RandomGenerator(seed: 1); return VisionTransformer(config: .init(imgSize: 16, patchSize: 8, numClasses: 2, embedDim: 6, depth: 1, numHeads: 2), using: &r) }),
            ("swin", { var r = RandomGenerator(seed: 1); return SwinTransformer(config: .init(imgSize: 32, patchSize: 4, numClasses: 2, embedDim: 12, depths: [1, 1], numHeads: [2, 2], windowSize: 4, dropPathRate: 0), using: &r) }),
            ("convnext", { var r = RandomGenerator(seed: 1); return ConvNeXt(config: .init(depths: [1, 1], dims: [8, 16], numClasses: 2), using: &r) }),
            ("asmlp", { var r = RandomGenerator(seed: 1); return ASMLP(config: .init(embedDim: 8, depths: [1, 1], numClasses: 2, dropPathRate: 0), using: &r) }),
            ("efficientnet", { var r = RandomGenerator(seed: 1); return EfficientNet(config: .tfLite0(numClasses: 2), using: &r) }),
        ]
        XCTAssertEqual(Set(small.map(\.0)), Set(ModelRegistry.all.map(\.family)), "a registered family is missing here")
        for (family, build) in small {
            let model = build()
            var rng = RandomGenerator(seed: 2)
            TuningMethod.ssf.apply(to: model, using: &rng)
            let sites = model.declaredSSFSites()
            let declared = Set(sites.flatMap { [$0.scaleKey, $0.shiftKey] })
            let ssfKeys = Set(model.stateDict().keys.filter(TuningMethod.isSSF))
            XCTAssertEqual(declared, ssfKeys, "\(family): SSF tensors without a declared site")
            let state = model.stateDict()
            for site in sites {
                guard let target = site.targetPath else {
                    XCTAssertEqual(family, "convnext", "\(family): \(site.scaleKey) is unfoldable")
                    continue
                }
                XCTAssertEqual(state[target + ".weight"]?.shape.first, site.site.channels, "\(family): \(site.scaleKey) → \(target)")
            }
        }
    }
}

final class ConvNeXtMergedLoadTests: XCTestCase {
    /// A merged ConvNeXt file (plain keys + the last-stage vectors) loads through the registry and
    /// reproduces the SSF model.
    func testMergedConvNeXtReproducesTheSSFModel() throws {
        var rng = RandomGenerator(seed: 21)
        let tuned = try ModelRegistry.create("convnext_tiny", numClasses: 3, seed: 4)
        TuningMethod.ssf.apply(to: tuned, using: &rng)
        for (name, p) in tuned.namedParameters() where TuningMethod.isSSF(name) {
            p.value = Tensor.randomNormal(p.value.shape, mean: name.contains("scale") ? 1 : 0, std: 0.2, using: &rng)
        }
        let result = try SSFMerge.merge(tuned.stateDict(), model: tuned)
        var file = result.merged
        for (k, v) in result.unfolded { file[k] = v }
        let loaded = try Pretrained.loadState(file, model: "convnext_tiny")
        XCTAssertEqual(loaded.report?.isExact, true, "\(String(describing: loaded.report))")
        let images = Tensor.randomNormal([1, 3, 64, 64], using: &rng)
        let diff = zip(loaded.model(images).scalars, tuned(images).scalars).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-4)
    }
}
