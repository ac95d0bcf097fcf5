// `ssf bench ops`: GFLOP/s and bandwidth of the engine's kernels at ViT-B/16 shapes.
import ArgumentParser
import SSFEngine

struct BenchOpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ops", abstract: "Benchmark GEMM, linear, norm, softmax, GELU, attention and depthwise conv.")
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        threadOptions.apply()
    }
}
