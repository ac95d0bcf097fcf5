// The check both GEMM kernels' tests make of a product's result.
import XCTest

/// The worst relative gap |got − expected| / (1 + |expected|) over the M×N block of C (row stride
/// `ldc`), asserting that the padding columns past N still hold `before`'s values.
func worstGemmGap(_ got: [Float], _ expected: [Float], before: [Float], m: Int, n: Int, ldc: Int, label: String,
                  file: StaticString = #filePath, line: UInt = #line) -> Float {
    var worst: Float = 0
    for i in 0..<m {
        for j in 0..<ldc {
            let index = i * ldc + j
            if j >= n {
                XCTAssertEqual(got[index], before[index], "\(label): wrote past column \(n)", file: file, line: line)
            } else {
                worst = max(worst, abs(got[index] - expected[index]) / (1 + abs(expected[index])))
            }
        }
    }
    return worst
}
