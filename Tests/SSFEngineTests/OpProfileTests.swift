// The op profile: time per op kind for forward ops and their backward closures, the outermost op
// only, GEMM FLOPs counted, nothing recorded while it is off.
import SSFEngine
import XCTest

final class OpProfileTests: XCTestCase {
    func testForwardAndBackwardKindsWithTheirFlops() throws {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([6, 5], using: &rng)
        let w = Tensor.randomNormal([3, 5], using: &rng), b = Tensor.randomNormal([3], using: &rng)
        let (_, report) = OpProfile.measure { () -> Void in
            let tape = Tape()
            let wv = tape.watch(w), xv = tape.watch(x)
            let loss = tape.recording { gelu(linear(xv, weight: wv, bias: b)).sum() }
            _ = tape.backward(from: loss)
        }
        let byName = Dictionary(uniqueKeysWithValues: report.entries.map { ($0.name, $0) })
        for name in ["linear", "activation", "reduce", "linear backward", "activation backward", "reduce backward"] {
            XCTAssertNotNil(byName[name], "\(name) missing from \(byName.keys.sorted())")
        }
        // linear runs its GEMM inside: one call, 2·m·n·k FLOPs; matmul is not listed apart.
        XCTAssertEqual(byName["linear"]?.calls, 1)
        XCTAssertEqual(byName["linear"]?.flops, Double(2 * 6 * 3 * 5))
        XCTAssertNil(byName["matmul"])
        // The backward's GEMMs: dx = g·W (6×5, k 3) and dW = gᵀ·x (3×5, k 6).
        XCTAssertEqual(byName["linear backward"]?.flops, Double(2 * 6 * 5 * 3 + 2 * 3 * 5 * 6))
        XCTAssertEqual(byName["activation"]?.flops, 0)
        XCTAssertGreaterThan(byName["linear"]?.bytesAllocated ?? 0, 0)
        let attributed = report.entries.reduce(0) { $0 + $1.seconds }
        XCTAssertLessThanOrEqual(attributed, report.totalSeconds + 1e-9)
        XCTAssertEqual(report.unattributedSeconds, report.totalSeconds - attributed, accuracy: 1e-9)

        // Off: the same ops record nothing, and the next profile starts empty.
        XCTAssertFalse(OpProfile.active)
        _ = gelu(linear(x, weight: w, bias: b))
        let (_, empty) = OpProfile.measure { () -> Void in }
        XCTAssertTrue(empty.entries.isEmpty)
    }

    /// Attention's per-head products run inside a parallel loop, each adding its FLOPs from the
    /// thread that runs it (the count is shared by the threads): every product is counted, forward
    /// and backward.
    func testFlopsAddedFromWorkerThreadsAreAllCounted() throws {
        var rng = RandomGenerator(seed: 9)
        let (batch, tokens, heads, headDim) = (16, 23, 8, 16)
        let qkv = Tensor.randomNormal([batch, tokens, 3 * heads * headDim], using: &rng)
        let seed = Tensor.randomNormal([batch, tokens, heads * headDim], using: &rng)
        // 128 heads per call, split among the threads.
        let repeats = 20
        let (_, report) = OpProfile.measure { () -> Void in
            for _ in 0..<repeats {
                let tape = Tape()
                let q = tape.watch(qkv)
                let y = tape.recording { scaledDotProductAttention(qkv: q, heads: heads) }
                _ = tape.backward(from: y, seed: seed)
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: report.entries.map { ($0.name, $0) })
        let perHead = Double(2 * tokens * tokens * headDim)
        // Forward: q·kᵀ and P·v per head. Backward: q·kᵀ again, dV, dP, dQ and dK.
        XCTAssertEqual(byName["attention"]?.flops, Double(repeats * batch * heads) * 2 * perHead)
        XCTAssertEqual(byName["attention backward"]?.flops, Double(repeats * batch * heads) * 5 * perHead)
    }
}

