// `ssf bench`: performance measurements.
import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the speed of the engine.",
        subcommands: [BenchOpsCommand.self, BenchModelCommand.self, BenchDataCommand.self, BenchAllreduceCommand.self, BenchServeCommand.self]
    )
}
