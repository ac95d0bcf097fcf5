// The feature-similarity page: its table, heat map and curves, and the page in headless Chromium.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SSFReport
import XCTest

final class SimilarityReportTests: XCTestCase {
    private var fixtures: RunFixtures!

    override func setUpWithError() throws { fixtures = try RunFixtures() }
    override func tearDown() { fixtures.remove() }

    private func content() -> SimilarityPageContent {
        let layers = (1...6).map { "block \($0)" } + ["pre-logits"]
        return SimilarityPageContent(
            title: "Feature similarity to full", model: "tf_efficientnet_lite0", reference: "full", referenceTop1: 70.3,
            data: "imagefolder:/data/cifar10 (test): 256 images", batchSize: 64, kernel: "linear", layers: layers,
            methods: [
                .init(label: "linear", values: [0.99, 0.95, 0.9, 0.85, 0.7, 0.6, 0.52], top1: 66.2),
                .init(label: "bias", values: [0.99, 0.96, 0.92, 0.88, 0.8, 0.72, 0.64], top1: 68.8),
                .init(label: "ssf", values: [0.99, 0.96, 0.93, 0.9, 0.82, 0.75, nil], top1: 77),
            ])
    }

    func testTableHeatMapAndCurves() {
        let html = SimilarityReport.html(content())
        XCTAssertTrue(html.contains("data-chart=\"cka_heatmap\" data-series=\"3\""))
        XCTAssertTrue(html.contains("data-chart=\"cka_layers\" data-series=\"3\""))
        // The lead names the run closest at the last layer where it is defined for that run: bias (0.64; ssf has none there).
        XCTAssertTrue(html.contains("<strong>bias</strong> — CKA 0.640"), html)
        XCTAssertTrue(html.contains("<td class=\"num\" data-layer=\"6\">—</td>"))
        XCTAssertTrue(html.contains("66.20 %"))
        XCTAssertTrue(html.contains(">layer</text>"))
        XCTAssertFalse(html.contains(">epoch</text>"))
        // 7 cells per run in the heat map, each with its value in a tooltip.
        XCTAssertEqual(html.components(separatedBy: "<title>ssf · ").count - 1, 7 + 6)  // heat-map cells + curve markers
        XCTAssertTrue(html.contains("<title>ssf · pre-logits: CKA —</title>"))
    }

    func testColourScaleRunsFromPaleToDeep() {
        let page = SimilarityReport.html(content())
        XCTAssertTrue(page.contains("fill=\"#f0f3f6\""))  // 0
        XCTAssertTrue(page.contains("fill=\"#214c8c\""))  // 1
    }

    /// The figures as files of their own: well-formed XML with the SVG namespace and the chart styles inline.
    func testStandaloneFiguresAreWellFormedSVG() throws {
        let figures = SimilarityReport.figures(content())
        for (name, svg) in [("heatmap", figures.heatmap), ("layers", figures.layers)] {
            XCTAssertTrue(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""), name)
            XCTAssertTrue(svg.contains("<style>text{"), name)
            let parser = XMLParser(data: Data(svg.utf8))
            XCTAssertTrue(parser.parse(), "\(name): \(parser.parserError.map { "\($0)" } ?? "")")
        }
        XCTAssertTrue(figures.heatmap.contains("data-chart=\"cka_heatmap\""))
        XCTAssertTrue(figures.layers.contains("data-chart=\"cka_layers\""))
    }

    func testSelfCheckInHeadlessChromium() throws {
        let browser = try HeadlessBrowser(scratch: fixtures.root)
        let page = fixtures.url("similarity.html")
        try SimilarityReport.write(content(), to: page)
        try browser.assertSelfCheck(of: page, charts: ["cka_heatmap": 3, "cka_layers": 3])
    }
}
