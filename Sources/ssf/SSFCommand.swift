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
        subcommands: [DemoCommand.self, ModelsCommand.self, InspectCommand.self, ForwardCommand.self, PredictCommand.self, TrainCommand.self, SweepCommand.self, EvalCommand.self, RobustnessCommand.self, ReportCommand.self, MergeCommand.self, DeltaCommand.self, ConvertCommand.self, ServeCommand.self, AnalyzeCommand.self, VTABCommand.self, BenchCommand.self, SystemCommand.self]
    )

    static func main() {
        // A file-size limit (`ulimit -f`) is then a write error naming the file, not a kill.
        signal(SIGXFSZ, SIG_IGN)
        restartWithBetterBLASKernels()
        main(nil)
    }

    /// When OpenBLAS took this CPU for an older one (kernels without AVX2 on an AVX2 or AVX-512
    /// machine), starts the tool again with `OPENBLAS_CORETYPE` naming the right kernel set: OpenBLAS
    /// reads it only when it loads. The arguments and the rest of the environment are unchanged; if
    /// the restart fails the tool goes on with the slower kernels.
    static func restartWithBetterBLASKernels() {
        #if os(Linux)
        guard let core = BLAS.betterCoreType() else { return }
        setenv(BLAS.replacedCoreVariable, BLAS.coreName, 1)
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(BLAS.replacedCoreVariable)
        #endif
    }
}

/// Options shared by every command that computes.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for our kernels and BLAS together (default: SSF_NUM_THREADS or all cores).")
    var threads: Int?

    func apply() { Threading.configure(threads: threads) }
}
