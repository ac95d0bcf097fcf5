// The recipe's predictable defaults, batch norm in training mode inside real runs (running
// statistics in checkpoints, delta files and resumes), and bit-exact resume with drop-path on.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFTraining
import SSFTuning
import XCTest

final class TrainingRecipeTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-recipe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func testEpochsMeanEpochsOutsideAPresetAndWarmupNeverOutlastsTheRun() throws {
        var c = try TrainingConfig().merging(["epochs": 3])
        XCTAssertEqual(c.totalEpochs, 3)
        XCTAssertEqual(c.warmupEpochs, 0)
        XCTAssertNoThrow(try c.validate())
        c.warmupEpochs = 3
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("warmup_epochs (3) must be fewer than epochs (3)"), "\($0)") }
        // Presets keep the reference's schedule, and say so.
        let preset = try TrainingConfig.preset("cifar100")
        XCTAssertEqual([preset.epochs, preset.warmupEpochs, preset.cooldownEpochs], [100, 10, 10])
        XCTAssertEqual(preset.scheduleDescription, "110 epochs: 100 cosine (warmup 10 from 1e-07) + 10 cooldown at 1e-08, peak lr 0.001")
        XCTAssertThrowsError(try preset.merging(["epochs": 3]).validate())
    }

    func testBatchNormPolicyFollowsTheMethodUnlessOverridden() throws {
        var c = TrainingConfig()
        for (method, mode) in [("full", BatchNormMode.train), ("ssf", .frozen), ("linear", .frozen), ("bias", .frozen), ("ssf+full", .train)] {
            c.method = method
            XCTAssertEqual(c.batchNormMode, mode, method)
        }
        c.method = "ssf"; c.bn = "train"
        XCTAssertEqual(c.batchNormMode, .train)
        c.method = "full"; c.bn = "frozen"
        XCTAssertEqual(c.batchNormMode, .frozen)
        c.bn = "sometimes"
        XCTAssertThrowsError(try c.validate())
    }

    // MARK: Runs

    /// Two blob classes of 16×16 images (bright left or right half).
    private func dataset(count: Int, seed: UInt64) -> PixelArrayDataset {
        var rng = RandomGenerator(seed: seed)
        var pixels: [UInt8] = [], labels: [Int] = []
        for i in 0..<count {
            let label = i % 2
            labels.append(label)
            for _ in 0..<3 {
                for y in 0..<16 { for x in 0..<16 {
                    let bright = (x < 8) == (label == 0)
                    pixels.append(UInt8(max(0, min(255, (bright ? 190 : 70) + Int(rng.nextNormal() * 25) + y))))
                } }
            }
        }
        return PixelArrayDataset(width: 16, height: 16, channels: 3, pixels: pixels, labels: labels, classNames: ["left", "right"], source: "memory")
    }

    private let preprocess = PreprocessConfig(inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 1, interpolation: .bicubic)

    private func config(method: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "tiny"; c.data = "memory"; c.method = method
        c.epochs = 2; c.warmupEpochs = 1; c.batchSize = 4; c.lr = 5e-3; c.smoothing = 0.1
        c.directResize = true; c.workers = 1; c.gradAccum = 2
        return c
    }

    /// A two-stage EfficientNet with batch norms after every convolution.
    private func efficientNet(method: TuningMethod) -> EfficientNet {
        var rng = RandomGenerator(seed: 11)
        let stages: [EfficientNetConfig.Stage] = [.init(.depthwiseSeparable, repeats: 1, kernelSize: 3, stride: 1, expansion: 1, channels: 8),
                                                 .init(.invertedResidual, repeats: 2, kernelSize: 3, stride: 2, expansion: 2, channels: 8)]
        let model = EfficientNet(config: EfficientNetConfig(stages: stages, stemChannels: 8, numFeatures: 16, numClasses: 2, padding: .symmetric,
                                                            batchNormEps: 1e-3, dropPathRate: 0), using: &rng)
        method.apply(to: model, using: &rng)
        return model
    }

    private func trainer(_ name: String, model: ImageClassifier, config: TrainingConfig, writesDelta: Bool = false) throws -> Trainer {
        let data = TrainingData(train: dataset(count: 16, seed: 1), eval: dataset(count: 8, seed: 2), evalSplit: "val")
        return try Trainer(config: config, model: model, modelName: "tiny", data: data, preprocess: preprocess,
                           directory: scratch.appendingPathComponent(name), writesDelta: writesDelta)
    }

    private func tensors(_ path: String) throws -> [String: [Float]] {
        try SafeTensors.load(scratch.appendingPathComponent(path)).tensors.mapValues(\.scalars)
    }

    /// Runs uninterrupted and stopped after `stopAt` (epoch, batch) then resumed with fresh objects; returns both directories' files.
    private func runTwice(config: TrainingConfig, model: () -> ImageClassifier, stopAt: (Int, Int)) throws {
        XCTAssertEqual(try trainer("straight", model: model(), config: config).run(), .finished)
        let first = try trainer("resumed", model: model(), config: config)
        var stop = false
        first.beforeBatch = { epoch, batch in if (epoch, batch) == stopAt { stop = true } }
        first.shouldStop = { stop }
        guard case .interrupted = try first.run() else { return XCTFail("the run did not stop") }
        XCTAssertEqual(try trainer("resumed", model: model(), config: config).run(resume: true), .finished)
        for name in ["last.safetensors", "best.safetensors"] {
            XCTAssertEqual(try tensors("straight/" + name), try tensors("resumed/" + name), name)
        }
    }

    func testFullFineTuningTrainsBatchNormStatisticsAndResumesExactly() throws {
        let config = self.config(method: "full")
        try runTwice(config: config, model: { efficientNet(method: .full) }, stopAt: (1, 1))
        let saved = try tensors("straight/last.safetensors")
        let mean = try XCTUnwrap(saved["bn1.running_mean"])
        XCTAssertNotEqual(mean, [Float](repeating: 0, count: mean.count), "the stem's running mean moved")
        XCTAssertEqual(saved["bn1.num_batches_tracked"], [8], "one update of the statistics per batch (2 epochs × 4 batches)")
        let yaml = try String(contentsOf: scratch.appendingPathComponent("straight/config.yaml"), encoding: .utf8)
        XCTAssertTrue(yaml.contains("bn: train"), yaml)
    }

    func testFrozenBatchNormKeepsStatisticsAndSSFDeltaCarriesTrainedOnes() throws {
        // ssf (auto → frozen): checkpoints hold no statistics and the model's stay as they were.
        let frozenModel = efficientNet(method: .ssf)
        let before = frozenModel.stateDict()
        XCTAssertEqual(try trainer("frozen", model: frozenModel, config: config(method: "ssf"), writesDelta: true).run(), .finished)
        XCTAssertFalse(try tensors("frozen/last.safetensors").keys.contains { $0.hasSuffix("running_mean") })
        for (name, t) in frozenModel.stateDict() where DeltaFile.isStatisticsKey(name) { XCTAssertEqual(t.scalars, before[name]?.scalars, name) }

        // ssf with --bn train: the delta carries the trained statistics and applies on the untouched base.
        var c = config(method: "ssf")
        c.bn = "train"
        let model = efficientNet(method: .ssf)
        let base = model.stateDict()
        XCTAssertEqual(try trainer("trained", model: model, config: c, writesDelta: true).run(), .finished)
        let delta = try DeltaFile(contentsOf: scratch.appendingPathComponent("trained/task.delta.safetensors"))
        XCTAssertTrue(delta.tensors.keys.contains("bn1.running_var"))
        let applied = try delta.ssfState(onBase: base, model: "tiny")
        let best = try tensors("trained/best.safetensors")
        XCTAssertEqual(applied["bn1.running_var"]?.scalars, best["bn1.running_var"])
    }

    func testDropPathChangesTrainingAndResumesBitExactly() throws {
        func vit() -> ImageClassifier {
            var rng = RandomGenerator(seed: 5)
            let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 2, embedDim: 16, depth: 3, numHeads: 2),
                                          using: &rng)
            TuningMethod.ssf.apply(to: model, using: &rng)
            return model
        }
        var c = config(method: "ssf")
        c.dropPath = 0.4
        try runTwice(config: c, model: vit, stopAt: (1, 1))
        XCTAssertEqual(try trainer("plain", model: vit(), config: config(method: "ssf")).run(), .finished)
        XCTAssertNotEqual(try tensors("plain/last.safetensors"), try tensors("straight/last.safetensors"), "drop-path had no effect")
    }
}
