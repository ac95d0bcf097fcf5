import XCTest
@testable import SSFEngine

final class SmokeTests: XCTestCase {
    func testLinear() {
        let x = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        let w = Tensor(shape: [2, 3], [1, 0, 0, 0, 1, 1])
        let y = linear(x, weight: w, bias: Tensor(shape: [2], [10, 20]))
        XCTAssertEqual(y.scalars, [11, 25, 14, 31])
    }
}
