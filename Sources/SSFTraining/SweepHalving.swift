// Successive halving over a sweep's trials: rungs of growing epoch budgets, each trained from scratch,
// the best 1/eta of a rung's trials (by validation top-1) going on to the next.
import Foundation

/// The rungs of a successive-halving sweep.
///
/// With `rungs` R and `eta` η, rung r (0 … R−1) trains each of its trials from scratch with the schedule's
/// epoch counts divided by η^(R−1−r): cosine epochs rounded up (at least 1), warmup and cooldown epochs
/// rounded down, so the last rung runs the full schedule. Rung 0 runs every trial; the top ⌈n/η⌉ of a
/// rung's n trials by final-epoch validation top-1 (ties: lower lr, then earlier trial) go on to the next.
/// A rung left with a single trial is not run: that trial is the choice.
public struct SuccessiveHalving: Codable, Equatable, Sendable {
    public let eta: Int
    public let rungs: Int

    /// Throws unless `eta` ≥ 2 and 1 ≤ `rungs` ≤ 8.
    public init(eta: Int, rungs: Int) throws {
        guard eta >= 2 else { throw ConfigError("--eta must be 2 or more, not \(eta)") }
        guard (1...8).contains(rungs) else { throw ConfigError("--halving-rungs must be between 1 and 8, not \(rungs)") }
        self.eta = eta; self.rungs = rungs
    }

    /// The divisor of rung `rung`'s epoch counts: η^(R−1−rung).
    public func divisor(rung: Int) -> Int {
        (0..<(rungs - 1 - rung)).reduce(1) { value, _ in value * eta }
    }

    /// `full` with its epoch counts scaled for `rung`.
    public func config(_ full: TrainingConfig, rung: Int) -> TrainingConfig {
        let d = divisor(rung: rung)
        var c = full
        c.epochs = max(1, (full.epochs + d - 1) / d)
        c.warmupEpochs = full.warmupEpochs / d
        c.cooldownEpochs = full.cooldownEpochs / d
        return c
    }

    /// How many of a rung's `n` trials go on: ⌈n/η⌉.
    public func survivorCount(_ n: Int) -> Int { (n + eta - 1) / eta }
}
