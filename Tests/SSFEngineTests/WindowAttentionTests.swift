// The direct small-window attention kernels against the BLAS path they replace (forward, the
// gradients of qkv and of the relative position bias) and against finite differences.
import XCTest
@testable import SSFEngine

final class WindowAttentionTests: XCTestCase {
    private func normal(_ shape: [Int], _ seed: UInt64, std: Float = 1) -> Tensor { GradientCheck.normal(shape, seed: seed, std: std) }

    /// Swin's shifted-window mask pattern: window w blocks attention between token groups.
    private func mask(windows: Int, tokens: Int) -> Tensor {
        var values: [Float] = []
        for w in 0..<windows {
            for i in 0..<tokens {
                for j in 0..<tokens { values.append(w % 2 == 1 && (i < tokens / 3) != (j < tokens / 3) ? -100 : 0) }
            }
        }
        return Tensor(shape: [windows, tokens, tokens], values)
    }

    /// Output and gradients of one attention call, with the direct kernels on or off.
    private func run(direct: Bool, qkv: Tensor, heads: Int, bias: Tensor?, mask: Tensor?, seed: Tensor,
                     trackInput: Bool = true) -> (out: Tensor, dqkv: Tensor?, dbias: Tensor?) {
        let previous = WindowAttentionKernels.enabled
        WindowAttentionKernels.enabled = direct
        defer { WindowAttentionKernels.enabled = previous }
        let tape = Tape()
        let q = trackInput ? tape.watch(qkv) : qkv
        let b = bias.map { tape.watch($0) }
        let out = tape.recording { scaledDotProductAttention(qkv: q, heads: heads, bias: b, mask: mask) }
        let grads = tape.backward(from: out, seed: seed)
        return (out, trackInput ? grads[q] : nil, b.flatMap { grads[$0] })
    }

    private func assertClose(_ a: Tensor?, _ b: Tensor?, _ what: String, tolerance: Float = 2e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(what): missing", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let scale = max(b.scalars.map(abs).max() ?? 0, 1)
        let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(what): max |Δ| \(worst) (scale \(scale))", file: file, line: line)
    }

    private func compare(windows: Int, batchPerWindow: Int, tokens: Int, heads: Int, withBias: Bool, withMask: Bool, seedBase: UInt64,
                         file: StaticString = #filePath, line: UInt = #line) {
        let batch = windows * batchPerWindow, width = heads * 32
        let qkv = normal([batch, tokens, 3 * width], seedBase)
        let bias = withBias ? normal([heads, tokens, tokens], seedBase + 1) : nil
        let m = withMask ? mask(windows: windows, tokens: tokens) : nil
        let seed = normal([batch, tokens, width], seedBase + 2)
        XCTAssertTrue(WindowAttentionKernels.applies(tokens: tokens, headDim: 32), file: file, line: line)
        let direct = run(direct: true, qkv: qkv, heads: heads, bias: bias, mask: m, seed: seed)
        let blas = run(direct: false, qkv: qkv, heads: heads, bias: bias, mask: m, seed: seed)
        let label = "T=\(tokens) heads=\(heads) bias=\(withBias) mask=\(withMask)"
        assertClose(direct.out, blas.out, "\(label) output", file: file, line: line)
        assertClose(direct.dqkv, blas.dqkv, "\(label) qkv gradient", file: file, line: line)
        if withBias { assertClose(direct.dbias, blas.dbias, "\(label) bias gradient", file: file, line: line) }
    }

    func testMatchesBLASAtSwinWindows() {
        // 7×7 windows, several heads, the relative position bias and the shifted-window mask.
        compare(windows: 4, batchPerWindow: 2, tokens: 49, heads: 3, withBias: true, withMask: true, seedBase: 11)
        compare(windows: 1, batchPerWindow: 5, tokens: 49, heads: 2, withBias: true, withMask: false, seedBase: 21)
    }

    func testMatchesBLASAtOtherTokenCounts() {
        // A full 56-token row (no padding), an odd count, and a single token; with and without bias.
        compare(windows: 2, batchPerWindow: 1, tokens: 56, heads: 2, withBias: true, withMask: true, seedBase: 31)
        compare(windows: 1, batchPerWindow: 3, tokens: 13, heads: 1, withBias: false, withMask: false, seedBase: 41)
        compare(windows: 1, batchPerWindow: 2, tokens: 1, heads: 2, withBias: true, withMask: false, seedBase: 51)
    }

    func testBiasGradientAloneMatchesBLAS() {
        let qkv = normal([4, 49, 3 * 64], 61), bias = normal([2, 49, 49], 62), seed = normal([4, 49, 64], 63)
        let direct = run(direct: true, qkv: qkv, heads: 2, bias: bias, mask: nil, seed: seed, trackInput: false)
        let blas = run(direct: false, qkv: qkv, heads: 2, bias: bias, mask: nil, seed: seed, trackInput: false)
        assertClose(direct.dbias, blas.dbias, "bias gradient without the input's")
        XCTAssertNil(direct.dqkv)
    }

    func testOtherShapesStayOnBLAS() {
        XCTAssertFalse(WindowAttentionKernels.applies(tokens: 57, headDim: 32))
        XCTAssertFalse(WindowAttentionKernels.applies(tokens: 49, headDim: 64))
        XCTAssertFalse(WindowAttentionKernels.applies(tokens: 197, headDim: 64))
    }

    func testFiniteDifferences() {
        let qkv = normal([2, 9, 3 * 32], 71, std: 0.5), bias = normal([1, 9, 9], 72, std: 0.5)
        let m = mask(windows: 2, tokens: 9)
        GradientCheck.check("direct window attention", [qkv, bias]) {
            scaledDotProductAttention(qkv: $0[0], heads: 1, bias: $0[1], mask: m)
        }
    }
}
