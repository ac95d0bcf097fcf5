// Evaluation of a classifier over a loader: mean loss, top-1/top-5 and per-class accuracy, images/s.
import Foundation
import SSFData
import SSFEngine
import SSFModels

/// Accuracy counts of a classifier over a dataset.
public struct EvaluationResult: Sendable, Equatable {
    public var images = 0
    /// Sum of per-image cross-entropy losses.
    public var lossSum = 0.0
    public var top1Correct = 0, top5Correct = 0
    /// Images and top-1 hits per class.
    public var classImages: [Int], classCorrect: [Int]
    public var seconds = 0.0

    public init(classes: Int) {
        classImages = Array(repeating: 0, count: classes); classCorrect = Array(repeating: 0, count: classes)
    }

    public var loss: Double { images == 0 ? 0 : lossSum / Double(images) }
    /// Top-1 accuracy in percent.
    public var top1: Double { images == 0 ? 0 : 100 * Double(top1Correct) / Double(images) }
    /// Top-5 accuracy in percent (top-k with k = min(5, classes)).
    public var top5: Double { images == 0 ? 0 : 100 * Double(top5Correct) / Double(images) }
    /// Top-1 accuracy of each class in percent (nil for a class without images).
    public var perClassTop1: [Double?] {
        zip(classImages, classCorrect).map { n, c in n == 0 ? nil : 100 * Double(c) / Double(n) }
    }
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }

    /// Adds a batch of `[N, classes]` logits with their labels.
    public mutating func add(logits: Tensor, labels: [Int]) {
        let classes = logits.shape[1], p = logits.pointer
        let k = min(5, classes)
        for (i, label) in labels.enumerated() {
            let row = p + i * classes
            var maxValue = -Float.infinity
            for c in 0..<classes { maxValue = max(maxValue, row[c]) }
            var sum = 0.0
            for c in 0..<classes { sum += exp(Double(row[c] - maxValue)) }
            lossSum += log(sum) - Double(row[label] - maxValue)
            // Rank of the true class: classes scoring higher (ties broken by index, as a stable sort).
            var rank = 0
            for c in 0..<classes where row[c] > row[label] || (row[c] == row[label] && c < label) { rank += 1 }
            images += 1
            if label < classImages.count { classImages[label] += 1 }
            if rank == 0 { top1Correct += 1; if label < classCorrect.count { classCorrect[label] += 1 } }
            if rank < k { top5Correct += 1 }
        }
    }
}

/// Runs `model` in evaluation mode over every batch of `loader` (epoch 0, its order) and counts accuracy.
public func evaluate(_ model: ImageClassifier, loader: DataLoader) throws -> EvaluationResult {
    model.setTraining(false)
    var result = EvaluationResult(classes: model.numClasses)
    let start = DispatchTime.now().uptimeNanoseconds
    let batches = loader.epoch(0)
    while let batch = try batches.next() {
        guard !batch.labels.isEmpty else { continue }
        result.add(logits: model(batch.images), labels: batch.labels)
    }
    result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return result
}

extension EvaluationResult {
    /// The counts and losses summed over the processes of `collective` (each evaluated its shard);
    /// the time is the ranks' mean (they ran at once).
    public func summed(over collective: Collective) throws -> EvaluationResult {
        let values = [Double(images), lossSum, Double(top1Correct), Double(top5Correct)]
            + classImages.map(Double.init) + classCorrect.map(Double.init)
        let total = try collective.sum(values)
        var out = EvaluationResult(classes: classImages.count)
        out.images = Int(total[0]); out.lossSum = total[1]; out.top1Correct = Int(total[2]); out.top5Correct = Int(total[3])
        let k = classImages.count
        out.classImages = total[4 ..< 4 + k].map { Int($0) }
        out.classCorrect = total[(4 + k)...].map { Int($0) }
        out.seconds = try collective.sum([seconds])[0] / Double(collective.size)
        return out
    }
}
