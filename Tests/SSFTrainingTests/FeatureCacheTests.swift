// Linear probing on cached features: the same trajectory as the uncached run (fixed geometry, with
// and without flips, with EMA and accumulation), and the cases where caching does not apply.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
import XCTest

final class FeatureCacheTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// Three classes of noisy 20×18 images whose brightness ramps left to right by class (so a flip matters).
    private func dataset(count: Int, seed: UInt64) -> PixelArrayDataset {
        var rng = RandomGenerator(seed: seed)
        var pixels: [UInt8] = [], labels: [Int] = []
        for i in 0..<count {
            let label = i % 3
            labels.append(label)
            for c in 0..<3 {
                for _ in 0..<18 {
                    for x in 0..<20 {
                        let ramp = (label == 2 ? 19 - x : x) * 6
                        pixels.append(UInt8(max(0, min(255, (c == label ? 150 : 60) + ramp + Int(rng.nextNormal() * 30)))))
                    }
                }
            }
        }
        return PixelArrayDataset(width: 20, height: 18, channels: 3, pixels: pixels, labels: labels, classNames: ["r", "g", "b"], source: "memory")
    }

    private let preprocess = PreprocessConfig(inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 0.875, interpolation: .bicubic)

    private func config(augment: String, cache: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "tiny-vit"; c.data = "memory"; c.method = "linear"
        c.epochs = 3; c.cooldownEpochs = 0; c.warmupEpochs = 1; c.batchSize = 5; c.lr = 3e-2; c.smoothing = 0.1
        c.workers = 1; c.gradAccum = 2; c.emaDecay = 0.9; c.augment = augment; c.cacheFeatures = cache; c.hflip = 0.5
        return c
    }

    private func trainer(_ name: String, _ config: TrainingConfig, method: TuningMethod = .linear) throws -> Trainer {
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 16, depth: 2, numHeads: 2),
                                      using: &rng)
        method.apply(to: model, using: &rng)
        let data = TrainingData(train: dataset(count: 23, seed: 1), eval: dataset(count: 9, seed: 2), evalSplit: "val")
        return try Trainer(config: config, model: model, modelName: "tiny-vit", data: data, preprocess: preprocess,
                           directory: scratch.appendingPathComponent(name), writesDelta: false)
    }

    private func metrics(_ name: String) throws -> [[String: Double]] {
        let text = try String(contentsOf: scratch.appendingPathComponent(name).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Double] }
    }

    func testCachedRunFollowsTheUncachedTrajectory() throws {
        for augment in ["none", "flip"] {
            let cached = try trainer("cached-\(augment)", config(augment: augment, cache: "auto"))
            XCTAssertTrue(cached.cachesFeatures, "\(augment): \(cached.cachingObstacle ?? "")")
            var messages: [String] = []
            cached.onEvent = { if case let .message(m) = $0 { messages.append(m) } }
            XCTAssertEqual(try cached.run(), .finished)
            XCTAssertTrue(messages.contains { $0.contains("cached its features (16 per image) for 23 training images" + (augment == "flip" ? " and their mirror images" : "")) },
                          "\(messages)")

            let plain = try trainer("plain-\(augment)", config(augment: augment, cache: "off"))
            XCTAssertFalse(plain.cachesFeatures)
            XCTAssertEqual(try plain.run(), .finished)

            let a = try metrics("cached-\(augment)"), b = try metrics("plain-\(augment)")
            XCTAssertEqual(a.count, 3)
            for (x, y) in zip(a, b) {
                XCTAssertEqual(x["train_loss"]!, y["train_loss"]!, accuracy: 1e-5, augment)
                XCTAssertEqual(x["eval_loss"]!, y["eval_loss"]!, accuracy: 1e-5, augment)
                XCTAssertEqual(x["top1"], y["top1"], augment)
            }
            let wa = try SafeTensors.load(scratch.appendingPathComponent("cached-\(augment)/last.safetensors")).tensors
            let wb = try SafeTensors.load(scratch.appendingPathComponent("plain-\(augment)/last.safetensors")).tensors
            XCTAssertEqual(Set(wa.keys), ["head.weight", "head.bias"])
            for (name, t) in wa {
                let u = try XCTUnwrap(wb[name])
                let worst = zip(Array(t.scalars), Array(u.scalars)).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5, "\(augment) \(name)")
            }
        }
        // The flips were drawn: the two orientations' runs differ.
        XCTAssertNotEqual(try metrics("cached-none").last?["train_loss"], try metrics("cached-flip").last?["train_loss"])
    }

    func testCachingNeedsAFrozenBackboneAndFixedGeometry() throws {
        let ssf = try trainer("ssf", { var c = config(augment: "none", cache: "auto"); c.method = "ssf"; return c }(), method: .ssf)
        XCTAssertFalse(ssf.cachesFeatures)
        XCTAssertTrue(ssf.cachingObstacle?.contains("outside the head") ?? false, ssf.cachingObstacle ?? "nil")

        let full = try trainer("full-aug", config(augment: "full", cache: "auto"))
        XCTAssertFalse(full.cachesFeatures)
        XCTAssertTrue(full.cachingObstacle?.contains("random geometry") ?? false, full.cachingObstacle ?? "nil")

        var dropPath = config(augment: "none", cache: "auto")
        dropPath.dropPath = 0.1
        XCTAssertTrue(try trainer("drop-path", dropPath).cachingObstacle?.contains("drop-path") ?? false)

        XCTAssertThrowsError(try trainer("on", config(augment: "full", cache: "on"))) { error in
            XCTAssertTrue("\(error)".contains("cache_features is on") && "\(error)".contains("random geometry"), "\(error)")
        }
        var mixed = config(augment: "none", cache: "auto")
        mixed.mixup = 0.8
        XCTAssertThrowsError(try mixed.validate()) { XCTAssertTrue("\($0)".contains("augment none"), "\($0)") }
    }
}
