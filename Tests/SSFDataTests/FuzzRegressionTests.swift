// Inputs the fuzz targets (Fuzz/, tools/fuzz.sh) found that stopped the process; each now fails
// with an error naming the file, or loads.
import Foundation
import XCTest
@testable import SSFData

final class FuzzRegressionTests: XCTestCase {
    private func fixture(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/fuzz"))
    }

    /// A MATLAB character array whose code units (doubles) exceed UInt32 trapped in the conversion.
    func testMatCharacterCodesOutOfRangeAreDropped() throws {
        let url = try fixture("mat_code_point_beyond_uint32.mat")
        do { _ = try readMatFile(url) } catch let error as DatasetError {
            XCTAssertTrue(error.description.contains(url.path), "\(error)")
        }
    }

    /// A list-file label of 3.3 billion asked for that many class names (an out-of-memory kill).
    func testListFileLabelsAreBounded() throws {
        let url = try fixture("list_huge_label.txt")
        XCTAssertThrowsError(try FileListDataset.list(url)) { error in
            XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("not below \(maxClassLabel)"), "\(error)")
        }
    }
}
