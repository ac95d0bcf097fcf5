// Registry lookups: names, timm pretrained tags and unknown names.
import XCTest
@testable import SSFModels

final class RegistryTests: XCTestCase {
    func testUnknownNameNamesIt() {
        XCTAssertThrowsError(try ModelRegistry.spec("resnet9000")) { error in
            XCTAssertTrue("\(error)".contains("resnet9000"))
        }
    }

    func testNamesAreUnique() {
        XCTAssertEqual(Set(ModelRegistry.names).count, ModelRegistry.names.count)
    }
}
