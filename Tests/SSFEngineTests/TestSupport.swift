// Shared tensor comparison helpers for the engine tests: a scaled max-norm error and checks
// that name the failing tensor, the error, and the worst element with both values.
import XCTest
@testable import SSFEngine

/// How far `actual` is from `expected`: ‖actual − expected‖∞ / max(‖expected‖∞, floor).
///
/// With `floor` = 1 this is an absolute error for values up to 1 and a relative one above;
/// with a small floor it is relative to the largest expected magnitude.
struct TensorDifference {
    /// The scaled error; infinite when shapes differ or `actual` holds NaN or infinity.
    let error: Float
    /// Largest absolute difference and the flat index of the element where it occurs.
    let maxAbsDiff: Float
    let worstIndex: Int
    let actualValue: Float
    let expectedValue: Float
    let shapeMismatch: String?

    init(_ actual: Tensor, _ expected: Tensor, floor: Float) {
        guard actual.shape == expected.shape else {
            error = .infinity; maxAbsDiff = .infinity; worstIndex = 0; actualValue = .nan; expectedValue = .nan
            shapeMismatch = "shape \(actual.shape), expected \(expected.shape)"
            return
        }
        let a = actual.scalars, e = expected.scalars
        var worst = 0, diff: Float = 0, magnitude: Float = 0
        for i in a.indices {
            magnitude = max(magnitude, abs(e[i]))
            let d = abs(a[i] - e[i])
            if !(d <= diff) { // also catches NaN
                diff = d.isNaN ? .infinity : d
                worst = i
                if d.isNaN { break }
            }
        }
        maxAbsDiff = diff
        worstIndex = worst
        actualValue = a.isEmpty ? 0 : a[worst]
        expectedValue = e.isEmpty ? 0 : e[worst]
        error = diff / max(magnitude, floor)
        shapeMismatch = nil
    }

    /// The row-major multi-index of flat position `flat` in `shape`.
    static func multiIndex(_ flat: Int, in shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() where shape[d] > 0 {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// A one-line account of the difference for `label` (a tensor of shape `shape`).
    func describe(_ label: String, shape: [Int], tolerance: Float) -> String {
        if let shapeMismatch { return "\(label): \(shapeMismatch)" }
        let at = TensorDifference.multiIndex(worstIndex, in: shape)
        return "\(label): error \(error) (tolerance \(tolerance)), max |Δ| \(maxAbsDiff) at \(at): got \(actualValue), expected \(expectedValue)"
    }
}

/// Checks `actual` against `expected` with `TensorDifference(floor:)`; returns the error, or
/// records an XCTest failure naming `label` and returns nil when it exceeds `tolerance`.
@discardableResult
func checkClose(
    _ actual: Tensor, _ expected: Tensor, floor: Float, tolerance: Float, label: String,
    file: StaticString = #filePath, line: UInt = #line
) -> Float? {
    let d = TensorDifference(actual, expected, floor: floor)
    guard d.error <= tolerance else {
        XCTFail(d.describe(label, shape: expected.shape, tolerance: tolerance), file: file, line: line)
        return nil
    }
    return d.error
}
