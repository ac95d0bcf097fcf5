// The training loop around `TrainingStep`: the batches of each epoch, evaluation and best-checkpoint
// selection each epoch, the run directory, and resumable stops.
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN
import SSFReport
import SSFTuning

/// What a training run reports while it runs.
public enum TrainingEvent {
    /// A training batch finished: its loss, the epoch's images/s so far and the estimated seconds left in the epoch.
    case batch(epoch: Int, batch: Int, batches: Int, loss: Double, imagesPerSecond: Double, etaSeconds: Double)
    /// An epoch finished and was evaluated.
    case epoch(EpochMetrics)
    /// A note for the log.
    case message(String)
}

/// One line of `metrics.jsonl` (the schema reports read).
public typealias EpochMetrics = EpochRecord

/// How a run ended.
public enum TrainingOutcome: Equatable {
    /// Every epoch ran; `summary.json` is written.
    case finished
    /// Stopped on request after a completed update; `resume.safetensors` holds the state to continue from.
    case interrupted(epoch: Int, batch: Int)
}

/// A training run that cannot go on.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The loop of a training run: epochs of `TrainingStep` updates, evaluation and best-checkpoint
/// selection, stop and resume. What it writes goes through `outputs` (by default the run
/// directory: `config.yaml`, `metrics.jsonl`, `last.safetensors`, `best.safetensors`,
/// `task.delta.safetensors` (SSF), `summary.json`, `report.html`, and `resume.safetensors` when
/// stopped early).
public final class Trainer {
    public let config: TrainingConfig
    public let model: ImageClassifier
    public var directory: URL { outputs.directory }
    /// Where the run's files go.
    public let outputs: RunOutputs
    /// Registry name of the model (checkpoint metadata and the delta file).
    public let modelName: String
    /// Whether to write `task.delta.safetensors` (the method trains SSF vectors and the head only).
    public let writesDelta: Bool
    public let data: TrainingData
    let trainLoader: DataLoader
    let evalLoader: DataLoader
    /// The optimisation step (optimiser, EMA, schedule, clipping, accumulation).
    public let step: TrainingStep
    var trainable: [(String, Parameter)] { step.trainable }
    var optimizer: Optimizer { step.optimizer }
    var ema: WeightEMA? { step.ema }
    public var schedule: CosineSchedule { step.schedule }
    public let updatesPerEpoch: Int
    /// What batch norm does while training (resolved from `config.bn`).
    public let batchNormMode: BatchNormMode
    /// Running statistics before training, the base a delta file's fingerprint is taken on.
    private let initialStatistics: [String: Tensor]
    /// Whether the head trains and is evaluated on features computed once (`cache_features`).
    public let cachesFeatures: Bool
    /// Why the features cannot be cached (nil when they can).
    public let cachingObstacle: String?
    private var trainFeatures: FeatureTable?, evalFeatures: FeatureTable?

    /// Checked after every update; true saves a resumable checkpoint and stops (Ctrl-C).
    public var shouldStop: () -> Bool = { false }
    /// Called before each training batch (epoch, batch index).
    public var beforeBatch: ((Int, Int) -> Void)?
    /// Progress and log reports.
    public var onEvent: (TrainingEvent) -> Void = { _ in }

    // Progress, saved in resumable checkpoints.
    private var epoch = 0, batch = 0
    private var bestTop1 = -1.0, bestEpoch = -1
    private var trainSeconds = 0.0
    private var epochLossSum = 0.0, epochLossCount = 0
    // Throughput of the epoch in progress.
    private var epochImages = 0, epochSeconds = 0.0
    /// The loss of the run's first batch (≈ ln(classes) for a fresh head).
    private var firstBatchLoss: Double?

    public convenience init(config: TrainingConfig, model: ImageClassifier, modelName: String, data: TrainingData,
                            preprocess: PreprocessConfig, directory: URL, writesDelta: Bool) throws {
        try self.init(config: config, model: model, modelName: modelName, data: data, preprocess: preprocess,
                      outputs: RunDirectory(directory), writesDelta: writesDelta)
    }

    /// With a `collective` of more than one process the run is data-parallel: `config.batchSize` is
    /// the global batch, each rank loads its slice of every batch (in the single-process order) and
    /// of the evaluation split, the summed gradients are averaged across ranks before clipping and
    /// the update, and losses and evaluation counts are summed, so every rank holds the same
    /// weights and figures. Give ranks other than 0 `DiscardedOutputs`.
    public init(config: TrainingConfig, model: ImageClassifier, modelName: String, data: TrainingData,
                preprocess: PreprocessConfig, outputs: RunOutputs, writesDelta: Bool, collective: Collective? = nil) throws {
        try config.validate()
        self.config = config; self.model = model; self.modelName = modelName; self.data = data
        self.outputs = outputs; self.writesDelta = writesDelta
        let parallel = collective.flatMap { $0.size > 1 ? $0 : nil }
        self.collective = parallel
        var rankConfig = config
        if let parallel {
            guard config.batchSize % parallel.size == 0 else {
                throw TrainingError("batch_size \(config.batchSize) is the global batch and must be divisible by the \(parallel.size) ranks")
            }
            rankConfig.batchSize = config.batchSize / parallel.size
        }
        var train = try data.trainLoader(config: rankConfig, preprocess: preprocess)
        var eval = data.evalLoader(config: config, preprocess: preprocess)
        if let parallel {
            train.shard = Shard(rank: parallel.rank, worldSize: parallel.size)
            eval.batchSize = max(1, config.batchSize / parallel.size)
            eval.shard = train.shard
        }
        trainLoader = train
        evalLoader = eval
        guard trainLoader.batchCount > 0 else { throw TrainingError("the training split has no samples") }
        guard data.train.classNames.count >= 2 else {
            throw TrainingError("the training split has one class (\(data.train.classNames.first ?? "?")); a classifier needs at least two")
        }
        updatesPerEpoch = (trainLoader.batchCount + config.gradAccum - 1) / config.gradAccum
        batchNormMode = config.batchNormMode
        model.setBatchNormMode(batchNormMode)
        if let rate = config.dropPath { model.setDropPathRate(Float(rate)) }
        initialStatistics = Trainer.statistics(of: model)
        cachingObstacle = FeatureCaching.obstacle(model: model, config: config, trainTransform: train.transform, parallel: parallel != nil)
        switch config.cacheFeatures {
        case "on":
            if let cachingObstacle { throw TrainingError("cache_features is on, but the features cannot be cached: \(cachingObstacle)") }
            cachesFeatures = true
        case "off": cachesFeatures = false
        default: cachesFeatures = cachingObstacle == nil
        }
        step = try TrainingStep(model: model, config: config, updatesPerEpoch: updatesPerEpoch)
        if let parallel {
            // Drop-path draws: one stream per (block, rank).
            for (i, d) in model.dropPathsByBlock.joined().enumerated() {
                d.rng = RandomGenerator(seed: config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) &* 0x1000_0001 &+ UInt64(parallel.rank))
            }
            step.gradientHook = { gradients in
                try parallel.sum(gradients.buffer)
                gradients.scale(by: 1 / Float(parallel.size))
                let present = try parallel.sum(gradients.present.map { $0 ? 1 : 0 })
                gradients.present = present.map { $0 > 0 }
            }
        }
    }

    /// The processes of a data-parallel run (nil: this process alone).
    public let collective: Collective?

    /// The batch-norm running statistics of `model` by state-dictionary name.
    static func statistics(of model: Module) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (path, bn) in model.batchNorms {
            for (name, p) in bn.localParameters where p.isBuffer { out[path + "." + name] = p.value }
        }
        return out
    }

    /// Whether training changes the running statistics (they then go into every checkpoint).
    private var tracksStatistics: Bool { batchNormMode == .train && !initialStatistics.isEmpty }

    /// Number of trainable scalars.
    public var trainableCount: Int { trainable.reduce(0) { $0 + $1.1.count } }

    /// Runs (or, with `resume`, continues from `resume.safetensors`) to the last epoch or a stop request.
    public func run(resume: Bool = false) throws -> TrainingOutcome {
        if resume && outputs.hasResumeCheckpoint {
            try restore()
            try outputs.resume(keepingEpochs: epoch)
            onEvent(.message("resuming at epoch \(epoch + 1), batch \(batch + 1) of \(trainLoader.batchCount)"))
        } else {
            if resume {
                // Killed before its first epoch ended (a stop request always leaves a checkpoint).
                if outputs.hasSummary { throw TrainingError("\(directory.path) holds a finished run (summary.json); there is nothing to resume") }
                onEvent(.message("\(directory.path) has no resume checkpoint yet (the run ended before its first epoch did); starting from the first epoch"))
            }
            try outputs.start(config: config)
        }
        if cachesFeatures, epoch < config.totalEpochs { try cacheFeatures() }
        var lastMetrics: EpochMetrics?
        var lastEval: EvaluationResult?
        while epoch < config.totalEpochs {
            if let stop = try trainEpoch() { return stop }
            try averageStatisticsAcrossRanks()
            let evaluated = config.evalEveryEpoch || epoch == config.totalEpochs - 1 ? try evaluateCurrent() : nil
            let metrics = EpochMetrics(epoch: epoch, trainLoss: epochLossCount == 0 ? 0 : epochLossSum / Double(epochLossCount),
                                       evalLoss: evaluated?.loss, top1: evaluated?.top1, top5: evaluated?.top5,
                                       lr: Double(optimizer.learningRate), imagesPerSecond: epochImagesPerSecond, epochSeconds: epochSeconds)
            try outputs.appendMetrics(metrics)
            try saveWeights(to: "last.safetensors")
            if let evaluated, evaluated.top1 > bestTop1 {
                bestTop1 = evaluated.top1; bestEpoch = epoch
                try saveWeights(to: "best.safetensors")
                if writesDelta { try saveDelta() }
            }
            onEvent(.epoch(metrics))
            lastMetrics = metrics; lastEval = evaluated
            epoch += 1; batch = 0; epochLossSum = 0; epochLossCount = 0
            // Every finished epoch leaves a resumable checkpoint, so a run killed outright (SIGKILL,
            // the OOM killer, a lost machine) continues from its last finished epoch with the same
            // result; a stop request adds one at the update it stopped after.
            if epoch < config.totalEpochs { try saveResume(announce: false) }
        }
        try outputs.finish(summary: summary(final: lastMetrics, finalEval: lastEval))
        // The run's own report page; the run stands without it.
        do {
            try outputs.writeReport(title: "\(modelName) · \(config.method) · \(directory.lastPathComponent)")
        } catch {
            onEvent(.message("could not write report.html: \(error)"))
        }
        return .finished
    }

    /// Computes the head's inputs for every training image (both orientations when the transform flips)
    /// and every evaluation image; the time of the training images counts as training time.
    private func cacheFeatures() throws {
        guard let fixed = trainLoader.transform as? FixedGeometryTransform else { return }
        let policy = BadImagePolicy(rawValue: config.badImages) ?? .fail
        let batchSize = max(config.batchSize, 64)
        var clock = DispatchTime.now().uptimeNanoseconds
        let train = try FeatureTable(model: model, dataset: data.train, transform: OrientedTransform(base: fixed, flipped: false),
                                     mirrored: fixed.flipProbability > 0 ? OrientedTransform(base: fixed, flipped: true) : nil,
                                     batchSize: batchSize, workers: config.workers, badImages: policy)
        let trainTime = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        trainSeconds += trainTime
        clock = DispatchTime.now().uptimeNanoseconds
        let eval = try FeatureTable(model: model, dataset: data.eval, transform: evalLoader.transform, mirrored: nil,
                                    batchSize: batchSize, workers: config.workers, badImages: policy)
        let evalTime = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        for (identity, problem) in train.skipped + eval.skipped { onEvent(.message("skipped \(identity): \(problem)")) }
        trainFeatures = train; evalFeatures = eval
        let shape = train.sampleShape.map(String.init).joined(separator: "×")
        onEvent(.message(String(format: "the backbone is frozen: cached its features (%@ per image) for %d training images%@ in %.1f s and %d %@ images in %.1f s; the head trains on them",
                                shape, train.count, train.flipped == nil ? "" : " and their mirror images", trainTime, eval.count, data.evalSplit, evalTime)))
    }

    /// Images one training epoch sees (the last partial batch is dropped).
    private var imagesPerEpoch: Int { min(data.train.count, trainLoader.batchCount * config.batchSize) }

    private var epochImagesPerSecond: Double { epochSeconds > 0 ? Double(epochImages) / epochSeconds : 0 }

    /// Trains the rest of the current epoch; returns an outcome when stopped early.
    private func trainEpoch() throws -> TrainingOutcome? {
        model.setTraining(true)
        let batches = trainLoader.batchCount, accum = config.gradAccum
        // Cached features: the same batches (the loader's order and each sample's flip draw), head only.
        let iterator = trainFeatures == nil ? trainLoader.epoch(epoch, from: batch) : nil
        defer { iterator?.stop() }
        let order = trainFeatures == nil ? [] : trainLoader.order(epoch: epoch)
        let fixed = trainLoader.transform as? FixedGeometryTransform
        epochImages = 0; epochSeconds = 0
        var clock = DispatchTime.now().uptimeNanoseconds
        let firstBatch = batch
        while batch < batches {
            beforeBatch?(epoch, batch)
            let next: (inputs: Tensor, labels: [Int], targets: Tensor?)
            if let table = trainFeatures, let fixed {
                let indices = Array(trainLoader.batchIndices(batch, order: order))
                let flips = indices.map { index -> Bool in
                    var rng = trainLoader.sampleGenerator(epoch: epoch, index: index)
                    return fixed.flips(using: &rng)
                }
                let rows = table.batch(indices, flips: flips)
                next = (rows.inputs, rows.labels, nil)
            } else {
                guard let loaded = try iterator?.next() else { break }
                next = (loaded.images, loaded.labels, loaded.targets)
            }
            let groupStart = batch / accum * accum, groupSize = min(groupStart + accum, batches) - groupStart
            if !next.labels.isEmpty {
                var value = step.accumulate(images: next.inputs, labels: next.labels, targets: next.targets, groupSize: groupSize,
                                            headInputs: trainFeatures != nil)
                var images = next.labels.count
                if let collective {
                    // The global batch's loss (the mean of the ranks' slice means) and image count.
                    let sums = try collective.sum([value, Double(images)])
                    value = sums[0] / Double(collective.size); images = Int(sums[1])
                }
                if firstBatchLoss == nil { firstBatchLoss = value }
                guard value.isFinite else {
                    let last = directory.appendingPathComponent("last.safetensors")
                    let kept = epoch > 0 ? "the last good checkpoint is \(last.path)" : "no epoch had finished"
                    throw TrainingError("the loss became \(value) at epoch \(epoch + 1), batch \(batch + 1); stopped (\(kept))")
                }
                epochLossSum += value; epochLossCount += 1
                epochImages += images
            }
            if batch + 1 == groupStart + groupSize {
                try step.update(index: epoch * updatesPerEpoch + batch / accum)
            }
            batch += 1
            let now = DispatchTime.now().uptimeNanoseconds
            let elapsed = Double(now - clock) / 1e9
            clock = now
            epochSeconds += elapsed; trainSeconds += elapsed
            let perBatch = epochSeconds / Double(max(batch - firstBatch, 1))
            onEvent(.batch(epoch: epoch, batch: batch, batches: batches, loss: epochLossCount == 0 ? 0 : epochLossSum / Double(epochLossCount),
                           imagesPerSecond: epochImagesPerSecond, etaSeconds: perBatch * Double(batches - batch)))
            if !step.hasPendingGradients, batch < batches, try stopRequested() {
                try saveResume()
                return .interrupted(epoch: epoch, batch: batch)
            }
        }
        return nil
    }

    /// A stop request on any rank stops every rank at the same update.
    private func stopRequested() throws -> Bool {
        guard let collective else { return shouldStop() }
        return try collective.any(shouldStop())
    }

    /// Evaluates the weights checkpoints hold (the EMA when on); a data-parallel run sums the ranks' counts.
    private func evaluateCurrent() throws -> EvaluationResult {
        let evaluate = {
            try self.evalFeatures.map { SSFTraining.evaluate(self.model, features: $0, batchSize: self.config.batchSize) }
                ?? SSFTraining.evaluate(self.model, loader: self.evalLoader)
        }
        let result = try ema.map { try $0.withAveragedWeights(evaluate) } ?? evaluate()
        return try collective.map { try result.summed(over: $0) } ?? result
    }

    /// The trainable tensors checkpoints hold (the EMA's when on).
    private func checkpointTensors() -> [String: Tensor] {
        let values = ema?.values ?? trainable.map(\.1.value)
        var tensors = Dictionary(uniqueKeysWithValues: zip(trainable.map(\.0), values))
        if tracksStatistics { tensors.merge(Trainer.statistics(of: model)) { a, _ in a } }
        return tensors
    }

    private func saveWeights(to name: String) throws {
        try outputs.saveTensors(checkpointTensors(), metadata: ["model": modelName, "method": config.method, "epoch": String(epoch + 1),
                                                                "format": "ssf-train-weights/1"], as: name)
    }

    private func saveDelta() throws {
        var state = model.stateDict()
        for (k, v) in checkpointTensors() { state[k] = v }
        let base = state.merging(initialStatistics) { _, initial in initial }
        try outputs.saveDelta(DeltaFile(ssfState: state, baseState: base, baseModel: modelName, headName: type(of: model).headName,
                                        classNames: data.train.classNames))
    }

    private func summary(final: EpochMetrics?, finalEval: EvaluationResult?) -> RunSummary {
        var summary = RunSummary()
        summary.model = modelName; summary.method = config.method; summary.data = config.data; summary.epochs = config.totalEpochs
        summary.bestTop1 = bestTop1; summary.bestEpoch = bestEpoch + 1
        summary.finalTop1 = final?.top1 ?? 0; summary.finalTop5 = final?.top5 ?? 0; summary.finalEvalLoss = final?.evalLoss ?? 0
        summary.trainableParams = trainableCount; summary.trainSeconds = trainSeconds; summary.selectedOn = data.evalSplit
        summary.trainImages = data.train.count; summary.evalImages = data.eval.count; summary.ema = ema != nil
        summary.peakRSSMiB = StorageStats.peakResidentMiB()
        summary.batchNorm = batchNormMode.rawValue; summary.headInit = config.headInit; summary.firstBatchLoss = firstBatchLoss ?? 0
        summary.trainImagesPerSecond = trainSeconds > 0 ? Double(imagesPerEpoch * config.totalEpochs) / trainSeconds : 0
        summary.deltaBytes = outputs.deltaBytes
        if let finalEval {
            let names = data.eval.classNames
            summary.perClassTop1 = Dictionary(uniqueKeysWithValues: finalEval.perClassTop1.enumerated().compactMap { i, acc in
                acc.map { (i < names.count ? names[i] : String(i), $0) }
            })
        }
        return summary
    }

    // MARK: Resumable checkpoints

    /// Training-mode batch norm in a data-parallel run normalises each rank's slice with the slice's
    /// statistics (no synchronised batch norm); the running statistics are averaged across the ranks
    /// at the end of every epoch and before a stop, so evaluation and checkpoints see one set.
    private func averageStatisticsAcrossRanks() throws {
        guard let collective, tracksStatistics else { return }
        for (_, bn) in model.batchNorms {
            for p in [bn.runningMean, bn.runningVar] {
                var value = p.value
                let count = value.count
                try collective.sum(UnsafeMutableBufferPointer(start: value.mutablePointer(), count: count))
                value.scaleInPlace(1 / Float(collective.size))
                p.value = value
            }
        }
    }

    private func saveResume(announce: Bool = true) throws {
        try averageStatisticsAcrossRanks()
        var tensors: [String: Tensor] = [:]
        for (name, p) in trainable { tensors["param/" + name] = p.value }
        for (slot, values) in optimizer.stateTensors() {
            for ((name, _), t) in zip(trainable, values) { tensors["opt/\(slot)/" + name] = t }
        }
        if let ema { for ((name, _), t) in zip(trainable, ema.values) { tensors["ema/" + name] = t } }
        if tracksStatistics { for (name, t) in Trainer.statistics(of: model) { tensors["stat/" + name] = t } }

        let metadata = [
            "format": "ssf-resume/1", "model": modelName, "method": config.method, "seed": String(config.seed),
            "epoch": String(epoch), "batch": String(batch), "optimizer_step": String(optimizer.step),
            "best_top1": String(bestTop1.bitPattern), "best_epoch": String(bestEpoch), "train_seconds": String(trainSeconds),
            "loss_sum": String(epochLossSum.bitPattern), "loss_count": String(epochLossCount),
            "first_batch_loss": String((firstBatchLoss ?? .nan).bitPattern),
            // Drop-path generators, so a resumed run draws the same masks.
            "drop_path_rng": model.dropPathsByBlock.joined().map { $0.rng.state.map(String.init).joined(separator: " ") }.joined(separator: ","),
        ]
        try outputs.saveTensors(tensors, metadata: metadata, as: "resume.safetensors")
        if announce { onEvent(.message("stopped at epoch \(epoch + 1), batch \(batch) of \(trainLoader.batchCount); resume with --resume \(directory.path)")) }
    }

    private func restore() throws {
        let url = directory.appendingPathComponent("resume.safetensors")
        let saved = try outputs.loadResume()
        let m = saved.metadata
        func integer(_ key: String) throws -> Int {
            guard let text = m[key], let value = Int(text) else { throw TrainingError("\(url.path): no '\(key)' in its metadata") }
            return value
        }
        func double(_ key: String) throws -> Double {
            guard let text = m[key], let bits = UInt64(text) else { throw TrainingError("\(url.path): no '\(key)' in its metadata") }
            return Double(bitPattern: bits)
        }
        guard m["format"] == "ssf-resume/1" else { throw TrainingError("\(url.path) is not a resumable checkpoint") }
        guard m["model"] == modelName, m["method"] == config.method else {
            throw TrainingError("\(url.path) was saved by a \(m["model"] ?? "?") \(m["method"] ?? "?") run, not \(modelName) \(config.method)")
        }
        func tensors(_ prefix: String) throws -> [Tensor] {
            try trainable.map { name, p in
                guard let t = saved.tensors[prefix + name], t.shape == p.value.shape else {
                    throw TrainingError("\(url.path): \(prefix + name) is missing or has another shape")
                }
                return t
            }
        }
        for ((_, p), t) in zip(trainable, try tensors("param/")) { p.value = t }
        var state: [String: [Tensor]] = [:]
        for slot in optimizer.stateTensors().keys { state[slot] = try tensors("opt/\(slot)/") }
        try optimizer.restore(state: state, step: try integer("optimizer_step"))
        if let ema { try ema.restore(try tensors("ema/")) }
        if tracksStatistics {
            for (path, bn) in model.batchNorms {
                for (name, p) in bn.localParameters where p.isBuffer {
                    guard let t = saved.tensors["stat/\(path).\(name)"], t.shape == p.value.shape else {
                        throw TrainingError("\(url.path): the running statistics stat/\(path).\(name) are missing or have another shape")
                    }
                    p.value = t
                }
            }
        }
        let dropPaths = Array(model.dropPathsByBlock.joined())
        if !dropPaths.isEmpty {
            let states = (m["drop_path_rng"] ?? "").split(separator: ",").map { RandomGenerator(state: $0.split(separator: " ").compactMap { UInt64($0) }) }
            guard states.count == dropPaths.count, states.allSatisfy({ $0 != nil }) else {
                throw TrainingError("\(url.path): no drop-path generator state for this model's \(dropPaths.count) drop-path layers")
            }
            for (d, state) in zip(dropPaths, states) { d.rng = state! }
        }
        epoch = try integer("epoch"); batch = try integer("batch")
        bestTop1 = try double("best_top1"); bestEpoch = try integer("best_epoch")
        trainSeconds = Double(m["train_seconds"] ?? "") ?? 0
        epochLossSum = try double("loss_sum"); epochLossCount = try integer("loss_count")
        if let bits = m["first_batch_loss"].flatMap(UInt64.init) { let v = Double(bitPattern: bits); firstBatchLoss = v.isNaN ? nil : v }
    }
}
