// Timing several pieces of work in alternation, so that they share the machine's state (clock,
// caches, other load) and their medians can be compared within one run.
import Foundation

public enum TurnTimer {
    /// Seconds per call of each body: `warmup` untimed rounds, then `rounds` rounds in which each
    /// body runs `callsPerTurn` times in turn; the median over the rounds, per body, in order.
    public static func medianSeconds(_ bodies: [() -> Void], rounds: Int, warmup: Int = 1, callsPerTurn: Int = 1) -> [Double] {
        for _ in 0..<warmup { for body in bodies { body() } }
        var seconds = Array(repeating: [Double](), count: bodies.count)
        for _ in 0..<max(rounds, 1) {
            for (i, body) in bodies.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<max(callsPerTurn, 1) { body() }
                seconds[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(max(callsPerTurn, 1)))
            }
        }
        return seconds.map { $0.sorted()[$0.count / 2] }
    }

    /// `medianSeconds` for one body.
    public static func medianSeconds(rounds: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
        withoutActuallyEscaping(body) { medianSeconds([$0], rounds: rounds, warmup: warmup)[0] }
    }
}
