import XCTest
@testable import SSFEngine
import CBLAS
import Synchronization

/// Denormal floats never reach the kernels: exp underflows to an exact 0, and the engine's threads
/// flush denormal results to zero.
final class DenormalTests: XCTestCase {
    func testExpIsZeroWhereItLeavesTheNormalFloats() {
        let x = Vec(-.infinity, -1000, -104, -88, -87.4, -87.3, -50, 0)
        let e = vexp(x)
        for lane in 0..<5 { XCTAssertEqual(e[lane], 0, "exp(\(x[lane]))") }
        XCTAssertGreaterThanOrEqual(e[5], Float.leastNormalMagnitude)
        XCTAssertEqual(e[6], Float(exp(-50.0)), accuracy: Float(exp(-50.0)) * 1e-6)
        XCTAssertEqual(e[7], 1)
        // No lane of a sweep across the whole negative range is denormal.
        var v = Float(-120)
        while v < 0 {
            let r = vexp(Vec(repeating: v))[0]
            XCTAssertTrue(r == 0 || r.isNormal, "exp(\(v)) = \(r) is denormal")
            v += 0.0625
        }
        XCTAssertTrue(vexp(Vec(repeating: .nan))[0].isNaN)
    }

    func testTheEngineThreadsFlushDenormals() throws {
        #if arch(x86_64)
        Threading.configure(threads: 2)
        defer { Threading.configure(threads: nil) }
        XCTAssertEqual(ssf_flushes_denormals(), 1, "the configuring thread")
        let flags = Mutex<[Int32]>([])
        Threading.parallelFor(2) { _ in
            let flushes = ssf_flushes_denormals()
            flags.withLock { $0.append(flushes) }
        }
        XCTAssertEqual(flags.withLock { $0 }, [1, 1])
        // What flushing means: a product below the normal range comes out 0.
        let tiny = Float.leastNormalMagnitude
        let product = [tiny].withUnsafeBufferPointer { p in p[0] * 0.25 }
        XCTAssertEqual(product, 0)
        // Denormal inputs are still read as they are: a subnormal half converts to its value.
        XCTAssertEqual(Float(Float16(bitPattern: 0x03FF)), 1023 * 0x1p-24)
        XCTAssertEqual(Float(bitPattern: 1) * 0x1p100, 0x1p-49)
        #else
        throw XCTSkip("the flush is set through the x86-64 SSE control register")
        #endif
    }
}
