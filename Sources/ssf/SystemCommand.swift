// `ssf system`: what this machine gives the engine.
import ArgumentParser
import CBLAS
import Foundation
import SSFEngine

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "CPU, vector level, BLAS kernels and threads the engine uses on this machine.",
        discussion: """
            When OpenBLAS takes the CPU for an older one (kernels without AVX2 on an AVX2 or AVX-512 \
            processor), `ssf` restarts itself with OPENBLAS_CORETYPE naming the right kernels; \
            --blas-core-type prints that value (empty when OpenBLAS's own choice stands) for other \
            programs that link the library, e.g. `export OPENBLAS_CORETYPE=$(ssf system --blas-core-type)`.
            """
    )

    @Flag(name: .customLong("blas-core-type"), help: "Print only the OPENBLAS_CORETYPE this tool runs with (empty if none).")
    var blasCoreType = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        if blasCoreType {
            print(environment["OPENBLAS_CORETYPE"] ?? "")
            return
        }
        Threading.configure(threads: nil)
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let level = ["older than AVX2", "AVX2 + FMA", "AVX-512"][Int(ssf_cpu_vector_level())]
        print("CPU: \(cpu), \(Threading.threads) thread(s) by default, vector level: \(level)")
        let replaced = BLAS.replacedCoreName.map { " (OpenBLAS detected \($0); OPENBLAS_CORETYPE=\(BLAS.coreName) set by ssf)" } ?? ""
        print("BLAS kernels: \(BLAS.coreName)\(replaced)")
        print("Denormal results flushed to zero on the engine's threads: \(ssf_flushes_denormals() == 1 ? "yes" : "no")")
    }
}
