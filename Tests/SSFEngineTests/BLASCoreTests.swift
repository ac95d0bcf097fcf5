import XCTest
@testable import SSFEngine
import CBLAS
import Foundation

/// When OpenBLAS mistakes a new CPU for an old one, the tool asks for the kernel set the CPU runs.
final class BLASCoreTests: XCTestCase {
    func testAFallbackCoreIsReplacedByTheWidestKernelSetTheCPURuns() {
        XCTAssertEqual(BLAS.betterCoreType(chosen: "Prescott", vectorLevel: 2, environment: [:]), "SkylakeX")
        XCTAssertEqual(BLAS.betterCoreType(chosen: "Nehalem", vectorLevel: 1, environment: [:]), "Haswell")
        XCTAssertEqual(BLAS.betterCoreType(chosen: "Sandybridge", vectorLevel: 2, environment: ["OPENBLAS_CORETYPE": ""]), "SkylakeX")
    }

    func testAGoodChoiceAnOldCPUOrAnExplicitCoreTypeStands() {
        XCTAssertNil(BLAS.betterCoreType(chosen: "Haswell", vectorLevel: 2, environment: [:]))
        XCTAssertNil(BLAS.betterCoreType(chosen: "SkylakeX", vectorLevel: 2, environment: [:]))
        XCTAssertNil(BLAS.betterCoreType(chosen: "Zen", vectorLevel: 1, environment: [:]))
        XCTAssertNil(BLAS.betterCoreType(chosen: "Prescott", vectorLevel: 0, environment: [:]))
        XCTAssertNil(BLAS.betterCoreType(chosen: "Prescott", vectorLevel: 2, environment: ["OPENBLAS_CORETYPE": "Prescott"]))
    }

    func testTheVectorLevelMatchesTheKernelsCPUFlags() throws {
        #if os(Linux) && arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagsLine = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        let expected = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) ? 2
            : flags.contains("avx2") && flags.contains("fma") ? 1 : 0
        XCTAssertEqual(Int(ssf_cpu_vector_level()), expected)
        #else
        throw XCTSkip("reads /proc/cpuinfo, on x86-64 Linux only")
        #endif
    }

    /// The FMA-peak loop runs every round: its chains (a ← 0.999·a + 10⁻⁴ from a = 0…11) reach
    /// their fixed point 0.1 only after thousands of rounds, and its rate stays below what any
    /// core can do (64 FLOP per cycle at 6 GHz), which a loop the compiler shortened would not.
    func testTheFMAPeakLoopRunsEveryRound() throws {
        guard FMAPeak.available else { throw XCTSkip("the FMA-peak loop needs x86-64 with AVX2/FMA") }
        XCTAssertEqual(ssf_fma_peak(10), 66, accuracy: 1, "ten rounds leave the chains near their starting values 0…11")
        let rounds = 2_000_000
        let start = DispatchTime.now().uptimeNanoseconds
        let sum = ssf_fma_peak(rounds)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertEqual(sum, 12 * 0.1, accuracy: 0.01, "each of the 12 chains reaches 0.1")
        let gflops = Double(rounds * FMAPeak.flopsPerRound) / seconds / 1e9
        XCTAssertLessThan(gflops, 384, "\(gflops) GFLOP/s on one thread: the loop did not run every round")
        XCTAssertEqual(FMAPeak.run(roundsPerThread: 10), Double(Threading.threads * 10 * FMAPeak.flopsPerRound))
    }
}
