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
    ///
    /// With `columns`, the dataset's class `j` is logit column `columns[j]` (a subset of a larger head,
    /// e.g. ImageNet-R's 200 classes in a 1000-class head): only those columns are scored — softmax,
    /// ranks and top-k run over the subset — and labels index into `columns`.
    public mutating func add(logits: Tensor, labels: [Int], columns: [Int]? = nil) {
        let width = logits.shape[1], p = logits.pointer
        guard let columns else {
            for (i, label) in labels.enumerated() { add(row: p + i * width, classes: width, label: label) }
            return
        }
        var gathered = [Float](repeating: 0, count: columns.count)
        for (i, label) in labels.enumerated() {
            let row = p + i * width
            for (j, c) in columns.enumerated() { gathered[j] = row[c] }
            gathered.withUnsafeBufferPointer { add(row: $0.baseAddress!, classes: columns.count, label: label) }
        }
    }

    /// Scores one image's `classes` logits against its label.
    private mutating func add(row: UnsafePointer<Float>, classes: Int, label: Int) {
        let k = min(5, classes)
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

/// Which columns of a classifier's head a dataset's classes are: `--class-subset FILE`.
///
/// The file lists, in the dataset's class order, each class's index in the head (e.g. the
/// `indices_in_1k` of ImageNet-A or ImageNet-R in a 1000-class ImageNet head): integers separated by
/// newlines, commas or spaces; `#` starts a comment that runs to the end of the line.
public struct ClassSubset: Sendable, Equatable {
    public let columns: [Int]

    public init(columns: [Int]) { self.columns = columns }

    /// Parses `text`; `source` names it in errors. The count must be `datasetClasses`, every index
    /// in 0..<`headClasses`, none repeated.
    public init(parsing text: String, source: String, datasetClasses: Int, headClasses: Int) throws {
        var columns: [Int] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for token in content.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\r" }) {
                guard let value = Int(token) else {
                    throw EvaluationError("\(source): line \(number + 1): '\(token.prefix(40))' is not a class index (an integer)")
                }
                columns.append(value)
            }
        }
        guard columns.count == datasetClasses else {
            throw EvaluationError("\(source): \(columns.count) class ind\(columns.count == 1 ? "ex" : "ices") for a dataset of \(datasetClasses) classes (one index per class, in the dataset's class order)")
        }
        if let bad = columns.first(where: { $0 < 0 || $0 >= headClasses }) {
            throw EvaluationError("\(source): class index \(bad) is outside the model's head of \(headClasses) classes (0–\(headClasses - 1))")
        }
        var seen: [Int: Int] = [:]
        for (position, c) in columns.enumerated() {
            if let first = seen[c] {
                throw EvaluationError("\(source): class index \(c) is listed twice (for dataset classes \(first) and \(position))")
            }
            seen[c] = position
        }
        self.columns = columns
    }

    /// Reads and parses `url`.
    public init(contentsOf url: URL, datasetClasses: Int, headClasses: Int) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw EvaluationError("\(url.path): cannot read the class subset (\(error.localizedDescription))")
        }
        try self.init(parsing: text, source: url.path, datasetClasses: datasetClasses, headClasses: headClasses)
    }
}

/// A class subset or evaluation setting that does not fit.
public struct EvaluationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `model` in evaluation mode over every batch of `loader` (epoch 0, its order) and counts accuracy;
/// with `classSubset`, over those columns of the head only (see `EvaluationResult.add`).
public func evaluate(_ model: ImageClassifier, loader: DataLoader, classSubset: ClassSubset? = nil) throws -> EvaluationResult {
    model.setTraining(false)
    var result = EvaluationResult(classes: classSubset?.columns.count ?? model.numClasses)
    let start = DispatchTime.now().uptimeNanoseconds
    let batches = loader.epoch(0)
    while let batch = try batches.next() {
        guard !batch.labels.isEmpty else { continue }
        result.add(logits: model(batch.images), labels: batch.labels, columns: classSubset?.columns)
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
