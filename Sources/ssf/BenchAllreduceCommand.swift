// `ssf bench allreduce`: the time of one gradient reduction across the ranks of `mpirun`.
import ArgumentParser
import Foundation
import SSFDistributed
import SSFEngine
import SSFFormats

struct BenchAllreduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time a sum-allreduce of float buffers across the ranks (run under mpirun -np N).",
        discussion: """
        The default sizes are ViT-B/16's trainable gradients under SSF with a 100-class head (282,724 floats) and
        under full fine-tuning (85,875,556). Medians of --repeats after one warm-up; rank 0 prints.
        """)
    @Option(help: "Comma-separated buffer sizes in floats.") var floats = "282724,85875556"
    @Option(help: "Timed repetitions per size.") var repeats = 9
    @Flag(help: "One JSON object per size.") var json = false

    func run() throws {
        guard let collective = try MPICollective.fromEnvironment() else {
            throw ValidationError("run it under mpirun with at least 2 ranks, e.g. mpirun -np 2 ssf bench allreduce")
        }
        let sizes = floats.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        for count in sizes {
            var buffer = [Float](repeating: 1, count: count)
            var failure: Error?
            let seconds = try buffer.withUnsafeMutableBufferPointer { p -> Double in
                try collective.barrier()
                return TurnTimer.medianSeconds(rounds: repeats) {
                    do { try collective.sum(p) } catch { failure = failure ?? error }
                }
            }
            if let failure { throw failure }
            let bytes = Double(count * 4)
            // A ring allreduce moves 2(N−1)/N of the buffer through each rank's link.
            let moved = 2 * Double(collective.size - 1) / Double(collective.size) * bytes
            if collective.rank == 0 {
                if json {
                    print(JSONValue.orderedObject([
                        JSONMember("ranks", JSONValue(collective.size)), JSONMember("floats", JSONValue(count)),
                        JSONMember("seconds", JSONValue(seconds, decimals: 6)), JSONMember("gb_per_s", JSONValue(moved / seconds / 1e9, decimals: 3)),
                    ]).serialized)
                } else {
                    print(String(format: "%d ranks, %d floats (%.1f MB): %.3f ms per allreduce, %.2f GB/s of ring traffic per rank",
                                 collective.size, count, bytes / 1e6, seconds * 1e3, moved / seconds / 1e9))
                }
            }
        }
        collective.finish()
    }
}
