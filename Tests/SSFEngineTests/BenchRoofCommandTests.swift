// `ssf bench model --roof` on the demo ViT: the model's own GEMMs are replayed and reported, and the
// references' buffers are left out of the model's peaks.
import Foundation
import SSFTestSupport
import XCTest

final class BenchRoofCommandTests: XCTestCase {
    func testRoofReplaysTheModelsOwnGemms() throws {
        guard let ssf = builtSSFBinary() else { throw XCTSkip("no built ssf binary (run `swift build --product ssf`, as scripts/test does)") }
        let (status, text) = try runBuiltSSF(ssf, ["bench", "model", "--model", "demo_vit_patch4_32", "--mode", "ssf", "--batch", "2",
                                                   "--steps", "1", "--threads", "1", "--roof", "--json"])
        XCTAssertEqual(status, 0, text)
        let line = try XCTUnwrap(text.split(separator: "\n").last, text)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], text)
        let calls = try XCTUnwrap(json["own_gemms"] as? Int, text)
        let fromParameters = try XCTUnwrap(json["own_gemm_operands_from_parameters"] as? Int, text)
        // Every frozen linear's forward and input-gradient product reads its weight; the head's
        // weight gradient reads none.
        XCTAssertGreaterThan(calls, 4, text)
        XCTAssertGreaterThanOrEqual(fromParameters, calls - 2, text)
        XCTAssertLessThanOrEqual(fromParameters, calls, text)
        let share = try XCTUnwrap(json["own_gemm_flop_share"] as? Double, text)
        XCTAssertGreaterThan(share, 0.3, text)
        XCTAssertLessThanOrEqual(share, 1.0, text)
        XCTAssertGreaterThan(try XCTUnwrap(json["own_gemm_gflops"] as? Double, text), 0, text)
        XCTAssertGreaterThan(try XCTUnwrap(json["fraction_of_own_gemms"] as? Double, text), 0, text)
        let process_ = try XCTUnwrap(json["process_peak_rss_mib"] as? Double, text)
        let buffers = try XCTUnwrap(json["roof_buffers_mib"] as? Double, text)
        let peak = try XCTUnwrap(json["peak_rss_mib"] as? Double, text)
        XCTAssertGreaterThan(buffers, 50, "the ViT-B sgemm set alone is over 100 MiB: \(text)")
        XCTAssertEqual(peak, process_ - buffers, accuracy: 0.11, text)
    }
}
