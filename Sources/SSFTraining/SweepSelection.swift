// Ranking a sweep's trials on their validation top-1 alone: the choice of a configuration, and the
// trials that go on to the next rung of successive halving.
import Foundation

/// A trial's validation result at one rung.
public struct SweepScore: Equatable, Sendable {
    public let trial: Int
    /// The trial's peak learning rate (ties go to the lower).
    public let lr: Double
    /// Final-epoch validation top-1 in percent; nil when the run failed.
    public let top1: Double?

    public init(trial: Int, lr: Double, top1: Double?) { self.trial = trial; self.lr = lr; self.top1 = top1 }
}

/// Orders trials by validation top-1; nothing else (no test figure) enters.
public enum SweepSelection {
    /// Best first: higher top-1, then lower lr, then earlier trial; failed trials are left out.
    public static func ranked(_ scores: [SweepScore]) -> [SweepScore] {
        scores.filter { $0.top1 != nil }.sorted { a, b in
            if a.top1! != b.top1! { return a.top1! > b.top1! }
            if a.lr != b.lr { return a.lr < b.lr }
            return a.trial < b.trial
        }
    }

    /// The chosen trial (nil when every run failed).
    public static func best(_ scores: [SweepScore]) -> Int? { ranked(scores).first?.trial }

    /// The `count` best trials, in trial order.
    public static func survivors(_ scores: [SweepScore], count: Int) -> [Int] {
        ranked(scores).prefix(count).map(\.trial).sorted()
    }
}
