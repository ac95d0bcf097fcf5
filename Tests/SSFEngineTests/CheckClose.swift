// XCTest checks on top of the shared tensor comparison.
import XCTest
import SSFEngine
import SSFTestSupport

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
