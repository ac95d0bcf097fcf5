// Linear probing without recomputing the backbone: when only the head trains, the backbone is frozen
// (batch norm frozen, no drop-path) and the training transform has no random geometry, the features
// the head reads are the same every epoch. They are computed once per image (and orientation, with
// flips) and the head trains and is evaluated on them; the updates are those of the uncached run.
import Dispatch
import Foundation
import SSFData
import SSFEngine
import SSFModels
import SSFNN

/// The head's inputs for a dataset's images under a fixed transform, in memory (pooled features; for
/// ConvNeXt, whose head pools and normalises, the last stage's map).
public struct FeatureTable {
    /// `[count, dim]`: the unflipped image's features, flattened.
    public let features: Tensor
    /// `[count, dim]` of the mirrored images (nil without flips).
    public let flipped: Tensor?
    /// One image's features as `headInput` shapes them (`[dim]`, or `[C, H, W]`).
    public let sampleShape: [Int]
    public let labels: [Int]
    /// False where the image could not be read (skipped under `bad_images: skip`).
    public let present: [Bool]
    public let skipped: [(identity: String, problem: String)]
    public var count: Int { labels.count }
    public var dim: Int { features.shape[1] }

    /// Runs `model.headInput` (in evaluation mode) over every image of `dataset` under `transform`
    /// (its randomness unused), `batchSize` at a time, decoded on `workers` threads; with `mirrored`, the
    /// mirror images' features too.
    init(model: ImageClassifier, dataset: any ImageDataset, transform: any SampleTransform, mirrored: (any SampleTransform)?, batchSize: Int,
         workers: Int, badImages: BadImagePolicy) throws {
        model.setTraining(false)
        let n = dataset.count
        var tables: [Tensor?] = [nil, nil]
        var labels = [Int](repeating: -1, count: n), present = [Bool](repeating: false, count: n)
        var skipped: [(String, String)] = []
        var sampleShape: [Int] = []
        let transforms = [transform] + (mirrored.map { [$0] } ?? [])
        for (orientation, transform) in transforms.enumerated() {
            let loader = DataLoader(dataset: dataset, batchSize: batchSize, shuffle: false, transform: transform,
                                    workers: workers, seed: 0, badImages: badImages)
            let epoch = loader.epoch(0)
            var table: Tensor?
            while let batch = try epoch.next() {
                if orientation == 0 { skipped += batch.skipped }
                guard !batch.labels.isEmpty else { continue }
                let pooled = model.headInput(batch.images)
                precondition(pooled.rank >= 2 && pooled.shape[0] == batch.labels.count, "headInput gave \(pooled.shape) for \(batch.labels.count) images")
                sampleShape = Array(pooled.shape.dropFirst())
                let dim = pooled.count / batch.labels.count
                if table == nil { table = Tensor(shape: [n, dim], repeating: 0) }
                let dst = table!.mutablePointer()
                for (row, index) in batch.indices.enumerated() {
                    (dst + index * dim).update(from: pooled.pointer + row * dim, count: dim)
                    if orientation == 0 { labels[index] = batch.labels[row]; present[index] = true }
                }
            }
            tables[orientation] = table
        }
        guard let first = tables[0] else { throw TrainingError("no image of the split could be read, so there are no features to cache") }
        features = first; flipped = tables[1]; self.sampleShape = sampleShape
        self.labels = labels; self.present = present; self.skipped = skipped
    }

    /// Rows `indices` (only those present) as a `[k, dim]` batch; `flips[i]` picks the mirror image's row.
    func batch(_ indices: [Int], flips: [Bool]) -> (inputs: Tensor, labels: [Int]) {
        let dim = self.dim
        let kept = indices.indices.filter { present[indices[$0]] }
        var out = Tensor(uninitializedShape: [kept.count] + sampleShape)
        let dst = out.mutablePointer()
        for (row, k) in kept.enumerated() {
            let source = flips[k] ? flipped! : features
            (dst + row * dim).update(from: source.pointer + indices[k] * dim, count: dim)
        }
        return (out, kept.map { labels[indices[$0]] })
    }
}

/// A fixed-geometry transform with its flip decided in advance.
struct OrientedTransform: SampleTransform {
    let base: FixedGeometryTransform
    let flipped: Bool
    func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor { base.tensor(image, flipped: flipped) }
}

/// Whether a run can train on cached features, and why not.
public enum FeatureCaching {
    /// nil when the run's head can train on features computed once; else the reason it cannot.
    public static func obstacle(model: ImageClassifier, config: TrainingConfig, trainTransform: any SampleTransform, parallel: Bool) -> String? {
        if let name = model.trainableParameters.map(\.0).first(where: { !model.isHeadParameter($0) }) {
            return "parameters outside the head train (e.g. \(name)); only linear probing has a frozen backbone"
        }
        if config.batchNormMode == .train, !model.batchNorms.isEmpty { return "batch norm trains (bn: train), so the backbone changes" }
        if model.dropPathsByBlock.joined().contains(where: { $0.probability > 0 }) { return "drop-path is on, so the backbone's features are random" }
        if config.mixup > 0 || config.cutmix > 0 { return "mixup/cutmix mix the images, not their features" }
        guard trainTransform is FixedGeometryTransform else {
            return "the training transform has random geometry (augment: full); use augment none or flip (or direct_resize with augment none)"
        }
        if parallel { return "the run is data-parallel" }
        return nil
    }
}

/// Top-1/top-5 and loss of the head on cached features (the model in evaluation mode), `batchSize` rows at a time.
func evaluate(_ model: ImageClassifier, features table: FeatureTable, batchSize: Int) -> EvaluationResult {
    model.setTraining(false)
    var result = EvaluationResult(classes: model.numClasses)
    let start = DispatchTime.now().uptimeNanoseconds
    let rows = (0..<table.count).filter { table.present[$0] }
    for first in stride(from: 0, to: rows.count, by: max(batchSize, 1)) {
        let indices = Array(rows[first..<min(first + batchSize, rows.count)])
        let (inputs, labels) = table.batch(indices, flips: [Bool](repeating: false, count: indices.count))
        result.add(logits: model.applyHead(inputs), labels: labels)
    }
    result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return result
}
