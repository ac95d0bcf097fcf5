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
}
