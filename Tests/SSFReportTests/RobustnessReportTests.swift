// The robustness page: its figures (mCA, relative drop, per-severity means), escaping, and the
// page's own self-check in headless Chromium (skipped when there is none).
import Foundation
import SSFReport
import XCTest

final class RobustnessReportTests: XCTestCase {
    private func content() -> RobustnessPageContent {
        RobustnessPageContent(title: "Robustness <of> lite0", model: "tf_efficientnet_lite0", data: "imagefolder:/data/x&y", split: "test",
                              images: 200, seed: 7, notes: ["Class subset: r.txt (2 of the head's 1000 classes)"],
                              cleanTop1: 80, cleanTop5: 95, severities: [1, 3, 5],
                              rows: [.init(corruption: "gaussian_noise", top1: [70, 50, 30]), .init(corruption: "fog", top1: [76, 70, 64])])
    }

    func testFigures() {
        let c = content()
        XCTAssertEqual(c.rows[0].mean, 50)
        XCTAssertEqual(c.rows[1].mean, 70)
        XCTAssertEqual(c.meanCorruptionAccuracy, 60)
        XCTAssertEqual(c.relativeDrop, 0.25, accuracy: 1e-12)
        XCTAssertEqual(c.severityMeans, [73, 60, 47])
    }

    func testPage() {
        let html = RobustnessReport.html(content(), generated: Date(timeIntervalSince1970: 0))
        XCTAssert(html.contains("<title>Robustness &lt;of&gt; lite0</title>"))
        XCTAssert(html.contains("imagefolder:/data/x&amp;y"))
        XCTAssert(html.contains("mean corruption accuracy (mCA) <strong>60.00 %</strong>"))
        XCTAssert(html.contains("relative drop <strong>25.0 %</strong>"))
        XCTAssert(html.contains("<td data-col=\"severity3\" class=\"num\">50.00 %</td>"))
        XCTAssert(html.contains("data-chart=\"top1_by_severity\" data-series=\"3\""))
        XCTAssert(html.contains("data-chart=\"mean_by_severity\" data-series=\"2\""))
        XCTAssert(html.contains("gaussian_noise · severity 5: 30.000 %"), "tooltips name the severity")
        XCTAssertFalse(html.contains("src=\"http"), "nothing loads from the network")
    }

    func testSelfCheckInHeadlessChromium() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-robustness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let page = root.appendingPathComponent("robustness.html")
        try RobustnessReport.write(content(), to: page)
        let browser = try HeadlessBrowser(scratch: root)
        try browser.assertSelfCheck(of: page, charts: ["top1_by_severity": 3, "mean_by_severity": 2])
    }
}
