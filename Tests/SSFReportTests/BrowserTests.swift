// The report in a real headless Chromium: the page's own self-check (script errors, blocked
// requests, series per chart with a rendered extent) read from the dumped DOM, and a screenshot
// in which the runs' colours appear.
import Foundation
import SSFData
import SSFReport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class BrowserTests: XCTestCase {
    private var fixtures: RunFixtures!

    override func setUpWithError() throws { fixtures = try RunFixtures() }
    override func tearDown() { fixtures.remove() }

    /// Chromium or Chrome on PATH; skips without one unless SSF_REQUIRE_BROWSER=1, which makes its absence a failure.
    private func browser() throws -> URL {
        let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for name in names {
            for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
                return URL(fileURLWithPath: directory + "/" + name)
            }
        }
        if ProcessInfo.processInfo.environment["SSF_REQUIRE_BROWSER"] == "1" {
            // An error, not a skip: the test fails.
            throw ReportError("SSF_REQUIRE_BROWSER=1 but none of \(names.joined(separator: ", ")) is on PATH")
        }
        throw XCTSkip("no Chromium on PATH; install it with: apt-get install chromium")
    }

    /// Runs the browser headless with its own profile; kills it if it has not finished by the deadline.
    private func runBrowser(_ executable: URL, _ arguments: [String], timeout: TimeInterval = 90) throws -> (stdout: String, stderr: String) {
        let profile = fixtures.url("profile-\(UUID().uuidString)")
        let stdoutURL = fixtures.url("browser-\(UUID().uuidString).out"), stderrURL = fixtures.url("browser-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stdout = try FileHandle(forWritingTo: stdoutURL), stderr = try FileHandle(forWritingTo: stderrURL)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=\(profile.path)",
                             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--hide-scrollbars"] + arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            let grace = Date().addingTimeInterval(3)
            while process.isRunning, Date() < grace { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try stdout.close(); try stderr.close()
        let out = (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
        if timedOut {
            throw ReportError("\(executable.path) did not finish within \(Int(timeout)) s; its stderr ends:\n\(err.suffix(2000))")
        }
        return (out, err)
    }

    /// The report of the three fixture runs, written to a file.
    private func writeReport() throws -> URL {
        let page = fixtures.url("report.html")
        try RunReport.write(runDirectories: try fixtures.makeThreeRuns(), title: "Fruit: ssf, linear and lora", to: page)
        return page
    }

    func testSelfCheckInHeadlessChromium() throws {
        let browser = try browser()
        let page = try writeReport()
        let (dom, stderr) = try runBrowser(browser, ["--dump-dom", page.absoluteString])
        guard let open = dom.range(of: "<pre id=\"report-check\" hidden=\"\">"),
              let close = dom.range(of: "</pre>", range: open.upperBound..<dom.endIndex) else {
            return XCTFail("no #report-check in the dumped DOM (\(dom.count) characters); browser stderr ends:\n\(stderr.suffix(2000))")
        }
        let text = dom[open.upperBound..<close.lowerBound]
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        XCTAssertFalse(text.isEmpty, "the self-check script did not run")
        let check = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
        XCTAssertEqual((check["errors"] as? [Any])?.count, 0, "errors in the page: \(check["errors"] ?? "none reported")")
        let charts = try XCTUnwrap(check["charts"] as? [String: [String: Int]], "\(text)")
        let expected = ["loss": 3, "eval_loss": 3, "top1": 3, "lr": 3, "per_class": 2]
        XCTAssertEqual(Set(charts.keys), Set(expected.keys))
        for (name, count) in expected {
            XCTAssertEqual(charts[name]?["declared"], count, name)
            XCTAssertEqual(charts[name]?["series"], count, name)
            XCTAssertEqual(charts[name]?["rendered"], count, "\(name): series with an empty rendered box")
        }
    }

    func testScreenshotShowsEveryRunsColour() throws {
        let browser = try browser()
        let page = try writeReport()
        let png = fixtures.url("page.png")
        let (_, stderr) = try runBrowser(browser, ["--screenshot=\(png.path)", "--window-size=1280,2000", page.absoluteString])
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
