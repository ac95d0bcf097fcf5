// A seeded, stratified validation split carved from a training split: per class, a shuffle seeded by
// the run's seed and the class picks the samples that go to validation.
import Foundation
import SSFEngine

/// Splits sample indices into a training part and a validation part with the same class proportions.
public enum StratifiedSplit {
    /// How many of a class's `n` samples go to validation: round(fraction · n), at least 1 when n ≥ 2,
    /// and never all of them (every class keeps a training sample).
    public static func validationCount(classSize n: Int, fraction: Double) -> Int {
        guard n >= 2 else { return 0 }
        return min(n - 1, max(1, Int((fraction * Double(n)).rounded())))
    }

    /// For each class (in label order) its indices are shuffled by a generator seeded from `seed` and the
    /// label (Fisher–Yates); the first `validationCount` go to validation. Both parts are returned in
    /// ascending order; every index of `labels` is in exactly one of them.
    public static func split(labels: [Int], fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
        var byClass: [Int: [Int]] = [:]
        for (index, label) in labels.enumerated() { byClass[label, default: []].append(index) }
        var validation: [Int] = []
        for label in byClass.keys.sorted() {
            var indices = byClass[label]!
            var rng = RandomGenerator(seed: (seed ^ 0x5357_4545_5053_504C) &+ UInt64(truncatingIfNeeded: label) &* 0x9E37_79B9_7F4A_7C15)
            for i in stride(from: indices.count - 1, to: 0, by: -1) {
                indices.swapAt(i, Int(rng.next(upperBound: UInt64(i + 1))))
            }
            validation += indices.prefix(validationCount(classSize: indices.count, fraction: fraction))
        }
        let held = Set(validation)
        return (labels.indices.filter { !held.contains($0) }, validation.sorted())
    }
}
