// The report in a real headless Chromium: the page's own self-check (script errors, blocked
// requests, series per chart with a rendered extent) read from the dumped DOM, and a screenshot
// in which the runs' colours appear.
import Foundation
import SSFData
import SSFReport
import XCTest

final class BrowserTests: XCTestCase {
    private var fixtures: RunFixtures!

    override func setUpWithError() throws { fixtures = try RunFixtures() }
    override func tearDown() { fixtures.remove() }

    /// The report of the three fixture runs, written to a file.
    private func writeReport() throws -> URL {
        let page = fixtures.url("report.html")
        try RunReport.write(runDirectories: try fixtures.makeThreeRuns(), title: "Fruit: ssf, linear and lora", to: page)
        return page
    }

    func testSelfCheckInHeadlessChromium() throws {
        let browser = try HeadlessBrowser(scratch: fixtures.root)
        try browser.assertSelfCheck(of: try writeReport(), charts: ["loss": 3, "eval_loss": 3, "top1": 3, "lr": 3, "per_class": 2])
    }

    func testScreenshotShowsEveryRunsColour() throws {
        let browser = try HeadlessBrowser(scratch: fixtures.root)
        let page = try writeReport()
        let png = fixtures.url("page.png")
        let (_, stderr) = try browser.run(["--screenshot=\(png.path)", "--window-size=1280,2000", page.absoluteString])
        guard FileManager.default.fileExists(atPath: png.path) else {
            return XCTFail("no screenshot written; browser stderr ends:\n\(stderr.suffix(2000))")
        }
        let image = try RGBImage(contentsOf: png)
        XCTAssertEqual(image.width, 1280)
        XCTAssertEqual(image.height, 2000)
        // The three runs are drawn in the first three palette colours (blue, orange, red): count pixels close to each.
        let colours: [(name: String, rgb: (Int, Int, Int))] = [("blue #4e79a7", (0x4E, 0x79, 0xA7)), ("orange #f28e2b", (0xF2, 0x8E, 0x2B)),
                                                              ("red #e15759", (0xE1, 0x57, 0x59))]
        var counts = [Int](repeating: 0, count: colours.count)
        image.pixels.withUnsafeBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 3) {
                let r = Int(p[i]), g = Int(p[i + 1]), b = Int(p[i + 2])
                for (k, c) in colours.enumerated() where abs(r - c.rgb.0) + abs(g - c.rgb.1) + abs(b - c.rgb.2) < 24 { counts[k] += 1 }
            }
        }
        for (k, c) in colours.enumerated() {
            XCTAssertGreaterThan(counts[k], 500, "few pixels of \(c.name) in the screenshot: the charts did not draw that run")
        }
        // Most of the page is background, but not all of it.
        let distinct = Set(stride(from: 0, to: image.pixels.count, by: 3 * 97).map { i in
            Int(image.pixels[i]) << 16 | Int(image.pixels[i + 1]) << 8 | Int(image.pixels[i + 2])
        })
        XCTAssertGreaterThan(distinct.count, 20, "the screenshot is nearly uniform")
    }
}
