// Entry point of the `ssf` command-line tool.
import ArgumentParser
import SSFEngine
#if canImport(Glibc)
import Glibc
#endif

@main
struct SSFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssf",
        abstract: "Parameter-efficient fine-tuning of pretrained vision models by scaling and shifting features (SSF).",
        subcommands: [DemoCommand.self, ModelsCommand.self, InspectCommand.self, ForwardCommand.self, PredictCommand.self, TrainCommand.self, SweepCommand.self, EvalCommand.self, RobustnessCommand.self, ReportCommand.self, MergeCommand.self, DeltaCommand.self, ConvertCommand.self, ServeCommand.self, AnalyzeCommand.self, VTABCommand.self, BenchCommand.self]
    )

    static func main() {
        // A file-size limit (`ulimit -f`) is then a write error naming the file, not a kill.
        signal(SIGXFSZ, SIG_IGN)
        main(nil)
    }
}

/// Options shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for our kernels and BLAS together (default: SSF_NUM_THREADS or all cores).")
    var threads: Int?

    func apply() { Threading.configure(threads: threads) }
}
