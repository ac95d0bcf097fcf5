// Training runs of a tiny ViT on an in-memory dataset: the run directory and summary, a stop
// mid-epoch resumed to the uninterrupted run's metrics and weights, and the non-finite-loss stop.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFReport
import SSFTraining
import SSFTuning
import XCTest

final class TrainerTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// Three colour classes of noisy 16×16 images.
    private func dataset(count: Int, seed: UInt64) -> PixelArrayDataset {
        var rng = RandomGenerator(seed: seed)
        var pixels: [UInt8] = [], labels: [Int] = []
        for i in 0..<count {
            let label = i % 3
            labels.append(label)
            for c in 0..<3 {
                for _ in 0..<256 { pixels.append(UInt8(max(0, min(255, (c == label ? 200 : 60) + Int(rng.nextNormal() * 30))))) }
            }
        }
        return PixelArrayDataset(width: 16, height: 16, channels: 3, pixels: pixels, labels: labels, classNames: ["r", "g", "b"], source: "memory")
    }

    private let preprocess = PreprocessConfig(inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropFraction: 1, interpolation: .bicubic)

    private func config() -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "tiny-vit"; c.data = "memory"; c.method = "ssf"
        c.epochs = 2; c.cooldownEpochs = 1; c.warmupEpochs = 1; c.batchSize = 4; c.lr = 1e-2; c.smoothing = 0.1
        c.directResize = true; c.workers = 1; c.gradAccum = 2; c.clipGrad = 1; c.emaDecay = 0.9
        return c
    }

    /// A fresh SSF-tuned tiny ViT (the same weights for the same seed) and its trainer.
    private func trainer(_ directory: String, config: TrainingConfig? = nil) throws -> Trainer {
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 16, depth: 1, numHeads: 2),
                                      using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        let data = TrainingData(train: dataset(count: 12, seed: 1), eval: dataset(count: 6, seed: 2), evalSplit: "val")
        return try Trainer(config: config ?? self.config(), model: model, modelName: "tiny-vit", data: data, preprocess: preprocess,
                           directory: scratch.appendingPathComponent(directory), writesDelta: true)
    }

    private func metrics(_ directory: String) throws -> [[String: Double]] {
        let text = try String(contentsOf: scratch.appendingPathComponent(directory).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            var row = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
            row["images_per_s"] = nil; row["epoch_seconds"] = nil
            return row
        }
    }

    func testRunDirectoryAndResumeMidEpochMatchesUninterruptedRun() throws {
        let full = try trainer("full")
        XCTAssertEqual(try full.run(), .finished)
        let names = try Set(FileManager.default.contentsOfDirectory(atPath: scratch.appendingPathComponent("full").path))
        XCTAssertEqual(names, ["config.yaml", "metrics.jsonl", "last.safetensors", "best.safetensors", "task.delta.safetensors", "summary.json", "report.html"])
        let summaryData = try Data(contentsOf: scratch.appendingPathComponent("full/summary.json"))
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
        for key in ["best_top1", "final_top1", "trainable_params", "train_seconds"] { XCTAssertNotNil(summary[key], key) }
        XCTAssertEqual(summary["trainable_params"] as? Int, full.model.trainableCount)
        XCTAssertEqual(summary["selected_on"] as? String, "val")
        XCTAssertEqual(try metrics("full").count, 3)
        XCTAssertEqual(try DeltaFile(contentsOf: scratch.appendingPathComponent("full/task.delta.safetensors")).baseModel, "tiny-vit")

        // Stop in the second epoch after its first update (two batches), then resume with a fresh model and trainer.
        let first = try trainer("resumed")
        var stop = false
        first.beforeBatch = { epoch, batch in if epoch == 1 && batch == 1 { stop = true } }
        first.shouldStop = { stop }
        XCTAssertEqual(try first.run(), .interrupted(epoch: 1, batch: 2))
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("resumed/resume.safetensors").path))
        XCTAssertEqual(try metrics("resumed").count, 1)
        XCTAssertEqual(try trainer("resumed").run(resume: true), .finished)
        XCTAssertEqual(try metrics("resumed"), try metrics("full"))
        for name in ["last.safetensors", "best.safetensors"] {
            let a = try SafeTensors.load(scratch.appendingPathComponent("full/" + name)).tensors
            let b = try SafeTensors.load(scratch.appendingPathComponent("resumed/" + name)).tensors
            XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
            for (key, tensor) in a { XCTAssertEqual(tensor.scalars, b[key]?.scalars, "\(name) \(key)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("resumed/resume.safetensors").path))
    }

    /// A truncated or corrupted resume checkpoint is an error naming it, and the run's other files
    /// stay as they were.
    func testDamagedResumeCheckpointIsAClearErrorAndLosesNothing() throws {
        let first = try trainer("damaged")
        var stop = false
        first.beforeBatch = { epoch, batch in if epoch == 1 && batch == 1 { stop = true } }
        first.shouldStop = { stop }
        XCTAssertEqual(try first.run(), .interrupted(epoch: 1, batch: 2))
        let dir = scratch.appendingPathComponent("damaged")
        let resume = dir.appendingPathComponent("resume.safetensors"), last = dir.appendingPathComponent("last.safetensors")
        let good = try Data(contentsOf: resume), lastBytes = try Data(contentsOf: last)
        for damaged in [good.prefix(good.count / 2), good.prefix(5), { var d = good; d[12] ^= 0x5A; return d }()] {
            try damaged.write(to: resume)
            XCTAssertThrowsError(try trainer("damaged").run(resume: true)) { error in
                XCTAssertTrue("\(error)".contains(resume.path), "\(error)")
            }
            XCTAssertEqual(try Data(contentsOf: last), lastBytes)
            XCTAssertEqual(try metrics("damaged").count, 1)
        }
        try good.write(to: resume)
        XCTAssertEqual(try trainer("damaged").run(resume: true), .finished)
    }

    /// A `metrics.jsonl` line half-written when the process died (past the checkpoint) is dropped
    /// on resume and written again; the run ends as the uninterrupted one does.
    func testHalfWrittenMetricsLineIsRewrittenOnResume() throws {
        let full = try trainer("full")
        XCTAssertEqual(try full.run(), .finished)
        let first = try trainer("cut")
        var stop = false
        first.beforeBatch = { epoch, batch in if epoch == 1 && batch == 1 { stop = true } }
        first.shouldStop = { stop }
        XCTAssertEqual(try first.run(), .interrupted(epoch: 1, batch: 2))
        let file = scratch.appendingPathComponent("cut/metrics.jsonl")
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"epoch\":2,\"train_lo".utf8))
        try handle.close()
        XCTAssertEqual(try trainer("cut").run(resume: true), .finished)
        XCTAssertEqual(try metrics("cut"), try metrics("full"))
    }

    /// A checkpoint write that fails part-way (a full disk; here a file-size limit) is an error
    /// naming the file, the previous checkpoint is intact and no temporary file is left.
    func testFailedCheckpointWriteKeepsThePreviousOne() throws {
        let run = try trainer("full")
        XCTAssertEqual(try run.run(), .finished)
        let dir = scratch.appendingPathComponent("full")
        let last = dir.appendingPathComponent("last.safetensors")
        let before = try Data(contentsOf: last)
        var bigger = try SafeTensors.load(last).tensors
        bigger["extra"] = Tensor.zeros([1 << 18])
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limit = saved
        limit.rlim_cur = rlim_t(before.count + 4096)
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
        let result = Result { try SafeTensors.save(bigger, to: last) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)
        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertTrue("\(error)".contains(last.path) && "\(error)".contains("cannot write"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: last), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }, [])
    }

    /// Training data a classifier cannot learn from is refused before anything is written: no
    /// samples, or one class.
    func testDegenerateTrainingDataIsRefused() throws {
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 16, depth: 1, numHeads: 2),
                                      using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        let three = dataset(count: 3, seed: 1)
        let oneClass = PixelArrayDataset(width: 16, height: 16, channels: 3, pixels: three.pixels, labels: [0, 0, 0], classNames: ["r"], source: "memory")
        let empty = PixelArrayDataset(width: 16, height: 16, channels: 3, pixels: [], labels: [], classNames: ["r", "g"], source: "memory")
        for (train, expected) in [(empty, "has no samples"), (oneClass, "one class (r)")] {
            let c = config()
            let data = TrainingData(train: train, eval: dataset(count: 6, seed: 2), evalSplit: "val")
            let dir = scratch.appendingPathComponent("degenerate-\(expected.count)")
            XCTAssertThrowsError(try Trainer(config: c, model: model, modelName: "tiny-vit", data: data, preprocess: preprocess,
                                             directory: dir, writesDelta: true), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
        }
    }

    /// A run directory that cannot be created (its parent is a file) is an error naming it.
    func testRunDirectoryThatCannotBeCreatedIsAClearError() throws {
        let file = scratch.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 16, depth: 1, numHeads: 2),
                                      using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        let data = TrainingData(train: dataset(count: 12, seed: 1), eval: dataset(count: 6, seed: 2), evalSplit: "val")
        let trainer = try Trainer(config: config(), model: model, modelName: "tiny-vit", data: data, preprocess: preprocess,
                                  directory: file.appendingPathComponent("run"), writesDelta: true)
        XCTAssertThrowsError(try trainer.run()) { error in
            XCTAssertTrue("\(error)".contains(file.path), "\(error)")
        }
    }

    /// The run's files go through its outputs: with `DiscardedOutputs` (a data-parallel rank other
    /// than 0) the same run trains to the same weights and writes nothing.
    func testOutputsSeamWritesNothingForDiscardedOutputs() throws {
        let written = try trainer("written")
        XCTAssertEqual(try written.run(), .finished)
        var rng = RandomGenerator(seed: 3)
        let model = VisionTransformer(config: VisionTransformerConfig(imgSize: 16, patchSize: 8, numClasses: 3, embedDim: 16, depth: 1, numHeads: 2),
                                      using: &rng)
        TuningMethod.ssf.apply(to: model, using: &rng)
        let data = TrainingData(train: dataset(count: 12, seed: 1), eval: dataset(count: 6, seed: 2), evalSplit: "val")
        let quiet = scratch.appendingPathComponent("quiet")
        let discarded = try Trainer(config: config(), model: model, modelName: "tiny-vit", data: data, preprocess: preprocess,
                                    outputs: DiscardedOutputs(readingFrom: quiet), writesDelta: true)
        XCTAssertEqual(try discarded.run(), .finished)
        XCTAssertFalse(FileManager.default.fileExists(atPath: quiet.path), "discarded outputs wrote the run directory")
        XCTAssertEqual(discarded.model.stateDict().mapValues(\.scalars), written.model.stateDict().mapValues(\.scalars))
        // The written run's summary reads back through the one schema.
        let summary = try XCTUnwrap(try RunSummary.read(inRunDirectory: written.directory))
        XCTAssertEqual(summary.model, "tiny-vit")
        XCTAssertEqual(summary.batchNorm, "frozen")
        XCTAssertEqual(summary.epochs, 3)
    }

    func testEvaluationAfterTheLastEpochOnly() throws {
        var c = config()
        c.evalEveryEpoch = false
        XCTAssertEqual(try trainer("once", config: c).run(), .finished)
        let rows = try metrics("once")
        XCTAssertEqual(rows.count, 3)
        for row in rows.dropLast() { XCTAssertNil(row["top1"]); XCTAssertNil(row["eval_loss"]); XCTAssertNotNil(row["train_loss"]) }
        XCTAssertNotNil(rows.last?["top1"])
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("once/summary.json"))) as? [String: Any])
        XCTAssertEqual(summary["best_epoch"] as? Int, 3)
        XCTAssertEqual(summary["best_top1"] as? Double, rows.last?["top1"])
    }

    func testNonFiniteLossStopsAndKeepsLastGoodCheckpoint() throws {
        var c = config()
        c.opt = "sgd"
        let run = try trainer("nan", config: c)
        let head = try XCTUnwrap(run.model.trainableParameters.first { $0.0 == "head.weight" }?.1)
        run.beforeBatch = { epoch, batch in
            if epoch == 1 && batch == 1 { head.value = Tensor(shape: head.value.shape, repeating: .nan) }
        }
        XCTAssertThrowsError(try run.run()) { error in
            XCTAssertTrue("\(error)".contains("epoch 2, batch 2"), "\(error)")
        }
        let directory = scratch.appendingPathComponent("nan")
        let last = try SafeTensors.load(directory.appendingPathComponent("last.safetensors"))
        XCTAssertEqual(last.metadata["epoch"], "1")
        XCTAssertTrue(last.tensors.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("summary.json").path))
    }
}
